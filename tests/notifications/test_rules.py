"""Delivery rules on fixed dates: quiet hours across midnight, back-off with jitter, next step, channel choice."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from notifications.channels.base import Outcome, OutcomeKind
from notifications.rules import (
    SHANGHAI,
    SMS,
    WECHAT,
    QuietHours,
    RecipientFacts,
    RetryPolicy,
    after_attempt,
    next_local_midnight,
    plan_channels,
    settle_rate_limit,
)

QUIET = QuietHours.parse("22:00-08:00")


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    "moment, allowed",
    [
        (sh(24, 21, 59), sh(24, 21, 59)),  # before the window: now
        (sh(24, 22, 0), sh(25, 8, 0)),  # the window starts at 22:00
        (sh(24, 23, 30), sh(25, 8, 0)),  # late evening → next morning
        (sh(25, 0, 0), sh(25, 8, 0)),  # midnight → the same morning
        (sh(25, 7, 59), sh(25, 8, 0)),
        (sh(25, 8, 0), sh(25, 8, 0)),  # the window ends at 08:00
    ],
)
def test_quiet_hours_across_midnight(moment, allowed):
    assert QUIET.next_allowed(moment) == allowed


def test_quiet_hours_work_on_utc_times_and_answer_in_utc():
    late = datetime(2026, 11, 24, 15, 30, tzinfo=timezone.utc)  # 23:30 in Shanghai

    allowed = QUIET.next_allowed(late)

    assert allowed == datetime(2026, 11, 25, 0, 0, tzinfo=timezone.utc) and allowed.tzinfo is timezone.utc


def test_quiet_hours_within_one_day_and_none():
    lunch = QuietHours.parse("12:00-14:00")
    assert lunch.next_allowed(sh(24, 13)) == sh(24, 14) and lunch.next_allowed(sh(24, 23)) == sh(24, 23)
    assert not QuietHours.parse("").contains(sh(24, 23))
    assert QuietHours.parse(" 22:00 - 8:00 ") == QuietHours(time(22), time(8))


@pytest.mark.parametrize("text", ["22-08", "24:00-08:00", "22:00", "22:00-08:60", "夜间"])
def test_malformed_quiet_hours_are_refused(text):
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        QuietHours.parse(text)


def test_next_local_midnight_is_china_midnight():
    assert next_local_midnight(sh(24, 23, 59)) == sh(25, 0)
    assert next_local_midnight(datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc)) == sh(26, 0)  # 00:00 on the 25th


def test_backoff_doubles_with_jitter_up_to_the_cap():
    policy = RetryPolicy(max_attempts=10, base_delay=30, max_delay=600)

    assert [policy.backoff(n, 0.0) for n in (1, 2, 3, 4)] == [15, 30, 60, 120]
    assert [policy.backoff(n, 0.999) for n in (1, 2)] == pytest.approx([29.985, 59.97])
    assert policy.backoff(9, 0.5) == 450  # capped at 600: half fixed, half random
    with pytest.raises(ValueError):
        policy.backoff(0, 0.5)
    with pytest.raises(ValueError):
        policy.backoff(1, 1.0)


POLICY = RetryPolicy(max_attempts=3, base_delay=30, max_delay=3600)


def step(outcome: Outcome, attempt: int = 1, now: datetime = sh(24, 10), channel: str = SMS):
    return after_attempt(outcome, attempt=attempt, now=now, policy=POLICY, jitter=0.0, channel=channel, quiet=QUIET)


def test_next_step_after_each_outcome():
    assert step(Outcome.delivered("m1")).action == "DONE"
    assert step(Outcome.fallback("43101", "43101")).action == "FALLBACK"
    dead = step(Outcome.permanent("手机号码格式错误 (x)", "x"))
    assert dead.action == "DEAD" and dead.reason == "手机号码格式错误 (x)"
    assert step(Outcome.retry("超时")).at == sh(24, 10) + timedelta(seconds=15)
    assert step(Outcome.rate_limit("限流", "c", 30)).at == sh(24, 10, 0) + timedelta(seconds=30)


def test_the_attempts_are_bounded():
    last = step(Outcome.retry("短信服务暂时不可用"), attempt=3)

    assert last.action == "DEAD" and "3 次" in last.reason and "短信服务暂时不可用" in last.reason


def test_an_sms_retry_landing_at_night_waits_for_the_morning_but_wechat_does_not():
    evening = sh(24, 21, 59, )
    window = Outcome.rate_limit("限流", "LimitExceeded.PhoneNumberOneHourLimit", 3600)

    assert step(window, now=evening).at == sh(25, 8)
    assert step(window, now=evening, channel=WECHAT).at == sh(24, 22, 59)


def test_a_rate_limited_sms_falls_back_only_when_another_channel_is_there():
    limited = Outcome.rate_limit("限流", "isv.BUSINESS_LIMIT_CONTROL", 60)

    assert settle_rate_limit(limited, other_channel_available=True).kind is OutcomeKind.FALLBACK
    assert settle_rate_limit(limited, other_channel_available=False) == limited
    transient = Outcome.retry("超时")
    assert settle_rate_limit(transient, other_channel_available=True) == transient


@pytest.mark.parametrize(
    "facts, external",
    [
        (RecipientFacts(has_openid=True, wechat_consent=True, phone="13812345678"), (WECHAT, SMS)),
        (RecipientFacts(has_openid=True, long_term_subscription=True), (WECHAT,)),
        (RecipientFacts(has_openid=True, phone="13812345678"), (SMS,)),  # no consent: WeChat would answer 43101
        (RecipientFacts(has_openid=False, wechat_consent=True, phone="13812345678"), (SMS,)),
        (RecipientFacts(phone="13812345678", sms_enabled=False), ()),
        (RecipientFacts(), ()),
    ],
)
def test_channel_choice(facts, external):
    plan = plan_channels(facts)

    assert plan.external == external and plan.inapp
