"""The case clock on fixed dates, across holidays and make-up working days (DOMAIN.md §5).

2026 around National Day (国务院办公厅关于2026年部分节假日安排的通知): 中秋节 Fri 09-25 .. Sun 09-27 and 国庆节
Thu 10-01 .. Wed 10-07 are days off; Sunday 09-20 and Saturday 10-10 are make-up working days; Thu 10-08 works.
"""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from api.domain.calendar import WorkCalendar, load_bundled_calendar
from api.domain.timing import (
    BLZT_CODES,
    STATE_BY_BLZT,
    CaseState,
    Light,
    LimitUnit,
    StateChange,
    Timing,
    compute_timing,
    worst,
)

SH = ZoneInfo("Asia/Shanghai")
CALENDAR = load_bundled_calendar()
S = CaseState


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    """A moment in Shanghai on ``day`` (YYYY-MM-DD)."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), SH).replace(hour=hour, minute=minute)


def change(day: str, state: CaseState, hour: int = 10, minute: int = 0) -> StateChange:
    return StateChange(at(day, hour, minute), state)


def timing(changes, now, *, limit=5, unit=LimitUnit.WD, warning_days=2, calendar=CALENDAR) -> Timing:
    if isinstance(now, str):
        now = at(now, 12)
    return compute_timing(changes, limit=limit, unit=unit, warning_days=warning_days, calendar=calendar, now=now)


# --- A 5-working-day case accepted on Friday 2026-09-25, around National Day --------------------------------------

NATIONAL_DAY_CASE = [change("2026-09-24", S.RECEIVED), change("2026-09-25", S.ACCEPTED, 9)]

# day → (used, remaining, light) for a case that keeps running; due date 10-09 throughout.
NATIONAL_DAY_TABLE = {
    "2026-09-25": (0, 5, Light.GREEN),  # acceptance day: not counted (次日起算); also 中秋节
    "2026-09-26": (0, 5, Light.GREEN),  # 中秋节 (Sat)
    "2026-09-27": (0, 5, Light.GREEN),  # 中秋节 (Sun): not a make-up day in 2026
    "2026-09-28": (1, 4, Light.GREEN),
    "2026-09-29": (2, 3, Light.GREEN),
    "2026-09-30": (3, 2, Light.YELLOW),
    "2026-10-01": (3, 2, Light.YELLOW),  # 国庆节 10-01..10-07
    "2026-10-04": (3, 2, Light.YELLOW),
    "2026-10-07": (3, 2, Light.YELLOW),
    "2026-10-08": (4, 1, Light.YELLOW),  # Thursday: working
    "2026-10-09": (5, 0, Light.YELLOW),  # due date: remaining 0
    "2026-10-10": (6, -1, Light.RED),  # make-up Saturday counts: the day after the due date is -1
    "2026-10-11": (6, -1, Light.RED),  # ordinary Sunday
    "2026-10-12": (7, -2, Light.RED),
}


@pytest.mark.parametrize(("today", "expected"), NATIONAL_DAY_TABLE.items())
def test_national_day_case_each_day(today, expected):
    t = timing(NATIONAL_DAY_CASE, today)
    assert (t.used, t.remaining, t.light) == expected
    assert t.due_date == date(2026, 10, 9)
    assert t.started_on == date(2026, 9, 25)
    assert t.running and not t.stopped and not t.provisional
    assert (t.limit, t.unit) == (5, LimitUnit.WD)


def test_state_in_progress_also_runs():
    changes = NATIONAL_DAY_CASE + [change("2026-09-28", S.IN_PROGRESS)]
    t = timing(changes, "2026-10-08")
    assert (t.used, t.remaining, t.due_date, t.running) == (4, 1, date(2026, 10, 9), True)


def test_acceptance_day_not_counted_even_on_a_working_day():
    changes = [change("2026-11-02", S.ACCEPTED)]  # Monday
    t = timing(changes, at("2026-11-02", 23, 59))
    assert (t.used, t.remaining, t.due_date) == (0, 5, date(2026, 11, 9))
    t = timing(changes, "2026-11-03")
    assert (t.used, t.remaining) == (1, 4)


def test_decided_on_due_date_keeps_yellow():
    changes = NATIONAL_DAY_CASE + [change("2026-09-28", S.IN_PROGRESS), change("2026-10-09", S.APPROVED, 16)]
    for today in ("2026-10-09", "2026-10-10", "2026-12-31"):
        t = timing(changes, today)
        assert (t.used, t.remaining, t.due_date, t.light) == (5, 0, date(2026, 10, 9), Light.YELLOW)
        assert t.stopped and not t.running


def test_decided_a_day_late_keeps_red():
    changes = NATIONAL_DAY_CASE + [change("2026-10-10", S.DISAPPROVED, 16)]
    for today in ("2026-10-10", "2026-10-20", "2027-03-01"):
        t = timing(changes, today)
        assert (t.used, t.remaining, t.due_date, t.light) == (6, -1, date(2026, 10, 9), Light.RED)
        assert t.stopped and not t.running
        assert not t.provisional  # nothing after the decision is examined


def test_decided_early_keeps_green_and_decision_day_counts():
    # Decided on 09-29: the decision day counts (2 days used), and the light stays GREEN for good.
    changes = NATIONAL_DAY_CASE + [change("2026-09-29", S.APPROVED_DEFICIENT, 11)]
    t = timing(changes, "2026-12-01")
    assert (t.used, t.remaining, t.light, t.stopped) == (2, 3, Light.GREEN, True)


def test_decision_on_a_day_off_does_not_count():
    changes = NATIONAL_DAY_CASE + [change("2026-10-03", S.APPROVED)]  # 国庆节
    t = timing(changes, "2026-10-20")
    assert (t.used, t.remaining, t.light) == (3, 2, Light.YELLOW)


# --- Special procedures (特别程序) stop the clock [济宁 §17] ---------------------------------------------------------
# Accepted Monday 2026-11-02, 5 WD: without a pause due Monday 11-09.

NOVEMBER_CASE = [change("2026-11-02", S.ACCEPTED), change("2026-11-03", S.IN_PROGRESS)]


def test_without_special_procedure():
    t = timing(NOVEMBER_CASE, "2026-11-03")
    assert (t.used, t.due_date) == (1, date(2026, 11, 9))


def test_special_procedure_of_three_days_moves_the_due_date():
    changes = NOVEMBER_CASE + [
        change("2026-11-04", S.SPECIAL_PROCEDURE, 9),  # Wed, Thu, Fri end in special procedure: not counted
        change("2026-11-09", S.IN_PROGRESS, 9),  # Monday: back, counts
    ]
    # During the procedure: the clock is stopped and the projection assumes it resumes tomorrow.
    t = timing(changes[:3], "2026-11-05")
    assert (t.used, t.remaining, t.running, t.stopped) == (1, 4, False, False)
    assert t.due_date == date(2026, 11, 11)  # 11-06, 11-09, 11-10, 11-11 "if nothing pauses it"
    assert t.light is Light.GREEN

    t = timing(changes, "2026-11-09")
    assert (t.used, t.remaining, t.running) == (2, 3, True)
    assert t.due_date == date(2026, 11, 12)  # 11-09 + 3 working days
    t = timing(changes, "2026-11-12")
    assert (t.used, t.remaining, t.due_date, t.light) == (5, 0, date(2026, 11, 12), Light.YELLOW)
    t = timing(changes, "2026-11-13")
    assert (t.used, t.remaining, t.light) == (6, -1, Light.RED)


def test_special_procedure_started_and_ended_the_same_day_counts_that_day():
    changes = NOVEMBER_CASE + [
        change("2026-11-04", S.SPECIAL_PROCEDURE, 9),
        change("2026-11-04", S.IN_PROGRESS, 17),
    ]
    t = timing(changes, "2026-11-04")
    assert (t.used, t.due_date) == (2, date(2026, 11, 9))
    t = timing(changes, "2026-11-09")
    assert (t.used, t.remaining, t.due_date) == (5, 0, date(2026, 11, 9))


def test_special_procedure_ending_at_the_decision_day_counts_the_decision():
    changes = NOVEMBER_CASE + [change("2026-11-04", S.SPECIAL_PROCEDURE), change("2026-11-10", S.APPROVED, 15)]
    t = timing(changes, "2026-11-20")
    assert (t.used, t.remaining, t.stopped) == (2, 3, True)  # 11-03 and the decision day 11-10


def test_correction_before_acceptance_does_not_count():
    changes = [
        change("2026-10-19", S.RECEIVED),
        change("2026-10-19", S.CORRECTION, 15),
        change("2026-10-30", S.CORRECTED),
        change("2026-11-02", S.ACCEPTED),
    ]
    t = timing(changes, "2026-11-02")
    assert (t.started_on, t.used, t.remaining, t.due_date) == (date(2026, 11, 2), 0, 5, date(2026, 11, 9))
    t = timing(changes, "2026-11-09")
    assert (t.used, t.remaining) == (5, 0)


def test_retracted_ends_the_clock_and_that_day_does_not_count():
    changes = NOVEMBER_CASE + [change("2026-11-05", S.RETRACTED)]
    t = timing(changes, "2026-12-01")
    assert (t.used, t.remaining, t.light, t.stopped, t.running) == (2, 3, Light.GREEN, True, False)


def test_revoked_after_approval_keeps_the_decision_figures():
    changes = NOVEMBER_CASE + [change("2026-11-05", S.APPROVED), change("2026-12-01", S.REVOKED)]
    t = timing(changes, "2026-12-02")
    assert (t.used, t.remaining, t.stopped) == (3, 2, True)


# --- Natural days ---------------------------------------------------------------------------------------------------


def test_natural_days_count_weekends_and_holidays():
    t = timing(NATIONAL_DAY_CASE, "2026-09-27", unit=LimitUnit.ND)
    assert (t.used, t.remaining, t.due_date) == (2, 3, date(2026, 9, 30))
    t = timing(NATIONAL_DAY_CASE, "2026-10-01", unit=LimitUnit.ND)
    assert (t.used, t.remaining, t.light) == (6, -1, Light.RED)


def test_natural_days_never_provisional():
    t = timing([change("2027-10-01", S.ACCEPTED)], "2027-10-03", unit=LimitUnit.ND)
    assert (t.used, t.due_date, t.provisional) == (2, date(2027, 10, 6), False)


# --- Years without holiday data --------------------------------------------------------------------------------------


def test_case_in_a_year_without_data_counts_monday_to_friday_and_is_provisional():
    changes = [change("2027-09-30", S.ACCEPTED)]  # Thursday; 2027 has no data loaded
    t = timing(changes, "2027-10-04")
    # Fri 10-01 (a real holiday, unknown yet) counts; the weekend does not; Mon 10-04 counts.
    assert (t.used, t.remaining, t.due_date, t.provisional) == (2, 3, date(2027, 10, 7), True)
    assert CALENDAR.is_known_year(2026) and not CALENDAR.is_known_year(2027)


def test_due_date_projected_into_an_unknown_year_is_provisional():
    changes = [change("2026-12-28", S.ACCEPTED)]  # Monday
    t = timing(changes, "2026-12-29")
    # 12-29 (1), 12-30, 12-31, Fri 2027-01-01 (assumed working), Mon 01-04 (5).
    assert (t.used, t.due_date, t.provisional) == (1, date(2027, 1, 4), True)
    t = timing(changes, "2026-12-29", limit=2)
    assert (t.due_date, t.provisional) == (date(2026, 12, 30), False)


def test_empty_calendar_never_raises():
    t = timing(NATIONAL_DAY_CASE, "2026-10-09", calendar=WorkCalendar())
    # Mon–Fri only: 09-28, 09-29, 09-30, 10-01, 10-02 → due 10-02.
    assert (t.used, t.due_date, t.provisional) == (10, date(2026, 10, 2), True)


# --- Asia/Shanghai dates --------------------------------------------------------------------------------------------


def test_acceptance_just_after_midnight_in_shanghai():
    # 2026-09-24T17:30Z is 2026-09-25 01:30 in Shanghai.
    changes = [StateChange(datetime(2026, 9, 24, 17, 30, tzinfo=timezone.utc), S.ACCEPTED)]
    t = timing(changes, datetime(2026, 9, 28, 3, 0, tzinfo=timezone.utc))
    assert t.started_on == date(2026, 9, 25)
    assert (t.used, t.due_date) == (1, date(2026, 10, 9))


def test_utc_dates_would_be_wrong():
    # Accepted Tuesday 11-03 01:30 Shanghai (Monday 11-02 in UTC): Tuesday is day 0, not day 1.
    changes = [StateChange(datetime(2026, 11, 2, 17, 30, tzinfo=timezone.utc), S.ACCEPTED)]
    t = timing(changes, datetime(2026, 11, 3, 15, 59, tzinfo=timezone.utc))  # 23:59 Tuesday in Shanghai
    assert (t.started_on, t.used) == (date(2026, 11, 3), 0)
    t = timing(changes, datetime(2026, 11, 3, 16, 30, tzinfo=timezone.utc))  # 00:30 Wednesday in Shanghai
    assert t.used == 1


def test_decision_just_after_midnight_in_shanghai():
    # Decided 2026-10-09T16:30Z = Saturday 10-10 00:30 in Shanghai: a day late.
    changes = NATIONAL_DAY_CASE + [StateChange(datetime(2026, 10, 9, 16, 30, tzinfo=timezone.utc), S.APPROVED)]
    t = timing(changes, "2026-10-20")
    assert (t.used, t.remaining, t.light) == (6, -1, Light.RED)


def test_naive_datetimes_refused():
    with pytest.raises(ValueError):
        StateChange(datetime(2026, 9, 25, 10), S.ACCEPTED)
    with pytest.raises(ValueError):
        compute_timing([], limit=5, unit=LimitUnit.WD, warning_days=2, calendar=CALENDAR, now=datetime(2026, 9, 25))


# --- Not started, limits and edges ----------------------------------------------------------------------------------


def test_not_started():
    t = timing([change("2026-09-24", S.RECEIVED), change("2026-09-24", S.CORRECTION)], "2026-10-20")
    assert t == Timing(
        limit=5, unit=LimitUnit.WD, started_on=None, used=None, remaining=None, due_date=None, light=None,
        provisional=False, running=False, stopped=False,
    )
    t = timing([change("2026-09-24", S.RECEIVED), change("2026-09-25", S.WITHDRAWN)], "2026-10-20")
    assert (t.used, t.light, t.stopped) == (None, None, True)
    t = timing([], "2026-10-20")
    assert (t.started_on, t.stopped, t.running) == (None, False, False)


def test_clock_starts_at_the_first_acceptance():
    changes = NOVEMBER_CASE + [change("2026-11-05", S.ACCEPTED)]
    t = timing(changes, "2026-11-05")
    assert (t.started_on, t.used) == (date(2026, 11, 2), 3)


def test_limit_zero_is_due_on_the_acceptance_date():
    t = timing(NOVEMBER_CASE, "2026-11-02", limit=0)
    assert (t.used, t.remaining, t.due_date, t.light) == (0, 0, date(2026, 11, 2), Light.YELLOW)
    t = timing(NOVEMBER_CASE, "2026-11-03", limit=0)
    assert (t.used, t.remaining, t.light) == (1, -1, Light.RED)


def test_warning_days_configurable():
    t = timing(NATIONAL_DAY_CASE, "2026-09-28", warning_days=5)
    assert (t.remaining, t.light) == (4, Light.YELLOW)
    t = timing(NATIONAL_DAY_CASE, "2026-10-09", warning_days=0)
    assert (t.remaining, t.light) == (0, Light.YELLOW)
    t = timing(NATIONAL_DAY_CASE, "2026-10-08", warning_days=0)
    assert (t.remaining, t.light) == (1, Light.GREEN)


def test_now_before_acceptance_does_not_crash():
    t = timing(NOVEMBER_CASE, "2026-10-01")
    assert (t.used, t.remaining, t.due_date) == (0, 5, date(2026, 11, 9))


def test_years_old_case_and_long_limit():
    changes = [change("2019-03-01", S.ACCEPTED), change("2019-03-04", S.IN_PROGRESS)]
    t = timing(changes, "2026-11-02", limit=365)
    assert t.remaining < 0 and t.light is Light.RED and t.provisional  # 2019 has no bundled data
    assert t.due_date.year == 2020
    t = timing([change("2026-01-05", S.ACCEPTED)], "2026-01-05", limit=365)
    assert t.used == 0 and t.due_date.year == 2027 and t.provisional


def test_extreme_dates_never_raise():
    first = StateChange(datetime(1, 1, 2, tzinfo=timezone.utc), S.ACCEPTED)
    timing([first], datetime(1, 2, 1, tzinfo=timezone.utc), limit=365)
    last = StateChange(datetime(9999, 12, 30, tzinfo=timezone.utc), S.ACCEPTED)
    t = timing([last], datetime(9999, 12, 31, 23, tzinfo=timezone.utc), limit=365)
    assert t.due_date is None and t.used == 1


def test_invalid_configuration_refused():
    with pytest.raises(ValueError):
        timing(NOVEMBER_CASE, "2026-11-03", limit=-1)
    with pytest.raises(ValueError):
        timing(NOVEMBER_CASE, "2026-11-03", warning_days=-1)


# --- States and lights ----------------------------------------------------------------------------------------------


def test_worst_light():
    assert worst([Light.GREEN, Light.RED, Light.YELLOW]) is Light.RED
    assert worst([Light.GREEN, None, Light.YELLOW]) is Light.YELLOW
    assert worst([Light.GREEN]) is Light.GREEN
    assert worst([]) is None and worst([None]) is None


def test_blzt_codes():
    assert BLZT_CODES[S.ACCEPTED] == 3 and S.SPECIAL_PROCEDURE.blzt == 9 and S.REVOKED.blzt == 15
    assert STATE_BY_BLZT[10] is S.IN_PROGRESS  # 特别程序(结束) returns the case to IN_PROGRESS
    assert sorted(STATE_BY_BLZT) == list(range(1, 16))
    assert all(state.value == state.name for state in CaseState)
    assert S.ACCEPTED.label == "已受理"


def test_day_loop_is_linear():
    # A case running for seven years with many changes: computed quickly (a single pass over the days).
    start = date(2019, 1, 2)
    changes = [StateChange(at(start.isoformat()), S.ACCEPTED)]
    for i in range(1, 1000):
        day = (start + timedelta(days=2 * i)).isoformat()
        changes.append(change(day, S.SPECIAL_PROCEDURE if i % 2 else S.IN_PROGRESS))
    t = timing(changes, "2026-11-02", limit=365)
    assert t.used is not None and t.used > 0
