"""Aliyun SMS through the official SDK against the fake Aliyun server: delivery, limits, faults, permanent errors."""

from __future__ import annotations

import json
import time

import pytest

from notifications.channels.base import IdempotencyKey, OutcomeKind
from notifications.rules import settle_rate_limit
from notifications.templates import SmsContent
from tests.fakes.sms import FakeAliyunSms
from tests.notifications.sms_setup import ALIYUN_KEY, SIGN, TIMEOUT, aliyun_channel

PHONE = "+8613812345678"
CONTENT = SmsContent("SMS_CASE_ACCEPTED", (("item", "建设工程规划许可证核发"), ("code", "44040020261124000123")))
KEY = IdempotencyKey("event-17", "user-4", "sms")


async def test_delivers_once_with_the_idempotency_key_as_out_id(aliyun_fake):
    outcome = await aliyun_channel(aliyun_fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.DELIVERED
    [sms] = aliyun_fake.accepted_for(KEY.value)
    assert outcome.provider_message_id == sms.message_id
    assert (sms.phone, sms.sign_name, sms.template) == ("13812345678", SIGN, "SMS_CASE_ACCEPTED")
    assert sms.params == {"item": "建设工程规划许可证核发", "code": "44040020261124000123"}
    assert len(aliyun_fake.accepted) == 1


async def test_a_long_key_is_hashed_to_the_out_id_limit(aliyun_fake):
    key = IdempotencyKey("event-" + "9" * 80, "user-4", "sms")

    await aliyun_channel(aliyun_fake).send(PHONE, CONTENT, key)

    [sms] = aliyun_fake.accepted
    assert sms.idempotency == key.fitted(64) and len(sms.idempotency) == 64 and sms.idempotency != key.value


async def test_a_retry_after_a_500_delivers_exactly_once(aliyun_fake):
    channel = aliyun_channel(aliyun_fake)
    aliyun_fake.http_error_next(500)

    first = await channel.send(PHONE, CONTENT, KEY)
    second = await channel.send(PHONE, CONTENT, KEY)

    assert first.kind is OutcomeKind.RETRY_AFTER and first.retry_after is None and first.error_code == "InternalError"
    assert second.kind is OutcomeKind.DELIVERED
    assert len(aliyun_fake.accepted_for(KEY.value)) == 1
    assert len(aliyun_fake.requests) == 2


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retried_with_back_off(aliyun_fake, status):
    aliyun_fake.http_error_next(status)

    outcome = await aliyun_channel(aliyun_fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.RETRY_AFTER and outcome.retry_after is None and not outcome.rate_limited
    assert aliyun_fake.accepted == []


async def test_a_hanging_provider_is_cut_by_the_timeout(aliyun_fake):
    aliyun_fake.hang_next()
    started = time.monotonic()

    outcome = await aliyun_channel(aliyun_fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.RETRY_AFTER and outcome.error_code == "Timeout"
    assert time.monotonic() - started < TIMEOUT + 1.5
    assert aliyun_fake.accepted == []


async def test_an_unreachable_provider_is_retried():
    fake = FakeAliyunSms(key_id=ALIYUN_KEY[0], secret=ALIYUN_KEY[1]).start()
    channel = aliyun_channel(fake)
    fake.stop()

    outcome = await channel.send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.RETRY_AFTER and outcome.retry_after is None


async def test_the_daily_notice_limit_is_a_rate_limit_with_a_24_hour_window(clock):
    with FakeAliyunSms(key_id=ALIYUN_KEY[0], secret=ALIYUN_KEY[1], sign_names=(SIGN,), limits=True, clock=clock) as fake:
        channel = aliyun_channel(fake)
        for n in range(50):
            assert (await channel.send(PHONE, CONTENT, IdempotencyKey(f"e{n}", "u", "sms"))).kind is OutcomeKind.DELIVERED
            clock.advance(60)
        outcome = await channel.send(PHONE, CONTENT, KEY)

        assert outcome.kind is OutcomeKind.RETRY_AFTER and outcome.rate_limited
        assert outcome.retry_after == 86400 and outcome.error_code == "isv.BUSINESS_LIMIT_CONTROL"
        assert "天级" in outcome.reason
        # Another template to the same number is another counter.
        other = SmsContent("SMS_CASE_APPROVED", CONTENT.params)
        assert (await channel.send(PHONE, other, KEY)).kind is OutcomeKind.DELIVERED


async def test_the_minute_limit_window_is_a_minute_and_then_it_passes(clock):
    with FakeAliyunSms(key_id=ALIYUN_KEY[0], secret=ALIYUN_KEY[1], sign_names=(SIGN,), limits=True, per_minute=1,
                       clock=clock) as fake:
        channel = aliyun_channel(fake)
        assert (await channel.send(PHONE, CONTENT, IdempotencyKey("e1", "u", "sms"))).kind is OutcomeKind.DELIVERED

        limited = await channel.send(PHONE, CONTENT, KEY)
        clock.advance(limited.retry_after)
        after = await channel.send(PHONE, CONTENT, KEY)

        assert limited.rate_limited and limited.retry_after == 60
        assert after.kind is OutcomeKind.DELIVERED
        assert len(fake.accepted_for(KEY.value)) == 1


@pytest.mark.parametrize(
    "message, window",
    [("触发分钟级流控Permits:1", 60), ("触发小时级流控Permits:5", 3600), ("触发天级流控Permits:10", 86400)],
)
async def test_the_limit_window_is_read_from_the_message(aliyun_fake, message, window):
    aliyun_fake.fail_next("isv.BUSINESS_LIMIT_CONTROL", message)

    outcome = await aliyun_channel(aliyun_fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.RETRY_AFTER and outcome.rate_limited and outcome.retry_after == window
    assert settle_rate_limit(outcome, other_channel_available=True).kind is OutcomeKind.FALLBACK
    assert settle_rate_limit(outcome, other_channel_available=False).kind is OutcomeKind.RETRY_AFTER


@pytest.mark.parametrize(
    "code, words",
    [
        ("isv.MOBILE_NUMBER_ILLEGAL", "手机号码格式错误"),
        ("isv.SMS_TEMPLATE_ILLEGAL", "短信模板"),
        ("isv.SMS_SIGNATURE_ILLEGAL", "短信签名"),
        ("isv.AMOUNT_NOT_ENOUGH", "余额不足"),
    ],
)
async def test_permanent_business_errors_carry_a_reason_for_staff(aliyun_fake, code, words):
    aliyun_fake.fail_next(code)

    outcome = await aliyun_channel(aliyun_fake).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.PERMANENT_FAILURE
    assert outcome.error_code == code and words in outcome.reason and code in outcome.reason


async def test_the_fake_refuses_what_the_account_does_not_have(clock):
    with FakeAliyunSms(key_id=ALIYUN_KEY[0], secret=ALIYUN_KEY[1], sign_names=(SIGN,), templates=("SMS_OK",),
                       clock=clock) as fake:
        template = await aliyun_channel(fake).send(PHONE, CONTENT, KEY)
        sign = await aliyun_channel(fake, sign="别的签名").send(PHONE, SmsContent("SMS_OK", ()), KEY)

    assert template.error_code == "isv.SMS_TEMPLATE_ILLEGAL" and template.kind is OutcomeKind.PERMANENT_FAILURE
    assert sign.error_code == "isv.SMS_SIGNATURE_ILLEGAL" and sign.kind is OutcomeKind.PERMANENT_FAILURE


@pytest.mark.parametrize(
    "secret, key_id, code",
    [
        ("not-the-secret", ALIYUN_KEY[0], "SignatureDoesNotMatch"),
        (ALIYUN_KEY[1], "LTAI5tUnknownKey", "InvalidAccessKeyId.NotFound"),
    ],
)
async def test_bad_credentials_are_a_permanent_configuration_error(aliyun_fake, secret, key_id, code):
    outcome = await aliyun_channel(aliyun_fake, secret=secret, key_id=key_id).send(PHONE, CONTENT, KEY)

    assert outcome.kind is OutcomeKind.PERMANENT_FAILURE and outcome.error_code == code
    assert "请检查配置" in outcome.reason
    assert aliyun_fake.accepted == []


async def test_a_number_that_is_not_a_mainland_mobile_is_refused_before_calling(aliyun_fake):
    outcome = await aliyun_channel(aliyun_fake).send("12345", CONTENT, KEY)

    assert outcome.kind is OutcomeKind.PERMANENT_FAILURE and outcome.error_code == "isv.MOBILE_NUMBER_ILLEGAL"
    assert aliyun_fake.requests == []


async def test_the_sdk_sends_the_template_parameters_as_a_json_object(aliyun_fake):
    await aliyun_channel(aliyun_fake).send(PHONE, SmsContent("SMS_X", (("reason", '材料"不全"&缺页'),)), KEY)

    assert aliyun_fake.accepted[0].params == {"reason": '材料"不全"&缺页'}
    assert json.loads(SmsContent("SMS_X", (("a", "1"),)).as_json_object()) == {"a": "1"}
