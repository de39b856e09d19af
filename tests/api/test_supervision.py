"""Supervision figures (issue #14 §1, DOMAIN.md §14): caseStats recomputed from scratch from the event rows for random
filters over a random (seeded) set of cases, the overdue / warning lists, projectDuration, who may see what, bad
filters, and the CSV / XLSX exports. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections import defaultdict
from dataclasses import dataclass

import openpyxl
import pytest

from api.domain.lifecycle import RULES, Action, plan_transition
from api.domain.timing import SHANGHAI, CaseState, LimitUnit
from api.models import ApprovalItem, Case, CaseEvent, Department, Project
from api.models.feedback import Complaint, ComplaintEvent, Rating
from api.scale import ItemSpec, generate
from api.services.calendar import get_calendar
from api.schema.base import to_global_id
from tests.factories import build_world

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
