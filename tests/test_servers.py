"""The test servers themselves: they start, answer a real client, and are gone after stop()."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.servers import (
    POSTGRES_URL_ENV,
    REDIS_URL_ENV,
    PostgresServer,
    RedisServer,
    port_is_open,
    postgres_available,
    redis_available,
    require,
)


@pytest.mark.asyncio
async def test_postgres_starts_answers_and_stops(tmp_path: Path) -> None:
    require(postgres_available(), "PostgreSQL server binaries (initdb, pg_ctl)")
    import asyncpg

    server = PostgresServer.start(tmp_path)
    try:
        connection = await asyncpg.connect(server.url)
        try:
            assert await connection.fetchval("select 1") == 1
        finally:
            await connection.close()

        url = await server.create_database("jianshen_smoke")
        assert url == server.dsn_for("jianshen_smoke")
        connection = await asyncpg.connect(url)
        try:
            assert await connection.fetchval("select current_database()") == "jianshen_smoke"
        finally:
            await connection.close()
        await server.drop_database("jianshen_smoke")
    finally:
        server.stop()

    if server.managed:
        assert not port_is_open(server.port)
        assert server.directory is not None and not server.directory.exists()


@pytest.mark.asyncio
async def test_redis_starts_answers_restarts_and_stops(tmp_path: Path) -> None:
    require(redis_available(), "redis-server")
    from redis.asyncio import Redis

    server = RedisServer.start(tmp_path)
    try:
        client = Redis.from_url(server.url)
        try:
            assert await client.ping() is True
        finally:
            await client.aclose()

        if server.managed:
            port = server.port
            server.kill()
            assert not port_is_open(port)
            server.restart()
            assert server.port == port
            client = Redis.from_url(server.url)
            try:
                assert await client.ping() is True
            finally:
                await client.aclose()
    finally:
        server.stop()

    if server.managed:
        assert not port_is_open(server.port)
        assert not server.running


def test_require_fails_under_ci_and_skips_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    require(True, "anything")  # found: no effect

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require(False, "a missing server")

    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require(False, "a missing server")


def test_external_servers_are_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POSTGRES_URL_ENV, "postgres://someone@db.example:6543/postgres")
    monkeypatch.setenv(REDIS_URL_ENV, "redis://cache.example:6380/0")

    postgres = PostgresServer.start()
    assert not postgres.managed
    assert postgres.dsn_for("other") == "postgres://someone@db.example:6543/other"
    postgres.stop()  # no-op

    redis_server = RedisServer.start()
    assert not redis_server.managed
    assert redis_server.url == "redis://cache.example:6380/0"
    with pytest.raises(RuntimeError):
        redis_server.restart()
    redis_server.stop()  # no-op
    assert os.environ[REDIS_URL_ENV]  # untouched
