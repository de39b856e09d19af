"""Kept answers survive writes they cannot be changed by, and only those (issue #13 item 2; api/changes.py).

A commit moves the versions of exactly the tables it wrote (triggers of migration 0013_scope, whoever writes); a kept
answer is served while the tables its request read are unchanged. The property test runs seeded random sequences of
writes — every kind of case action, submissions, a department's pushed events, notices delivered and read, logins
and logouts, complaints, a calendar year loaded, a write by another connection, midnight — and reads of the
mini-program's kept queries by several viewers, and compares every answer with a server whose response cache is off,
on the same database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import httpx
import pytest

from api.app import create_app
from api.domain.calendar import YearSchedule
from api.models import Case, User
from api.services.calendar import store_year
from api.services.sessions import start_session
from tests.api.flows import APPROVAL_DOCUMENT, act, act_ok, submit, submit_ok
from tests.api.test_ingest import push  # the department's signed push
from tests.api.test_response_cache import write_by_another_connection
from tests.conftest import operation
from tests.factories import OTHER_PROJECT_CODE, PROJECT_CODE, FAR_PROJECT_CODE, shanghai

pytestmark = pytest.mark.quiet_app  # only the writes the test makes

SEEDS = (1, 2)
WRITES = 24


def gql_body(name: str, variables: dict | None = None) -> dict:
    return {"query": operation(name), "variables": variables or {}, "operationName": name}


async def ask(client: httpx.AsyncClient, world, user: str, name: str, variables: dict | None = None):
    headers = {"Authorization": f"Bearer {world.token(user)}"}
    return await client.post("/graphql", json=gql_body(name, variables), headers=headers)


@pytest.fixture
async def reference(settings, clock):
    """The same service with its response cache off, on the same database (the test's Tortoise connections)."""
    app = create_app(settings.model_copy(update={"response_cache_mb": 0}), clock=clock, check_migrations=False,
                     run_dispatcher=False, produce_certificates=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def running(gql, client, world, clock):
    """Cases on two projects of two organisations, some accepted, some running."""
    clock.set(shanghai(2026, 11, 2, 9))
    main = await submit_ok(gql, client, ["A", "B", "C"])
    other = await submit_ok(gql, client, ["A"], project=OTHER_PROJECT_CODE, user="other_applicant")
    await act_ok(gql, "AcceptCase", "clerk", caseId=main["A"]["id"])
    await act_ok(gql, "AcceptCase", "clerk", caseId=other["A"]["id"])
    await act_ok(gql, "StartCase", "planner", caseId=main["A"]["id"])
    clock.set(shanghai(2026, 11, 4, 10))
    return {"main": main, "other": other}


# -- 1. what does not touch an answer leaves it kept ------------------------------------------------------------------


async def test_unrelated_writes_leave_the_kept_progress_answer(
    gql, client, world, running, settings, db_backend, app, count_queries
):
    """A complaint, a notice read, a login and a write to another table by another process: the applicant's progress
    answer is still served from memory, with no statement but the generation. (Before issue #13 each of them ended
    every kept answer.)"""
    first = await ask(client, world, "applicant", "ProjectProgress", {"code": PROJECT_CODE})
    assert first.status_code == 200 and first.json()["data"]["project"]["code"] == PROJECT_CODE
    answers = app.state.graphql.answers

    async def still_kept(after: str, *, viewer_read: bool = False) -> None:
        hits = answers.hits
        with count_queries() as counter:
            again = await ask(client, world, "applicant", "ProjectProgress", {"code": PROJECT_CODE})
        assert again.content == first.content
        assert answers.hits == hits + 1, f"not kept after {after}"
        statements = [s for s in counter.statements if "pg_current_snapshot" not in s]
        # After a login (sessions) or a complaint (it locks its filer's row: api/services/locks.py) the users' tables
        # moved: who asks is read again (one statement), and the answer is still kept.
        assert len(statements) == (1 if viewer_read else 0) and all("login_session" in s for s in statements), after

    filed = await gql.op("FileComplaint", {"input": {"kind": "COMPLAINT", "category": "OVERDUE",
                                                     "text": "窗口办理太慢"}}, as_user="citizen")
    assert filed["fileComplaint"]["errors"] == []
    await still_kept("a complaint", viewer_read=True)
    await gql.op("MarkNoticesRead", {"input": {}}, as_user="other_applicant")
    await still_kept("notices read")
    await start_session(settings, await User.get(id=world.users["far_clerk"].id), kind="staff", now=clock_now(app))
    await still_kept("a login", viewer_read=True)
    await write_by_another_connection(settings, db_backend, "UPDATE complaint SET text = text || '。'")
    await still_kept("a write by another process")
    # What it read is written: a case of the project moves on. Not kept any more, and the new answer says so.
    await act_ok(gql, "AcceptCase", "clerk", caseId=running["main"]["B"]["id"])
    moved = await ask(client, world, "applicant", "ProjectProgress", {"code": PROJECT_CODE})
    assert moved.content != first.content


def clock_now(app) -> dt.datetime:
    return app.state.graphql.clock()


async def test_an_answer_that_read_an_uncounted_table_depends_on_everything(settings, db_backend, world):
    """A table created after migration 0010 has no counter: an answer that read it ends with any commit."""
    from api.changes import Generation, dependencies, still_valid

    current = Generation("g1", {"project": 1, "case": 4})
    assert dependencies(current, {'SELECT * FROM "project"'}) == (("project", 1),)
    whole = dependencies(current, {'SELECT * FROM "project" JOIN "case_event" ON 1'})
    assert whole == (("*", "g1"),)
    assert not still_valid(whole, Generation("g2", {"project": 1, "case": 4}))
    assert dependencies(current, None) == (("*", "g1"),)  # reads unknown
    assert dependencies(current, {'SELECT * FROM "project"'}, settled=False) == (("*", "g1"),)
    assert still_valid((("project", 1),), Generation("g2", {"project": 1, "case": 5}))
    assert not still_valid((("project", 1),), Generation("g3", {"project": 2, "case": 5}))


# -- 2. property: every answer the cache gives is the one computed afresh ---------------------------------------------


READS = [
    ("applicant", "ProjectProgress", {"code": PROJECT_CODE}),
    ("applicant", "ProjectProgress", {"code": FAR_PROJECT_CODE}),
    ("other_applicant", "ProjectProgress", {"code": OTHER_PROJECT_CODE}),
    ("other_applicant", "ProjectProgress", {"code": PROJECT_CODE}),
    ("planner", "ProjectProgress", {"code": PROJECT_CODE}),
    ("supervisor", "ProjectProgress", {"code": OTHER_PROJECT_CODE}),
    ("applicant", "Projects", None),
    ("other_applicant", "Projects", None),
    ("applicant", "Notices", None),
    ("other_applicant", "Notices", None),
    ("applicant", "Viewer", None),
    ("supervisor", "Viewer", None),
    ("clerk", "CaseQueue", None),
    ("planner", "CaseQueue", None),
    ("citizen", "Complaints", None),
    ("supervisor", "Complaints", None),
    ("supervisor", "SupervisionCases", {"overdue": False}),
    ("supervisor", "SupervisionCases", {"overdue": True}),
]

# (operation, who, extra input): tried on a random case; a refusal (wrong state) changes nothing and is fine.
CASE_ACTIONS = [
    ("AcceptCase", "clerk", {}),
    ("StartCase", "planner", {}),
    ("StartCase", "water", {}),
    ("DecideCase", "planner", {"decision": "APPROVED", "document": APPROVAL_DOCUMENT}),
    ("RequestCorrection", "planner", {"corrections": [{"material": "用地红线图", "requirement": "补充盖章件"}]}),
    ("RejectCase", "clerk", {"kind": "NOT_ACCEPTED", "reason": "材料不全"}),
    ("WithdrawCase", "applicant", {"reason": "暂缓报建"}),
]


class Run:
    def __init__(self, seed, gql, client, reference, world, clock, settings, db_backend, app, running):
        self.rng = random.Random(seed)
        self.gql, self.client, self.reference, self.world = gql, client, reference, world
        self.clock, self.settings, self.db_backend, self.app = clock, settings, db_backend, app
        self.cases = [c["id"] for group in running.values() for c in group.values()]
        self.writes: list[str] = []
        self.compared = 0

    async def read(self, user: str, name: str, variables: dict | None) -> None:
        kept = await ask(self.client, self.world, user, name, variables)
        fresh = await ask(self.reference, self.world, user, name, variables)
        assert kept.status_code == fresh.status_code, (user, name, self.writes)
        assert kept.json() == fresh.json(), f"{user} {name} {variables} after writes {self.writes}"
        self.compared += 1

    async def reads(self) -> None:
        """The progress pages (asked most: their answers are kept across writes), and a few other reads."""
        wanted = READS[:4] + self.rng.sample(READS[4:], 2)
        case = {"id": self.rng.choice(self.cases)}
        wanted.append((self.rng.choice(["supervisor", "applicant", "other_applicant"]), "CaseDetail", case))
        for user, name, variables in wanted:
            await self.read(user, name, variables)

    async def write(self) -> None:
        kind = self.rng.choice([
            "case", "case", "case", "submit", "ingest", "complaint", "notices_read", "deliver", "login", "logout",
            "calendar", "other_connection", "other_connection", "other_connection", "midnight",
        ])
        self.writes.append(kind)
        await getattr(self, f"write_{kind}")()

    async def write_case(self) -> None:
        name, user, extra = self.rng.choice(CASE_ACTIONS)
        await act(self.gql, name, user, caseId=self.rng.choice(self.cases), **extra)

    async def write_submit(self) -> None:
        project, user = self.rng.choice([(PROJECT_CODE, "applicant"), (OTHER_PROJECT_CODE, "other_applicant")])
        payload = await submit(self.gql, self.client, [self.rng.choice("ABC")], project=project, user=user)
        self.cases += [c["id"] for c in payload["cases"]]

    async def write_ingest(self) -> None:
        case = await Case.get(id=await case_pk(self.rng.choice(self.cases)))
        n = len(self.writes)
        body = [{"eventId": f"p{n}", "caseCode": case.code, "blzt": self.rng.choice([3, 8]),
                 "occurredAt": self.clock().isoformat()}]
        response = await push(self.client, self.clock, body)
        assert response.status_code in (200, 403), response.text  # another department's case is refused

    async def write_complaint(self) -> None:
        variables = {"input": {"kind": "COMPLAINT", "category": "OVERDUE", "text": f"投诉{len(self.writes)}",
                               "projectCode": self.rng.choice([None, PROJECT_CODE])}}
        await self.gql.op("FileComplaint", variables, as_user=self.rng.choice(["citizen", "applicant"]))

    async def write_notices_read(self) -> None:
        await self.gql.op("MarkNoticesRead", {"input": {}}, as_user=self.rng.choice(["applicant", "other_applicant"]))

    async def write_deliver(self) -> None:
        from notifications.setup import build_dispatcher

        await build_dispatcher(self.settings, clock=self.clock).run_once()

    async def write_login(self) -> None:
        user = await User.get(id=self.world.users["far_clerk"].id)  # a user no read or write here acts as
        await start_session(self.settings, user, kind="staff", now=self.clock())

    async def write_logout(self) -> None:
        if "logout" not in self.writes[:-1]:
            await self.gql.op("Logout", {"input": {}}, as_user="housing")

    async def write_calendar(self) -> None:
        day = dt.date(2026, 11, self.rng.randint(5, 27))
        await store_year(YearSchedule(2026, f"测试{day}", holidays={day: "测试假日"}))

    async def write_other_connection(self) -> None:
        """Another process writes one table, in a way the answers show."""
        n = len(self.writes)
        sql = self.rng.choice([
            f"UPDATE project SET name = '改名{n}' WHERE code = '{self.rng.choice([PROJECT_CODE, OTHER_PROJECT_CODE])}'",
            f"UPDATE case_instance SET limit_days = limit_days + 1 WHERE id = {await case_pk(self.rng.choice(self.cases))}",
            f"UPDATE case_event SET data = '{{\"opinion\": \"意见{n}\"}}' WHERE id = (SELECT max(id) FROM case_event)",
            f"UPDATE approval_item SET name = '事项{n}' WHERE code = '{self.rng.choice('ABC')}'",
            f"UPDATE department SET name = '部门{n}' WHERE code = 'PLANNING'",
            f"UPDATE organization SET name = '公司{n}' WHERE id = {self.world.organizations['builder'].id}",
            f"UPDATE notice SET title = '通知{n}' WHERE id = (SELECT max(id) FROM notice)",
            f"UPDATE complaint SET text = '诉求{n}' WHERE id = (SELECT max(id) FROM complaint)",
        ])
        self.writes[-1] = sql
        await write_by_another_connection(self.settings, self.db_backend, sql)

    async def write_midnight(self) -> None:
        self.clock.set(self.clock() + dt.timedelta(days=1))


async def case_pk(global_id: str) -> int:
    from api.domain.ids import from_global_id

    return int(from_global_id(global_id)[1])


@pytest.mark.parametrize("seed", SEEDS)
async def test_every_kept_answer_is_the_one_computed_afresh(
    seed, gql, client, reference, world, clock, settings, db_backend, app, running
):
    run = Run(seed, gql, client, reference, world, clock, settings, db_backend, app, running)
    await run.reads()
    for _ in range(WRITES):
        await run.write()
        await run.reads()
    answers = app.state.graphql.answers
    assert answers.hits > WRITES, answers.hits  # answers were kept, and served across writes  # answers were kept, and served across writes


async def test_one_load_of_who_asks_for_simultaneous_requests_after_a_login(
    client, world, running, settings, app, count_queries
):
    """After a commit to the users' tables (a login anywhere), the simultaneous requests of one person read who asks
    once, not once each; the kept answer serves them all."""
    first = await ask(client, world, "applicant", "ProjectProgress", {"code": PROJECT_CODE})
    await start_session(settings, await User.get(id=world.users["far_clerk"].id), kind="staff", now=clock_now(app))
    with count_queries() as counter:
        answers = await asyncio.gather(
            *(ask(client, world, "applicant", "ProjectProgress", {"code": PROJECT_CODE}) for _ in range(20))
        )
    assert all(a.content == first.content for a in answers)
    assert [s for s in counter.statements if "login_session" in s] and len(
        [s for s in counter.statements if "pg_current_snapshot" not in s]
    ) == 1


async def test_every_table_is_counted(app, world):
    """A table without a counter makes every answer that reads it end with any commit: a migration that creates a
    table counts it too (``api.changes.count_writes``, see migration 0013_scope)."""
    from api.changes import model_tables

    current = await app.state.graphql.changes.read()
    assert current is not None and current.versions is not None
    assert sorted(model_tables() - current.versions.keys()) == []
