"""Production refuses a database that still holds the demo's published secrets (issue #10, item 18): the departments'
``dev-ingest-secret-*`` and the demo staff password. The refusal names what to change; once changed, it starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from api.app import create_app
from api.demo import DEMO_STAFF_PASSWORD, load_demo
from api.domain.errors import DomainError
from api.models import Department, User
from api.services.accounts import hash_password, set_password
from api.services.leftovers import DevelopmentLeftovers, demo_staff_usernames
from api.settings import Settings
from tests.servers import free_port

REPO = Path(__file__).resolve().parent.parent
NEW_PASSWORD = "Rotated-Passw0rd!"


@contextlib.asynccontextmanager
async def running(settings: Settings):
    """The app started (and stopped at the end); without background work, so the database stays as the test left it.
    One at a time: stopping an app closes the ORM's connections."""
    EXECUTOR_CACHE.clear()
    application = create_app(settings, produce_certificates=False, run_dispatcher=False)
    async with application.router.lifespan_context(application):
        yield application


def production(settings: Settings) -> Settings:
    return Settings(
        env="production", database_url=settings.database_url, upload_dir=settings.upload_dir,
        esign_dir=settings.esign_dir, certificate_dir=settings.certificate_dir,
        secret_key="p" * 40, esign_kek="k" * 40, certificate_check_secret="c" * 40,
        public_base_url="https://js.example",
    )


async def start(settings: Settings) -> None:
    async with running(settings):
        pass


def serve_in_production(settings: Settings) -> subprocess.CompletedProcess:
    env = {
        **os.environ, "JIANSHEN_ENV": "production", "JIANSHEN_DATABASE_URL": settings.database_url,
        "JIANSHEN_SECRET_KEY": "p" * 40, "JIANSHEN_ESIGN_KEK": "k" * 40, "JIANSHEN_CERTIFICATE_CHECK_SECRET": "c" * 40,
        "JIANSHEN_PUBLIC_BASE_URL": "https://js.example",
        "JIANSHEN_ESIGN_DIR": str(settings.esign_dir), "JIANSHEN_CERTIFICATE_DIR": str(settings.certificate_dir),
        "JIANSHEN_UPLOAD_DIR": str(settings.upload_dir),
    }
    env.pop("JIANSHEN_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )


def rotate_ingest_secrets(settings: Settings, codes: list[str]) -> dict[str, str]:
    """The real command line, as an operator runs it."""
    env = {**os.environ, "JIANSHEN_DATABASE_URL": settings.database_url}
    done = subprocess.run(
        [sys.executable, "-m", "api", "department", "secret", *codes, "--rotate"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


async def loaded_demo(settings: Settings) -> tuple[list[str], list[str]]:
    """The demo loaded through the development app: the department codes and the demo staff usernames."""
    async with running(settings):
        await load_demo(settings, pdf_limit=0)
        codes = sorted(await Department.all().values_list("code", flat=True))
    return codes, sorted(demo_staff_usernames())


async def set_new_passwords(settings: Settings, usernames: list[str]) -> None:
    """What `python -m api set-password` does to each, with one hash for all of them (argon2 is slow on purpose: a
    hash per account would only slow the test, as each distinct hash costs the start-up check one verification)."""
    async with running(settings):
        new_hash = await asyncio.to_thread(hash_password, NEW_PASSWORD)
        assert await User.filter(username__in=usernames).update(password_hash=new_hash) == len(usernames)


async def test_production_refuses_the_demo_secrets_until_they_are_changed(settings):
    codes, staff = await loaded_demo(settings)

    with pytest.raises(DevelopmentLeftovers) as refused:
        await start(production(settings))
    message = str(refused.value)
    assert f"department secret {' '.join(codes)} --rotate" in message, message
    assert f"staff accounts {' '.join(staff)} still have the demo password" in message
    assert "set-password USERNAME" in message
    # The real process, as the operator starts it: it exits, saying the same.
    served = serve_in_production(settings)
    assert served.returncode != 0 and message in served.stderr, served.stderr[-3000:]

    secrets = rotate_ingest_secrets(settings, codes)
    assert sorted(secrets) == codes and all(len(s) >= 32 and "dev" not in s for s in secrets.values())
    # Every account is checked: one left with the demo password still refuses the start, and only it is named.
    kept = "demo.admin"
    await set_new_passwords(settings, [u for u in staff if u != kept])
    with pytest.raises(DevelopmentLeftovers) as still:
        await start(production(settings))
    assert "ingest" not in str(still.value) and f"staff accounts {kept} still have the demo password:" in str(still.value)

    await set_new_passwords(settings, [kept])
    await start(production(settings))  # starts
    await start(settings)  # development never refused


async def test_no_one_may_choose_the_demo_password(app, settings, world):
    """What keeps the start-up check bounded: only the demo's own accounts can hold the demo password."""
    user = await User.first()
    with pytest.raises(DomainError) as refused:
        await set_password(user, DEMO_STAFF_PASSWORD)
    assert refused.value.code == "WEAK_PASSWORD" and refused.value.field == "password"
    assert "演示" in refused.value.message
