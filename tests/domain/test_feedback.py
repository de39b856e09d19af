"""Complaints and ratings: the pure rules, on fixed dates around National Day 2026 (DOMAIN.md §8–9)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from api.domain.calendar import load_bundled_calendar
from api.domain.errors import DomainError
from api.domain.feedback import (
    ComplaintAction as A,
    ComplaintParty as P,
    ComplaintState as S,
    RatingFacts,
    auto_closed,
    check_complaint_text,
    check_images,
    check_rating,
    follow_up_overdue,
    plan_complaint_action,
    rating_stats,
    reply_timing,
    working_days_after,
)
from api.domain.timing import Light

SH = ZoneInfo("Asia/Shanghai")
CAL = load_bundled_calendar()


def at(y, m, d, h=10):
    return dt.datetime(y, m, d, h, tzinfo=SH)


@pytest.mark.parametrize(
    "state, action, party, target",
    [
        (S.SUBMITTED, A.ASSIGN, P.DISPATCHER, S.ASSIGNED),
        (S.ASSIGNED, A.ASSIGN, P.DISPATCHER, S.ASSIGNED),  # re-assign to another department
        (S.ASSIGNED, A.REPLY, P.HANDLER, S.REPLIED),
        (S.REPLIED, A.CLOSE, P.FILER, S.CLOSED),
        (S.REPLIED, A.REOPEN, P.FILER, S.REOPENED),
        (S.REOPENED, A.REPLY, P.HANDLER, S.REPLIED),
        (S.REOPENED, A.ASSIGN, P.DISPATCHER, S.ASSIGNED),
        (S.REPLIED, A.AUTO_CLOSE, P.SYSTEM, S.CLOSED),
    ],
)
def test_legal_transitions(state, action, party, target):
    assert plan_complaint_action(state, action, party) is target


@pytest.mark.parametrize(
    "state, action, party",
    [
        (S.SUBMITTED, A.REPLY, P.HANDLER),  # not assigned yet
        (S.CLOSED, A.REOPEN, P.FILER),
        (S.CLOSED, A.ASSIGN, P.DISPATCHER),
        (S.ASSIGNED, A.CLOSE, P.FILER),  # nothing to be satisfied with yet
        (S.REPLIED, A.REPLY, P.HANDLER),
    ],
)
def test_illegal_transitions_name_the_current_state(state, action, party):
    with pytest.raises(DomainError) as err:
        plan_complaint_action(state, action, party)
    assert err.value.code == "INVALID_TRANSITION"
    assert state.label in err.value.message


@pytest.mark.parametrize(
    "action, party",
    [(A.REPLY, P.FILER), (A.ASSIGN, P.HANDLER), (A.CLOSE, P.HANDLER), (A.REOPEN, P.DISPATCHER)],
)
def test_wrong_party_is_refused(action, party):
    state = {A.REPLY: S.ASSIGNED, A.ASSIGN: S.SUBMITTED, A.CLOSE: S.REPLIED, A.REOPEN: S.REPLIED}[action]
    with pytest.raises(DomainError) as err:
        plan_complaint_action(state, action, party)
    assert err.value.code == "PERMISSION_DENIED"


def test_auto_close_after_seven_natural_days():
    replied = at(2026, 9, 30)
    assert not auto_closed(S.REPLIED, replied, at(2026, 10, 7, 9), 7)
    assert auto_closed(S.REPLIED, replied, at(2026, 10, 7, 10), 7)
    assert not auto_closed(S.REOPENED, replied, at(2026, 11, 30), 7)


def test_reply_deadline_across_national_day():
    # Filed on 09-30: day 1 is 10-08 (10-01..07 holiday), Saturday 10-10 works: the 10th working day is 10-20.
    timing = reply_timing(at(2026, 9, 30), None, limit=10, warning_days=2, calendar=CAL, now=at(2026, 10, 9))
    assert (timing.used, timing.remaining, timing.due_date, timing.light) == (2, 8, dt.date(2026, 10, 20), Light.GREEN)
    timing = reply_timing(at(2026, 9, 30), None, limit=10, warning_days=2, calendar=CAL, now=at(2026, 10, 16))
    assert (timing.used, timing.remaining, timing.light) == (8, 2, Light.YELLOW)
    timing = reply_timing(at(2026, 9, 30), None, limit=10, warning_days=2, calendar=CAL, now=at(2026, 10, 21))
    assert (timing.remaining, timing.light) == (-1, Light.RED)


def test_a_reply_stops_the_clock_and_keeps_its_light():
    timing = reply_timing(
        at(2026, 9, 30), at(2026, 10, 13), limit=10, warning_days=2, calendar=CAL, now=at(2026, 12, 1)
    )
    assert (timing.used, timing.remaining, timing.light, timing.running) == (5, 5, Light.GREEN, False)


def test_reply_deadline_into_an_unknown_year_is_provisional():
    timing = reply_timing(at(2026, 12, 28), None, limit=10, warning_days=2, calendar=CAL, now=at(2026, 12, 29))
    assert timing.provisional and timing.due_date.year == 2027


def test_follow_up_deadlines_in_working_days():
    rated = at(2026, 9, 30, 16)
    assert working_days_after(rated, 1, CAL) == (dt.date(2026, 10, 8), False)  # 回访: within 1 working day
    assert working_days_after(rated, 5, CAL) == (dt.date(2026, 10, 13), False)  # 整改: 5 working days, Sat 10-10 works
    due, provisional = working_days_after(at(2026, 12, 31), 1, CAL)
    assert (due, provisional) == (dt.date(2027, 1, 1), True)  # 2027 unknown: Monday–Friday, marked provisional


def test_follow_up_overdue_at_the_end_of_the_due_day():
    due = dt.date(2026, 10, 8)
    assert not follow_up_overdue(due=due, done_at=None, now=at(2026, 10, 8, 23))
    assert follow_up_overdue(due=due, done_at=None, now=at(2026, 10, 9, 0))
    assert not follow_up_overdue(due=due, done_at=at(2026, 10, 8, 17), now=at(2026, 10, 20))
    assert follow_up_overdue(due=due, done_at=at(2026, 10, 9, 9), now=at(2026, 10, 20))


def rate(**overrides):
    values = dict(level=5, reasons=[], comment="", rater_is_served=True, decided_at=at(2026, 10, 9),
                  now=at(2026, 10, 12), window_days=30)
    values.update(overrides)
    return check_rating(**values)


def test_rating_rules():
    assert rate()[0] == 5
    level, reasons, comment = rate(level=2, reasons=["SLOW", "SLOW", "BAD_ATTITUDE"], comment=" 太慢 ")
    assert (level, [r.value for r in reasons], comment) == (2, ["SLOW", "BAD_ATTITUDE"], "太慢")
    assert rate(level=4, reasons=["SLOW"])[1] == []  # reasons belong to a 差评 only


@pytest.mark.parametrize(
    "overrides, code",
    [
        ({"rater_is_served": False}, "PERMISSION_DENIED"),
        ({"decided_at": None}, "NOT_RATABLE_YET"),
        ({"now": at(2026, 11, 9, 11)}, "RATING_WINDOW_CLOSED"),
        ({"level": 0}, "INVALID_INPUT"),
        ({"level": 6}, "INVALID_INPUT"),
        ({"level": 1, "reasons": []}, "REASON_REQUIRED"),
        ({"level": 1, "reasons": ["NOPE"]}, "INVALID_INPUT"),
        ({"comment": "字" * 2001}, "INVALID_INPUT"),
    ],
)
def test_rating_refusals(overrides, code):
    with pytest.raises(DomainError) as err:
        rate(**overrides)
    assert err.value.code == code


def test_stats_exclude_upheld_appeals():
    facts = [
        RatingFacts(5, False, False, False),
        RatingFacts(4, False, False, False),
        RatingFacts(3, False, False, False),
        RatingFacts(2, False, True, False),
        RatingFacts(1, False, False, True),
        RatingFacts(1, True, False, True),  # appeal upheld: not counted at all
    ]
    stats = rating_stats(facts)
    assert stats.count == 5
    assert stats.distribution == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    assert stats.good_rate == 0.6
    assert (stats.bad_count, stats.rectified_rate, stats.overdue_follow_ups) == (2, 0.5, 1)
    empty = rating_stats([])
    assert (empty.count, empty.good_rate, empty.rectified_rate) == (0, None, None)


def test_text_and_image_limits():
    assert check_complaint_text("  有问题  ") == "有问题"
    with pytest.raises(DomainError):
        check_complaint_text("   ")
    with pytest.raises(DomainError):
        check_complaint_text("字" * 2001)
    check_images(list(range(9)))
    with pytest.raises(DomainError):
        check_images(list(range(10)))
