"""Supervision figures (issue #14 §1, DOMAIN.md §14): caseStats recomputed from scratch from the event rows for random
filters over a random (seeded) set of cases, the overdue / warning lists, projectDuration, who may see what, bad
filters, and the CSV / XLSX exports. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from api.domain.lifecycle import RULES, Action, plan_transition
from api.domain.timing import SHANGHAI, CaseState, LimitUnit
from api.models import Application, ApprovalItem, Case, CaseClock, CaseEvent, Project
from api.models.feedback import Complaint, ComplaintEvent, Rating
from api.scale import ItemSpec, generate
from api.services.calendar import get_calendar
from api.schema.base import to_global_id

NOW = dt.datetime(2026, 11, 20, 15, 0, tzinfo=SHANGHAI)
TODAY = NOW.date()
SEED = 20261120


async def random_world(world, count: int = 200) -> None:
    """The test world's four items, the three projects, ``count`` cases received over the last 150 days."""
    specs = [
        ItemSpec(world.items["A"].id, "A", world.departments["planning"].id, 1, 5),
        ItemSpec(world.items["B"].id, "B", world.departments["planning"].id, 1, 10),
        ItemSpec(world.items["C"].id, "C", world.departments["water"].id, 1, 3, limit_unit=LimitUnit.ND),
        ItemSpec(world.items["D"].id, "D", world.departments["housing"].id, 3, 7, warning_days=3),
    ]
    await generate(
        seed=SEED, count=count, now=NOW, items=specs, projects=list(world.projects.values()),
        applicant_id=world.users["applicant"].id, staff_id=world.users["clerk"].id, days_back=150,
    )


# -- the oracle: every figure recounted from the rows, written apart from api/services/supervision.py ------------------

RUNNING = {"ACCEPTED", "IN_PROGRESS"}
OPEN = {"ACCEPTED", "IN_PROGRESS", "SPECIAL_PROCEDURE"}
CLOSED = {"WITHDRAWN", "NOT_ACCEPTED", "REFUSED", "APPROVED", "APPROVED_DEFICIENT", "DISAPPROVED", "RETRACTED",
          "REVOKED"}
DECISIONS = {"APPROVE", "APPROVE_DEFICIENT", "DISAPPROVE"}
REPLY_DAYS = 10  # the default JIANSHEN_COMPLAINT_REPLY_DAYS


def day_of(at: dt.datetime) -> dt.date:
    return at.astimezone(SHANGHAI).date()


def value(enum_or_str) -> str:
    return getattr(enum_or_str, "value", enum_or_str)


@dataclass
class Row:
    case: Case
    events: list[CaseEvent]
    item_code: str
    project: Project


@dataclass
class Data:
    rows: list[Row]
    ratings: list[Rating]
    complaints: list[Complaint]
    complaint_events: dict[int, list[ComplaintEvent]]
    projects: dict[int, Project]
    calendar: object


async def load_data() -> Data:
    items = {i.id: i.code for i in await ApprovalItem.all()}
    projects = {p.id: p for p in await Project.all()}
    events = defaultdict(list)
    for event in await CaseEvent.all().order_by("case_id", "seq"):
        events[event.case_id].append(event)
    rows = [Row(c, events[c.id], items[c.item_id], projects[c.project_id]) for c in await Case.all()]
    complaint_events = defaultdict(list)
    for event in await ComplaintEvent.all().order_by("complaint_id", "seq"):
        complaint_events[event.complaint_id].append(event)
    return Data(rows, await Rating.all(), await Complaint.all(), complaint_events, projects, await get_calendar())


def counts_that_day(unit: str, calendar, day: dt.date) -> bool:
    return unit == "ND" or calendar.is_working_day(day)


def recount_clock(row: Row, calendar) -> tuple[int, int, str] | None:
    """(used, remaining, light), counting day by day (DOMAIN.md §5); None before acceptance."""
    events = row.events
    accepted = next((i for i, e in enumerate(events) if value(e.state_after) == "ACCEPTED"), None)
    if accepted is None:
        return None
    closing = next((e for e in events[accepted + 1:] if value(e.state_after) in CLOSED), None)
    last = day_of(closing.occurred_at) if closing else TODAY
    decided_on = last if closing is not None and value(closing.action) in DECISIONS else None
    used = 0
    day = day_of(events[accepted].occurred_at)
    while day < last:
        day += dt.timedelta(days=1)
        if not counts_that_day(value(row.case.limit_unit), calendar, day):
            continue
        state = [value(e.state_after) for e in events if day_of(e.occurred_at) <= day][-1]
        if state in RUNNING or day == decided_on:
            used += 1
    remaining = row.case.limit_days - used
    light = "RED" if remaining < 0 else "YELLOW" if remaining <= row.case.warning_days else "GREEN"
    return used, remaining, light


def prefix(region: str) -> str:
    return region[:2] if region[2:] == "0000" else region[:4] if region[4:] == "00" else region


def in_scope(row: Row, f: dict) -> bool:
    return (
        (f.get("department") is None or row.case.department_id == f["department"])
        and (f.get("itemCode") is None or row.item_code == f["itemCode"])
        and (f.get("stage") is None or row.case.stage == f["stage"])
        and (f.get("processType") is None or row.project.process_type == f["processType"])
        and (f.get("regionCode") is None or row.project.region_code.startswith(prefix(f["regionCode"])))
    )


def bucket(group_by: str, day: dt.date) -> str:
    if group_by == "WEEK":
        return (day - dt.timedelta(days=day.weekday())).isoformat()
    return day.strftime("%Y-%m")


def all_buckets(group_by: str, start: dt.date, end: dt.date) -> list[str]:
    keys, day = [], start
    while day <= end:
        if bucket(group_by, day) not in keys:
            keys.append(bucket(group_by, day))
        day += dt.timedelta(days=1)
    return keys


COUNTS = ["received", "accepted", "decided", "decidedOnTime", "decidedOverdue", "corrected", "specialProcedures",
          "specialProcedureDays", "notAccepted", "refused", "withdrawn", "retracted", "revoked"]


def empty(by_time: bool) -> dict:
    g = {name: 0 for name in COUNTS}
    g.update(used=[], limits=[], ratios=[], lights=None if by_time else [], good=0, bad=0, rectified=0,
             replies=0, on_time=0)
    return g


def recount(data: Data, f: dict, group_by: str) -> tuple[dict[str, dict], dict]:
    start, end = f["from"], f["to"]
    by_time = group_by in ("WEEK", "MONTH")
    groups: dict[str, dict] = defaultdict(lambda: empty(by_time))
    total = empty(False)

    def case_key(row: Row, day: dt.date) -> str:
        return {"DEPARTMENT": str(row.case.department_id), "ITEM": row.item_code, "STAGE": str(row.case.stage)}.get(
            group_by) or bucket(group_by, day)

    for row in data.rows:
        if not in_scope(row, f):
            continue
        clock = recount_clock(row, data.calendar)
        for i, e in enumerate(row.events):
            day, action = day_of(e.occurred_at), value(e.action)
            if action == "BEGIN_SPECIAL_PROCEDURE" and start <= day <= end:
                after = row.events[i + 1:]
                stop = day_of(after[0].occurred_at) if after else TODAY + dt.timedelta(days=1)
                days = sum(counts_that_day(value(row.case.limit_unit), data.calendar, day + dt.timedelta(days=k))
                           for k in range((stop - day).days))
                for g in (total, groups[case_key(row, day)]):
                    g["specialProcedures"] += 1
                    g["specialProcedureDays"] += days
            if not start <= day <= end:
                continue
            for g in (total, groups[case_key(row, day)]):
                if action == "RECEIVE":
                    g["received"] += 1
                elif action == "ACCEPT":
                    g["accepted"] += 1
                    g["corrected"] += any(value(x.action) == "REQUEST_CORRECTION" for x in row.events[:i])
                elif action in DECISIONS:
                    used, remaining, _ = clock
                    g["decided"] += 1
                    g["decidedOnTime" if remaining >= 0 else "decidedOverdue"] += 1
                    g["used"].append(used)
                    g["limits"].append(row.case.limit_days)
                    if row.case.limit_days:
                        g["ratios"].append(1 - used / row.case.limit_days)
                else:
                    name = {"NOT_ACCEPT": "notAccepted", "REFUSE": "refused", "WITHDRAW": "withdrawn",
                            "RETRACT": "retracted", "REVOKE": "revoked"}.get(action)
                    if name:
                        g[name] += 1
        if value(row.case.state) in OPEN:
            targets = [total] if by_time else [total, groups[case_key(row, TODAY)]]
            for g in targets:
                g["lights"].append(clock[2])

    cases_by_id = {row.case.id: row for row in data.rows}
    for r in data.ratings:
        day = day_of(r.created_at)
        if not start <= day <= end or r.appeal_status == "UPHELD":
            continue
        row = cases_by_id.get(r.case_id)
        if f.get("department") is not None and r.department_id != f["department"]:
            continue
        if f.get("itemCode") is not None and r.item_code != f["itemCode"]:
            continue
        if any(f.get(k) is not None for k in ("stage", "processType", "regionCode")):
            if row is None or not in_scope(row, {k: f.get(k) for k in ("stage", "processType", "regionCode")}):
                continue
        key = {"DEPARTMENT": str(r.department_id), "ITEM": r.item_code,
               "STAGE": str(row.case.stage) if row else None}.get(group_by, bucket(group_by, day))
        for g in [total] + ([groups[key]] if key is not None else []):
            if r.level >= 3:
                g["good"] += 1
            else:
                g["bad"] += 1
                g["rectified"] += r.rectified_at is not None

    complaints_apply = f.get("itemCode") is None and f.get("stage") is None
    for c in data.complaints if complaints_apply else []:
        if f.get("department") is not None and c.department_id != f["department"]:
            continue
        if f.get("processType") is not None or f.get("regionCode") is not None:
            project = next((p for p in data.projects.values() if p.code == c.project_code), None)
            if project is None or (f.get("processType") is not None and project.process_type != f["processType"]):
                continue
            if f.get("regionCode") is not None and not project.region_code.startswith(prefix(f["regionCode"])):
                continue
        round_start = c.created_at
        for e in data.complaint_events[c.id]:
            if value(e.action) == "REOPEN":
                round_start = e.occurred_at
            elif value(e.action) == "REPLY" and start <= day_of(e.occurred_at) <= end:
                first, last = day_of(round_start), day_of(e.occurred_at)
                used = sum(data.calendar.is_working_day(first + dt.timedelta(days=k))
                           for k in range(1, (last - first).days + 1))
                key = {"DEPARTMENT": str(c.department_id)}.get(group_by, bucket(group_by, last))
                targets = [total] + ([groups[key]] if group_by in ("DEPARTMENT", "WEEK", "MONTH") else [])
                for g in targets:
                    g["replies"] += 1
                    g["on_time"] += used <= REPLY_DAYS
    if by_time:  # every bucket is listed, in order
        groups = {key: groups[key] for key in all_buckets(group_by, start, end)}
    else:
        groups = {k: g for k, g in groups.items() if any(g[n] for n in COUNTS) or g["lights"] or g["good"] or g["bad"]
                  or g["replies"]}
    shown = {k: expected_fields(g, complaints_apply and group_by not in ("ITEM", "STAGE")) for k, g in groups.items()}
    return shown, expected_fields(total, complaints_apply)


def ratio(part, whole, digits=4):
    return round(part / whole, digits) if whole else None


def expected_fields(g: dict, complaints: bool) -> dict:
    lights = g["lights"]
    out = {name: g[name] for name in COUNTS}
    verdicts = g["accepted"] + g["notAccepted"] + g["refused"]
    rated = g["good"] + g["bad"]
    out.update(
        onTimeRate=ratio(g["decidedOnTime"], g["decided"]),
        running=None if lights is None else len(lights),
        runningGreen=None if lights is None else lights.count("GREEN"),
        runningYellow=None if lights is None else lights.count("YELLOW"),
        runningRed=None if lights is None else lights.count("RED"),
        averageUsedDays=ratio(sum(g["used"]), len(g["used"]), 2),
        averageLimitDays=ratio(sum(g["limits"]), len(g["limits"]), 2),
        speedupRate=ratio(sum(g["ratios"]), len(g["ratios"])),
        correctionRate=ratio(g["corrected"], g["accepted"]),
        rejectionRate=ratio(g["notAccepted"] + g["refused"], verdicts),
        ratings=rated, badRatings=g["bad"], goodRate=ratio(g["good"], rated), rectifiedRate=ratio(g["rectified"], g["bad"]),
        complaintReplies=g["replies"] if complaints else None,
        complaintRepliesOnTime=g["on_time"] if complaints else None,
        complaintOnTimeRate=ratio(g["on_time"], g["replies"]) if complaints else None,
    )
    return out


def assert_same(got: dict, expected: dict, where: str) -> None:
    for name, want in expected.items():
        have = got[name]
        if isinstance(want, float) or isinstance(have, float):
            assert have == pytest.approx(want, abs=2e-4), (where, name, have, want)
        else:
            assert have == want, (where, name, have, want)


def variables(f: dict, group_by: str) -> dict:
    flt = {"from": f["from"].isoformat(), "to": f["to"].isoformat()}
    if f.get("department") is not None:
        flt["departmentId"] = to_global_id("Department", f["department"])
    for name in ("itemCode", "stage", "processType", "regionCode"):
        if f.get(name) is not None:
            flt[name] = f[name]
    return {"filter": flt, "groupBy": group_by}


async def stats_of(gql, f: dict, group_by: str, user: str = "supervisor") -> dict:
    return (await gql.op("CaseStats", variables(f, group_by), as_user=user))["caseStats"]


def compare(result: dict, data: Data, f: dict, group_by: str) -> None:
    groups, total = recount(data, f, group_by)
    assert_same(result["total"], total, f"total {f} {group_by}")
    assert [g["key"] for g in result["groups"]] == (
        list(groups) if group_by in ("WEEK", "MONTH") else sorted(groups, key=lambda k: (int(k), "") if group_by in
                                                                   ("DEPARTMENT", "STAGE") else (0, k))
    ), (f, group_by)
    for g in result["groups"]:
        assert_same(g, groups[g["key"]], f"{g['key']} {f} {group_by}")


@pytest.fixture
async def data(world, clock) -> Data:
    clock.set(NOW)
    await random_world(world)
    return await load_data()


async def test_the_generated_histories_follow_the_lifecycle(data):
    """The random world is a possible one: every event is a transition the rules allow, the projection matches."""
    for row in data.rows:
        state = None
        corrected = False
        for e in row.events:
            planned = plan_transition(state, Action(value(e.action)), next(iter(RULES[Action(value(e.action))].parties)),
                                      e.data, correction_already_requested=corrected)
            assert planned.target.value == value(e.state_after)
            corrected |= planned.action is Action.REQUEST_CORRECTION
            state = planned.target
        assert value(row.case.state) == value(state) and row.case.last_seq == len(row.events)


async def test_case_stats_equal_the_figures_recounted_from_the_events(gql, data, world):
    """Random periods and scopes, every grouping: each group's figures and the total recounted from the rows."""
    rng = random.Random(SEED)
    departments = [None] + [d.id for d in world.departments.values()]
    seen_lights = set()
    for group_by in ["DEPARTMENT", "ITEM", "STAGE", "WEEK", "MONTH"] * 2:
        first = TODAY - dt.timedelta(days=rng.randint(0, 210))
        f = {
            "from": first,
            "to": min(TODAY, first + dt.timedelta(days=rng.randint(0, 200))),
            "department": rng.choice(departments + [None, None]),
            "itemCode": rng.choice([None, None, None, "A", "B", "C", "D"]),
            "stage": rng.choice([None, None, None, 1, 3]),
            "processType": rng.choice([None, None, 3]),
            "regionCode": rng.choice([None, None, "440402", "440400", "441900"]),
        }
        result = await stats_of(gql, f, group_by)
        compare(result, data, f, group_by)
        if result["total"]["running"]:
            seen_lights |= {k for k in ("runningGreen", "runningYellow", "runningRed") if result["total"][k]}
    # And the whole year, everything: the figures the test is about are all there.
    f = {"from": TODAY - dt.timedelta(days=365), "to": TODAY}
    result = await stats_of(gql, f, "DEPARTMENT")
    compare(result, data, f, "DEPARTMENT")
    total = result["total"]
    assert all(total[k] for k in ("decidedOverdue", "corrected", "specialProcedures", "notAccepted", "refused",
                                  "withdrawn", "retracted", "ratings", "badRatings", "complaintReplies"))
    assert total["runningRed"] and total["runningYellow"] and total["runningGreen"]


async def test_an_approver_sees_its_department_and_a_clerk_its_region(gql, data, world):
    f = {"from": TODAY - dt.timedelta(days=120), "to": TODAY}
    planning = world.departments["planning"].id
    own = await stats_of(gql, f, "ITEM", user="planner")  # no department named: its own
    compare(own, data, {**f, "department": planning}, "ITEM")
    named = await stats_of(gql, {**f, "department": planning}, "ITEM", user="planner")
    assert named == own
    far = await stats_of(gql, f, "DEPARTMENT", user="far_clerk")  # 441900: the far project's cases only
    compare(far, data, {**f, "regionCode": "441900"}, "DEPARTMENT")
    assert far["total"]["received"] > 0
    city = await stats_of(gql, {**f, "regionCode": "440402"}, "STAGE", user="clerk")  # a district of its city
    compare(city, data, {**f, "regionCode": "440402"}, "STAGE")

    for user, extra, code, field in [
        ("planner", {"department": world.departments["housing"].id}, "PERMISSION_DENIED", "filter.departmentId"),
        ("clerk", {"regionCode": "441900"}, "PERMISSION_DENIED", "filter.regionCode"),
        ("clerk", {"regionCode": "440000"}, "PERMISSION_DENIED", "filter.regionCode"),  # wider than its own
        ("clerk", {"regionCode": "44"}, "INVALID_INPUT", "filter.regionCode"),
        ("planner", {"stage": 0}, "INVALID_INPUT", "filter.stage"),
        ("applicant", {}, "PERMISSION_DENIED", None),
        ("citizen", {}, "PERMISSION_DENIED", None),
    ]:
        errors = await gql.errors((OPS / "CaseStats.graphql").read_text(), variables({**f, **extra}, "ITEM"),
                                  as_user=user)
        assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in errors] == [(code, field)], user
    anonymous = await gql.errors((OPS / "CaseStats.graphql").read_text(), variables(f, "ITEM"))
    assert anonymous[0]["extensions"]["code"] == "UNAUTHENTICATED"
    for name in ("overdueCases", "warningCases"):
        errors = await gql.errors(LIST_QUERY.replace("NAME", name), {}, as_user="citizen")
        assert errors[0]["extensions"]["code"] == "PERMISSION_DENIED"
        errors = await gql.errors(LIST_QUERY.replace("NAME", name),
                                  {"filter": {"departmentId": to_global_id("Department", world.departments["water"].id)}},
                                  as_user="planner")
        assert errors[0]["extensions"]["code"] == "PERMISSION_DENIED"


LIST_QUERY = "query($filter: SupervisionScope) { NAME(filter: $filter) { totalCount } }"


async def test_bad_filters_are_coded_errors(gql, world, clock):
    clock.set(NOW)
    good = {"from": "2026-01-01", "to": "2026-03-31"}
    query = (OPS / "CaseStats.graphql").read_text()
    for flt, code, field in [
        ({"from": "2026-04-01", "to": "2026-03-31"}, "INVALID_INPUT", "filter.to"),
        ({"from": "2025-01-01", "to": "2026-03-31"}, "INVALID_INPUT", "filter.from"),  # longer than a year
        ({"from": "9000-12-31", "to": "9000-12-31"}, "INVALID_INPUT", "filter.from"),
        ({"from": "2026-01-01", "to": "9000-12-31"}, "INVALID_INPUT", "filter.to"),
        ({"from": "1900-01-01", "to": "1900-01-01"}, "INVALID_INPUT", "filter.from"),
        ({**good, "departmentId": to_global_id("Department", 99999)}, "NOT_FOUND", "filter.departmentId"),
        ({**good, "departmentId": "not-an-id"}, "INVALID_ID", "filter.departmentId"),
        ({**good, "departmentId": to_global_id("Case", 1)}, "INVALID_ID", "filter.departmentId"),
        ({**good, "itemCode": "NO-SUCH-ITEM"}, "NOT_FOUND", "filter.itemCode"),
        ({**good, "itemCode": "x" * 5000}, "NOT_FOUND", "filter.itemCode"),
        ({**good, "stage": 9}, "INVALID_INPUT", "filter.stage"),
        ({**good, "processType": 0}, "INVALID_INPUT", "filter.processType"),
        ({**good, "regionCode": "44"}, "INVALID_INPUT", "filter.regionCode"),
    ]:
        errors = await gql.errors(query, {"filter": flt, "groupBy": "DEPARTMENT"}, as_user="supervisor")
        assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in errors] == [(code, field)], flt
    for args, code in [({"first": 0}, "INVALID_INPUT"), ({"first": 10_000}, "INVALID_INPUT"),
                       ({"after": "bm9wZQ"}, "INVALID_INPUT"), ({"after": "%%%"}, "INVALID_INPUT")]:
        text = "query($first: Int = 20, $after: String) { overdueCases(first: $first, after: $after) { totalCount } }"
        errors = await gql.errors(text, args, as_user="supervisor")
        assert errors[0]["extensions"]["code"] == code, args


OPS = Path(__file__).resolve().parents[2] / "graphql" / "operations"


async def page_through(gql, overdue: bool, order: str, scope: dict | None = None, first: int = 3) -> list[dict]:
    nodes, after, pages = [], None, 0
    while True:
        data = (await gql.op("SupervisionCases", {"overdue": overdue, "first": first, "after": after, "order": order,
                                                  "filter": scope}, as_user="supervisor"))
        connection = data["overdueCases" if overdue else "warningCases"]
        assert ("warningCases" if overdue else "overdueCases") not in data
        nodes += [edge["node"] for edge in connection["edges"]]
        assert connection["pageInfo"]["hasPreviousPage"] == (pages > 0)
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            assert connection["totalCount"] == len(nodes)
            return nodes
        after = connection["pageInfo"]["endCursor"]


async def test_overdue_and_warning_lists_sorted_by_days(gql, data, world):
    for overdue, light in ((True, "RED"), (False, "YELLOW")):
        for scope in (None, {"departmentId": to_global_id("Department", world.departments["planning"].id)},
                      {"stage": 1, "regionCode": "440402"}):
            f = {} if scope is None else {"department": world.departments["planning"].id} if "departmentId" in scope \
                else {"stage": 1, "regionCode": "440402"}
            expected = []
            for row in data.rows:
                if value(row.case.state) in OPEN and in_scope(row, f):
                    used, remaining, lit = recount_clock(row, data.calendar)
                    if lit == light:
                        expected.append((remaining, row.case.id, row.case.code))
            got = await page_through(gql, overdue, "MOST_URGENT_FIRST", scope)
            assert [n["code"] for n in got] == [code for _, _, code in sorted(expected)]
            assert all(n["light"] == light for n in got)
            least = await page_through(gql, overdue, "LEAST_URGENT_FIRST", scope, first=2)
            assert [n["code"] for n in least] == [code for _, _, code in sorted(expected, key=lambda e: (-e[0], e[1]))]
            if scope is None:
                assert len(expected) >= 3  # the pages above were several


async def test_project_duration_counts_working_days_without_special_procedures(gql, world, clock):
    """Stage 1: A accepted Mon 3 Aug, in a special procedure from Wed 5 to Wed 12, approved Fri 14; C accepted Tue 4,
    approved Thu 6. Stage 3: D received Mon 17, accepted Tue 18, approved Fri 21 (August 2026 has no holiday).
    Total: the 4th and 5th, the 12th to the 14th, the 17th to the 21st (between stages the time runs) = 10 days;
    6–11 August count not: the only open case is in a special procedure. Stage 1: 5 days; stage 3: 3 days."""
    clock.set(NOW)
    project = world.projects["main"]

    def at(day: int, hour: int = 10) -> dt.datetime:
        return dt.datetime(2026, 8, day, hour, tzinfo=SHANGHAI)

    histories = {
        "A": [(Action.RECEIVE, at(3, 9)), (Action.ACCEPT, at(3)), (Action.START, at(4, 9)),
              (Action.BEGIN_SPECIAL_PROCEDURE, at(5)), (Action.END_SPECIAL_PROCEDURE, at(12)), (Action.APPROVE, at(14))],
        "C": [(Action.RECEIVE, at(3, 9)), (Action.ACCEPT, at(4)), (Action.START, at(4, 11)), (Action.APPROVE, at(6))],
        "D": [(Action.RECEIVE, at(17)), (Action.ACCEPT, at(18)), (Action.START, at(18, 11)), (Action.APPROVE, at(21))],
    }
    await write_cases(world, project, histories)
    result = (await gql.op("ProjectDuration", {"code": project.code}, as_user="supervisor"))["projectDuration"]
    assert result["total"] == {"days": 10, "startedOn": "2026-08-03", "finished": True, "provisional": False}
    assert [(s["stage"], s["duration"]["days"], s["duration"]["finished"]) for s in result["stages"]] == [
        (1, 5, True), (3, 3, True)
    ]
    # Another builder's project: like one that does not exist.
    assert (await gql.op("ProjectDuration", {"code": project.code}, as_user="other_applicant"))["projectDuration"] is None
    mine = (await gql.op("ProjectDuration", {"code": project.code}, as_user="applicant"))["projectDuration"]
    assert mine == result
    # Still running: counted up to today, not final.
    await write_cases(world, world.projects["other"], {"A": histories["A"][:3]})
    clock.set(dt.datetime(2026, 8, 7, 15, tzinfo=SHANGHAI))
    other = world.projects["other"].code
    running = (await gql.op("ProjectDuration", {"code": other}, as_user="supervisor"))["projectDuration"]
    assert running["total"] == {"days": 4, "startedOn": "2026-08-03", "finished": False, "provisional": False}


async def write_cases(world, project, histories: dict[str, list[tuple[Action, dt.datetime]]]) -> None:
    """Cases with exactly these histories (rows written directly: the services would use today's date)."""
    stages = {"A": 1, "B": 1, "C": 1, "D": 3}
    for code, history in histories.items():
        item = world.items[code]
        application = await Application.create(
            project=project, stage=stages[code], form={}, materials=[], parallel_instance_code=f"T-{project.id}-{code}",
            applicant=world.users["applicant"], submitted_at=history[0][1],
        )
        state = None
        case = await Case.create(
            code=f"T-{project.id}-{code}", application=application, project=project, item=item,
            department_id=item.department_id, stage=stages[code], limit_days=5, limit_unit=LimitUnit.WD,
            warning_days=2, state=CaseState.RECEIVED, blzt=1,
        )
        for seq, (action, when) in enumerate(history, start=1):
            state = RULES[action].target
            await CaseEvent.create(case=case, seq=seq, action=action, blzt=1, state_after=state,
                                   party=next(iter(RULES[action].parties)), occurred_at=when,
                                   data={})
        await Case.filter(id=case.id).update(state=state, blzt=state.blzt, last_seq=len(history))


def export_query(f: dict, group_by: str) -> dict:
    params = {k: v for k, v in variables(f, group_by)["filter"].items()}
    return {**params, "groupBy": group_by}


async def test_exports_carry_the_same_figures_and_the_filter(client, gql, data, world):
    f = {"from": TODAY - dt.timedelta(days=90), "to": TODAY, "department": world.departments["planning"].id,
         "stage": 1}
    stats = await stats_of(gql, f, "ITEM")
    token = {"Authorization": f"Bearer {world.token('supervisor')}"}
    columns = ["received", "accepted", "decided", "decidedOnTime", "decidedOverdue", "onTimeRate", "running"]

    response = await client.get("/exports/case-stats.csv", params=export_query(f, "ITEM"), headers=token)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    response_text = response.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(response_text)))
    header = dict(r for r in rows if len(r) == 2)
    assert header["统计期间"] == f"{f['from'].isoformat()} 至 {TODAY.isoformat()}"
    assert header["部门"] == "珠海市自然资源局" and header["审批阶段"] == "立项用地规划许可" and header["分组"] == "事项"
    table = rows[rows.index([]) + 1:]
    assert table[0][:8] == ["事项", "接件数", "受理数", "办结数", "按时办结数", "超期办结数", "按时办结率", "在办数"]
    assert len(table) == 1 + len(stats["groups"]) + 1 and table[-1][0] == "合计"
    for line, figures in zip(table[1:], [*stats["groups"], stats["total"]]):
        assert line[0] == figures["label"]
        assert [float(x) if x else None for x in line[1:8]] == [figures[c] for c in columns]

    response = await client.get("/exports/case-stats.xlsx", params=export_query(f, "ITEM"), headers=token)
    assert response.status_code == 200, response.text
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = book.active
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[0][:2] == ["报表", "工程建设项目审批效能统计"]
    header = {r[0]: r[1] for r in cells if r[0] and r[1] and r[2] is None}
    assert header["部门"] == "珠海市自然资源局" and header["统计期间"].startswith(f["from"].isoformat())
    start = next(i for i, r in enumerate(cells) if r[:2] == ["事项", "接件数"])
    for line, figures in zip(cells[start + 1:], [*stats["groups"], stats["total"]]):
        assert line[0] == figures["label"]
        assert [None if x == "" else x for x in line[1:8]] == [figures[c] for c in columns]

    # The approver's own department exports; another's, no token, a citizen, a bad filter: coded refusals.
    own = await client.get("/exports/case-stats.csv", params=export_query(f, "ITEM"),
                           headers={"Authorization": f"Bearer {world.token('planner')}"})
    assert own.status_code == 200 and own.content.decode("utf-8-sig") == response_text
    for params, headers, status, code in [
        (export_query({**f, "department": world.departments["water"].id}, "ITEM"),
         {"Authorization": f"Bearer {world.token('planner')}"}, 403, "PERMISSION_DENIED"),
        (export_query(f, "ITEM"), {}, 401, "UNAUTHENTICATED"),
        (export_query(f, "ITEM"), {"Authorization": f"Bearer {world.token('citizen')}"}, 403, "PERMISSION_DENIED"),
        ({**export_query(f, "ITEM"), "to": "2025-01-01"}, token, 400, "INVALID_INPUT"),
        ({**export_query(f, "ITEM"), "from": "yesterday"}, token, 400, "INVALID_INPUT"),
        ({"to": "2026-01-01"}, token, 400, "REQUIRED"),
        ({**export_query(f, "ITEM"), "from": "9999-12-31", "to": "9999-12-31"}, token, 400, "INVALID_INPUT"),
        ({**export_query(f, "ITEM"), "from": "0001-01-01", "to": "0001-01-01"}, token, 400, "INVALID_INPUT"),
        ({**export_query(f, "ITEM"), "groupBy": "YEAR"}, token, 400, "INVALID_INPUT"),
        ({**export_query(f, "ITEM"), "stage": "1; drop"}, token, 400, "INVALID_INPUT"),
        ({**export_query(f, "ITEM"), "itemCode": "NOPE"}, token, 404, "NOT_FOUND"),
    ]:
        for suffix in ("csv", "xlsx"):
            refused = await client.get(f"/exports/case-stats.{suffix}", params=params, headers=headers)
            assert refused.status_code == status, (params, refused.text)
            assert refused.json()["error"]["code"] == code, params


async def test_simultaneous_requests_answer_the_same(gql, data, world):
    """Many supervisors' and approvers' requests at once (the kept clocks are shared): each answers its own figures."""
    f = {"from": TODAY - dt.timedelta(days=60), "to": TODAY}
    users = ["supervisor", "planner", "water", "housing", "far_clerk"] * 4
    answers = await asyncio.gather(*(stats_of(gql, f, "WEEK", user=u) for u in users))
    expected = {u: await stats_of(gql, f, "WEEK", user=u) for u in set(users)}
    assert [a == expected[u] for a, u in zip(answers, users)] == [True] * len(users)
    compare(expected["water"], data, {**f, "department": world.departments["water"].id}, "WEEK")


async def test_cases_without_a_clock_row_are_counted_from_their_events(gql, data, world):
    """caseStats sums the decided cases' final clocks and reads the running cases' lights from the clocks' read model
    (api/services/clocks.py); a case whose row is missing (a database from before it) is counted from its events, so
    the figures and the overdue list stay those recounted from the events."""
    ids = [row.case.id for row in data.rows][::3]
    assert await CaseClock.filter(case_id__in=ids).delete() > 0
    f = {"from": TODAY - dt.timedelta(days=365), "to": TODAY}
    for group_by in ("DEPARTMENT", "MONTH"):
        result = await stats_of(gql, f, group_by)
        compare(result, data, f, group_by)
    assert result["total"]["decided"] and result["total"]["runningRed"]
    expected = sorted((recount_clock(row, data.calendar)[1], row.case.id, row.case.code) for row in data.rows
                      if value(row.case.state) in OPEN and recount_clock(row, data.calendar)[2] == "RED")
    assert [n["code"] for n in await page_through(gql, True, "MOST_URGENT_FIRST")] == [c for _, _, c in expected]


def test_reply_clock_gives_the_figures_of_reply_timing():
    """caseStats counts a complaint reply on time / provisional in O(log n) (``reply_clock``): the same answers as the
    complaint clock itself (``reply_timing``) for random rounds, across a year without holiday data."""
    from api.domain.calendar import WorkCalendar, parse_year_file
    from api.domain.feedback import reply_timing
    from api.services.supervision import reply_clock

    holidays = [{"date": day, "name": "国庆节"} for day in ("2026-10-01", "2026-10-02", "2026-12-31")]
    calendar = WorkCalendar([parse_year_file({"year": 2026, "source": "test", "holidays": holidays,
                                              "workdays": [{"date": "2026-09-27", "name": "国庆节"}]})])
    rng = random.Random(SEED)
    for _ in range(2000):
        began = dt.datetime(2026, 9, 1, 8, tzinfo=SHANGHAI) + dt.timedelta(hours=rng.uniform(0, 24 * 130))
        replied = began + dt.timedelta(hours=rng.choice([rng.uniform(-2, 24), rng.uniform(0, 24 * 40)]))
        limit = rng.choice([0, 1, 3, 10, 15])
        timing = reply_timing(began, replied, limit=limit, warning_days=2, calendar=calendar, now=replied)
        assert reply_clock(began, replied, limit=limit, calendar=calendar) == (
            timing.remaining is not None and timing.remaining >= 0, timing.provisional), (began, replied, limit)
