"""``blzt: 1`` (接件) through ``POST /ingest/events``: a department's own window received a case (issue #15).

The world of tests/factories.py: items A, B belong to PLANNING, C to WATER; projects "main" (builder) and "other".
Signed batches are made as in tests/api/test_ingest.py (the documented recipe, not the service's helper).
"""

from __future__ import annotations

import datetime as dt

import pytest

from api.domain.codes import make_uscc
from api.domain.ids import to_global_id
from api.models import Application, Case, CaseEvent, Organization, Project, User
from tests.api.flows import submit_ok
from tests.api.test_ingest import NOW, SPECIAL, SUBMITTED, WATER, at, event, push, push_ok, statuses
from tests.factories import OTHER_PROJECT_CODE, PROJECT_CODE, shanghai

NEW_PROJECT_CODE = "2026-440402-47-01-000777"
NEW_USCC = make_uscc("91440400MA5" + "123456")

CASE_VIEW = """query($id: ID!) { node(id: $id) { ... on Case {
    code state blzt acceptedOn usedDays remainingDays dueDate light limitDays
    item { code } project { code name }
    timeline { blzt action stateAfter source externalId occurredAt }
} } }"""


@pytest.fixture(autouse=True)
def _world(world):
    """The departments, items and projects of tests/factories.py, also for the tests that use no GraphQL."""


def receive(event_id: str, case_code: str, occurred_at: str, *, project_code=OTHER_PROJECT_CODE, item="A", **extra):
    fields = {
        "projectCode": project_code,
        "itemCode": item,
        "applicant": {"name": "刘申请"},
        "materials": [{"name": "申请表", "ref": "DOC-1"}, {"name": "用地红线图", "ref": "DOC-2", "code": "M02"}],
    }
    return event(event_id, case_code, 1, occurred_at, **(fields | extra))


def basic_data(uscc: str = NEW_USCC) -> dict:
    return {
        "name": "横琴新区测试厂房",
        "processType": 3,
        "regionCode": "440402",
        "address": "珠海市横琴新区环岛东路1号",
        "investment": "8800.50",
        "organization": {"name": "珠海横琴测试实业有限公司", "uscc": uscc},
    }


async def snapshot() -> tuple:
    """Everything a refused RECEIVE could have written."""
    return (
        await Case.all().count(), await CaseEvent.all().count(), await Application.all().count(),
        await Project.all().count(), await Organization.all().count(), await User.all().count(),
    )


async def view(gql, code: str) -> dict:
    case = await Case.get(code=code)
    return (await gql(CASE_VIEW, {"id": to_global_id("Case", case.id)}, as_user="supervisor"))["node"]


async def test_received_case_is_created_and_moves_on(gql, client, clock):
    clock.set(NOW)
    events = [
        receive("r-1", "ZRZY-2026-0001", at(0)),
        event("r-3", "ZRZY-2026-0001", 3, at(1), opinion="材料齐全"),
        event("r-8", "ZRZY-2026-0001", 8, at(2)),
    ]
    results = await push_ok(client, clock, events)
    assert [(r["status"], r.get("state"), r.get("blzt"), r.get("caseCode")) for r in results] == [
        ("APPLIED", "RECEIVED", 1, "ZRZY-2026-0001"),
        ("APPLIED", "ACCEPTED", 3, "ZRZY-2026-0001"),
        ("APPLIED", "IN_PROGRESS", 8, "ZRZY-2026-0001"),
    ]
    node = await view(gql, "ZRZY-2026-0001")
    assert (node["state"], node["item"]["code"], node["project"]["code"], node["acceptedOn"]) == (
        "IN_PROGRESS", "A", OTHER_PROJECT_CODE, "2026-11-02"
    )
    assert [(e["blzt"], e["source"], e["externalId"]) for e in node["timeline"]] == [
        (1, "DEPARTMENT_SYSTEM", "r-1"), (3, "DEPARTMENT_SYSTEM", "r-3"), (8, "DEPARTMENT_SYSTEM", "r-8")
    ]
    assert dt.datetime.fromisoformat(node["timeline"][0]["occurredAt"]) == SUBMITTED
    case = await Case.get(code="ZRZY-2026-0001").prefetch_related("application", "department")
    assert case.department.code == "PLANNING"
    assert [(m["name"], m["ref"]) for m in case.application.materials] == [("申请表", "DOC-1"), ("用地红线图", "DOC-2")]
    # The same batch again: every event answers DUPLICATE, nothing changes.
    before = await snapshot()
    again = await push_ok(client, clock, events)
    assert statuses(again) == [("DUPLICATE", None)] * 3
    assert await snapshot() == before


async def test_unknown_project_needs_its_basic_data(gql, client, clock):
    clock.set(NOW)
    before = await snapshot()
    bad_uscc = NEW_USCC[:-1] + ("0" if NEW_USCC[-1] != "0" else "1")
    results = await push_ok(client, clock, [
        receive("u-1", "ZRZY-NEW-1", at(0), project_code=NEW_PROJECT_CODE),
        receive("u-2", "ZRZY-NEW-1", at(0), project_code=NEW_PROJECT_CODE, project=basic_data(bad_uscc)),
        receive("u-3", "ZRZY-NEW-1", at(0), project_code=NEW_PROJECT_CODE, project=basic_data() | {"processType": 9}),
        receive("u-4", "ZRZY-NEW-1", at(0), project_code=NEW_PROJECT_CODE, project=basic_data() | {"investment": "x"}),
        receive("u-5", "ZRZY-NEW-1", at(0), project_code="2026-44", project=basic_data()),
    ])
    assert [(r["status"], r["code"], r.get("field")) for r in results] == [
        ("REJECTED", "PROJECT_UNKNOWN", "projectCode"),
        ("REJECTED", "INVALID_USCC", "project.organization.uscc"),
        ("REJECTED", "INVALID_INPUT", "project.processType"),
        ("REJECTED", "INVALID_INPUT", "project.investment"),
        ("REJECTED", "INVALID_PROJECT_CODE", "projectCode"),
    ]
    assert await snapshot() == before
    results = await push_ok(client, clock, [
        receive("u-6", "ZRZY-NEW-1", at(0), project_code=NEW_PROJECT_CODE, project=basic_data()),
    ])
    assert statuses(results) == [("APPLIED", None)]
    project = await Project.get(code=NEW_PROJECT_CODE).prefetch_related("organization")
    assert (project.name, project.process_type, project.region_code, str(project.investment)) == (
        "横琴新区测试厂房", 3, "440402", "8800.50"
    )
    assert (project.organization.uscc, project.organization.name) == (NEW_USCC, "珠海横琴测试实业有限公司")
    # A second case of the now known project needs no basic data.
    results = await push_ok(client, clock, [receive("u-7", "ZRZY-NEW-2", at(0), project_code=NEW_PROJECT_CODE,
                                                    item="B")])
    assert statuses(results) == [("APPLIED", None)]
    node = await view(gql, "ZRZY-NEW-2")
    assert node["project"] == {"code": NEW_PROJECT_CODE, "name": "横琴新区测试厂房"}


async def test_a_department_creates_cases_only_for_its_own_items(client, clock):
    clock.set(NOW)
    before = await snapshot()
    results = await push_ok(client, clock, [
        receive("s-1", "ZRZY-S-1", at(0), item="C"),  # WATER's item, pushed by PLANNING
        receive("s-2", "ZRZY-S-2", at(0), item="NO-SUCH-ITEM"),
        receive("s-3", "ZRZY-S-3", at(0), item="D"),  # HOUSING's
    ])
    assert [(r["code"], r["field"]) for r in results] == [("NOT_FOUND", "itemCode")] * 3
    assert results[0]["message"] == results[1]["message"]  # another's item answers like an unknown one
    assert await snapshot() == before
    # WATER may receive its own item C.
    results = await push_ok(client, clock, [receive("s-1", "SW-S-1", at(0), item="C")], department=WATER)
    assert statuses(results) == [("APPLIED", None)]
    # ...and PLANNING cannot move WATER's case.
    results = await push_ok(client, clock, [event("s-9", "SW-S-1", 3, at(1))])
    assert statuses(results) == [("REJECTED", "NOT_FOUND")]


async def test_case_code_is_unique(gql, client, clock):
    clock.set(SUBMITTED)
    mini = await submit_ok(gql, client, ["A"])  # a case received through the mini-program
    clock.set(NOW)
    results = await push_ok(client, clock, [receive("c-1", "ZRZY-C-1", at(0))])
    assert statuses(results) == [("APPLIED", None)]
    before = await snapshot()
    results = await push_ok(client, clock, [
        receive("c-2", "ZRZY-C-1", at(0)),  # the same case code, another event id
        receive("c-3", mini["A"]["code"], at(0)),  # a code already used here
        receive("c-1", "ZRZY-C-9", at(0)),  # the same event id, another case
        receive("c-1", "ZRZY-C-1", at(5)),  # the same event again (first version wins)
        receive("c-4", "ZRZY-C-4", at(0), project_code=PROJECT_CODE),  # item A of "main" is open (mini-program)
        receive("c-5", "ZRZY-C-5", at(0)),  # item A of "other" is open (ZRZY-C-1)
    ])
    assert [(r["status"], r.get("code"), r.get("field")) for r in results] == [
        ("REJECTED", "CASE_CODE_TAKEN", "caseCode"),
        ("REJECTED", "CASE_CODE_TAKEN", "caseCode"),
        ("REJECTED", "DUPLICATE_REQUEST_ID", "eventId"),
        ("DUPLICATE", None, None),
        ("REJECTED", "ITEM_ALREADY_HANDLED", "itemCode"),
        ("REJECTED", "ITEM_ALREADY_HANDLED", "itemCode"),
    ]
    assert await snapshot() == before


async def test_bad_receive_events_are_refused_and_change_nothing(client, clock):
    clock.set(NOW)
    before = await snapshot()
    future = (NOW + dt.timedelta(hours=1)).isoformat()
    results = await push_ok(client, clock, [
        receive("b-1", "ZRZY-B-1", future),
        receive("b-2", "ZRZY-B-2", "2026-11-02T09:00:00"),  # no time zone
        receive("b-3", "ZRZY-B-3", at(0), applicant=None),
        receive("b-4", "ZRZY-B-4", at(0), applicant={"name": ""}),
        receive("b-5", "ZRZY-B-5", at(0), materials=[{"name": "申请表"}]),
        receive("b-6", "ZRZY-B-6", at(0), materials="申请表"),
        receive("b-7", "ZRZY-B-7", at(0), itemCode=None),
        receive("b-8", "", at(0)),
        receive("b-9", "ZRZY-B-9", at(0), project_code=None),
        receive("b-10", "ZRZY-B-10", at(0), opinion="意" * 2001),
        receive("b-11", "ZRZY-B-11", at(0), project_code=PROJECT_CODE, item="D"),  # not PLANNING's
    ])
    assert [(r["code"], r.get("field")) for r in results] == [
        ("EVENT_TIME_INVALID", "occurredAt"),
        ("EVENT_TIME_INVALID", "occurredAt"),
        ("REQUIRED", "applicant"),
        ("INVALID_INPUT", "applicant.name"),
        ("REQUIRED", "materials.0.ref"),
        ("INVALID_INPUT", "materials"),
        ("REQUIRED", "itemCode"),
        ("INVALID_INPUT", "caseCode"),
        ("INVALID_PROJECT_CODE", "projectCode"),
        ("INVALID_INPUT", "opinion"),
        ("NOT_FOUND", "itemCode"),
    ]
    assert {r["status"] for r in results} == {"REJECTED"}
    assert await snapshot() == before


def _figures(node: dict) -> dict:
    return {
        "state": node["state"], "acceptedOn": node["acceptedOn"], "usedDays": node["usedDays"],
        "remainingDays": node["remainingDays"], "dueDate": node["dueDate"], "light": node["light"],
        "timeline": [(e["blzt"], e["stateAfter"], dt.datetime.fromisoformat(e["occurredAt"])) for e in node["timeline"]],
    }


HISTORY = [  # (hours after SUBMITTED, blzt, extra fields)
    (0, 1, {}),
    (1, 6, {"corrections": [{"material": "用地红线图", "requirement": "请加盖公章"}]}),
    (20, 7, {"attachments": [{"name": "用地红线图（盖章）.pdf", "ref": "DOC-3"}]}),  # the applicant, at the window
    (22, 3, {"opinion": "材料齐全"}),
    (23, 8, {}),
    (26, 9, SPECIAL),
    (96, 10, {"result": "专家论证通过"}),
]


async def test_imported_history_equals_a_case_lived_here(gql, client, clock):
    """The same steps at the same times: once pushed as they happened (the test clock at each step's time), once
    imported in one batch days later. The timeline, days used and remaining, due date and light are the same."""
    for hours, blzt, extra in HISTORY:  # lived: each event pushed at its own time
        clock.set(SUBMITTED + dt.timedelta(hours=hours))
        step = receive("live-1", "LIVE-1", at(hours)) if blzt == 1 else event(f"live-{blzt}", "LIVE-1", blzt,
                                                                              at(hours), **extra)
        assert statuses(await push_ok(client, clock, [step])) == [("APPLIED", None)]
    clock.set(NOW)  # imported: the whole past in one batch, long after
    batch = [
        receive("old-1", "OLD-1", at(hours), project_code=PROJECT_CODE) if blzt == 1
        else event(f"old-{blzt}", "OLD-1", blzt, at(hours), **extra)
        for hours, blzt, extra in HISTORY
    ]
    assert statuses(await push_ok(client, clock, batch)) == [("APPLIED", None)] * len(HISTORY)
    lived, imported = await view(gql, "LIVE-1"), await view(gql, "OLD-1")
    assert _figures(imported) == _figures(lived)
    assert lived["usedDays"] is not None and lived["remainingDays"] is not None
    # The imported acceptance lies weeks before the row was created here: its own received time is the bound.
    assert imported["acceptedOn"] == "2026-11-03"
    assert [e["blzt"] for e in imported["timeline"]] == [1, 6, 7, 3, 8, 9, 10]
    # A step before the case's received time is still refused.
    results = await push_ok(client, clock, [receive("old-x", "OLD-2", at(10), project_code=PROJECT_CODE, item="B"),
                                            event("old-y", "OLD-2", 3, at(9))])
    assert statuses(results) == [("APPLIED", None), ("REJECTED", "EVENT_TIME_INVALID")]
    # And the decision later, pushed live, gives the same figures on both.
    clock.set(shanghai(2026, 11, 23, 10))
    decide = {"document": {"approvalDate": "2026-11-23", "documentNumber": "珠自然资规许〔2026〕99号",
                           "documentTitle": "批复", "validUntil": "9999-01-01"}}
    when = clock().isoformat()
    results = await push_ok(client, clock, [event("live-11", "LIVE-1", 11, when, **decide),
                                            event("old-11", "OLD-1", 11, when, **decide)])
    assert statuses(results) == [("APPLIED", None)] * 2
    assert _figures(await view(gql, "OLD-1")) == _figures(await view(gql, "LIVE-1"))


async def test_unsigned_receive_is_refused(client, clock):
    clock.set(NOW)
    before = await snapshot()
    response = await push(client, clock, [receive("x-1", "ZRZY-X-1", at(0))], sign_with="wrong")
    assert response.status_code == 401
    assert await snapshot() == before


async def everything() -> dict:
    """Every row of every table, to see that a dry run leaves the database as it was."""
    from tortoise import Tortoise

    rows = {}
    for name, model in sorted(Tortoise.apps["models"].items()):
        rows[name] = sorted(map(repr, await model.all().values()))
    return rows


async def test_dry_run_answers_like_a_real_run_and_changes_nothing(gql, client, clock):
    clock.set(SUBMITTED)
    mini = await submit_ok(gql, client, ["A"])
    clock.set(NOW)
    batch = [
        receive("d-1", "ZRZY-D-1", at(0), project_code=NEW_PROJECT_CODE, project=basic_data()),
        event("d-3", "ZRZY-D-1", 3, at(1)),
        event("d-8", "ZRZY-D-1", 8, at(2)),
        event("d-8", "ZRZY-D-1", 8, at(2)),  # the same event twice in the batch
        event("d-9", "ZRZY-D-1", 13, at(3)),  # no reason
        event("m-3", mini["A"]["code"], 3, at(1)),
        event("m-8", mini["A"]["code"], 8, at(2)),
        event("m-11", mini["A"]["code"], 11, at(3), document={"approvalDate": "2026-11-02", "documentNumber": "珠1号",
                                                              "documentTitle": "批复", "validUntil": "9999-01-01"}),
        receive("d-2", "ZRZY-D-2", at(0), item="C"),  # not PLANNING's item
    ]
    before = await everything()
    response = await client.post("/ingest/events?dryRun=1", content=b"", headers={})  # unsigned: refused first
    assert response.status_code == 401
    dry = await push(client, clock, batch, query="?dryRun=1")
    assert dry.status_code == 200, dry.text
    assert dry.json()["dryRun"] is True
    dry_results = dry.json()["results"]
    assert statuses(dry_results) == [("APPLIED", None)] * 3 + [("DUPLICATE", None), ("REJECTED", "REASON_REQUIRED")] + [
        ("APPLIED", None)] * 3 + [("REJECTED", "NOT_FOUND")]
    assert await everything() == before
    bad = await push(client, clock, batch, query="?dryRun=maybe")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "BAD_REQUEST")
    assert await everything() == before
    real = await push_ok(client, clock, batch)
    assert real == dry_results
    assert (await Case.get(code="ZRZY-D-1")).state.value == "IN_PROGRESS"
    assert await everything() != before


async def test_applicant_acts_at_the_department_window_only_for_its_received_cases(gql, client, clock):
    """2, 7, 14 are the applicant's acts: a department reports them only for a case its own window received."""
    clock.set(SUBMITTED)
    mini = await submit_ok(gql, client, ["A"])
    clock.set(NOW)
    results = await push_ok(client, clock, [
        receive("w-1", "ZRZY-W-1", at(0)),
        event("w-2", "ZRZY-W-1", 2, at(1), reason="申请人撤件"),
        event("w-3", mini["A"]["code"], 2, at(1)),
    ])
    assert statuses(results) == [("APPLIED", None), ("APPLIED", None), ("REJECTED", "WRONG_PARTY")]
    assert results[1]["state"] == "WITHDRAWN"


async def test_concurrent_receives_create_one_case(client, clock):
    """The same case code at once under different event ids, and the same event at once: one case, one event."""
    import asyncio

    clock.set(NOW)
    before = await snapshot()
    batches = [[receive(f"k-{n}", "ZRZY-K-1", at(0), project_code=NEW_PROJECT_CODE, project=basic_data())]
               for n in range(4)] + [[receive("k-0", "ZRZY-K-1", at(0), project_code=NEW_PROJECT_CODE,
                                              project=basic_data())]] * 2
    answers = await asyncio.gather(*(push_ok(client, clock, batch) for batch in batches))
    outcomes = [(r[0]["eventId"], r[0]["status"], r[0].get("code")) for r in answers]
    applied = [o for o in outcomes if o[1] == "APPLIED"]
    assert len(applied) == 1, outcomes
    for event_id, status, code in outcomes:
        if event_id == applied[0][0]:
            assert (status, code) in {("APPLIED", None), ("DUPLICATE", None)}, outcomes
        else:
            assert (status, code) in {("REJECTED", "CASE_CODE_TAKEN"), ("REJECTED", "CONFLICT")}, outcomes
    after = await snapshot()
    # One case with its one event, one application, one project, one organisation, one applicant.
    assert tuple(a - b for a, b in zip(after, before)) == (1, 1, 1, 1, 1, 1)
