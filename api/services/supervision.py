"""Supervision figures (效能督察, DOMAIN.md §14): case statistics of a scope, overdue and warning lists, and the
全流程审批用时 of a project. GraphQL (api/schema/supervision.py), the exports (api/routes/exports.py) and the
dashboard pages call these functions, so every place shows the same figures.

Definitions (every figure is derived from the events; a test recomputes them from the ``CaseEvent`` rows):

- The period is ``start``..``end`` (dates in Asia/Shanghai, both included). An event counts in the period when it
  occurred in it; received / accepted / decided / 不受理 / 不予受理 / 撤件 / 撤回 / 撤销 / 特别程序 are counts of events
  (BLZT 1 / 3 / 11–13 / 4 / 5 / 2 / 14 / 15 / 9) of the scope's cases in the period.
- 按时办结率 = decided with ``remaining ≥ 0`` / decided; 超期办结 = decided with ``remaining < 0`` (the case clock,
  api/domain/timing.py ``compute_timing``, as its read model api/services/clocks.py keeps it).
- 平均用时 / 平均承诺时限: the means of ``used`` and of the limit over the decided cases, each in the case's own unit
  (working days, or natural days for the few items whose limit is in natural days); 提速率 = mean of
  ``1 − used / limit`` over the decided cases with a limit > 0.
- 补正率 = cases accepted in the period that went through 补正 (a BLZT 6 before acceptance) / accepted.
- 不予受理率 = (不受理 + 不予受理) / (受理 + 不受理 + 不予受理): of the window's verdicts in the period.
- 特别程序: the procedures begun in the period, and the days they paused the clock: the counting days (working days,
  or every day for a natural-day limit) from the day it began up to the day before it ended, or up to today while
  it runs — the days the clock did not count because of it.
- Running now (ACCEPTED / IN_PROGRESS / SPECIAL_PROCEDURE today) by light: a snapshot of today, whatever the period;
  in WEEK / MONTH groups it is given in the total only.
- Ratings (好评率, 差评整改率): ratings made in the period of the scope (its department / item; stage, process type
  and region through the rated case, so a complaint's rating is outside a scope that names one of those); an upheld
  appeal excludes a rating (DOMAIN.md §8).
- Complaint replies: replies (答复) made in the period to complaints of the scope's department (process type and
  region through the complaint's project code), on time when within the reply limit of their round (the complaint
  clock, ``reply_timing``). Complaints have no item nor stage: under an item or stage filter, and in ITEM / STAGE
  groups, these figures are null.
- In DEPARTMENT / ITEM / STAGE groups a case falls in its own group; in WEEK / MONTH groups each event falls in the
  group of its date. Groups list what has any figure (WEEK / MONTH: every bucket of the period); the total is the
  whole scope (ratings of complaints have no item, so the ITEM groups may add up to less than the total).

Who sees what: supervisors and admins everything; an approver its own department (naming another is refused with
PERMISSION_DENIED, not answered with zeros: department names are public, and an empty answer would look like a
department with no work); a window clerk its own region (likewise). Anybody else: PERMISSION_DENIED.

How they are computed (issue #14 §3: a year of 100,000 cases within a second or two, bench/supervision.py): in SQL,
never a Python loop over the scope's events (``_StatsSql``, one dialect-aware statement per kind of figure):

- Counts of events: ``GROUP BY`` key and action over the period's events, read from the covering index
  ``case_event (action, occurred_at, case_id)``; the key is the case's department / item / stage, or the event's
  local date (bucketed into weeks or months here). 补正 of an accepted case: its ``correction_requested`` projection.
- Decided, on time, the means: sums over the decided cases' final clocks, the read model ``case_clock``
  (api/services/clocks.py, kept in each event's transaction and rebuilt with the calendar); a decision stops the
  clock, so its row is final. A case whose row cannot tell (none: a database from before it) from its events.
- Running by light (and the overdue / warning lists): the open cases' rows, brought to today by ``clocks.timing_of``
  (one working-day count each).
- 特别程序 days: each begun procedure with the moment of the case's next change, counted by
  ``WorkCalendar.working_days_between``. Ratings: ``GROUP BY`` key, level and rectified. Complaint replies: per reply
  (a few per complaint; their rounds' clocks).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Iterable, Sequence

from tortoise import connections
from tortoise.expressions import Q, Subquery

from api.domain.accounts import READ_ALL_ROLES, Role
from api.domain.calendar import WorkCalendar
from api.domain.catalog import PROCESS_TYPE_NAMES, STAGE_NAMES, ProcessType, Stage
from api.domain.codes import is_valid_region_code, region_prefix
from api.domain.errors import DomainError
from api.domain.feedback import RatingLevel
from api.domain.lifecycle import OPEN_CLOCK_STATES, Action
from api.domain.timing import (
    DECISION_STATES,
    RUNNING_STATES,
    SHANGHAI,
    TERMINAL_STATES,
    CaseState,
    Light,
    LimitUnit,
    StateChange,
    Timing,
    compute_timing,
    local_date,
)
from api.models import ApprovalItem, Case, CaseClock, CaseEvent, Department, Project
from api.models.feedback import Complaint, ComplaintEvent, Rating
from api.services import clocks
from api.services.access import Viewer, require_viewer
from api.services.progress import Page, case_timing, check_first

DECISION_ACTIONS = frozenset({Action.APPROVE, Action.APPROVE_DEFICIENT, Action.DISAPPROVE})


class GroupBy(str, Enum):
    DEPARTMENT = "DEPARTMENT"
    ITEM = "ITEM"
    STAGE = "STAGE"
    WEEK = "WEEK"
    MONTH = "MONTH"

    @property
    def by_time(self) -> bool:
        return self in (GroupBy.WEEK, GroupBy.MONTH)


GROUP_LABELS = {GroupBy.DEPARTMENT: "部门", GroupBy.ITEM: "事项", GroupBy.STAGE: "阶段", GroupBy.WEEK: "周",
                GroupBy.MONTH: "月"}


@dataclass(frozen=True)
class Scope:
    """Which cases: a department, an item, a stage, a process type, a region (its sub-regions included)."""

    department_id: int | None = None
    item_code: str | None = None
    stage: int | None = None
    process_type: int | None = None
    region_code: str | None = None

    @property
    def region(self) -> str | None:
        return region_prefix(self.region_code) if self.region_code else None

    def cases(self) -> Q:
        q = Q()
        if self.department_id is not None:
            q &= Q(department_id=self.department_id)
        if self.item_code is not None:
            q &= Q(item__code=self.item_code)
        if self.stage is not None:
            q &= Q(stage=self.stage)
        if self.process_type is not None:
            q &= Q(project__process_type=self.process_type)
        if self.region is not None:
            q &= Q(project__region_code__startswith=self.region)
        return q

    def projects(self) -> Q:
        q = Q()
        if self.process_type is not None:
            q &= Q(process_type=self.process_type)
        if self.region is not None:
            q &= Q(region_code__startswith=self.region)
        return q


@dataclass(frozen=True)
class StatsFilter:
    start: dt.date
    end: dt.date  # included
    scope: Scope = field(default_factory=Scope)


# -- checking the request ------------------------------------------------------------------------------------------------


def supervisor_scope(viewer: Viewer | None, scope: Scope) -> Scope:
    """The scope the viewer asked for, narrowed to what its role may see; refused when it asks beyond that."""
    viewer = require_viewer(viewer)
    if viewer.role in READ_ALL_ROLES:
        return scope
    if viewer.role is Role.APPROVER and viewer.department_id:
        if scope.department_id is not None and scope.department_id != viewer.department_id:
            raise DomainError("PERMISSION_DENIED", "只能查看本部门的统计", "filter.departmentId")
        return replace(scope, department_id=viewer.department_id)
    if viewer.role is Role.WINDOW_CLERK and viewer.region_code:
        own = region_prefix(viewer.region_code)
        if scope.region_code is not None and not region_prefix(scope.region_code).startswith(own):
            raise DomainError("PERMISSION_DENIED", "只能查看本辖区的统计", "filter.regionCode")
        return scope if scope.region_code is not None else replace(scope, region_code=viewer.region_code)
    raise DomainError("PERMISSION_DENIED", "效能统计仅供督查人员和审批工作人员查看", None)


def check_format(scope: Scope) -> Scope:
    """Coded errors for values that cannot be a stage, a process type or a region (before any use of them)."""
    if scope.stage is not None and scope.stage not in {s.value for s in Stage}:
        raise DomainError("INVALID_INPUT", "审批阶段应为1至5", "filter.stage")
    if scope.process_type is not None and scope.process_type not in {p.value for p in ProcessType}:
        raise DomainError("INVALID_INPUT", "审批流程类型应为1至10", "filter.processType")
    if scope.region_code is not None and not is_valid_region_code(scope.region_code):
        raise DomainError("INVALID_INPUT", "行政区划代码须为6位数字", "filter.regionCode")
    return scope


async def check_scope(viewer: Viewer | None, scope: Scope) -> Scope:
    """The scope the viewer may ask for (``supervisor_scope``), with coded errors for what cannot be or does not exist
    (the department id's shape is checked by the caller's id parse)."""
    scope = supervisor_scope(viewer, check_format(scope))
    if scope.department_id is not None and not await Department.exists(id=scope.department_id):
        raise DomainError("NOT_FOUND", "部门不存在", "filter.departmentId")
    if scope.item_code is not None:
        if len(scope.item_code) > 64 or not await ApprovalItem.exists(code=scope.item_code):
            raise DomainError("NOT_FOUND", "事项不存在", "filter.itemCode")
    return scope


EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2099, 12, 31)  # no case of this service lies outside


def check_period(start: dt.date, end: dt.date, max_days: int) -> None:
    for day, name in ((start, "filter.from"), (end, "filter.to")):
        if not EARLIEST <= day <= LATEST:
            raise DomainError("INVALID_INPUT", "统计期间应在2000年至2099年之间", name)
    if start > end:
        raise DomainError("INVALID_INPUT", "统计期间的开始日期不能晚于结束日期", "filter.to")
    if (end - start).days + 1 > max_days:
        raise DomainError("INVALID_INPUT", f"统计期间不能超过{max_days}天", "filter.from")


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI)


# -- figures ---------------------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """The figures of one group (or of the whole scope). Rates are in [0, 1], None when there is nothing to divide."""

    key: str
    label: str
    received: int = 0
    accepted: int = 0
    decided: int = 0
    decided_on_time: int = 0
    decided_overdue: int = 0
    not_accepted: int = 0
    refused: int = 0
    withdrawn: int = 0
    retracted: int = 0
    revoked: int = 0
    corrected: int = 0  # accepted cases that went through 补正
    special_procedures: int = 0
    special_procedure_days: int = 0
    running_green: int | None = 0
    running_yellow: int | None = 0
    running_red: int | None = 0
    ratings: int = 0
    bad_ratings: int = 0
    good_rate: float | None = None
    rectified_rate: float | None = None
    complaint_replies: int | None = 0
    complaint_replies_on_time: int | None = 0
    provisional: bool = False  # some clock relies on a year without holiday data
    # Sums behind the means (not shown): of ``used`` and of the limit over the decided cases, of ``1 − used / limit``
    # over those with a limit > 0.
    _used_sum: int = field(default=0, repr=False)
    _limit_sum: int = field(default=0, repr=False)
    _ratio_sum: float = field(default=0.0, repr=False)
    _ratio_count: int = field(default=0, repr=False)
    _rated: dict[tuple[int, bool], int] = field(default_factory=dict, repr=False)  # (level, rectified) -> ratings

    @property
    def on_time_rate(self) -> float | None:
        return _rate(self.decided_on_time, self.decided)

    @property
    def rejection_rate(self) -> float | None:
        return _rate(self.not_accepted + self.refused, self.accepted + self.not_accepted + self.refused)

    @property
    def correction_rate(self) -> float | None:
        return _rate(self.corrected, self.accepted)

    @property
    def average_used_days(self) -> float | None:
        return round(self._used_sum / self.decided, 2) if self.decided else None

    @property
    def average_limit_days(self) -> float | None:
        return round(self._limit_sum / self.decided, 2) if self.decided else None

    @property
    def speedup_rate(self) -> float | None:
        return round(self._ratio_sum / self._ratio_count, 4) if self._ratio_count else None

    def add_decided(self, timing: Timing) -> None:
        """One decision, with the final clock of its case."""
        self.decided += 1
        if timing.remaining >= 0:
            self.decided_on_time += 1
        else:
            self.decided_overdue += 1
        self._used_sum += timing.used
        self._limit_sum += timing.limit
        if timing.limit > 0:
            self._ratio_sum += 1 - timing.used / timing.limit
            self._ratio_count += 1
        self.provisional |= timing.provisional

    @property
    def complaint_on_time_rate(self) -> float | None:
        if self.complaint_replies is None or self.complaint_replies_on_time is None:
            return None
        return _rate(self.complaint_replies_on_time, self.complaint_replies)

    @property
    def running(self) -> int | None:
        if self.running_green is None:
            return None
        return self.running_green + self.running_yellow + self.running_red

    def is_empty(self) -> bool:
        counted = (self.received, self.accepted, self.decided, self.not_accepted, self.refused, self.withdrawn,
                   self.retracted, self.revoked, self.special_procedures, self.running or 0, self.ratings,
                   self.complaint_replies or 0)
        return not any(counted)

    def finish(self) -> None:
        """The rating figures from the counts (as ``rating_stats`` gives them from the facts)."""
        self.ratings = sum(self._rated.values())
        self.bad_ratings = sum(n for (level, _), n in self._rated.items() if RatingLevel(level).is_bad)
        rectified = sum(n for (level, done), n in self._rated.items() if done and RatingLevel(level).is_bad)
        self.good_rate = _rate(self.ratings - self.bad_ratings, self.ratings)
        self.rectified_rate = _rate(rectified, self.bad_ratings)

    def add_ratings(self, level: int, rectified: bool, count: int) -> None:
        self._rated[level, rectified] = self._rated.get((level, rectified), 0) + count


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class CaseStats:
    filter: StatsFilter
    group_by: GroupBy
    groups: list[Figures]
    total: Figures


# Columns of the exports, in order: (attribute, Chinese heading). The dashboard's tables use the same.
COLUMNS: list[tuple[str, str]] = [
    ("received", "接件数"),
    ("accepted", "受理数"),
    ("decided", "办结数"),
    ("decided_on_time", "按时办结数"),
    ("decided_overdue", "超期办结数"),
    ("on_time_rate", "按时办结率"),
    ("running", "在办数"),
    ("running_green", "在办(正常)"),
    ("running_yellow", "在办(预警)"),
    ("running_red", "在办(逾期)"),
    ("average_used_days", "平均用时(天)"),
    ("average_limit_days", "平均承诺时限(天)"),
    ("speedup_rate", "提速率"),
    ("corrected", "补正数"),
    ("correction_rate", "补正率"),
    ("special_procedures", "特别程序数"),
    ("special_procedure_days", "特别程序天数"),
    ("not_accepted", "不受理数"),
    ("refused", "不予受理数"),
    ("rejection_rate", "不予受理率"),
    ("withdrawn", "撤件数"),
    ("retracted", "撤回数"),
    ("revoked", "撤销数"),
    ("ratings", "评价数"),
    ("good_rate", "好评率"),
    ("bad_ratings", "差评数"),
    ("rectified_rate", "差评整改率"),
    ("complaint_replies", "投诉答复数"),
    ("complaint_replies_on_time", "按时答复数"),
    ("complaint_on_time_rate", "投诉按时答复率"),
]


@dataclass
class _Event:
    """The part of a ``CaseEvent`` the clock reads (``case_timing`` takes these as it takes the rows)."""

    occurred_at: dt.datetime
    state_after: CaseState
    action: Action
    day: dt.date  # local date of occurred_at


@dataclass
class _Case:
    id: int
    department_id: int
    item_code: str
    stage: int
    state: CaseState
    limit_days: int
    limit_unit: LimitUnit
    warning_days: int
    events: list[_Event] = field(default_factory=list)


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _buckets(group_by: GroupBy, start: dt.date, end: dt.date) -> list[tuple[str, str]]:
    out = []
    if group_by is GroupBy.WEEK:
        day = week_start(start)
        while day <= end:
            year, week, _ = day.isocalendar()
            out.append((day.isoformat(), f"{year}年第{week}周（{day.month}月{day.day}日起）"))
            day += dt.timedelta(days=7)
    else:
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month):
            out.append((f"{year:04d}-{month:02d}", f"{year}年{month}月"))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _bucket_of(group_by: GroupBy, day: dt.date) -> str:
    return week_start(day).isoformat() if group_by is GroupBy.WEEK else f"{day.year:04d}-{day.month:02d}"


async def _rows(query) -> list[tuple]:
    """The rows of a values_list query as the driver gives them: Tortoise's per-value conversion (an ISO parser for
    every SQLite datetime) cost more than the figures themselves at 100,000 cases (bench/supervision.py)."""
    query._choose_db_if_not_chosen()
    query._make_query()
    sql, params = query.query.get_parameterized_sql()
    _, rows = await query._db.execute_query(sql, params)
    return [tuple(row) for row in rows]


def _moment(value: Any) -> dt.datetime:
    """A datetime from the driver: PostgreSQL gives one; SQLite the text Tortoise wrote ("2026-05-03 09:30:00+08:00")."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


_STATES = {s.value: s for s in CaseState}
# Asia/Shanghai has kept UTC+8 all year since 1991: the fixed offset gives the same dates, ten times faster than
# ZoneInfo, for every event of a year's statistics.
CHINA = dt.timezone(dt.timedelta(hours=8))
_ACTIONS = {a.value: a for a in Action}


async def _load_cases(case_filter: Q) -> dict[int, _Case]:
    """The cases matching ``case_filter`` with their events in order: two statements, plain values (no model rows)."""
    rows = await _rows(Case.filter(case_filter).values_list(
        "id", "department_id", "item__code", "stage", "state", "limit_days", "limit_unit", "warning_days"
    ))
    cases = {
        r[0]: _Case(r[0], r[1], r[2], r[3], _STATES[r[4]], r[5], LimitUnit(r[6]), r[7]) for r in rows
    }
    if not cases:
        return cases
    ids = Subquery(Case.filter(case_filter).values("id"))
    events = await _rows(CaseEvent.filter(case_id__in=ids).order_by("case_id", "seq").values_list(
        "case_id", "action", "state_after", "occurred_at"
    ))
    for case_id, action, state, at in events:
        case = cases.get(case_id)
        if case is not None:  # a case created between the two statements has no row here
            at = _moment(at)
            case.events.append(_Event(at, _STATES[state], _ACTIONS[action], at.astimezone(CHINA).date()))
    return cases


# -- the statistics in SQL --------------------------------------------------------------------------------------------

# The counted events: action -> the figure it adds to (decisions are counted with their clocks, below).
_COUNTED = {
    Action.RECEIVE.value: "received",
    Action.ACCEPT.value: "accepted",
    Action.NOT_ACCEPT.value: "not_accepted",
    Action.REFUSE.value: "refused",
    Action.WITHDRAW.value: "withdrawn",
    Action.RETRACT.value: "retracted",
    Action.REVOKE.value: "revoked",
}


def _is_postgres(connection) -> bool:
    return connection.capabilities.dialect == "postgres"


class _StatsSql:
    """The statements of ``case_stats``, written for the connection's dialect (placeholders, the local date of a
    moment). The scope is a WHERE over the case (``c``); the key column is the case's department / item / stage, or
    for WEEK / MONTH the local date of the event (``e``), bucketed by the caller (at most 366 dates)."""

    def __init__(self, scope: Scope, group_by: GroupBy, start: dt.datetime, end: dt.datetime) -> None:
        self.connection = connections.get("default")
        self.postgres = _is_postgres(self.connection)
        self.scope, self.group_by, self.start, self.end = scope, group_by, start, end
        self.events, self.cases = CaseEvent._meta.db_table, Case._meta.db_table

    def day(self, column: str) -> str:
        """The date of a moment in Asia/Shanghai. SQLite keeps moments as text with their offset (api/db.py), which
        ``date()`` reads as a moment."""
        if self.postgres:
            return f"({column} AT TIME ZONE 'Asia/Shanghai')::date"
        return f"date({column}, '+8 hours')"

    def key(self) -> str:
        if self.group_by.by_time:
            return self.day("e.occurred_at")
        return {GroupBy.DEPARTMENT: "c.department_id", GroupBy.ITEM: "c.item_id", GroupBy.STAGE: "c.stage"}[
            self.group_by]

    def mark(self, params: list) -> str:
        """The placeholder of the last value of ``params``."""
        return f"${len(params)}" if self.postgres else "?"

    def where(self, params: list) -> str:
        """Conditions on the case ``c`` for the scope; values go to ``params``."""

        def mark(value: Any) -> str:
            params.append(value)
            return self.mark(params)

        scope, out = self.scope, []
        if scope.department_id is not None:
            out.append(f"c.department_id = {mark(scope.department_id)}")
        if scope.item_code is not None:
            items = ApprovalItem._meta.db_table
            out.append(f"c.item_id IN (SELECT id FROM {items} WHERE code = {mark(scope.item_code)})")
        if scope.stage is not None:
            out.append(f"c.stage = {mark(scope.stage)}")
        projects = []
        if scope.process_type is not None:
            projects.append(f"process_type = {mark(scope.process_type)}")
        if scope.region is not None:
            projects.append(f"region_code LIKE {mark(scope.region + '%')}")  # digits only (check_format)
        if projects:
            out.append(f"c.project_id IN (SELECT id FROM {Project._meta.db_table} WHERE {' AND '.join(projects)})")
        return "".join(f" AND {condition}" for condition in out)

    def period(self, params: list, column: str = "e.occurred_at") -> str:
        params.append(self.start)
        since = self.mark(params)
        params.append(self.end)
        return f"{column} >= {since} AND {column} < {self.mark(params)}"

    async def rows(self, sql: str, params: list) -> list[tuple]:
        _, rows = await self.connection.execute_query(sql, params)
        return [tuple(row) for row in rows]

    async def event_counts(self) -> list[tuple]:
        """(key, action, events, of them of cases that went through 补正) for the counted events of the period. A 补正
        can only be asked for before acceptance (DOMAIN.md §4: from RECEIVED), so an accepted case that went through
        it is one whose ``correction_requested`` projection is set (it is never unset)."""
        params: list = []
        period = self.period(params)
        actions = ", ".join(f"'{action}'" for action in _COUNTED)  # constants of the enum, not input
        return await self.rows(
            f"SELECT {self.key()}, e.action, COUNT(*), "
            f"SUM(CASE WHEN c.correction_requested THEN 1 ELSE 0 END) "
            f"FROM {self.events} e JOIN {self.cases} c ON c.id = e.case_id "
            f"WHERE {period} AND e.action IN ({actions}){self.where(params)} "
            f"GROUP BY {self.key()}, e.action",
            params,
        )

    def case_key(self) -> str:
        """The group of a case (for WEEK / MONTH, none: what is not an event goes in the total only)."""
        return {GroupBy.DEPARTMENT: "c.department_id", GroupBy.ITEM: "c.item_id", GroupBy.STAGE: "c.stage"}.get(
            self.group_by, "NULL")

    def decisions(self, params: list) -> str:
        """FROM … WHERE of the period's decisions of the scope's cases, each with its case's clock row ``k`` if any."""
        period = self.period(params)
        actions = ", ".join(f"'{action.value}'" for action in sorted(DECISION_ACTIONS))
        return (f"FROM {self.events} e JOIN {self.cases} c ON c.id = e.case_id "
                f"LEFT JOIN {CaseClock._meta.db_table} k ON k.case_id = e.case_id "
                f"WHERE {period} AND e.action IN ({actions}){self.where(params)}")

    async def decided(self) -> list[tuple]:
        """(key, decided, on time, Σ used, Σ limit, Σ (1 − used / limit) and how many over a limit > 0, any provisional,
        decisions whose clock row cannot tell) of the period's decisions, from the final clocks of their cases (a
        decision stops the clock: DOMAIN.md §5)."""
        params: list = []
        source = self.decisions(params)
        final = "k.stopped AND k.accepted_on IS NOT NULL"
        # 1.0 * …: a fraction, not an integer division (PostgreSQL gives a numeric, SQLite a real).
        return await self.rows(
            f"SELECT {self.key()}, SUM(CASE WHEN {final} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {final} AND k.used <= k.limit_days THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {final} THEN k.used ELSE 0 END), SUM(CASE WHEN {final} THEN k.limit_days ELSE 0 END), "
            f"SUM(CASE WHEN {final} AND k.limit_days > 0 THEN 1.0 - 1.0 * k.used / k.limit_days ELSE 0 END), "
            f"SUM(CASE WHEN {final} AND k.limit_days > 0 THEN 1 ELSE 0 END), "
            f"MAX(CASE WHEN {final} AND k.provisional THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN k.case_id IS NULL OR NOT k.stopped THEN 1 ELSE 0 END) "
            f"{source} GROUP BY {self.key()}",
            params,
        )

    async def decided_without_clock(self) -> list[int]:
        """The cases of the period's decisions whose clock row cannot tell (none, or not stopped): from their events."""
        params: list = []
        source = self.decisions(params)
        rows = await self.rows(f"SELECT DISTINCT e.case_id {source} AND (k.case_id IS NULL OR NOT k.stopped)", params)
        return [row[0] for row in rows]

    async def running(self, calendar: WorkCalendar, today: dt.date) -> list[tuple[Any, int, Timing]]:
        """(case key, case id, clock today) of the scope's cases running now (ACCEPTED / IN_PROGRESS / 特别程序), from their
        clock rows (``clocks.timing_of``); where a row cannot tell, from the events (``clocks.timings_at``)."""
        params: list = []
        states = ", ".join(f"'{state.value}'" for state in sorted(OPEN_CLOCK_STATES))
        columns = ", ".join(f"k.{name}" for name in clocks.COLUMNS[1:])
        rows = await self.rows(
            f"SELECT {self.case_key()}, c.id, {columns} FROM {self.cases} c "
            f"LEFT JOIN {CaseClock._meta.db_table} k ON k.case_id = c.id "
            f"WHERE c.state IN ({states}){self.where(params)}",
            params,
        )
        out, unknown = [], {}
        for key, case_id, *values in rows:
            timing = None
            if values[0] is not None:  # a row
                limit, unit, warning, accepted_on, last_on, used, due_on, running, stopped, provisional = values
                timing = clocks.timing_of(
                    (case_id, limit, unit, warning, _date_or_none(accepted_on), _date_or_none(last_on), used,
                     _date_or_none(due_on), bool(running), bool(stopped), bool(provisional)),
                    calendar, today,
                )
            if timing is None:
                unknown[case_id] = key
            else:
                out.append((key, case_id, timing))
        if unknown:
            for case_id, timing in (await clocks.timings_at(list(unknown), calendar, today)).items():
                out.append((unknown[case_id], case_id, timing))
        return out

    async def special_procedures(self) -> list[tuple]:
        """(key, the case's limit unit, began at, ended at or None) of the 特别程序 begun in the period. It ends with
        the case's next change out of SPECIAL_PROCEDURE (its end, or a retraction)."""
        params: list = []
        period = self.period(params)
        return await self.rows(
            f"SELECT {self.key()}, c.limit_unit, e.occurred_at, (SELECT n.occurred_at FROM {self.events} n "
            f"WHERE n.case_id = e.case_id AND n.seq > e.seq AND n.state_after <> 'SPECIAL_PROCEDURE' "
            f"ORDER BY n.seq LIMIT 1) "
            f"FROM {self.events} e JOIN {self.cases} c ON c.id = e.case_id "
            f"WHERE {period} AND e.action = 'BEGIN_SPECIAL_PROCEDURE'{self.where(params)}",
            params,
        )


    async def ratings(self) -> list[tuple]:
        """(key, level, rectified 0/1, ratings) of the period's ratings of the scope, an upheld appeal's excluded. The
        scope's department and item are the rating's own; its stage, process type and region the rated case's (a
        complaint's rating has none: outside a scope that names one). Keys: the rating's department / item, the
        case's stage, the rating's date."""
        params: list = []
        period = self.period(params, "r.created_at")
        scope = self.scope
        conditions = []
        if scope.department_id is not None:
            params.append(scope.department_id)
            conditions.append(f"r.department_id = {self.mark(params)}")
        if scope.item_code is not None:
            params.append(scope.item_code)
            conditions.append(f"r.item_code = {self.mark(params)}")
        by_case = replace(scope, department_id=None, item_code=None)
        if by_case != Scope():
            case_sql = _StatsSql(by_case, self.group_by, self.start, self.end)
            conditions.append(f"c.id IS NOT NULL{case_sql.where(params)}")
        key = {GroupBy.DEPARTMENT: "r.department_id", GroupBy.ITEM: "r.item_code", GroupBy.STAGE: "c.stage"}.get(
            self.group_by) or self.day("r.created_at")
        rectified = "CASE WHEN r.rectified_at IS NULL THEN 0 ELSE 1 END"
        return await self.rows(
            f"SELECT {key}, r.level, {rectified}, COUNT(*) FROM {Rating._meta.db_table} r "
            f"LEFT JOIN {self.cases} c ON c.id = r.case_id "
            f"WHERE {period} AND r.appeal_status <> 'UPHELD'{''.join(' AND ' + x for x in conditions)} "
            f"GROUP BY {key}, r.level, {rectified}",
            params,
        )


def _day(value: Any) -> dt.date:
    """A date from the driver (PostgreSQL: a date; SQLite: "2026-05-03"), or the local date of a moment."""
    if isinstance(value, dt.datetime):
        return value.astimezone(CHINA).date()
    if isinstance(value, dt.date):
        return value
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    return _moment(value).astimezone(CHINA).date()


def _date_or_none(value: Any) -> dt.date | None:
    return None if value is None else _day(value)


def _counting_days_between(unit: LimitUnit, calendar: WorkCalendar, first: dt.date, stop: dt.date) -> int:
    """Counting days from ``first`` up to the day before ``stop``: every day for a natural-day limit, else the working
    days (``WorkCalendar.working_days_between``, O(log n))."""
    if stop <= first:
        return 0
    if unit is LimitUnit.ND:
        return (stop - first).days
    return calendar.working_days_between(first - dt.timedelta(days=1), stop - dt.timedelta(days=1))


async def _item_codes() -> dict[int, str]:
    return {pk: code for pk, code in await ApprovalItem.all().values_list("id", "code")}


async def case_stats(
    viewer: Viewer | None,
    stats_filter: StatsFilter,
    group_by: GroupBy,
    *,
    calendar: WorkCalendar,
    now: dt.datetime,
    max_days: int,
    complaint_reply_days: int,
    complaint_warning_days: int,
) -> CaseStats:
    supervisor_scope(viewer, Scope())  # who may ask at all, before what is asked
    check_period(stats_filter.start, stats_filter.end, max_days)
    scope = await check_scope(viewer, stats_filter.scope)
    stats_filter = replace(stats_filter, scope=scope)
    start, end = day_start(stats_filter.start), day_start(stats_filter.end + dt.timedelta(days=1))
    today = local_date(now)

    names = await _group_names(group_by, ())
    groups: dict[str, Figures] = {}
    total = Figures(key="TOTAL", label="合计")
    if group_by.by_time:
        for key, label in _buckets(group_by, stats_filter.start, stats_filter.end):
            groups[key] = Figures(key=key, label=label)
            groups[key].running_green = groups[key].running_yellow = groups[key].running_red = None

    def group(key: str) -> Figures:
        if key not in groups:
            groups[key] = Figures(key=key, label=names.get(key, key))
        return groups[key]

    sql = _StatsSql(scope, group_by, start, end)
    item_codes = await _item_codes() if group_by is GroupBy.ITEM else {}

    def key_of(raw: Any) -> str:
        """The group of a row's key column: a case's department / item / stage, or the bucket of an event's date."""
        if group_by.by_time:
            return _bucket_of(group_by, _day(raw))
        return item_codes.get(raw, str(raw)) if group_by is GroupBy.ITEM else str(raw)

    # The statements do not depend on each other: on PostgreSQL they run at once on connections of the pool (the
    # server's work is most of a caseStats there); SQLite's one connection takes them in turn.
    counted, decided_rows, special_rows, running_rows = await asyncio.gather(
        sql.event_counts(), sql.decided(), sql.special_procedures(), sql.running(calendar, today),
    )

    # Counts of events: one GROUP BY over the period's events of the scope.
    for raw, action, count, corrected in counted:
        attr = _COUNTED.get(action)
        if attr is None:
            continue
        for figures in (total, group(key_of(raw))):
            setattr(figures, attr, getattr(figures, attr) + count)
            if action == Action.ACCEPT.value:
                figures.corrected += corrected

    # Decided in the period, on time or not, and the means: summed in SQL over the decided cases' final clocks (the
    # read model, api/services/clocks.py); a case whose row cannot tell (none yet, or not stopped) from its events.
    unfolded = 0
    for raw, count, on_time, used, limit, ratio_sum, ratios, provisional, without_clock in decided_rows:
        unfolded += without_clock
        if not count:
            continue
        for figures in (total, group(key_of(raw))):
            figures.decided += count
            figures.decided_on_time += on_time
            figures.decided_overdue += count - on_time
            figures._used_sum += used
            figures._limit_sum += limit
            figures._ratio_sum += float(ratio_sum)
            figures._ratio_count += ratios
            figures.provisional |= bool(provisional)
    if unfolded:
        decided = await _load_cases(Q(id__in=await sql.decided_without_clock()))
        for case in decided.values():
            timing = case_timing(case, case.events, calendar, now)
            if timing.remaining is None:
                continue
            for event in case.events:
                if event.action not in DECISION_ACTIONS or not stats_filter.start <= event.day <= stats_filter.end:
                    continue
                key = _bucket_of(group_by, event.day) if group_by.by_time else _case_key(group_by, case)
                for figures in (total, group(key)):
                    figures.add_decided(timing)

    # 特别程序 begun in the period, with the counting days each paused the clock.
    for raw, unit, begun, ended in special_rows:
        stop = _day(ended) if ended is not None else today + dt.timedelta(days=1)
        days = _counting_days_between(LimitUnit(unit), calendar, _day(begun), stop)
        for figures in (total, group(key_of(raw))):
            figures.special_procedures += 1
            figures.special_procedure_days += days

    # Running now, by light: a snapshot of today (in the total only when grouped by time), from the clocks' rows.
    attrs = {Light.GREEN: "running_green", Light.YELLOW: "running_yellow", Light.RED: "running_red"}
    for raw, _, timing in running_rows:
        if timing.light is None:
            continue
        targets = [total] if group_by.by_time else [total, group(key_of(raw))]
        for figures in targets:
            setattr(figures, attrs[timing.light], getattr(figures, attrs[timing.light]) + 1)
            figures.provisional |= timing.provisional

    await _add_ratings(stats_filter, group_by, groups, total, names, start, end, now)
    await _add_complaint_replies(
        stats_filter, group_by, groups, total, names, start, end, calendar=calendar, now=now,
        limit=complaint_reply_days, warning_days=complaint_warning_days,
    )

    for figures in (total, *groups.values()):
        figures.finish()
    if group_by.by_time:
        ordered = list(groups.values())
    else:
        ordered = sorted((g for g in groups.values() if not g.is_empty()), key=lambda g: _sort_key(group_by, g))
    return CaseStats(filter=stats_filter, group_by=group_by, groups=ordered, total=total)


def _case_key(group_by: GroupBy, case: _Case) -> str:
    if group_by is GroupBy.DEPARTMENT:
        return str(case.department_id)
    if group_by is GroupBy.ITEM:
        return case.item_code
    if group_by is GroupBy.STAGE:
        return str(case.stage)
    return ""


def _sort_key(group_by: GroupBy, figures: Figures) -> Any:
    if group_by in (GroupBy.DEPARTMENT, GroupBy.STAGE):
        return (int(figures.key), "")
    return (0, figures.key)


async def _group_names(group_by: GroupBy, cases: Iterable[_Case]) -> dict[str, str]:
    """Labels of the groups: departments' and items' names, stages' names. Also those of ratings and complaints'
    departments (read on demand in ``_label``)."""
    if group_by is GroupBy.DEPARTMENT:
        return {str(pk): name for pk, name in await Department.all().values_list("id", "name")}
    if group_by is GroupBy.ITEM:
        return {code: name for code, name in await ApprovalItem.all().values_list("code", "name")}
    if group_by is GroupBy.STAGE:
        return {str(s.value): STAGE_NAMES[s] for s in Stage}
    return {}


async def _add_ratings(
    stats_filter: StatsFilter, group_by: GroupBy, groups: dict[str, Figures], total: Figures, names: dict[str, str],
    start: dt.datetime, end: dt.datetime, now: dt.datetime,
) -> None:
    """The period's ratings of the scope, counted in SQL by group, level and whether rectified."""
    sql = _StatsSql(stats_filter.scope, group_by, start, end)
    for key, level, rectified, count in await sql.ratings():
        # ``overdue`` is not a figure of caseStats (ratingStats has it): not computed here.
        total.add_ratings(level, bool(rectified), count)
        if key is None:
            continue  # a complaint's rating has no item nor stage
        key = _bucket_of(group_by, _day(key)) if group_by.by_time else str(key)
        if key not in groups:
            groups[key] = Figures(key=key, label=names.get(key, key))
        groups[key].add_ratings(level, bool(rectified), count)


async def _add_complaint_replies(
    stats_filter: StatsFilter, group_by: GroupBy, groups: dict[str, Figures], total: Figures, names: dict[str, str],
    start: dt.datetime, end: dt.datetime, *, calendar: WorkCalendar, now: dt.datetime, limit: int, warning_days: int,
) -> None:
    scope = stats_filter.scope
    if scope.item_code is not None or scope.stage is not None:
        total.complaint_replies = total.complaint_replies_on_time = None
        for figures in groups.values():
            figures.complaint_replies = figures.complaint_replies_on_time = None
        return
    if group_by in (GroupBy.ITEM, GroupBy.STAGE):
        for figures in groups.values():
            figures.complaint_replies = figures.complaint_replies_on_time = None
    complaints = Complaint.all()
    if scope.department_id is not None:
        complaints = complaints.filter(department_id=scope.department_id)
    if scope.process_type is not None or scope.region is not None:
        complaints = complaints.filter(project_code__in=Subquery(Project.filter(scope.projects()).values("code")))
    replied = Subquery(
        ComplaintEvent.filter(action="REPLY", occurred_at__gte=start, occurred_at__lt=end).values("complaint_id")
    )
    complaints = complaints.filter(id__in=replied)
    rows = await _rows(complaints.values_list("id", "department_id", "created_at"))
    if not rows:
        return
    info = {pk: (department_id, _moment(created_at)) for pk, department_id, created_at in rows}
    events = await _rows(ComplaintEvent.filter(complaint_id__in=Subquery(complaints.values("id"))).order_by(
        "complaint_id", "seq").values_list("complaint_id", "action", "occurred_at"))
    round_started: dict[int, dt.datetime] = {pk: created for pk, (_, created) in info.items()}
    for complaint_id, action, at in events:
        if complaint_id not in info:
            continue  # replied between the two statements
        at = _moment(at)
        if action == "REOPEN":
            round_started[complaint_id] = at
        elif action == "REPLY" and start <= at < end:
            on_time, provisional = reply_clock(round_started[complaint_id], at, limit=limit, calendar=calendar)
            targets = [total]
            if group_by is GroupBy.DEPARTMENT:
                department_id = info[complaint_id][0]
                if department_id is not None:
                    key = str(department_id)
                    if key not in groups:
                        groups[key] = Figures(key=key, label=names.get(key, key))
                    targets.append(groups[key])
            elif group_by.by_time:
                targets.append(groups[_bucket_of(group_by, at.astimezone(CHINA).date())])
            for figures in targets:
                figures.complaint_replies += 1
                figures.complaint_replies_on_time += on_time
                figures.provisional |= provisional


def reply_clock(round_started: dt.datetime, replied_at: dt.datetime, *, limit: int,
                calendar: WorkCalendar) -> tuple[bool, bool]:
    """(on time, provisional) of a complaint's reply: the figures of ``reply_timing`` (api/domain/feedback.py) in
    O(log n). Its round's clock counts every working day after the day it began through the reply's day (the round
    runs until the reply, which is a decision), so ``used`` is one ``working_days_between``; provisional as
    ``compute_timing``: a year without holiday data from the day after it began up to the reply's day, or up to the
    due date when that lies later."""
    began = round_started.astimezone(CHINA).date()
    ended = max(replied_at, round_started).astimezone(CHINA).date()
    used = calendar.working_days_between(began, ended)
    last_day = ended
    if used < limit:
        due = calendar.nth_working_day_after(ended, limit - used)
        last_day = max(ended, due) if due is not None else ended
    provisional = last_day > began and calendar.has_unknown_year((began + dt.timedelta(days=1)).year, last_day.year)
    return used <= limit, provisional


# -- overdue and warning cases ----------------------------------------------------------------------------------------


class DaysOrder(str, Enum):
    MOST_URGENT_FIRST = "MOST_URGENT_FIRST"  # most days over (overdue) / fewest days left (warning) first
    LEAST_URGENT_FIRST = "LEAST_URGENT_FIRST"


@dataclass(frozen=True)
class _Ranked:
    id: int
    remaining: int

    def sort_key(self, order: DaysOrder) -> tuple[int, int]:
        return (self.remaining, self.id) if order is DaysOrder.MOST_URGENT_FIRST else (-self.remaining, self.id)


@dataclass(frozen=True)
class RankedPage(Page):
    keys: dict[int, str] = field(default_factory=dict)

    def cursor(self, item) -> str:
        return self.keys[item.id]


def _cursor(key: tuple[int, int]) -> str:
    return base64.urlsafe_b64encode(f"d:{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def _parse_cursor(cursor: str | None) -> tuple[int, int] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, a, b = raw.split(":")
        if tag != "d" or len(a) > 12 or len(b) > 20:
            raise ValueError
        return int(a), int(b)
    except (ValueError, UnicodeDecodeError):
        raise DomainError("INVALID_INPUT", "分页游标无效", "after") from None


async def light_cases(
    viewer: Viewer | None,
    scope: Scope,
    light: Light,
    *,
    first: int,
    after: str | None,
    order: DaysOrder,
    page_max: int,
    calendar: WorkCalendar,
    now: dt.datetime,
) -> RankedPage:
    """Running cases of the scope whose light is ``light`` now (RED: overdue, YELLOW: warning), sorted by the days
    over (``−remaining``) or left (``remaining``), then by id. The cursor is the (days, id) of the last case."""
    scope = await check_scope(viewer, scope)
    check_first(first, page_max)
    after_key = _parse_cursor(after)
    running = await _StatsSql(scope, GroupBy.DEPARTMENT, now, now).running(calendar, local_date(now))
    ranked = [_Ranked(case_id, timing.remaining) for _, case_id, timing in running
              if timing.light is light and timing.remaining is not None]
    ranked.sort(key=lambda r: r.sort_key(order))
    keys = [r.sort_key(order) for r in ranked]
    begin = 0
    if after_key is not None:
        begin = next((i for i, k in enumerate(keys) if k > after_key), len(keys))
    chosen = ranked[begin: begin + first]
    rows = {c.id: c for c in await Case.filter(id__in=[r.id for r in chosen])}
    items = [rows[r.id] for r in chosen if r.id in rows]
    return RankedPage(
        items=items, has_next_page=begin + first < len(ranked), total_count=len(ranked), has_previous_page=begin > 0,
        keys={r.id: _cursor(r.sort_key(order)) for r in chosen},
    )


# -- 全流程审批用时 of a project ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Duration:
    """Working days from the first acceptance to the last decision, special procedures excluded."""

    days: int | None  # None before the first acceptance
    started_on: dt.date | None
    finished: bool  # every case is closed (then ``days`` is final)
    provisional: bool


@dataclass(frozen=True)
class ProjectDuration:
    project_id: int
    total: Duration
    stages: list[tuple[int, Duration]]


def duration_of(cases: Sequence[_Case], calendar: WorkCalendar, now: dt.datetime) -> Duration:
    """The clock of a set of cases run as one (DOMAIN.md §14 全流程审批用时): it starts at the first acceptance and
    ends at the last closing of a case (a decision, or a retraction, …) once every case is closed; a day counts when
    some case is running at its end, when no case is open at all (between two stages: the time still runs), or is the
    last decision's day; a day on which every open case is in a special procedure does not."""
    merged = sorted(((e.occurred_at, i, e.state_after) for i, c in enumerate(cases) for e in c.events),
                    key=lambda x: x[0])
    # The moment the last case closed, when all are closed now (a later 撤销 of an approval changes nothing).
    states: dict[int, CaseState] = {}
    closed_at: dt.datetime | None = None
    for at, index, state in merged:
        if state in TERMINAL_STATES and states.get(index) not in TERMINAL_STATES:
            closed_at = at
        states[index] = state
    all_closed = bool(cases) and len(states) == len(cases) and all(s in TERMINAL_STATES for s in states.values())
    states = {}
    changes: list[StateChange] = []
    for at, index, state in merged:
        if closed_at is not None and all_closed and at > closed_at:
            break
        states[index] = state
        if not changes:
            if state is CaseState.ACCEPTED:
                changes.append(StateChange(at, CaseState.ACCEPTED))
            continue
        current = list(states.values())
        if all_closed and at == closed_at and all(s in TERMINAL_STATES for s in current):
            decided = any(s in DECISION_STATES or s is CaseState.REVOKED for s in current)
            changes.append(StateChange(at, CaseState.APPROVED if decided else CaseState.RETRACTED))
            break
        running = any(s in RUNNING_STATES for s in current)
        paused = any(s is CaseState.SPECIAL_PROCEDURE for s in current)
        changes.append(StateChange(at, CaseState.SPECIAL_PROCEDURE if paused and not running else CaseState.IN_PROGRESS))
    timing = compute_timing(changes, limit=0, unit=LimitUnit.WD, warning_days=0, calendar=calendar, now=now)
    return Duration(days=timing.used, started_on=timing.started_on, finished=timing.stopped,
                    provisional=timing.provisional)


async def project_duration(project: Project, calendar: WorkCalendar, now: dt.datetime) -> ProjectDuration:
    cases = list((await _load_cases(Q(project_id=project.id))).values())
    stages = sorted({c.stage for c in cases})
    return ProjectDuration(
        project_id=project.id,
        total=duration_of(cases, calendar, now),
        stages=[(s, duration_of([c for c in cases if c.stage == s], calendar, now)) for s in stages],
    )


# -- exports -------------------------------------------------------------------------------------------------------------


def filter_rows(stats: CaseStats, names: dict[str, str]) -> list[tuple[str, str]]:
    """The header rows of an export: what was counted, in Chinese."""
    scope = stats.filter.scope
    return [
        ("统计期间", f"{stats.filter.start.isoformat()} 至 {stats.filter.end.isoformat()}"),
        ("部门", names.get("department", "全部")),
        ("事项", scope.item_code or "全部"),
        ("审批阶段", STAGE_NAMES[Stage(scope.stage)] if scope.stage else "全部"),
        ("审批流程类型", PROCESS_TYPE_NAMES[ProcessType(scope.process_type)] if scope.process_type else "全部"),
        ("行政区划", scope.region_code or "全部"),
        ("分组", GROUP_LABELS[stats.group_by]),
    ]


def table(stats: CaseStats) -> tuple[list[str], list[list[Any]]]:
    """Headings and rows (the groups, then the total) of an export."""
    headings = [GROUP_LABELS[stats.group_by], *(label for _, label in COLUMNS)]
    rows = [[g.label, *(getattr(g, attr) for attr, _ in COLUMNS)] for g in (*stats.groups, stats.total)]
    return headings, rows

