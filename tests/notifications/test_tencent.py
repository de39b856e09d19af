"""Tencent Cloud SMS through the official SDK against the fake Tencent server: delivery, limits, faults, errors."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from notifications.channels.base import IdempotencyKey, OutcomeKind
from notifications.rules import SHANGHAI, settle_rate_limit
from notifications.templates import SmsContent
from tests.fakes.sms import FakeTencentSms
from tests.notifications.sms_setup import SDK_APP_ID, SIGN, TENCENT_KEY, TIMEOUT, tencent_channel

PHONE = "13812345678"
CONTENT = SmsContent("1000001", (("1", "建设工程规划许可证核发"), ("2", "44040020261124000123"), ("3", "已受理")))
KEY = IdempotencyKey("event-17", "user-4", "sms")


def limited_fake(clock, **limits) -> FakeTencentSms:
    return FakeTencentSms(
        key_id=TENCENT_KEY[0], secret=TENCENT_KEY[1], sdk_app_id=SDK_APP_ID, sign_names=(SIGN,), limits=True,
        clock=clock, **limits,
    )


async def test_delivers_once_with_the_idempotency_key_as_session_context(tencent_fake):
    outcome = await tencent_channel(tencent_fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.DELIVERED
    [sms] = tencent_fake.accepted_for(KEY.value)
    assert outcome.provider_message_id == sms.message_id
    assert (sms.phone, sms.sign_name, sms.template) == (PHONE, SIGN, "1000001")
    assert sms.params == ["建设工程规划许可证核发", "44040020261124000123", "已受理"]  # positional
    assert len(tencent_fake.accepted) == 1


async def test_a_retry_after_a_500_delivers_exactly_once(tencent_fake):
    channel = tencent_channel(tencent_fake)
    tencent_fake.http_error_next(500)

    first = await channel.send(PHONE, CONTENT, KEY)
    second = await channel.send(PHONE, CONTENT, KEY)

    assert first.kind is OutcomeKind.RETRY_AFTER and first.retry_after is None
    assert second.kind is OutcomeKind.DELIVERED
    assert len(tencent_fake.accepted_for(KEY.value)) == 1 and len(tencent_fake.requests) == 2


async def test_a_hanging_provider_is_cut_by_the_timeout(tencent_fake):
    tencent_fake.hang_next()
    started = time.monotonic()

    outcome = await tencent_channel(tencent_fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.RETRY_AFTER and outcome.error_code == "Timeout"
    assert time.monotonic() - started < TIMEOUT + 1.5
    assert tencent_fake.accepted == []


async def test_the_default_limits_one_per_30_seconds_then_two_per_calendar_day(clock):
    with limited_fake(clock) as fake:
        channel = tencent_channel(fake)
        assert (await channel.send(PHONE, CONTENT, IdempotencyKey("e1", "u", "sms"))).kind is OutcomeKind.DELIVERED

        thirty = await channel.send(PHONE, CONTENT, KEY)
        clock.advance(thirty.retry_after)
        second = await channel.send(PHONE, CONTENT, KEY)
        clock.advance(60)
        daily = await channel.send(PHONE, CONTENT, IdempotencyKey("e3", "u", "sms"))
        clock.advance(daily.retry_after)
        next_day = await channel.send(PHONE, CONTENT, IdempotencyKey("e3", "u", "sms"))

    assert thirty.rate_limited and thirty.retry_after == 30
    assert thirty.error_code == "LimitExceeded.PhoneNumberThirtySecondLimit"
    assert second.kind is OutcomeKind.DELIVERED
    assert daily.rate_limited and daily.error_code == "LimitExceeded.PhoneNumberDailyLimit"
    # The day is the calendar day in China: the window ends at the next midnight in Shanghai.
    assert clock().astimezone(SHANGHAI) == datetime(2026, 11, 25, 0, 0, tzinfo=SHANGHAI)
    assert next_day.kind is OutcomeKind.DELIVERED
    assert len(fake.accepted_for(KEY.value)) == 1


async def test_the_one_hour_limit_waits_an_hour(clock):
    with limited_fake(clock, per_hour=1, per_day=10) as fake:
        channel = tencent_channel(fake)
        await channel.send(PHONE, CONTENT, IdempotencyKey("e1", "u", "sms"))
        clock.advance(31)

        outcome = await channel.send(PHONE, CONTENT, KEY)

    assert outcome.error_code == "LimitExceeded.PhoneNumberOneHourLimit" and outcome.retry_after == 3600


async def test_same_content_daily_limit_waits_for_midnight_or_falls_back(tencent_fake, clock):
    tencent_fake.fail_next("LimitExceeded.PhoneNumberSameContentDailyLimit")

    outcome = await tencent_channel(tencent_fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.RETRY_AFTER and outcome.rate_limited
    assert outcome.retry_after == 14 * 3600  # 10:00 → 24:00 in Shanghai
    assert settle_rate_limit(outcome, other_channel_available=True).kind is OutcomeKind.FALLBACK


@pytest.mark.parametrize("code", ["InternalError.Timeout", "InternalError.OtherError", "InternalError"])
async def test_internal_errors_are_retried(tencent_fake, code):
    tencent_fake.fail_next(code)

    outcome = await tencent_channel(tencent_fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.RETRY_AFTER and outcome.retry_after is None and outcome.error_code == code


@pytest.mark.parametrize(
    "code",
    [
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "UnauthorizedOperation.ServiceSuspendDueToArrears",
    ],
)
async def test_permanent_errors_carry_a_reason_for_staff(tencent_fake, code):
    tencent_fake.fail_next(code)

    outcome = await tencent_channel(tencent_fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.PERMANENT_FAILURE and outcome.error_code == code and code in outcome.reason
    assert tencent_fake.accepted == []


@pytest.mark.parametrize(
    "change, code",
    [
        ({"secret": "not-the-key"}, "AuthFailure.SignatureFailure"),
        ({"key_id": "AKIDunknown"}, "AuthFailure.SecretIdNotFound"),
        ({"sign": "别的签名"}, "FailedOperation.SignatureIncorrectOrUnapproved"),
        ({"app_id": "1400000000"}, "UnauthorizedOperation.SmsSdkAppIdVerifyFail"),
    ],
)
async def test_configuration_errors_found_by_the_fake_are_permanent(tencent_fake, change, code):
    outcome = await tencent_channel(tencent_fake, **change).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.PERMANENT_FAILURE and outcome.error_code == code
    assert tencent_fake.accepted == []


async def test_an_unapproved_template_is_permanent(clock):
    with FakeTencentSms(key_id=TENCENT_KEY[0], secret=TENCENT_KEY[1], sdk_app_id=SDK_APP_ID, sign_names=(SIGN,),
                        templates=("2000000",), clock=clock) as fake:
        outcome = await tencent_channel(fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.PERMANENT_FAILURE
    assert outcome.error_code == "FailedOperation.TemplateIncorrectOrUnapproved" and "模板" in outcome.reason
