"""The working-day calendar: the State Council's holiday schedule as data the operator can extend (DOMAIN.md §5).

Each year's schedule (国务院办公厅关于XXXX年部分节假日安排的通知) is one JSON file, ``api/data/calendar/<year>.json``::

    {"year": 2026,
     "source": "国务院办公厅关于2026年部分节假日安排的通知",
     "holidays": [{"date": "2026-10-01", "name": "国庆节"}, ...],
     "workdays": [{"date": "2026-10-10", "name": "国庆节调休"}, ...]}

``holidays`` are the official days off (weekdays and the weekend days inside a holiday period alike); ``workdays``
are the make-up working weekend days (调休上班). When next year's notice is published, the operator drops its file in
the folder. For a year without a file the calendar falls back to Monday–Friday; timing marks such figures as provisional.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable

CALENDAR_DIR = Path(__file__).resolve().parent.parent / "data" / "calendar"

_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_TOP_LEVEL_KEYS = {"year", "source", "holidays", "workdays"}
_ENTRY_KEYS = {"date", "name"}
_LIST_LABELS = {"holidays": "放假日期（holidays）", "workdays": "调休上班日期（workdays）"}


class CalendarDataError(ValueError):
    """A calendar file that cannot be trusted. ``problems`` lists every problem found, in Chinese."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("节假日数据有误：" + "；".join(self.problems))


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule: days off and make-up working days, each with its name."""

    year: int
    source: str
    holidays: dict[date, str] = field(default_factory=dict)
    workdays: dict[date, str] = field(default_factory=dict)


def parse_year_file(data: Any) -> YearSchedule:
    """Validate the content of one year's file and return its schedule.

    Strict on purpose: a wrong calendar silently shifts every due date, so every problem is reported (all at once, so
    the operator can fix the file in one pass) and nothing is guessed. Raises ``CalendarDataError``.
    """
    if not isinstance(data, dict):
        raise CalendarDataError("文件内容须为 JSON 对象")
    problems: list[str] = []

    unknown = sorted(str(k) for k in data if k not in _TOP_LEVEL_KEYS)
    if unknown:
        problems.append(f"不认识的字段：{', '.join(unknown)}（只允许 year、source、holidays、workdays）")
    missing = [k for k in ("year", "source", "holidays", "workdays") if k not in data]
    if missing:
        problems.append(f"缺少字段：{', '.join(missing)}")

    year = data.get("year")
    if "year" in data and (isinstance(year, bool) or not isinstance(year, int) or not 1 <= year <= 9999):
        problems.append(f"year 须为年份整数，而不是 {year!r}")
        year = None
    source = data.get("source")
    if "source" in data and (not isinstance(source, str) or not source.strip()):
        problems.append("source 须为发布通知的标题（非空字符串）")

    parsed: dict[str, dict[date, str]] = {"holidays": {}, "workdays": {}}
    for key in ("holidays", "workdays"):
        if key not in data:
            continue
        label = _LIST_LABELS[key]
        entries = data[key]
        if not isinstance(entries, list):
            problems.append(f"{label}须为列表")
            continue
        for i, entry in enumerate(entries, start=1):
            where = f"{label}第{i}项"
            if not isinstance(entry, dict):
                problems.append(f"{where}须为形如 {{\"date\": \"YYYY-MM-DD\", \"name\": \"…\"}} 的对象")
                continue
            extra = sorted(str(k) for k in entry if k not in _ENTRY_KEYS)
            if extra:
                problems.append(f"{where}有不认识的字段：{', '.join(extra)}")
            name = entry.get("name")
            if not isinstance(name, str) or not name.strip():
                problems.append(f"{where}缺少名称（name）")
            day = _parse_date(entry.get("date"))
            if day is None:
                problems.append(f"{where}的日期 {entry.get('date')!r} 格式不正确（应为 YYYY-MM-DD 的有效日期）")
                continue
            if year is not None and day.year != year:
                problems.append(f"{where}的日期 {day.isoformat()} 不在 {year} 年内")
            if day in parsed[key]:
                problems.append(f"{label}中 {day.isoformat()} 重复出现")
                continue
            if key == "workdays" and day.weekday() < 5:
                # Only a Saturday or Sunday can be a make-up working day; Monday–Friday already is one.
                problems.append(f"调休上班日 {day.isoformat()} 不是星期六或星期日")
            parsed[key][day] = name if isinstance(name, str) else ""

    for day in sorted(parsed["holidays"].keys() & parsed["workdays"].keys()):
        problems.append(f"{day.isoformat()} 同时出现在放假日期和调休上班日期中")

    if problems:
        raise CalendarDataError(problems)
    assert isinstance(year, int) and isinstance(source, str)
    return YearSchedule(
        year=year,
        source=source,
        holidays=dict(sorted(parsed["holidays"].items())),
        workdays=dict(sorted(parsed["workdays"].items())),
    )


def _parse_date(value: Any) -> date | None:
    # date.fromisoformat alone also accepts "20261001" and week dates; only the plain YYYY-MM-DD form is allowed.
    if not isinstance(value, str) or not _ISO_DATE_RE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


class WorkCalendar:
    """Answers "is this a working day?" for any date, never raising (DOMAIN.md §5).

    In a year with a schedule: a make-up working day (调休上班) works, an official holiday does not, otherwise
    Monday–Friday works. In a year without one: Monday–Friday (callers mark the result provisional).
    """

    def __init__(self, schedules: Iterable[YearSchedule] = ()) -> None:
        self._schedules: dict[int, YearSchedule] = {}
        for schedule in schedules:
            if schedule.year in self._schedules:
                raise CalendarDataError(f"{schedule.year} 年的节假日安排重复加载")
            self._schedules[schedule.year] = schedule
        # Prefix sums for counting working days between two dates in O(log n) (the case clocks' read model,
        # api/services/clocks.py): a date where the schedule departs from Monday–Friday (a holiday on a weekday: -1, a
        # make-up working weekend day: +1), ascending, with the running total of those departures up to each.
        departures = sorted(
            (day.toordinal(), int(self.is_working_day(day)) - int(day.weekday() < 5))
            for schedule in self._schedules.values()
            for day in {*schedule.holidays, *schedule.workdays}
        )
        departures = [(ordinal, delta) for ordinal, delta in departures if delta]
        self._departure_ordinals = [ordinal for ordinal, _ in departures]
        self._departure_totals: list[int] = []
        total = 0
        for _, delta in departures:
            total += delta
            self._departure_totals.append(total)
        self._known_years = sorted(self._schedules)

    @property
    def years(self) -> list[int]:
        """The years with a loaded schedule, ascending."""
        return sorted(self._schedules)

    def is_known_year(self, year: int) -> bool:
        return year in self._schedules

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day. Pass a local (Asia/Shanghai) date; a datetime is reduced to its date."""
        if isinstance(day, datetime):
            day = day.date()
        schedule = self._schedules.get(day.year)
        if schedule is not None:
            if day in schedule.workdays:
                return True
            if day in schedule.holidays:
                return False
        return day.weekday() < 5

    def working_days_between(self, after: date, through: date) -> int:
        """How many working days lie in ``(after, through]`` (0 when ``through <= after``), in O(log n): the same count
        as asking ``is_working_day`` of each day."""
        first, last = after.toordinal(), through.toordinal()
        if last <= first:
            return 0
        return _weekdays_through(last) - _weekdays_through(first) + self._departures_through(last) - self._departures_through(first)

    def nth_working_day_after(self, after: date, n: int) -> date | None:
        """The ``n``-th working day after ``after`` (``n`` ≥ 1); ``None`` past the last representable date."""
        if n < 1:
            raise ValueError("n must be >= 1")
        start, ceiling = after.toordinal(), date.max.toordinal()
        high = min(ceiling, start + 2 * n + 64)
        while self.working_days_between(after, date.fromordinal(high)) < n:
            if high == ceiling:
                return None
            high = min(ceiling, start + 2 * (high - start))
        low = start + 1  # the answer is the first ordinal in [low, high] through which n working days have passed
        while low < high:
            middle = (low + high) // 2
            if self.working_days_between(after, date.fromordinal(middle)) >= n:
                high = middle
            else:
                low = middle + 1
        return date.fromordinal(low)

    def has_unknown_year(self, first: int, last: int) -> bool:
        """Whether some year of ``first..last`` has no schedule (``False`` for an empty range)."""
        if last < first:
            return False
        return bisect_right(self._known_years, last) - bisect_left(self._known_years, first) < last - first + 1

    def _departures_through(self, ordinal: int) -> int:
        index = bisect_right(self._departure_ordinals, ordinal)
        return self._departure_totals[index - 1] if index else 0

    def holiday_name(self, day: date) -> str | None:
        """The name of the official holiday on ``day`` (e.g. ``国庆节``), or ``None``."""
        if isinstance(day, datetime):
            day = day.date()
        schedule = self._schedules.get(day.year)
        return schedule.holidays.get(day) if schedule is not None else None

    def __repr__(self) -> str:
        return f"WorkCalendar(years={self.years})"


def _weekdays_through(ordinal: int) -> int:
    """How many Mondays–Fridays have an ordinal in ``1..ordinal`` (ordinal 1, 0001-01-01, is a Monday)."""
    return (ordinal // 7) * 5 + min(ordinal % 7, 5)


def load_calendar_dir(directory: Path) -> WorkCalendar:
    """Load every ``*.json`` year file of ``directory``; each file must be named after its year (``2026.json``)."""
    schedules = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            schedule = parse_year_file(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise CalendarDataError(f"{path.name}：不是有效的 JSON（第{exc.lineno}行第{exc.colno}列）") from exc
        except CalendarDataError as exc:
            raise CalendarDataError([f"{path.name}：{p}" for p in exc.problems]) from exc
        if path.stem != str(schedule.year):
            raise CalendarDataError(f"{path.name}：文件名应为 {schedule.year}.json")
        schedules.append(schedule)
    return WorkCalendar(schedules)


def load_bundled_calendar() -> WorkCalendar:
    """The schedules shipped with the service (``api/data/calendar/``)."""
    return load_calendar_dir(CALENDAR_DIR)
