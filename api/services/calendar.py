"""The working-day calendar as the service uses it: stored in the database, cached briefly in each process.

The operator loads a year's schedule with ``python -m api calendar load FILE.json`` when the State Council publishes it;
``python -m api migrate`` seeds the years shipped in ``api/data/calendar/`` that the database does not have yet (it never
overwrites a year the operator loaded). Either way every case's clock row (api/services/clocks.py) is recomputed in the
same transaction as the calendar's change.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Iterable

from tortoise.transactions import in_transaction

from api.domain.calendar import CALENDAR_DIR, CalendarDataError, WorkCalendar, YearSchedule, parse_year_file
from api.models import CalendarYear
from api.services import clocks

_cache: tuple[float, object, WorkCalendar] | None = None  # (read at, database generation, calendar)


def _to_row_lists(schedule: YearSchedule) -> tuple[list[dict], list[dict]]:
    def rows(entries: dict[dt.date, str]) -> list[dict]:
        return [{"date": d.isoformat(), "name": name} for d, name in sorted(entries.items())]

    return rows(schedule.holidays), rows(schedule.workdays)


async def get_calendar(max_age: float = 60.0, *, version: object = None) -> WorkCalendar:
    """The calendar, re-read from the database at most every ``max_age`` seconds (other instances may load a year).

    With ``version`` (a request's database generation, api/changes.py) the kept calendar is used exactly while the
    generation is the one it was read at, whatever its age: a year loaded by any process is seen by the next request,
    and an answer computed at a generation never mixes in an older calendar (the response cache relies on it).
    """
    global _cache
    now = time.monotonic()
    if _cache is not None:
        read_at, read_version, calendar = _cache
        if version is not None:
            if read_version == version:
                return calendar
        elif now - read_at < max_age:
            return calendar
    rows = await CalendarYear.all()
    schedules = [
        parse_year_file({"year": r.year, "source": r.source, "holidays": r.holidays, "workdays": r.workdays})
        for r in rows
    ]
    calendar = WorkCalendar(schedules)
    _cache = (now, version, calendar)
    return calendar


def invalidate_calendar_cache() -> None:
    global _cache
    _cache = None


async def store_year(schedule: YearSchedule, *, replace: bool = True) -> bool:
    """Write one year's schedule; returns whether anything was written."""
    return bool(await store_years([schedule], replace=replace))


async def store_years(schedules: Iterable[YearSchedule], *, replace: bool = True) -> list[int]:
    """Write these years' schedules and, in the same transaction, recompute every case's clock row from its events
    (api/services/clocks.py: the rows hold working-day counts); returns the years written."""
    written: list[int] = []
    async with in_transaction():
        for schedule in schedules:
            if await _store_year(schedule, replace=replace):
                written.append(schedule.year)
        if written:
            await clocks.rebuild_all()
    if written:
        invalidate_calendar_cache()
    return written


async def _store_year(schedule: YearSchedule, *, replace: bool) -> bool:
    holidays, workdays = _to_row_lists(schedule)
    existing = await CalendarYear.get_or_none(year=schedule.year)
    if existing is not None and not replace:
        return False
    if existing is None:
        await CalendarYear.create(year=schedule.year, source=schedule.source, holidays=holidays, workdays=workdays)
    else:
        existing.source, existing.holidays, existing.workdays = schedule.source, holidays, workdays
        await existing.save()
    return True


def read_year_file(path: Path) -> YearSchedule:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CalendarDataError(f"{path}：无法读取（{exc}）") from exc
    return parse_year_file(data)


async def seed_bundled_years() -> list[int]:
    """Store the shipped years the database lacks; returns the years added."""
    return await store_years([read_year_file(path) for path in sorted(CALENDAR_DIR.glob("*.json"))], replace=False)
