"""The read side of approval progress: projects and cases as each role may see them, with their clocks and lights.

Lights depend on today: they are computed at the date from each case's clock row (api/services/clocks.py, the fold of
its events that does not depend on today, DOMAIN.md §4–5); the lists that filter on a light compute it for the
candidates in the viewer's scope.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, Iterable, Sequence, TypeVar

from tortoise.expressions import Q

from api.domain.calendar import WorkCalendar
from api.db import key_max
from api.domain.errors import DomainError
from api.domain.ids import BIGINT_MAX, key_of, to_global_id
from api.domain.lifecycle import OPEN_CLOCK_STATES
from api.domain.timing import CaseState, Light, StateChange, Timing, compute_timing, local_date, worst
from api.models import Case, CaseEvent, Project
from api import remembered
from api.remembered import scoped_key
from api.services import clocks
from api.services.access import Viewer, case_scope, project_scope, require_viewer

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    total_count: int
    has_previous_page: bool = False  # items come before the ``after`` cursor

    def cursor(self, item) -> str:
        return encode_cursor(item.id)


def encode_cursor(pk: int) -> str:
    return to_global_id("o", pk)


def decode_cursor(cursor: str | None, max_key: int = BIGINT_MAX) -> int | None:
    """The key a cursor points after; one that is malformed or beyond the table's key range is the client's mistake."""
    if cursor is None:
        return None
    key = key_of(cursor, "o", max_key)
    if key is None:
        raise DomainError("INVALID_INPUT", "分页游标无效", "after")
    return key


def check_first(first: int, page_max: int) -> int:
    if first < 1 or first > page_max:
        raise DomainError("INVALID_INPUT", f"每页条数应为1至{page_max}", "first")
    return first


def case_timing(case: Case, events: Sequence[CaseEvent], calendar: WorkCalendar, now: dt.datetime) -> Timing:
    changes = [StateChange(e.occurred_at, CaseState(e.state_after)) for e in events]
    return compute_timing(
        changes,
        limit=case.limit_days,
        unit=case.limit_unit,
        warning_days=case.warning_days,
        calendar=calendar,
        now=now,
    )


async def events_by_case(case_ids: Iterable[int]) -> dict[int, list[CaseEvent]]:
    grouped: dict[int, list[CaseEvent]] = {}
    for event in await CaseEvent.filter(case_id__in=list(case_ids)).order_by("case_id", "seq"):
        grouped.setdefault(event.case_id, []).append(event)
    return grouped


async def get_project(viewer: Viewer | None, code: str) -> Project | None:
    scope = project_scope(viewer)
    return await remembered.select(
        Project, scoped_key("project", scope, code), lambda: Project.filter(scope, code=code).first()
    )


async def list_projects(
    viewer: Viewer | None,
    *,
    first: int,
    after: str | None,
    light: Light | None,
    stage: int | None,
    search: str | None,
    calendar: WorkCalendar,
    now: dt.datetime,
) -> Page[Project]:
    require_viewer(viewer)
    query = Project.filter(project_scope(viewer))
    if search and search.strip():
        term = search.strip()[:100]
        query = query.filter(Q(name__icontains=term) | Q(code__icontains=term) | Q(address__icontains=term))
    if light is not None or stage is not None:
        ids = await query.values_list("id", flat=True)
        cases = await Case.filter(case_scope(viewer), project_id__in=ids).values_list(
            "id", "project_id", "stage", "state"
        )
        keep = set(ids)
        if stage is not None:
            current: dict[int, int] = {}
            for _, project_id, case_stage, _ in cases:
                current[project_id] = max(current.get(project_id, 0), case_stage)
            keep &= {pid for pid, s in current.items() if s == stage}
        if light is not None:
            running = [(c, p) for c, p, _, state in cases if state in OPEN_CLOCK_STATES and p in keep]
            timings = await clocks.timings_at([c for c, _ in running], calendar, local_date(now))
            by_project: dict[int, list[Light | None]] = {}
            for case_id, project_id in running:
                by_project.setdefault(project_id, []).append(timings[case_id].light)
            keep &= {pid for pid, lights in by_project.items() if worst(lights) is light}
        query = Project.filter(id__in=sorted(keep))
    return await page_of(query, first, after, newest_first=True)


async def case_queue(
    viewer: Viewer | None,
    *,
    first: int,
    after: str | None,
    states: Sequence[CaseState] | None,
    light: Light | None,
    calendar: WorkCalendar,
    now: dt.datetime,
) -> Page[Case]:
    viewer = require_viewer(viewer)
    if not viewer.role.is_staff:
        raise DomainError("PERMISSION_DENIED", "办件队列仅供工作人员使用", None)
    query = Case.filter(case_scope(viewer))
    if states:
        query = query.filter(state__in=list(states))
    if light is not None:
        candidates = await query.filter(state__in=list(OPEN_CLOCK_STATES)).values_list("id", flat=True)
        timings = await clocks.timings_at(candidates, calendar, local_date(now))
        query = Case.filter(id__in=[cid for cid, t in timings.items() if t.light is light])
    return await page_of(query, first, after, newest_first=False)


async def page_of(query, first: int, after: str | None, *, newest_first: bool) -> Page:
    total = await query.count()
    cursor = decode_cursor(after, key_max(query.model))
    earlier = False
    if cursor is not None:
        # One more statement, only when paging on: is anything of the list before the cursor (Relay's PageInfo)?
        earlier = await (query.filter(id__gte=cursor) if newest_first else query.filter(id__lte=cursor)).exists()
        query = query.filter(id__lt=cursor) if newest_first else query.filter(id__gt=cursor)
    rows = await query.order_by("-id" if newest_first else "id").limit(first + 1)
    return Page(items=list(rows[:first]), has_next_page=len(rows) > first, total_count=total, has_previous_page=earlier)
