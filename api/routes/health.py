"""``/healthz`` (the process is up) and ``/readyz`` (the database can take a write and, when configured, Redis answers).

Ready means "can serve a mutation now": a database that answers reads but cannot take a write (another process holds
SQLite's write lock, a PostgreSQL standby or read-only server) is reported, so a load balancer sends the traffic
elsewhere instead of letting every mutation wait and answer SERVICE_BUSY (issue #10, item 9).
"""

from __future__ import annotations

import asyncio
import sqlite3

from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import get_connection

from api.busy import is_busy

# How long the write probe waits for the lock: a commit in progress elsewhere takes milliseconds, a held lock longer.
WRITE_PROBE_SECONDS = 0.25
CHECK_SECONDS = 2.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _sqlite_takes_a_write(path: str) -> None:
    """BEGIN IMMEDIATE takes the write lock (or fails as "database is locked"); ROLLBACK writes nothing."""
    connection = sqlite3.connect(path, timeout=WRITE_PROBE_SECONDS, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    finally:
        connection.close()


async def _database(database_url: str) -> str:
    connection = get_connection("default")
    if database_url.startswith("sqlite://"):
        await connection.execute_query("SELECT 1")
        path = expand_db_url(database_url)["credentials"]["file_path"]
        if path != ":memory:":
            await asyncio.to_thread(_sqlite_takes_a_write, path)
        return "ok"
    from tortoise.transactions import in_transaction

    async with in_transaction("default") as transaction:
        await transaction.execute_query(f"SET LOCAL statement_timeout = {int(WRITE_PROBE_SECONDS * 1000)}")
        rows = await transaction.execute_query_dict(
            "SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS read_only"
        )
    if rows[0]["recovery"] or rows[0]["read_only"] == "on":
        return "error: read-only"
    return "ok"


async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            checks["database"] = await _database(request.app.state.settings.database_url)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        checks["database"] = "error: busy, cannot take a write" if is_busy(exc) else f"error: {type(exc).__name__}"
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
