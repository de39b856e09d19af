"""The anonymous verification endpoints are rate-limited per client address (api/ratelimit.py): past the limit they answer
429 (or RATE_LIMITED in GraphQL) until the minute ends; with Redis every API process counts in the same window."""

from __future__ import annotations

import datetime as dt

import pytest

from api.ratelimit import RateLimiter
from api.settings import Settings

QUERY = "query($i: VerifyCertificateInput!) { verifyCertificate(input: $i) { found } }"


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(
        database_url=database_url, upload_dir=tmp_path / "uploads", esign_dir=tmp_path / "esign",
        certificate_dir=tmp_path / "certificates", public_verify_per_minute=3,
    )


@pytest.fixture
def minute_start(clock):
    clock.set(dt.datetime(2026, 11, 24, 10, 0, 5, tzinfo=dt.timezone.utc))
    return clock


async def test_the_verification_page_past_its_limit(client, minute_start):
    for _ in range(3):
        assert (await client.get("/verify/1.2.156.3005.2.X?c=ABCD-2345")).status_code == 404  # unknown, but answered
    refused = await client.get("/verify/1.2.156.3005.2.X?c=ABCD-2345")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "55"
    assert "过于频繁" in refused.text
    minute_start.set(minute_start.now + dt.timedelta(seconds=55))  # the next minute
    assert (await client.get("/verify/1.2.156.3005.2.X?c=ABCD-2345")).status_code == 404


async def test_uploads_past_the_limit_are_refused_before_reading_them(client, minute_start):
    for _ in range(3):
        answered = await client.post("/verify", content=b"not a pdf", headers={"Content-Type": "application/pdf"})
        assert answered.status_code != 429
    refused = await client.post("/verify", content=b"not a pdf", headers={"Content-Type": "application/pdf"})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "RATE_LIMITED"


async def test_verify_certificate_past_its_limit(gql, minute_start):
    variables = {"i": {"identifier": "1.2.156.3005.2.X", "checkCode": "ABCD-2345"}}
    for _ in range(3):
        assert (await gql(QUERY, variables))["verifyCertificate"]["found"] is False
    errors = await gql.errors(QUERY, variables)
    assert errors[0]["extensions"]["code"] == "RATE_LIMITED"


async def test_processes_share_the_window_through_redis(redis_server):
    first, second = RateLimiter(redis_server.url, prefix="t:"), RateLimiter(redis_server.url, prefix="t:")
    try:
        now = 1_800_000_010.0
        assert [await first.retry_after("k", limit=2, window=60, now=now) for _ in range(2)] == [None, None]
        assert await second.retry_after("k", limit=2, window=60, now=now) == 50  # counted with the first's
        assert await second.retry_after("other", limit=2, window=60, now=now) is None
        assert await first.retry_after("k", limit=2, window=60, now=now + 50) is None  # a new minute
    finally:
        await first.close()
        await second.close()
