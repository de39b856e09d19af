"""全流程审批用时 by process type (issue #14 §2): how long the projects of each 审批流程类型 took from their first
acceptance to their last decision — the reform's headline figure ("全流程审批时间压减至 X 个工作日"), for the
dashboard. Each project's clock is ``duration_of`` of api/services/supervision.py (the clock of ``projectDuration``).

- Finished: the projects whose last case closed in the period (every case closed; the day the last one closed lies in
  the period), with the mean, shortest and longest total days.
- Running: the projects started (a first acceptance) and not finished today, with the mean of their days so far —
  a snapshot of today, like the lights.
The projects counted are those with a case in the scope (an approver: those its department handles) that had an
event in the period or is open now; each project's duration is over all its cases.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from tortoise.expressions import Q, Subquery

from api.domain.calendar import WorkCalendar
from api.domain.catalog import PROCESS_TYPE_NAMES, ProcessType
from api.domain.lifecycle import OPEN_CLOCK_STATES
from api.domain.timing import TERMINAL_STATES, CaseState, local_date
from api.models import Case, CaseEvent
from api.services import supervision
from api.services.access import Viewer


@dataclass(frozen=True)
class _Event:
    occurred_at: dt.datetime
    state_after: CaseState


@dataclass
class _Case:
    events: list[_Event] = field(default_factory=list)


@dataclass
class ProcessTypeDurations:
    process_type: int
    name: str
    finished: int = 0
    average_days: float | None = None
    shortest_days: int | None = None
    longest_days: int | None = None
    running: int = 0
    running_average_days: float | None = None


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def closed_on(cases: list[_Case]) -> dt.date | None:
    """The day the last case closed, when every case is closed (its first terminal state)."""
    last = None
    for case in cases:
        first = next((e.occurred_at for e in case.events if e.state_after in TERMINAL_STATES), None)
        if first is None:
            return None
        last = first if last is None or first > last else last
    return local_date(last) if last is not None else None


async def durations_by_process_type(
    viewer: Viewer | None,
    stats_filter: supervision.StatsFilter,
    *,
    calendar: WorkCalendar,
    now: dt.datetime,
    max_days: int,
) -> list[ProcessTypeDurations]:
    supervision.supervisor_scope(viewer, supervision.Scope())
    supervision.check_period(stats_filter.start, stats_filter.end, max_days)
    scope = await supervision.check_scope(viewer, stats_filter.scope)
    start = supervision.day_start(stats_filter.start)
    end = supervision.day_start(stats_filter.end + dt.timedelta(days=1))
    in_period = Subquery(CaseEvent.filter(occurred_at__gte=start, occurred_at__lt=end).values("case_id"))
    projects = Subquery(
        Case.filter(scope.cases() & (Q(id__in=in_period) | Q(state__in=list(OPEN_CLOCK_STATES)))).values("project_id")
    )
    rows = await Case.filter(project_id__in=projects).values_list("id", "project_id", "project__process_type")
    cases: dict[int, _Case] = {}
    by_project: dict[int, tuple[int, list[_Case]]] = {}
    for case_id, project_id, process_type in rows:
        cases[case_id] = _Case()
        by_project.setdefault(project_id, (process_type, []))[1].append(cases[case_id])
    events = await CaseEvent.filter(case__project_id__in=projects).order_by("case_id", "seq").values_list(
        "case_id", "state_after", "occurred_at"
    )
    for case_id, state, at in events:
        if case_id in cases:
            cases[case_id].events.append(_Event(at, CaseState(state)))

    finished: dict[int, list[int]] = {}
    running: dict[int, list[int]] = {}
    for process_type, project_cases in by_project.values():
        duration = supervision.duration_of(project_cases, calendar, now)
        if duration.days is None:
            continue
        if duration.finished:
            day = closed_on(project_cases)
            if day is not None and stats_filter.start <= day <= stats_filter.end:
                finished.setdefault(process_type, []).append(duration.days)
        else:
            running.setdefault(process_type, []).append(duration.days)
    out = []
    for kind in ProcessType:
        done, going = finished.get(kind.value, []), running.get(kind.value, [])
        if not done and not going:
            continue
        out.append(ProcessTypeDurations(
            process_type=kind.value, name=PROCESS_TYPE_NAMES[kind], finished=len(done), average_days=_mean(done),
            shortest_days=min(done) if done else None, longest_days=max(done) if done else None,
            running=len(going), running_average_days=_mean(going),
        ))
    return out
