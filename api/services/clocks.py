"""The read model of every case's clock (table ``case_clock``, model ``api.models.CaseClock``), issue #13.

A case's clock (``api.domain.timing.compute_timing``) is a function of its events, its limit, the calendar and today.
The row holds the part that does not depend on today — the clock as of the date of the case's latest event
(``last_on``) — so the clock at any later date needs at most one working-day count between two dates
(``WorkCalendar.working_days_between``, O(log n)) and no events: no job at midnight, nothing to roll.

- Never accepted: nothing counts (only ``stopped`` matters).
- Stopped (decided, retracted, …): every figure is final.
- Open: ``used`` was counted through ``last_on``; while ``running`` every counting day after it adds one. The due date
  is fixed once reached or while running (the projection from ``last_on`` is where the count will reach the limit);
  a paused clock (补正, 特别程序) projects it from today.
- A date before ``last_on`` (a past date asked of an open case, or an event pushed a few seconds into tomorrow) is
  computed from the events, exactly as before. So is a case without a row (a database whose rows have not been filled).

Interface — what other modules use (keep it small):

``await refresh(case_ids)``
    Recompute the rows of these cases from their events, in the caller's transaction. Every writer of ``CaseEvent``
    rows calls it after writing them: ``api.services.cases._apply``, ``api.services.applications``,
    ``api.services.ingest_receive``, ``api.scale.generate`` (and through the services, the demo loader).
``await rebuild_all()``
    Every row from the events, in the caller's transaction (a calendar load, ``python -m api clocks rebuild``,
    ``python -m api migrate``). On PostgreSQL it locks the table against writers of rows until it commits (a writer
    that read the calendar before the change would otherwise fold new events with the old calendar).
``await timings_at(case_ids, calendar, today) -> dict[int, Timing]``
    The ``Timing`` of each case at the date ``today``: one SELECT of rows (plus, only for the cases above, their events).
``COLUMNS`` and ``timing_of(row, calendar, today) -> Timing | None``
    For a caller that selects rows itself (with its own filters, e.g. statistics over all cases):
    ``CaseClock.filter(...).values_list(*COLUMNS)`` then ``timing_of`` on each; ``None`` means "compute this one from
    its events" (``timings_at`` does that for you).

``calendar`` is the ``WorkCalendar`` the rows were computed with: a request's ``Context.calendar()`` (read at its
database generation) or ``current_calendar()`` inside a transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Sequence

from tortoise.backends.base.client import TransactionalDBClient
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from api import remembered
from api.domain.calendar import WorkCalendar
from api.domain.timing import (
    SHANGHAI,
    CaseState,
    LimitUnit,
    StateChange,
    Timing,
    compute_timing,
    light_for,
    local_date,
)
from api.models import CalendarYear, Case, CaseClock, CaseEvent

COLUMNS = (
    "case_id", "limit_days", "limit_unit", "warning_days", "accepted_on", "last_on", "used", "due_on", "running",
    "stopped", "provisional",
)
_VALUES = COLUMNS[1:]
BATCH = 2000

_calendar_cache: tuple[list[tuple], WorkCalendar] | None = None


# -- reading ------------------------------------------------------------------------------------------------------


def timing_of(row: Sequence[Any], calendar: WorkCalendar, today: dt.date) -> Timing | None:
    """The clock of the row's case at ``today`` (a row of ``COLUMNS``); ``None`` when only its events can tell."""
    _, limit, unit, warning_days, accepted_on, last_on, used, due_on, running, stopped, provisional = row
    unit = LimitUnit(unit)
    if accepted_on is None:
        return Timing(limit, unit, None, None, None, None, None, False, False, stopped)
    if stopped:
        return Timing(limit, unit, accepted_on, used, limit - used, due_on, light_for(limit - used, warning_days),
                      provisional, False, True)
    if today < last_on:
        return None
    wd = unit is LimitUnit.WD
    due = due_on
    if used < limit and not running:  # paused: projected from today, as if nothing paused it from tomorrow on
        due = calendar.nth_working_day_after(today, limit - used) if wd else _plus_days(today, limit - used)
    if running and today > last_on:
        used += calendar.working_days_between(last_on, today) if wd else (today - last_on).days
    remaining = limit - used
    last_day = max(today, due or accepted_on)
    provisional = wd and last_day > accepted_on and calendar.has_unknown_year(
        (accepted_on + dt.timedelta(days=1)).year, last_day.year)
    return Timing(limit, unit, accepted_on, used, remaining, due, light_for(remaining, warning_days), provisional,
                  running, False)


def _plus_days(day: dt.date, n: int) -> dt.date | None:
    try:
        return day + dt.timedelta(days=n)
    except OverflowError:
        return None


async def timings_at(case_ids: Iterable[int], calendar: WorkCalendar, today: dt.date) -> dict[int, Timing]:
    """The clock of each case at ``today``, from its row; computed from the events where the row cannot tell."""
    ids = list(dict.fromkeys(case_ids))
    if not ids:
        return {}
    out: dict[int, Timing] = {}
    rows = await remembered.select(
        CaseClock, ("case_clock", tuple(ids)), lambda: CaseClock.filter(case_id__in=ids).values_list(*COLUMNS)
    )
    for row in rows:
        timing = timing_of(row, calendar, today)
        if timing is not None:
            out[row[0]] = timing
    missing = [i for i in ids if i not in out]
    if missing:
        now = dt.datetime.combine(today, dt.time(), tzinfo=SHANGHAI)
        for case_id, (changes, limit, unit, warning_days) in (await _histories(missing)).items():
            out[case_id] = compute_timing(changes, limit=limit, unit=unit, warning_days=warning_days,
                                          calendar=calendar, now=now)
    return out


# -- writing ------------------------------------------------------------------------------------------------------


def fold(changes: Sequence[StateChange], *, limit: int, unit: LimitUnit, warning_days: int,
         calendar: WorkCalendar) -> dict[str, Any]:
    """The row of a case with these state changes (in sequence order): its clock as of its latest event's date."""
    last_on = max((local_date(c.at) for c in changes), default=None)
    moment = dt.datetime.combine(last_on or dt.date(2000, 1, 1), dt.time(), tzinfo=SHANGHAI)
    t = compute_timing(changes, limit=limit, unit=unit, warning_days=warning_days, calendar=calendar, now=moment)
    return {"limit_days": limit, "limit_unit": unit, "warning_days": warning_days, "accepted_on": t.started_on,
            "last_on": last_on, "used": t.used, "due_on": t.due_date, "running": t.running, "stopped": t.stopped,
            "provisional": t.provisional}


async def current_calendar() -> WorkCalendar:
    """The calendar as the current transaction sees it (not the per-process cache: rows must match the data)."""
    global _calendar_cache
    from api.domain.calendar import parse_year_file

    rows = await CalendarYear.all().order_by("year").values_list("year", "source", "holidays", "workdays")
    if _calendar_cache is not None and _calendar_cache[0] == rows:
        return _calendar_cache[1]
    calendar = WorkCalendar(
        parse_year_file({"year": y, "source": s, "holidays": h, "workdays": w}) for y, s, h, w in rows
    )
    _calendar_cache = (rows, calendar)
    return calendar


async def _histories(case_ids: Sequence[int]) -> dict[int, tuple[list[StateChange], int, LimitUnit, int]]:
    """Each case's state changes and limit: two statements."""
    cases = await Case.filter(id__in=list(case_ids)).values_list("id", "limit_days", "limit_unit", "warning_days")
    changes: dict[int, list[StateChange]] = {case_id: [] for case_id, *_ in cases}
    for case_id, at, state in await CaseEvent.filter(case_id__in=list(case_ids)).order_by("case_id", "seq").values_list(
        "case_id", "occurred_at", "state_after"
    ):
        changes[case_id].append(StateChange(at, CaseState(state)))
    return {case_id: (changes[case_id], limit, LimitUnit(unit), warning) for case_id, limit, unit, warning in cases}


async def refresh(case_ids: Iterable[int], *, calendar: WorkCalendar | None = None) -> int:
    """Recompute the rows of these cases from their events (call it in the transaction that wrote the events; called
    outside one, it makes its own). Returns how many rows were written."""
    ids = sorted(set(case_ids))
    if not ids:
        return 0
    if not isinstance(connections.get("default"), TransactionalDBClient):
        async with in_transaction():
            return await refresh(ids, calendar=calendar)
    # Before the calendar is read: a calendar change that commits meanwhile must either see these events or be seen.
    await _lock_table("ROW EXCLUSIVE")
    written = 0
    for start in range(0, len(ids), BATCH):
        histories = await _histories(ids[start:start + BATCH])
        if calendar is None and any(
            c.state is CaseState.ACCEPTED for changes, *_ in histories.values() for c in changes
        ):
            calendar = await current_calendar()
        rows = [
            CaseClock(case_id=case_id, **fold(changes, limit=limit, unit=unit, warning_days=warning,
                                              calendar=calendar or _NO_CALENDAR))
            for case_id, (changes, limit, unit, warning) in histories.items()
        ]
        if rows:
            await CaseClock.bulk_create(rows, batch_size=500, on_conflict=["case_id"], update_fields=list(_VALUES))
        written += len(rows)
    return written


_NO_CALENDAR = WorkCalendar()  # never consulted: a case never accepted has no working days to count


async def rebuild_all() -> int:
    """Every case's row from its events, with the calendar of the current transaction; returns the number of rows.
    Call it inside a transaction (a calendar change must be in the same one)."""
    # An event written meanwhile would be folded with the calendar its writer read: wait for every writer of rows
    # (``refresh`` takes ROW EXCLUSIVE before it reads the calendar) and hold the next ones off until this commits.
    await _lock_table("SHARE ROW EXCLUSIVE")
    calendar = await current_calendar()
    ids = await Case.all().order_by("id").values_list("id", flat=True)
    written = await refresh(ids, calendar=calendar)
    return written


async def _lock_table(mode: str) -> None:
    """PostgreSQL: lock ``case_clock`` in ``mode`` until the transaction ends. (SQLite needs nothing: a transaction
    takes the database's write lock at BEGIN, api/sqlite_backend.py, so writers never overlap.)"""
    connection = connections.get("default")  # inside ``in_transaction()``: the transaction's own connection
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query(f'LOCK TABLE "case_clock" IN {mode} MODE')


async def fill_missing() -> int:
    """Rows for the cases that have none (a database from before the read model); returns how many were written."""
    have = set(await CaseClock.all().values_list("case_id", flat=True))
    missing = [i for i in await Case.all().values_list("id", flat=True) if i not in have]
    return await refresh(missing) if missing else 0
