"""``/healthz`` (the process is up) and ``/readyz`` (the database and, when configured, Redis answer)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise.connection import get_connection


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await get_connection("default").execute_query("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        checks["database"] = f"error: {type(exc).__name__}"
    redis_url = request.app.state.settings.redis_url
    if redis_url:
        from redis.asyncio import Redis

        client = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            await client.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {type(exc).__name__}"
        finally:
            await client.aclose()
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503)
