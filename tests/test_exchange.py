"""The national data-sharing exchange (issue #15 §2, DOMAIN.md §13): a push into a real PostgreSQL 前置库, with our own
database on SQLite and on PostgreSQL: incremental, idempotent, revocation voids, validation refuses a row alone."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
import sys

import asyncpg
import pytest
from tortoise import connections

from api.models import Case, CaseEvent, ExchangeWatermark
from api.services.exchange import TABLES, push
from tests.api.flows import act_ok, approve, run_to_in_progress, submit_ok

pytestmark = pytest.mark.quiet_app

_names = itertools.count()


@pytest.fixture
async def exchange_url(postgres):
    name = f"exchange_{next(_names)}_{id(postgres) % 1000}"
    url = await postgres.create_database(name)
    yield url
    with contextlib.suppress(Exception):
        await postgres.drop_database(name)


async def rows(url: str, table: str) -> list[dict]:
    connection = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await connection.fetch(f'SELECT * FROM "{table}" ORDER BY "DFSJZJ"')]
    finally:
        await connection.close()


async def snapshot(url: str) -> dict[str, list[dict]]:
    return {table: await rows(url, table) for table in TABLES}


def written(report) -> dict[str, int]:
    return {table: report.written(table) for table in TABLES if report.written(table)}


async def check_consistency(url: str) -> None:
    """Every case's BLZT sequence rebuilt from the exchange rows equals our timeline."""
    details = await rows(url, "SPGL_XMSPSXBLXXXXB")
    rebuilt: dict[str, list[tuple[int, int]]] = {}
    for row in details:
        assert row["SJYXBS"] == 1
        seq = int(row["DFSJZJ"].rsplit("-", 1)[1])
        rebuilt.setdefault(row["SPSXSLBM"], []).append((seq, row["BLZT"], row["BLSJ"]))
    cases = await Case.all()
    assert set(rebuilt) == {case.code for case in cases}
    for case in cases:
        events = await CaseEvent.filter(case_id=case.id).order_by("seq")
        exchanged = sorted(rebuilt[case.code], key=lambda r: (r[2], r[0]))
        assert [blzt for _, blzt, _ in exchanged] == [event.blzt for event in events], case.code
        assert exchanged[-1][1] == case.blzt


async def test_push_is_incremental_idempotent_and_voids_revoked_decisions(gql, client, world, exchange_url):
    cases = await submit_ok(gql, client, ("A", "C"))
    await run_to_in_progress(gql, cases["A"]["id"])
    await approve(gql, cases["A"]["id"])
    await act_ok(gql, "AcceptCase", "clerk", caseId=cases["C"]["id"])

    # A dry run reads everything and writes nothing: no tables, no watermark.
    dry = await push(exchange_url, dry_run=True)
    assert len(dry.rows["SPGL_XMJBXXB"]) == 3 and not dry.failures
    connection = await asyncpg.connect(exchange_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'SPGL_%'") == 0
    finally:
        await connection.close()
    assert await ExchangeWatermark.all().count() == 0

    # The full push.
    first = await push(exchange_url)
    assert not first.failures, first.failures
    events = await CaseEvent.all().count()
    assert written(first) == {
        "SPGL_DFXMSPLCXXB": 1, "SPGL_DFXMSPLCJDXXB": 2, "SPGL_DFXMSPLCJDSXXXB": 4,
        "SPGL_XMJBXXB": 3, "SPGL_XMDWXXB": 3, "SPGL_XMSPSXBLXXB": 2, "SPGL_XMSPSXBLXXXXB": events,
        "SPGL_XMSPSXPFWJXXB": 1,
    }
    project = {r["XMDM"]: r for r in await rows(exchange_url, "SPGL_XMJBXXB")}
    assert project[world.projects["main"].code]["SPLCLX"] == 3
    units = await rows(exchange_url, "SPGL_XMDWXXB")
    assert world.organizations["builder"].uscc in {u["JSDWTYSHXYDM"] for u in units}
    (document,) = await rows(exchange_url, "SPGL_XMSPSXPFWJXXB")
    assert document["SJYXBS"] == 1 and document["PFWJYXQX"] == dt.date(9999, 1, 1)
    await check_consistency(exchange_url)

    # Nothing moved: a re-run writes nothing.
    before = await snapshot(exchange_url)
    assert written(await push(exchange_url)) == {}
    assert await snapshot(exchange_url) == before

    # A transition: only its row is written.
    await act_ok(gql, "StartCase", "water", caseId=cases["C"]["id"])
    after_start = await push(exchange_url)
    assert written(after_start) == {"SPGL_XMSPSXBLXXXXB": 1}
    await check_consistency(exchange_url)

    # A revocation: one more state row, the approval document voided (SJYXBS 0), nothing deleted.
    await act_ok(gql, "RevokeCase", "planner", caseId=cases["A"]["id"], reason="许可被依法撤销")
    revoked = await push(exchange_url)
    assert written(revoked) == {"SPGL_XMSPSXBLXXXXB": 1, "SPGL_XMSPSXPFWJXXB": 1}
    (document,) = await rows(exchange_url, "SPGL_XMSPSXPFWJXXB")
    assert document["SJYXBS"] == 0 and document["PFWH"] == "珠自然资规许〔2026〕18号"
    details = await rows(exchange_url, "SPGL_XMSPSXBLXXXXB")
    assert [r["BLZT"] for r in details if r["SPSXSLBM"] == cases["A"]["code"]][-1] == 15
    await check_consistency(exchange_url)

    # --since far back re-reads everything and still changes nothing: the keys are stable, no duplicates.
    before = await snapshot(exchange_url)
    again = await push(exchange_url, since=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    assert written(again) == {} and sum(again.unchanged.values()) == sum(len(r) for r in before.values())
    assert await snapshot(exchange_url) == before


async def test_a_row_with_a_bad_code_is_refused_alone(gql, client, world, exchange_url):
    cases = await submit_ok(gql, client, ("A",))
    await act_ok(gql, "AcceptCase", "clerk", caseId=cases["A"]["id"])
    # Codes the ORM validators would refuse, written behind their back (data from before the validators).
    connection = connections.get("default")
    await connection.execute_query("UPDATE organization SET uscc = 'BADUSCC0000000000X' WHERE id = %s"
                                   .replace("%s", str(world.organizations["other"].id)))
    await connection.execute_query("UPDATE project SET region_code = '44040X' WHERE id = %s"
                                   .replace("%s", str(world.projects["far"].id)))
    report = await push(exchange_url)
    reasons = {(f.table, f.key): f.reason for f in report.failures}
    other, far = world.projects["other"].code, world.projects["far"].code
    assert "统一社会信用代码" in reasons[("SPGL_XMDWXXB", f"{other}-BADUSCC0000000000X")]
    assert "行政区划" in reasons[("SPGL_XMJBXXB", far)]
    assert len(report.failures) == 3  # the far project's unit carries the bad 行政区划 too
    # The others were written: the main project, its unit, the case and its events.
    assert {r["XMDM"] for r in await rows(exchange_url, "SPGL_XMJBXXB")} == {world.projects["main"].code, other}
    assert len(await rows(exchange_url, "SPGL_XMSPSXBLXXXXB")) == 2
    assert "refused SPGL_XMJBXXB" in report.summary()


async def test_concurrent_pushes_write_each_row_once(gql, client, world, exchange_url):
    """Two pushes at once into a fresh exchange (the cron job and a hand-run one): the tables are created once, every
    row exists once, and the watermark ends at the last event."""
    cases = await submit_ok(gql, client, ("A", "C"))
    await act_ok(gql, "AcceptCase", "clerk", caseId=cases["A"]["id"])
    reports = await asyncio.gather(*(push(exchange_url) for _ in range(4)))
    assert all(not r.failures for r in reports)
    # Every row was inserted by exactly one push; the others found it unchanged.
    for table in ("SPGL_XMJBXXB", "SPGL_XMSPSXBLXXXXB"):
        assert sum(r.inserted[table] for r in reports) == len(await rows(exchange_url, table))
    assert len(await rows(exchange_url, "SPGL_XMSPSXBLXXXXB")) == await CaseEvent.all().count() == 3
    (mark,) = await ExchangeWatermark.all()
    assert mark.last_event_id == (await CaseEvent.all().order_by("-id").first()).id
    await check_consistency(exchange_url)


async def test_the_worker_cron_job_pushes_when_an_exchange_is_set(gql, client, world, settings, exchange_url):
    from notifications.worker import _settings_class, exchange_push

    assert "exchange_push" not in {job.name for job in _settings_class(settings).cron_jobs}
    configured = settings.model_copy(update={"exchange_url": exchange_url})
    assert "cron:exchange_push" in {job.name for job in _settings_class(configured).cron_jobs}
    await submit_ok(gql, client, ("A",))
    assert await exchange_push({"settings": settings}) == 0  # no exchange: nothing
    assert await exchange_push({"settings": configured}) > 0
    assert await exchange_push({"settings": configured}) == 0  # nothing moved since
    assert len(await rows(exchange_url, "SPGL_XMSPSXBLXXXXB")) == 1


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_the_command_line_pushes_and_dry_runs(gql, client, world, settings, exchange_url):
    """``python -m api exchange push`` as an operator runs it, in its own process."""
    await submit_ok(gql, client, ("A",))
    env = {**os.environ, "JIANSHEN_DATABASE_URL": settings.database_url}
    command = [sys.executable, "-m", "api", "exchange", "push", "--to", exchange_url]

    async def run(*extra: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(*command, *extra, env=env, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT)
        out, _ = await process.communicate()
        return process.returncode, out.decode()

    code, out = await run("--dry-run")
    assert code == 0, out
    assert "SPGL_XMJBXXB           would upsert 3" in out and "dry run: nothing written" in out
    code, out = await run()
    assert code == 0, out
    assert "SPGL_XMSPSXBLXXXXB     inserted 1, updated 0, unchanged 0" in out
    code, out = await run()
    assert "SPGL_XMSPSXBLXXXXB     inserted 0, updated 0, unchanged" in out
    code, out = await run("--since", "2000-01-01")
    assert "SPGL_XMSPSXBLXXXXB     inserted 0, updated 0, unchanged 1" in out
    code, out = await run("--since", "yesterday")
    assert code == 2 and "--since" in out
    command[-1] = "postgres://127.0.0.1:1/nowhere"  # nothing listens: a clear line, no traceback
    code, out = await run()
    assert code == 1 and "nothing pushed" in out and "Traceback" not in out


@pytest.mark.parametrize("db_backend", ["postgres"])
async def test_an_event_committed_after_a_later_one_is_not_skipped(gql, client, world, settings, exchange_url):
    """PostgreSQL hands out ids before commit: an event whose transaction commits after a push that saw a larger id
    still reaches the exchange with the next push."""
    cases = await submit_ok(gql, client, ("A", "C"))
    await push(exchange_url)
    late = await asyncpg.connect(settings.database_url)
    try:
        transaction = late.transaction()
        await transaction.start()
        case = await Case.get(code=cases["A"]["code"])
        late_id = await late.fetchval(
            "INSERT INTO case_event (case_id, seq, action, blzt, state_after, party, actor_id, occurred_at, recorded_at,"
            " data, attachments) VALUES ($1, 2, 'WITHDRAW', 2, 'WITHDRAWN', 'APPLICANT', $2, now(), now(), '{}', '[]')"
            " RETURNING id", case.id, world.users["applicant"].id)
        await act_ok(gql, "AcceptCase", "clerk", caseId=cases["C"]["id"])  # a larger id, committed first
        assert written(await push(exchange_url)) == {"SPGL_XMSPSXBLXXXXB": 1}
        assert (await ExchangeWatermark.get()).last_event_id > late_id
        await transaction.commit()
    finally:
        await late.close()
    assert written(await push(exchange_url)) == {"SPGL_XMSPSXBLXXXXB": 1}
    details = await rows(exchange_url, "SPGL_XMSPSXBLXXXXB")
    assert [r["BLZT"] for r in details if r["SPSXSLBM"] == cases["A"]["code"]] == [1, 2]


async def test_a_departments_certificate_goes_to_the_approval_files_under_its_own_number(client, world, clock,
                                                                                       exchange_url):
    """An imported case approved with the certificate the department's system issued (issue #15): 批复文件 holds the
    approval document and the certificate, each under its own number; a revocation voids both, deletes nothing."""
    from tests.api.test_ingest import NOW, at, event, push_ok, statuses
    from tests.api.test_ingest_certificate import DOCUMENT, history, reference
    from tests.factories import PROJECT_CODE

    clock.set(NOW)
    assert statuses(await push_ok(client, clock, history("x", project_code=PROJECT_CODE,
                                                         certificate=reference("ZRZY-ZZ-77")))) == [("APPLIED", None)] * 8
    first = await push(exchange_url)
    assert not first.failures, first.failures
    files = {r["PFWH"]: r for r in await rows(exchange_url, "SPGL_XMSPSXPFWJXXB") if r["SPSXSLBM"] == "x-B"}
    assert set(files) == {DOCUMENT["documentNumber"], "ZRZY-ZZ-77"}
    certificate = files["ZRZY-ZZ-77"]
    assert (certificate["PFRQ"], certificate["PFWJYXQX"], certificate["FJID"], certificate["FJMC"],
            certificate["SJYXBS"]) == (dt.date(2026, 11, 6), dt.date(2029, 11, 5), "ZRZY-FILE-7781", "选址意见书.pdf", 1)
    assert certificate["GCDM"] == PROJECT_CODE and certificate["PFWJBT"] == "建设项目用地预审与选址意见书"
    await check_consistency(exchange_url)
    assert written(await push(exchange_url)) == {}
    # The department revokes the decision: both files voided, one more state row.
    revoke = event("x-b15", "x-B", 15, at(40), reason="许可被依法撤销")
    assert statuses(await push_ok(client, clock, [revoke])) == [("APPLIED", None)]
    assert written(await push(exchange_url)) == {"SPGL_XMSPSXBLXXXXB": 1, "SPGL_XMSPSXPFWJXXB": 2}
    files = [r for r in await rows(exchange_url, "SPGL_XMSPSXPFWJXXB") if r["SPSXSLBM"] == "x-B"]
    assert sorted((r["PFWH"], r["SJYXBS"]) for r in files) == [("ZRZY-ZZ-77", 0), (DOCUMENT["documentNumber"], 0)]
    await check_consistency(exchange_url)
