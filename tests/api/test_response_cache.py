"""Answers to repeated queries are kept only while they would be computed the same (api/response_cache.py): the
database generation (any commit, by any connection or process), the viewer, the date and the request's bytes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from api.changes import SqliteDataVersion, marker_for
from api.response_cache import Entry, ResponseCache
from api.services.tokens import issue_access_token
from api.settings import Settings
from tests.api.flows import act_ok, submit_ok
from tests.conftest import operation
from tests.factories import PROJECT_CODE, shanghai

pytestmark = pytest.mark.quiet_app  # nothing commits behind the tests' back

ROOT = Path(__file__).resolve().parents[2]
PROGRESS = operation("ProjectProgress")


def marker_statements(counter) -> list[str]:
    """What a kept answer may cost: the generation (PostgreSQL: one snapshot read; SQLite: no statement at all)."""
    return [s for s in counter.statements if "pg_current_snapshot" not in s]


async def progress(client, world, user: str = "applicant", *, token: str | None = None):
    token = token or world.token(user)
    response = await client.post(
        "/graphql",
        json={"query": PROGRESS, "variables": {"code": PROJECT_CODE}, "operationName": "ProjectProgress"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response


async def write_by_another_connection(settings, db_backend: str, sql: str) -> None:
    """``sql`` committed by a connection of its own, as another process would."""
    if db_backend == "sqlite":
        path = settings.database_url.removeprefix("sqlite://")

        def write() -> None:
            with sqlite3.connect(path) as other:
                other.execute(sql)

        await asyncio.to_thread(write)
    else:
        other = await asyncpg.connect(settings.database_url)
        try:
            await other.execute(sql)
        finally:
            await other.close()


def cases_of(response) -> dict[str, dict]:
    project = response.json()["data"]["project"]
    return {c["item"]["code"]: c for stage in project["stages"] for c in stage["cases"]}


@pytest.fixture
async def accepted(gql, client, clock):
    """Case A of the main project, accepted on Monday 2026-11-02."""
    clock.set(shanghai(2026, 11, 2, 9))
    case = (await submit_ok(gql, client, ["A"]))["A"]
    await act_ok(gql, "AcceptCase", "clerk", caseId=case["id"])
    return case


async def test_a_repeated_query_is_answered_from_memory(client, world, accepted, count_queries, app):
    token = world.token("applicant")
    first = await progress(client, world, token=token)
    with count_queries() as counter:
        second = await progress(client, world, token=token)
    assert second.status_code == 200 and second.content == first.content
    assert marker_statements(counter) == []  # not the viewer, not the project: nothing but the generation
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert app.state.graphql.answers.hits >= 1


async def test_a_commit_through_the_api_ends_the_kept_answer(gql, client, world, accepted):
    assert cases_of(await progress(client, world))["A"]["state"] == "ACCEPTED"
    await act_ok(gql, "StartCase", "planner", caseId=accepted["id"])
    assert cases_of(await progress(client, world))["A"]["state"] == "IN_PROGRESS"


async def test_a_commit_by_another_connection_ends_it(client, world, accepted, settings, db_backend):
    """What another process writes (a worker, a second API instance, an operator's script) is seen at once."""
    assert (await progress(client, world)).json()["data"]["project"]["name"] == "测试项目main"
    sql = "UPDATE project SET name = '改名后的项目' WHERE code = '%s'" % PROJECT_CODE
    await write_by_another_connection(settings, db_backend, sql)
    assert (await progress(client, world)).json()["data"]["project"]["name"] == "改名后的项目"


async def test_a_year_loaded_by_the_operator_is_seen_by_the_next_request(gql, client, world, clock, settings, tmp_path):
    """`python -m api calendar load` in another process: no wait for the calendar's own 60-second cache either."""
    clock.set(shanghai(2026, 12, 29, 9))
    case = (await submit_ok(gql, client, ["A"]))["A"]
    await act_ok(gql, "AcceptCase", "clerk", caseId=case["id"])
    clock.set(shanghai(2026, 12, 30, 9))
    before = cases_of(await progress(client, world))["A"]
    assert (before["dueDate"], before["provisional"]) == ("2027-01-05", True)  # 2027 assumed Monday–Friday

    year = {"year": 2027, "source": "测试：2027年节假日安排", "holidays": [{"date": "2027-01-01", "name": "元旦"}],
            "workdays": []}
    (tmp_path / "2027.json").write_text(json.dumps(year, ensure_ascii=False), encoding="utf-8")
    env = {**os.environ, "JIANSHEN_DATABASE_URL": settings.database_url}
    loaded = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "api", "calendar", "load", str(tmp_path / "2027.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    after = cases_of(await progress(client, world))["A"]
    assert (after["dueDate"], after["provisional"]) == ("2027-01-06", False)  # 01-01 is a holiday after all


async def test_the_date_is_part_of_it(client, world, accepted, clock, count_queries):
    clock.set(shanghai(2026, 11, 3, 8))
    morning = cases_of(await progress(client, world))["A"]
    clock.set(shanghai(2026, 11, 3, 23, 59))
    with count_queries() as counter:
        evening = cases_of(await progress(client, world))["A"]
    assert evening == morning and marker_statements(counter) == []  # the same day: the same answer
    clock.set(shanghai(2026, 11, 4, 0, 1))
    next_day = cases_of(await progress(client, world))["A"]
    assert (morning["usedDays"], next_day["usedDays"]) == (1, 2)
    assert next_day["remainingDays"] == morning["remainingDays"] - 1


async def test_who_asks_is_part_of_it(gql, client, world, accepted):
    assert (await progress(client, world, "applicant")).json()["data"]["project"]["code"] == PROJECT_CODE
    # The same bytes from another organisation's applicant: its own answer, not the kept one.
    assert (await progress(client, world, "other_applicant")).json()["data"]["project"] is None
    # The organisation withdraws the authorisation: the applicant's next identical request no longer sees the project.
    grant = world.authorizations["applicant"]
    await grant.__class__.filter(id=grant.id).update(revoked_at=dt.datetime.now(dt.timezone.utc))
    assert (await progress(client, world, "applicant")).json()["data"]["project"] is None


async def test_a_logged_out_session_is_refused_at_its_next_request(gql, client, world, accepted):
    token = world.token("applicant")
    assert (await progress(client, world, token=token)).status_code == 200
    payload = (await gql.op("Logout", {}, as_user="applicant"))["logout"]
    assert payload["ok"] and payload["errors"] == []
    assert (await progress(client, world, token=token)).status_code == 401


async def test_an_expired_token_is_refused_though_its_answer_is_kept(client, world, accepted, settings):
    user = world.users["applicant"]
    now = int(time.time())
    token = issue_access_token(
        settings, user_id=user.id, role=user.role.value, session_id=world.sessions["applicant"], ttl=2, now=now
    )
    assert (await progress(client, world, token=token)).status_code == 200
    assert (await progress(client, world, token=token)).status_code == 200
    await asyncio.sleep(now + 2 - time.time() + 0.05)
    refused = await progress(client, world, token=token)
    assert refused.status_code == 401 and refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_mutations_and_errors_are_never_kept(gql, client, world, accepted, count_queries, app):
    mark = "mutation { markNoticesRead { marked errors { code } } }"
    await gql.raw(mark, as_user="applicant")
    with count_queries() as counter:
        await gql.raw(mark, as_user="applicant")
    assert marker_statements(counter), "a mutation must run every time"
    answers = app.state.graphql.answers
    kept = len(answers)
    bad = 'query { project(code: "not-a-code") { id } }'
    for _ in range(2):
        assert (await gql.errors(bad, as_user="applicant"))[0]["extensions"]["code"] == "INVALID_PROJECT_CODE"
    assert len(answers) == kept and answers.hits == 0


async def test_an_answer_that_read_the_clock_or_the_limiter_is_not_kept(client, gql, settings, app):
    """verifyCertificate counts against the caller's per-minute limit: answering it from memory would lift the limit."""
    query = "query($i: VerifyCertificateInput!) { verifyCertificate(input: $i) { found } }"
    variables = {"i": {"identifier": "1.2.156.3005.2.X", "checkCode": "ABCD-2345"}}
    for _ in range(2):
        assert (await gql(query, variables))["verifyCertificate"]["found"] is False
    assert len(app.state.graphql.answers) == 0


def test_the_store_is_bounded_and_follows_the_newest_state():
    cache = ResponseCache(max_bytes=1000)
    today = dt.date(2026, 11, 25)
    state = cache.observe(1, today)
    entry = Entry(200, (), b"x" * 300)
    for n in range(5):
        assert cache.put(state, ("viewer", f"body{n}"), entry)
    assert len(cache) == 3 and cache.size_bytes <= 1000  # the oldest two went
    assert cache.get(state, ("viewer", "body0")) is None and cache.get(state, ("viewer", "body4")) is entry
    assert not cache.put(state, ("viewer", "huge"), Entry(200, (), b"x" * 2000))  # alone larger than the store
    newer = cache.observe(2, today)  # a commit: nothing kept can be served again
    assert len(cache) == 0
    assert not cache.put(state, ("viewer", "late"), entry)  # computed at the old generation: refused
    assert cache.get(state, ("viewer", "body4")) is None
    assert cache.put(newer, ("viewer", "body4"), entry) and cache.get(newer, ("viewer", "body4")) is entry
    assert cache.observe(None, today) is None and cache.get(None, ("viewer", "body4")) is None  # no generation: no cache
    cache.observe(2, today + dt.timedelta(days=1))  # midnight
    assert len(cache) == 0


async def test_a_commit_in_progress_makes_no_request_wait(tmp_path):
    """SQLite: while another connection holds the write lock, the generation is unknown (no caching) — at once."""
    path = tmp_path / "busy.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (x)")
    marker = SqliteDataVersion(str(path))
    first = await marker.read()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO t VALUES (1)")
    started = time.perf_counter()
    assert await marker.read() is None
    assert time.perf_counter() - started < 0.5
    writer.execute("COMMIT")
    after = await marker.read()
    assert after is not None and after != first
    assert await marker.read() == after  # nothing committed since
    marker.close()
    assert await marker_for("sqlite://:memory:").read() is None  # another connection would see another database


async def test_postgres_snapshots_change_with_every_commit(settings, db_backend, world):
    if db_backend != "postgres":
        pytest.skip("PostgreSQL's marker")
    marker = marker_for(settings.database_url)
    first = await marker.read()
    other = await asyncpg.connect(settings.database_url)
    try:
        await other.execute("UPDATE project SET name = name")
        assert await marker.read() != first
    finally:
        await other.close()


async def test_switched_off(database_url, tmp_path, clock):
    """JIANSHEN_RESPONSE_CACHE_MB=0: every request is computed."""
    import httpx

    from api.app import create_app
    from tortoise.backends.base.executor import EXECUTOR_CACHE
    from tests.factories import build_world

    settings = Settings(
        database_url=database_url, upload_dir=tmp_path / "u", esign_dir=tmp_path / "e",
        certificate_dir=tmp_path / "c", response_cache_mb=0,
    )
    EXECUTOR_CACHE.clear()
    application = create_app(settings, clock=clock, run_dispatcher=False, produce_certificates=False)
    async with application.router.lifespan_context(application):
        world = await build_world(settings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as client:
            for _ in range(2):
                assert (await progress(client, world)).status_code == 200
        assert len(application.state.graphql.answers) == 0 and application.state.graphql.answers.hits == 0


async def test_a_download_link_is_made_for_each_request_never_kept(gql, client, world, clock, count_queries):
    """The signed link expires (JIANSHEN_CERTIFICATE_DOWNLOAD_TTL) and the status follows the validity: both read the
    moment, so the answer is computed every time (api/schema/context.py)."""
    from api.domain.accounts import Role
    from tests.certificates.conftest import approve_b, create_seal, download, only_certificate

    await world.add_user("admin", "钱管理", Role.ADMIN)
    assert (await create_seal(gql, world))["errors"] == []
    await approve_b(gql, client)
    first = await only_certificate(gql)
    clock.set(clock.now + dt.timedelta(seconds=30))  # the same day, nothing committed
    with count_queries() as counter:
        second = await only_certificate(gql)
    assert marker_statements(counter), "computed again"
    assert first["downloadUrl"] and second["downloadUrl"] and first["downloadUrl"] != second["downloadUrl"]
    assert (await download(client, second["downloadUrl"])).status_code == 200
