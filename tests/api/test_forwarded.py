"""Who the per-address rate limits count (issue #10, item 17): the connection's own address, unless it comes from a
proxy named in JIANSHEN_FORWARDED_ALLOW_IPS — uvicorn alone would believe X-Forwarded-For from 127.0.0.1, so anyone on
the host could pick a fresh address for each request. Real ``python -m api serve`` processes, many requests at once."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.test_subscriptions import api_process

LIMIT = 3  # JIANSHEN_PUBLIC_VERIFY_PER_MINUTE of the processes: the /verify page's per-address limit


async def statuses(host: str, forwarded_for: list[str]) -> list[int]:
    """GET /verify from 127.0.0.1 claiming each address in turn, all at once."""
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=20) as http:
        answers = await asyncio.gather(*(http.get("/verify", headers={"X-Forwarded-For": a}) for a in forwarded_for))
    return sorted(a.status_code for a in answers)


SPOOFED = [f"203.0.113.{n}" for n in range(1, 2 * LIMIT + 1)]  # a new address for every request


async def test_by_default_a_spoofed_forwarded_for_changes_nothing(settings, sqlite_only):
    with api_process(settings, extra_env={"JIANSHEN_PUBLIC_VERIFY_PER_MINUTE": str(LIMIT)}) as host:
        # Every request counts against 127.0.0.1, whatever it claims.
        assert await statuses(host, SPOOFED) == [200] * LIMIT + [429] * LIMIT


async def test_a_trusted_proxy_s_forwarded_for_is_the_client(settings, sqlite_only):
    env = {"JIANSHEN_PUBLIC_VERIFY_PER_MINUTE": str(LIMIT), "JIANSHEN_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    with api_process(settings, extra_env=env) as host:
        # Each client the proxy names has a limit of its own ...
        assert await statuses(host, SPOOFED) == [200] * (2 * LIMIT)
        # ... and one client behind it is limited like any other.
        assert await statuses(host, ["198.51.100.7"] * (2 * LIMIT)) == [200] * LIMIT + [429] * LIMIT
