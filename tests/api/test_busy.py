"""A database that cannot take a write now (issue #10, item 9): SERVICE_BUSY, reads that keep flowing, /readyz.

The lock is real: a second SQLite connection holding ``BEGIN IMMEDIATE`` on the service's file (what another process
— an arq worker, an operator's command — does while it writes), or a PostgreSQL session holding a table lock. Each
test holds it until it has seen the outcome it asserts, so no assertion depends on how long anything takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import asyncpg
import pytest
from tortoise.connection import connections

from api.models import CaseEvent, Project, SubscribeConsent, Upload
from tests.api.test_ingest import PLANNING, at, cases, event, push  # noqa: F401 - ``cases`` is a fixture
from tests.conftest import operation

pytestmark = pytest.mark.quiet_app  # no background commits that would meet the lock too

RESULTS = {"input": {"results": [{"templateId": "TPL-CASE", "result": "accept"}]}}
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"


@pytest.fixture
def busy_timeout_ms() -> int:
    return 200


@pytest.fixture
def settings(settings, busy_timeout_ms):
    return settings.model_copy(update={"db_busy_timeout_ms": busy_timeout_ms})


@contextlib.contextmanager
def sqlite_write_lock(database_url: str):
    """Another connection takes the database's write lock and keeps it until the block ends."""
    holder = sqlite3.connect(database_url.removeprefix("sqlite://"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


@contextlib.asynccontextmanager
async def postgres_write_lock(database_url: str, table: str, mode: str = "EXCLUSIVE"):
    """Another session locks ``table`` — against writes, reads still pass (EXCLUSIVE), or against everything (ACCESS
    EXCLUSIVE, what a migration's ALTER TABLE takes) — and keeps it until the block ends."""
    holder = await asyncpg.connect(database_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute(f"LOCK TABLE {table} IN {mode} MODE")
        yield
        await transaction.rollback()
    finally:
        await holder.close()


@contextlib.asynccontextmanager
async def write_lock(settings):
    if settings.database_url.startswith("sqlite://"):
        with sqlite_write_lock(settings.database_url):
            yield
    else:
        async with postgres_write_lock(settings.database_url, SubscribeConsent._meta.db_table):
            yield


def consent(gql, user: str = "applicant"):
    return gql.raw(operation("RecordSubscribeConsent"), RESULTS, as_user=user)


async def test_mutations_meet_a_busy_database_with_a_retryable_code(gql, world, settings):
    """Many mutations at once while another writer holds the lock: each answers SERVICE_BUSY in its payload — none the
    masked internal error — and none changed anything; once the lock is gone the same mutation succeeds."""
    async with write_lock(settings):
        answers = await asyncio.gather(*(consent(gql) for _ in range(8)))
    for response in answers:
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        errors = body["data"]["recordSubscribeConsent"]["errors"]
        assert [error["code"] for error in errors] == ["SERVICE_BUSY"], body
        assert "繁忙" in errors[0]["message"]
    assert await SubscribeConsent.all().count() == 0

    after = (await consent(gql)).json()["data"]["recordSubscribeConsent"]
    assert after["errors"] == [] and after["consents"] == [{"templateId": "TPL-CASE", "remaining": 1}]


@pytest.mark.parametrize("db_backend", ["sqlite"])
@pytest.mark.parametrize("busy_timeout_ms", [60_000])
async def test_reads_flow_while_a_write_waits_for_the_lock(gql, world, settings):
    """A mutation waits for another process's write lock (the timeout is long): meanwhile reads of the same process
    answer — before the lock is released and while the writer still waits. Then the writer goes through."""
    with sqlite_write_lock(settings.database_url):
        writer = asyncio.ensure_future(consent(gql))
        write_connection = connections.get("default")
        while not write_connection._lock.locked():  # the mutation's transaction holds the write connection
            assert not writer.done(), writer.result().text
            await asyncio.sleep(0)
        reads = await asyncio.gather(
            *(gql.raw(operation("Projects"), {"first": 5}, as_user=user) for user in ("applicant", "supervisor"))
        )
        for read in reads:
            assert read.status_code == 200 and "errors" not in read.json(), read.text
            assert read.json()["data"]["projects"]["edges"], read.text
        assert not writer.done(), "the writer should still be waiting for the lock"
    written = (await writer).json()["data"]["recordSubscribeConsent"]
    assert written["errors"] == [] and written["consents"] == [{"templateId": "TPL-CASE", "remaining": 1}]


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_upload_while_the_database_is_locked_answers_503_and_stores_nothing(client, world, settings):
    headers = {"Authorization": f"Bearer {world.token('applicant')}"}
    with sqlite_write_lock(settings.database_url):
        answers = await asyncio.gather(
            *(client.post("/uploads", files={"file": ("a.pdf", PDF, "application/pdf")}, headers=headers)
              for _ in range(4))
        )
    for response in answers:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"].isdigit()
        assert response.json()["error"]["code"] == "SERVICE_BUSY"
    assert await Upload.all().count() == 0
    assert not settings.upload_dir.exists() or list(settings.upload_dir.iterdir()) == []
    assert (await client.post("/uploads", files={"file": ("a.pdf", PDF, "application/pdf")}, headers=headers)
            ).status_code == 201


@pytest.mark.parametrize("db_backend", ["postgres"])
async def test_a_query_waiting_for_a_postgres_lock_answers_service_busy(gql, world, settings):
    """A query that cannot get its table's lock in time is a GraphQL error with extensions.code SERVICE_BUSY, not the
    masked internal error."""
    async with postgres_write_lock(settings.database_url, Project._meta.db_table, "ACCESS EXCLUSIVE"):
        errors = await gql.errors(operation("Projects"), {"first": 5}, as_user="supervisor")
    assert [error.get("extensions", {}).get("code") for error in errors] == ["SERVICE_BUSY"], errors
    assert "繁忙" in errors[0]["message"]
    assert (await gql.op("Projects", {"first": 5}, as_user="supervisor"))["projects"]["edges"]


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_ingest_while_the_database_is_locked_answers_503_and_the_retry_applies(client, clock, cases, settings):
    events = [event("busy-3", cases["A"]["code"], 3, at(1), opinion="材料齐全，予以受理")]
    before = await CaseEvent.all().count()
    with sqlite_write_lock(settings.database_url):
        response = await push(client, clock, events, department=PLANNING)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"].isdigit()
        assert response.json()["error"]["code"] == "SERVICE_BUSY"
    assert await CaseEvent.all().count() == before
    retried = await push(client, clock, events, department=PLANNING)
    assert retried.status_code == 200 and retried.json()["results"][0]["status"] == "APPLIED", retried.text


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_readyz_says_the_database_cannot_take_a_write(client, settings):
    assert (await client.get("/readyz")).status_code == 200
    with sqlite_write_lock(settings.database_url):
        response = await client.get("/readyz")
        assert response.status_code == 503, response.text
        assert response.json()["checks"]["database"].startswith("error: busy")
    assert (await client.get("/readyz")).status_code == 200


@pytest.mark.parametrize("db_backend", ["postgres"])
async def test_readyz_refuses_a_read_only_postgres(client, settings):
    holder = await asyncpg.connect(settings.database_url)
    database = settings.database_url.rsplit("/", 1)[1]
    try:
        await holder.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        await connections.get("default").close()  # new sessions take the database's new default
        response = await client.get("/readyz")
        assert response.status_code == 503, response.text
        assert response.json()["checks"]["database"] == "error: read-only"
    finally:
        await holder.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
        await holder.close()
        await connections.get("default").close()
