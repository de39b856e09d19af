"""The working-day calendar as operator-extensible data (DOMAIN.md §5)."""

import json
from datetime import date, datetime, timedelta

import pytest

from api.domain.calendar import (
    CALENDAR_DIR,
    CalendarDataError,
    WorkCalendar,
    YearSchedule,
    load_bundled_calendar,
    load_calendar_dir,
    parse_year_file,
)


def year_file(**overrides):
    data = {
        "year": 2026,
        "source": "国务院办公厅关于2026年部分节假日安排的通知",
        "holidays": [{"date": "2026-10-01", "name": "国庆节"}, {"date": "2026-10-02", "name": "国庆节"}],
        "workdays": [{"date": "2026-10-10", "name": "国庆节调休"}],
    }
    data.update(overrides)
    return data


def problems_of(data):
    with pytest.raises(CalendarDataError) as info:
        parse_year_file(data)
    return info.value.problems


def test_parse_valid_file():
    schedule = parse_year_file(year_file())
    assert schedule == YearSchedule(
        year=2026,
        source="国务院办公厅关于2026年部分节假日安排的通知",
        holidays={date(2026, 10, 1): "国庆节", date(2026, 10, 2): "国庆节"},
        workdays={date(2026, 10, 10): "国庆节调休"},
    )


def test_date_outside_year_rejected():
    problems = problems_of(year_file(holidays=[{"date": "2027-01-01", "name": "元旦"}]))
    assert problems == ["放假日期（holidays）第1项的日期 2027-01-01 不在 2026 年内"]


def test_date_in_both_lists_rejected():
    problems = problems_of(
        year_file(
            holidays=[{"date": "2026-10-10", "name": "国庆节"}],
            workdays=[{"date": "2026-10-10", "name": "国庆节调休"}],
        )
    )
    assert problems == ["2026-10-10 同时出现在放假日期和调休上班日期中"]


def test_weekday_workday_rejected():
    problems = problems_of(year_file(workdays=[{"date": "2026-10-09", "name": "国庆节调休"}]))  # a Friday
    assert problems == ["调休上班日 2026-10-09 不是星期六或星期日"]


def test_duplicate_holiday_rejected():
    problems = problems_of(
        year_file(holidays=[{"date": "2026-10-01", "name": "国庆节"}, {"date": "2026-10-01", "name": "国庆节"}])
    )
    assert problems == ["放假日期（holidays）中 2026-10-01 重复出现"]


@pytest.mark.parametrize("bad", ["2026-02-30", "2026/10/01", "20261001", "2026-W40-4", "2026-10-1", "", None, 20261001])
def test_malformed_date_rejected(bad):
    problems = problems_of(year_file(holidays=[{"date": bad, "name": "国庆节"}]))
    assert len(problems) == 1 and "格式不正确" in problems[0]


def test_all_problems_reported_at_once_in_chinese():
    with pytest.raises(CalendarDataError) as info:
        parse_year_file(
            {
                "year": "2026",
                "source": "",
                "holiday": [],
                "workdays": [{"date": "2026-10-09"}, "x"],
            }
        )
    error = info.value
    assert str(error).startswith("节假日数据有误：")
    assert len(error.problems) == 7  # unknown key, missing holidays, year, source, missing name, weekday, not an object
    assert isinstance(error, ValueError)


def test_not_an_object_rejected():
    assert problems_of([]) == ["文件内容须为 JSON 对象"]


def test_work_calendar_rules():
    calendar = WorkCalendar([parse_year_file(year_file())])
    assert calendar.years == [2026]
    assert calendar.is_known_year(2026) and not calendar.is_known_year(2027)
    assert not calendar.is_working_day(date(2026, 10, 1))  # holiday on a Thursday
    assert calendar.is_working_day(date(2026, 10, 10))  # make-up Saturday
    assert not calendar.is_working_day(date(2026, 10, 11))  # ordinary Sunday
    assert calendar.is_working_day(date(2026, 10, 12))  # ordinary Monday
    assert calendar.holiday_name(date(2026, 10, 1)) == "国庆节"
    assert calendar.holiday_name(date(2026, 10, 12)) is None


def test_unknown_year_is_monday_to_friday_and_never_raises():
    calendar = WorkCalendar([])
    assert calendar.is_working_day(date(2027, 10, 1))  # a Friday: real holiday, but no data yet
    assert not calendar.is_working_day(date(2027, 10, 2))
    for day in (date.min, date.max, date(1900, 1, 1), date(2100, 2, 28)):
        calendar.is_working_day(day)
        calendar.holiday_name(day)
    assert calendar.is_working_day(datetime(2026, 10, 12, 9, 0))


def test_duplicate_year_rejected():
    schedule = parse_year_file(year_file())
    with pytest.raises(CalendarDataError):
        WorkCalendar([schedule, schedule])


def test_bundled_calendar():
    calendar = load_bundled_calendar()
    assert {2024, 2025, 2026} <= set(calendar.years)
    # 2026 (国务院办公厅关于2026年部分节假日安排的通知): 国庆节 10-01..10-07, make-up days Sun 09-20 and Sat 10-10.
    assert not calendar.is_working_day(date(2026, 10, 1))
    assert not calendar.is_working_day(date(2026, 10, 7))
    assert calendar.is_working_day(date(2026, 10, 8))  # Thursday after the holiday: a working day in 2026
    assert calendar.is_working_day(date(2026, 10, 10))
    assert calendar.is_working_day(date(2026, 9, 20))
    assert not calendar.is_working_day(date(2026, 9, 27))  # 中秋节 (Sunday), not a make-up day
    assert calendar.holiday_name(date(2026, 9, 25)) == "中秋节"
    # 2025: 国庆节 and 中秋节 together 10-01..10-08; 2024: Sunday 02-18 is a make-up day.
    assert not calendar.is_working_day(date(2025, 10, 8))
    assert calendar.is_working_day(date(2025, 10, 11))
    assert calendar.is_working_day(date(2024, 2, 18))


def test_bundled_files_match_chinese_calendar():
    """The bundled data was generated from chinese-calendar; keep it in step with it where both know the year."""
    chinese_calendar = pytest.importorskip("chinese_calendar")
    calendar = load_bundled_calendar()
    for year in calendar.years:
        day = date(year, 1, 1)
        while day.year == year:
            assert calendar.is_working_day(day) == chinese_calendar.is_workday(day), day
            day += timedelta(days=1)


def test_bundled_files_are_well_formed():
    for path in sorted(CALENDAR_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["source"] == f"国务院办公厅关于{data['year']}年部分节假日安排的通知"
        names = {entry["name"] for entry in data["holidays"]}
        assert names <= {"元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节"}
        assert all(entry["name"].endswith("调休") for entry in data["workdays"])


def test_operator_adds_a_year(tmp_path):
    (tmp_path / "2027.json").write_text(
        json.dumps(
            {
                "year": 2027,
                "source": "国务院办公厅关于2027年部分节假日安排的通知",
                "holidays": [{"date": "2027-01-01", "name": "元旦"}],
                "workdays": [],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    calendar = load_calendar_dir(tmp_path)
    assert calendar.years == [2027]
    assert not calendar.is_working_day(date(2027, 1, 1))


def test_load_errors_name_the_file(tmp_path):
    (tmp_path / "2027.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CalendarDataError, match="2027.json"):
        load_calendar_dir(tmp_path)

    (tmp_path / "2027.json").write_text(json.dumps(year_file()), encoding="utf-8")
    with pytest.raises(CalendarDataError, match="文件名应为 2026.json"):
        load_calendar_dir(tmp_path)

    (tmp_path / "2027.json").write_text(json.dumps(year_file(workdays=[{"date": "2026-10-09", "name": "x"}])), "utf-8")
    with pytest.raises(CalendarDataError, match=r"2027.json：调休上班日 2026-10-09"):
        load_calendar_dir(tmp_path)


def _count(calendar, after, through):
    return sum(calendar.is_working_day(after + timedelta(days=n)) for n in range(1, (through - after).days + 1))


def test_working_days_between_and_the_nth_working_day_agree_with_asking_each_day():
    """The O(log n) counts of the clocks' read model (api/services/clocks.py) are the day-by-day counts."""
    import random

    calendar = load_bundled_calendar()
    rng = random.Random(13)
    starts = [date(2023, 12, 25) + timedelta(days=rng.randrange(0, 1200)) for _ in range(150)]
    starts += [date(2024, 2, 9), date(2025, 9, 30), date(2026, 10, 1), date(2026, 12, 31), date(1, 1, 1)]
    for after in starts:
        for span in (0, 1, 2, 6, 7, 8, rng.randrange(9, 400)):
            through = after + timedelta(days=span)
            assert calendar.working_days_between(after, through) == _count(calendar, after, through), (after, span)
            assert calendar.working_days_between(through, after) == 0
        for n in (1, 2, 5, 10, rng.randrange(11, 250)):
            day = calendar.nth_working_day_after(after, n)
            assert day > after and calendar.is_working_day(day) and _count(calendar, after, day) == n, (after, n)
    # Past the last date: None, as the day-by-day projection says (api/domain/timing.py).
    assert calendar.nth_working_day_after(date.max - timedelta(days=10), 100) is None
    last_friday = calendar.nth_working_day_after(date.max - timedelta(days=10), 1)
    assert last_friday is not None and _count(calendar, date.max - timedelta(days=10), last_friday) == 1
    with pytest.raises(ValueError):
        calendar.nth_working_day_after(date(2026, 1, 1), 0)


def test_has_unknown_year():
    calendar = load_bundled_calendar()
    assert not calendar.has_unknown_year(2024, 2026)
    assert calendar.has_unknown_year(2026, 2027) and calendar.has_unknown_year(2023, 2024)
    assert not calendar.has_unknown_year(2027, 2026)  # an empty range
