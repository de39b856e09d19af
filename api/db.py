"""Database configuration and migrations (Tortoise ORM 1.x, its built-in migrations).

``TORTOISE_ORM`` is what the ``tortoise`` CLI reads (``pyproject.toml`` → ``[tool.tortoise]``); the service builds the same
config from its settings. The app never creates tables by itself: ``python -m api migrate`` does, and the app refuses to
start against a database with pending migrations (DESIGN.md §6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import get_connection
from tortoise.migrations.executor import MigrationExecutor

from api.settings import Settings, get_settings

APP_LABEL = "models"
DB_TIMEZONE = "Asia/Shanghai"


def _bind_sqlite_datetimes_in_the_database_zone() -> None:
    """SQLite keeps datetimes as text and compares them as text. Tortoise writes a model's datetimes in the configured
    zone ("2026-11-24 18:00:00+08:00") but binds a filter's datetime as given, so ``next_attempt_at__lte=now`` with
    ``now`` in UTC compared "18:00+08:00" with "10:05+00:00" and found a due notice not due for eight hours.
    Every bound aware datetime is converted to the database's zone, so text order is time order again.
    (PostgreSQL compares real timestamps and is not affected.)"""
    import datetime as dt
    import sqlite3
    from zoneinfo import ZoneInfo

    import tortoise.backends.sqlite.executor  # noqa: F401 - registers Tortoise's own adapter first; ours replaces it

    zone = ZoneInfo(DB_TIMEZONE)
    sqlite3.register_adapter(
        dt.datetime, lambda value: (value.astimezone(zone) if value.tzinfo else value).isoformat(" ")
    )


_bind_sqlite_datetimes_in_the_database_zone()


def tortoise_config(database_url: str, *, busy_timeout_ms: int | None = None) -> dict[str, Any]:
    """``busy_timeout_ms``: the longest a write waits for the database's lock before it fails as busy (api/busy.py);
    None keeps each backend's default (SQLite: 5 s; PostgreSQL: no lock timeout)."""
    return {
        "connections": {"default": _connection_config(database_url, busy_timeout_ms)},
        "apps": {
            APP_LABEL: {
                "models": ["api.models"],
                "default_connection": "default",
                "migrations": "api.migrations",
            }
        },
        "use_tz": True,
        "timezone": DB_TIMEZONE,
    }


def _connection_config(database_url: str, busy_timeout_ms: int | None) -> str | dict[str, Any]:
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Reads apart from writes, every wait bounded (api/sqlite_backend.py).
        config = expand_db_url(database_url)
        config["engine"] = "api.sqlite_backend"
        if busy_timeout_ms is not None:
            config["credentials"]["busy_timeout"] = busy_timeout_ms
        return config
    if database_url.startswith(POSTGRES_SCHEMES):
        config = expand_db_url(database_url)
        if config["engine"] == "tortoise.backends.asyncpg":
            config["engine"] = "api.pg_backend"  # asyncpg, noting what a request reads (api/changes.py)
        if busy_timeout_ms is None:
            return config
        # A statement that waits for a row or table lock longer than this fails with lock_not_available (55P03).
        server_settings = dict(config["credentials"].get("server_settings") or {})
        server_settings.setdefault("lock_timeout", str(busy_timeout_ms))
        config["credentials"]["server_settings"] = server_settings
        return config
    return database_url


POSTGRES_SCHEMES = ("postgres://", "postgresql://", "asyncpg://")


def config_from_settings(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    return tortoise_config(settings.database_url, busy_timeout_ms=settings.db_busy_timeout_ms)


class _LazyConfig(dict):
    """The CLI imports ``api.db.TORTOISE_ORM`` at start; read the settings only then."""

    def __init__(self) -> None:
        super().__init__(config_from_settings())


TORTOISE_ORM: dict[str, Any] = _LazyConfig()


async def pending_migrations(config: dict[str, Any]) -> list[str]:
    """Names of the migrations not yet applied, on an initialised Tortoise."""
    executor = MigrationExecutor(get_connection("default"), config["apps"])
    return [f"{s.migration.app_label}.{s.migration.name}" for s in await executor.plan(None) if not s.backward]


async def migrate(database_url: str) -> list[str]:
    """Apply every pending migration; returns what was applied. Safe to run again."""
    from tortoise.migrations.api import migrate as run_migrations

    config = tortoise_config(database_url)
    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(f"{app_label}.{name}")

    try:
        await run_migrations(config=config, progress=progress)
    finally:
        await Tortoise.close_connections()
    return applied


class UnmigratedDatabase(RuntimeError):
    pass


def key_max(model: Any) -> int:
    """The largest key ``model``'s table can hold: a key beyond it names no row (and would overflow PostgreSQL's
    int4 parameter instead of finding nothing)."""
    from tortoise.fields import BigIntField

    from api.domain.ids import BIGINT_MAX, INT_MAX

    return BIGINT_MAX if isinstance(model._meta.pk, BigIntField) else INT_MAX
