"""Test fixtures: the app over its real ASGI interface, on SQLite and on a real PostgreSQL server (DESIGN.md §7).

Each test gets a fresh, migrated database: a copy of a migrated SQLite file, or a PostgreSQL database cloned from a
migrated template. ``db_backend`` runs a test on both; tests that need one only can ask for ``sqlite_only``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from api.app import create_app
from api.db import migrate
from api.services.calendar import invalidate_calendar_cache
from api.settings import Settings
from tests.factories import World, build_world
from tests.fakes.wechat import FakeWeChat
from tests.servers import (
    PostgresServer,
    RedisServer,
    make_base_dir,
    postgres_available,
    redis_available,
    require,
    xdist_worker,
    xdist_worker_index,
)

_counter = itertools.count()
# Database names carry the xdist worker: an external PostgreSQL ($JIANSHEN_TEST_POSTGRES_URL) is shared by the workers.
_DB_PREFIX = f"{xdist_worker()}_" if xdist_worker() else ""
TEMPLATE_DB = f"jianshen_template{'_' + xdist_worker() if xdist_worker() else ''}"


# Under pytest-xdist (`make test`) the longest files go first: the workers take tests in collection order, and a
# minutes-long test collected last keeps one worker busy while the other has nothing left. Keep in step with the
# 25 slowest that `make test` prints.
SLOW_FIRST = (
    "tests/test_demo.py",
    "tests/test_demo_served.py",
    "tests/test_production_start.py",
    "tests/notifications/test_faults.py",
    "tests/api/test_graphiql_offline.py",
    "tests/api/test_races.py",
    "tests/certificates/test_scaled.py",
    "tests/certificates/test_verification.py",
    "tests/esign/test_signing.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    if not xdist_worker():
        return  # one process: the usual order
    rank = {path: index for index, path in enumerate(SLOW_FIRST)}
    # A stable sort: every worker computes the same order (xdist requires identical collections).
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(SLOW_FIRST)))


class FrozenClock:
    """The app's one source of "now"; tests set it to fixed dates (no sleeps)."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        self.now = now or dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, now: dt.datetime) -> None:
        self.now = now


@pytest.fixture(autouse=True)
def _fresh_executor_cache() -> None:
    """Tortoise caches insert SQL per connection *name* ("default"), whatever the backend: a test that builds its own
    app on PostgreSQL after one on SQLite would send SQLite's SQL. The ``app`` fixture clears it; this covers the tests
    that make their apps themselves, in whatever order (and on whichever xdist worker) they run."""
    EXECUTOR_CACHE.clear()


@pytest.fixture(scope="session")
def base_dir() -> Path:
    path = make_base_dir("jianshen-tests-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_sync(make_coro) -> Any:
    """Run a coroutine to completion in a thread of its own, outside the test session's event loop.

    Setting up databases (migrations, cloning) happens in synchronous fixtures, before the app starts.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make_coro())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture(scope="session")
def sqlite_template(base_dir: Path) -> Path:
    path = base_dir / "template.sqlite3"
    run_sync(lambda: migrate(f"sqlite://{path}"))
    return path


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    require(postgres_available(), "PostgreSQL server binaries (initdb, pg_ctl); run `make system-deps`")
    server = PostgresServer.start()
    run_sync(lambda: server.create_database(TEMPLATE_DB))
    run_sync(lambda: migrate(server.dsn_for(TEMPLATE_DB)))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    require(redis_available(), "redis-server")
    server = RedisServer.start()
    if not server.managed and xdist_worker():
        # An external Redis is shared by the xdist workers: each gets a database of its own (0, 1, ...).
        server.url = server.url.rsplit("/", 1)[0] + f"/{xdist_worker_index()}"
    yield server
    server.stop()


@pytest.fixture
def fake_wechat() -> FakeWeChat:
    """A fresh fake WeChat API (tests/fakes/wechat.py) on a free loopback port; ``settings_overrides()`` points at it."""
    fake = FakeWeChat.start()
    yield fake
    fake.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def db_backend(request) -> str:
    return request.param


@pytest.fixture
def sqlite_only(db_backend: str) -> None:
    """For a test whose subject is not the database (a process, an address, a count covered elsewhere on both)."""
    if db_backend != "sqlite":
        pytest.skip("one database is enough here; the subject is covered on both elsewhere")


@pytest.fixture
def database_url(db_backend: str, request, base_dir: Path) -> str:
    n = next(_counter)
    if db_backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = base_dir / f"test-{n}.sqlite3"
        shutil.copy(template, path)
        yield f"sqlite://{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        name = f"test_{_DB_PREFIX}{n}"
        yield run_sync(lambda: server.create_database(name, template=TEMPLATE_DB))
        with contextlib.suppress(Exception):
            run_sync(lambda: server.drop_database(name))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        upload_dir=tmp_path / "uploads",
        esign_dir=tmp_path / "esign",
        certificate_dir=tmp_path / "certificates",
        public_verify_per_minute=10_000,  # the limit has its own tests (tests/certificates/test_rate_limits.py)
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock, request):
    # Tortoise caches insert/delete SQL per connection *name*: the tests switch between SQLite and PostgreSQL under
    # the same name "default", so the cache must go between apps (a real process never switches).
    EXECUTOR_CACHE.clear()
    invalidate_calendar_cache()
    # ``quiet_app``: no notice dispatcher or PDF runner in the background, whose commits would move the database
    # under a test that counts or compares (the outbox, the response cache's generation).
    quiet = request.node.get_closest_marker("quiet_app") is not None
    application = create_app(settings, clock=clock, run_dispatcher=not quiet, produce_certificates=not quiet)
    async with application.router.lifespan_context(application):
        yield application
    invalidate_calendar_cache()


@pytest.fixture
async def client(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def world(app, settings: Settings) -> World:
    return await build_world(settings)


OPERATIONS_DIR = Path(__file__).resolve().parent.parent / "graphql" / "operations"


def operation(name: str) -> str:
    return (OPERATIONS_DIR / f"{name}.graphql").read_text(encoding="utf-8")


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient, world: World) -> None:
        self.http = http
        self.world = world

    async def raw(self, query: str, variables: dict | None = None, *, as_user: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.world.token(as_user)}"} if as_user else {}
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    async def __call__(self, query: str, variables: dict | None = None, *, as_user: str | None = None) -> dict:
        response = await self.raw(query, variables, as_user=as_user)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def op(self, name: str, variables: dict | None = None, *, as_user: str | None = None) -> dict:
        """Send one of the mini-program's operations (graphql/operations/<name>.graphql)."""
        return await self(operation(name), variables, as_user=as_user)

    async def errors(self, query: str, variables: dict | None = None, *, as_user: str | None = None) -> list[dict]:
        response = await self.raw(query, variables, as_user=as_user)
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]


@pytest.fixture
def gql(client: httpx.AsyncClient, world: World) -> GraphQLClient:
    return GraphQLClient(client, world)


class QueryCounter(logging.Handler):
    """Counts the SQL statements Tortoise sends (its ``tortoise.db_client`` logger logs each one)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    # The app's own background loops (the embedded notice dispatcher and PDF runner) poll on their schedule: a
    # request slowed by a loaded machine must not count their statements as its own.
    BACKGROUND_TASKS = frozenset({"notice-dispatcher", "certificate-pdfs"})

    def emit(self, record: logging.LogRecord) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        if task is not None and task.get_name() in self.BACKGROUND_TASKS:
            return
        self.statements.append(record.getMessage())

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries():
    @contextlib.contextmanager
    def counting() -> Any:
        logger = logging.getLogger("tortoise.db_client")
        counter = QueryCounter()
        old_level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(counter)
        try:
            yield counter
        finally:
            logger.removeHandler(counter)
            logger.setLevel(old_level)

    return counting

