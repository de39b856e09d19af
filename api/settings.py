"""Settings of the service, read from the environment (prefix ``JIANSHEN_``).

The defaults are the *embedded* mode of DESIGN.md §1: one process, an SQLite file under ``var/``, no Redis, WeChat and
SMS in console mode. Production mode refuses to start with a development secret.
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-only-secret-key-change-me-in-production-0123456789"
DEV_INGEST_SECRET_PREFIX = "dev-ingest-secret"


class Environment(str, Enum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JIANSHEN_", env_file=None, extra="ignore")

    env: Environment = Field(Environment.DEVELOPMENT, description="`development` or `production`")
    database_url: str = Field(
        "sqlite://var/jianshen.sqlite3",
        description="Tortoise URL: `sqlite://path` or `postgres://user:pass@host:port/db`",
    )
    redis_url: str | None = Field(None, description="Redis URL; unset = embedded mode (no Redis)")
    secret_key: str = Field(DEV_SECRET_KEY, description="HMAC key for access tokens (JWT HS256); ≥ 32 characters")
    access_token_ttl: int = Field(900, ge=60, le=86400, description="Lifetime of an access token, seconds")
    demo_token_ttl: int = Field(
        7 * 86400, ge=60, description="Lifetime of the tokens `make demo` writes (development mode only), seconds"
    )
    upload_dir: Path = Field(Path("var/uploads"), description="Where uploaded materials are stored")
    upload_max_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest accepted upload, bytes")
    ingest_max_skew: int = Field(
        300, ge=10, description="Largest clock difference accepted on a department system's signed request, seconds"
    )
    ingest_max_batch: int = Field(500, ge=1, le=5000, description="Most events in one ingest request")
    event_max_future_skew: int = Field(
        300, ge=0, description="How far in the future a pushed event's own timestamp may lie, seconds"
    )
    calendar_cache_seconds: int = Field(
        60, ge=0, description="How long a process keeps the working-day calendar before re-reading it"
    )
    graphql_max_depth: int = Field(12, ge=3, description="Deepest GraphQL document accepted")
    graphql_max_aliases: int = Field(30, ge=1, description="Most aliases in one GraphQL document")
    graphql_max_tokens: int = Field(3000, ge=100, description="Most tokens in one GraphQL document")
    graphiql: bool | None = Field(None, description="Serve GraphiQL; default: on in development, off in production")
    page_max: int = Field(100, ge=1, le=1000, description="Largest `first` accepted by a connection")
    log_level: str = Field("INFO", description="Log level")

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.is_production) if self.graphiql is None else self.graphiql

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> "Settings":
        if self.is_production:
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                raise ValueError("JIANSHEN_SECRET_KEY must be set to a secret of at least 32 characters in production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
