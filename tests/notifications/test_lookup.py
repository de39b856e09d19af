"""Asking the SMS provider what it already sent, through the official SDKs against the fake servers (issue #5).

After a dispatcher died between the provider's answer and our commit, ``lookup`` decides between "it was sent"
(DELIVERED), "it was not" (``None``: send again) and "we cannot tell now" (RETRY: do not send yet). The fakes answer
Aliyun ``QuerySendDetails`` and Tencent ``PullSmsSendStatusByPhoneNumber`` from what they really accepted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from notifications.channels.base import IdempotencyKey, LookupChannel, OutcomeKind
from notifications.channels.console import ConsoleSmsChannel
from notifications.channels.wechat import WechatSubscribeChannel
from notifications.rules import SHANGHAI
from notifications.templates import SmsContent
from tests.fakes.sms import FakeTencentSms
from tests.notifications.sms_setup import SDK_APP_ID, SIGN, TENCENT_KEY, aliyun_channel, tencent_channel

PHONE = "13812345678"
ALIYUN = SmsContent("SMS_CASE_ACCEPTED", (("item", "建设工程规划许可证核发"),))
TENCENT = SmsContent("1000001", (("1", "建设工程规划许可证核发"),))
KEY = IdempotencyKey("notice-17", "4", "sms")


def actions(fake, header: str) -> list[str]:
    return [request["headers"].get(header) for request in fake.requests]


@pytest.fixture(params=["aliyun", "tencent"])
def sms(request, clock):
    """(fake, channel, content, failure reason) of either provider, for what both must do alike."""
    if request.param == "aliyun":
        fake = request.getfixturevalue("aliyun_fake")
        return fake, aliyun_channel(fake), ALIYUN, "无法查询短信发送记录"
    fake = request.getfixturevalue("tencent_fake")
    return fake, tencent_channel(fake), TENCENT, "无法查询短信发送状态"


# -- both providers ----------------------------------------------------------------------------------------------------


async def test_nothing_is_found_for_another_key_another_number_or_an_older_message(sms, clock):
    fake, channel, content, _ = sms
    await channel.send(PHONE, content, KEY)
    clock.advance(600)

    hour_ago = clock() - timedelta(hours=1)
    assert await channel.lookup(PHONE, IdempotencyKey("notice-18", "4", "sms"), since=hour_ago) is None
    assert await channel.lookup("13900000000", KEY, since=hour_ago) is None
    assert await channel.lookup(PHONE, KEY, since=clock() - timedelta(minutes=5)) is None  # sent 10 minutes ago
    assert len(fake.accepted) == 1


@pytest.mark.parametrize("fault", ["http500", "hang", "provider-error"])
async def test_a_failed_lookup_says_retry_never_none(sms, clock, fault):
    fake, channel, content, words = sms
    await channel.send(PHONE, content, KEY)
    code = "isp.SYSTEM_ERROR" if fake.provider == "aliyun" else "InternalError.Timeout"
    script = {"http500": lambda: fake.http_error_next(500), "hang": fake.hang_next,
              "provider-error": lambda: fake.fail_next(code)}
    script[fault]()

    outcome = await channel.lookup(PHONE, KEY, since=clock() - timedelta(minutes=1))

    assert outcome is not None and outcome.kind is OutcomeKind.RETRY_AFTER and words in outcome.reason


async def test_a_lookup_with_bad_credentials_says_retry(aliyun_fake, tencent_fake, clock):
    for channel in (aliyun_channel(aliyun_fake, secret="not-the-secret"), tencent_channel(tencent_fake, secret="nope")):
        outcome = await channel.lookup(PHONE, KEY, since=clock() - timedelta(minutes=1))
        assert outcome.kind is OutcomeKind.RETRY_AFTER and outcome.error_code in ("SignatureDoesNotMatch",
                                                                                 "AuthFailure.SignatureFailure")


async def test_a_number_the_provider_would_refuse_needs_no_question(sms, clock):
    fake, channel, _, _ = sms
    assert await channel.lookup("12345", KEY, since=clock()) is None
    assert fake.requests == []


# -- Aliyun QuerySendDetails -------------------------------------------------------------------------------------------


async def test_aliyun_finds_the_message_it_accepted_by_out_id_and_sends_nothing(aliyun_fake, clock):
    channel = aliyun_channel(aliyun_fake)
    sent = await channel.send(PHONE, ALIYUN, KEY)
    started = clock() - timedelta(minutes=1)
    clock.advance(130)

    found = await channel.lookup(PHONE, KEY, since=started)

    assert sent.kind is OutcomeKind.DELIVERED
    assert found.kind is OutcomeKind.DELIVERED and "阿里云发送记录" in found.reason
    assert found.provider_message_id is None  # the records carry OutId but no BizId
    assert len(aliyun_fake.accepted) == 1
    assert actions(aliyun_fake, "x-acs-action") == ["SendSms", "QuerySendDetails"]


async def test_aliyun_looks_through_each_china_day_since_then(aliyun_fake, clock):
    clock.now = datetime(2026, 11, 24, 23, 59, 30, tzinfo=SHANGHAI)
    channel = aliyun_channel(aliyun_fake)
    await channel.send(PHONE, ALIYUN, KEY)
    started = clock() - timedelta(minutes=1)
    clock.advance(120)  # past midnight: the record is on yesterday's SendDate

    found = await channel.lookup(PHONE, KEY, since=started)

    assert found.kind is OutcomeKind.DELIVERED
    dates = [parse_qs(urlsplit(r["path"]).query)["SendDate"][0] for r in aliyun_fake.requests[1:]]
    assert dates == ["20261124"]  # found on the first day asked; the second was not needed


async def test_aliyun_pages_through_the_records_of_a_busy_number(aliyun_fake, clock):
    channel = aliyun_channel(aliyun_fake)
    started = clock() - timedelta(minutes=1)
    await channel.send(PHONE, ALIYUN, KEY)
    for n in range(60):
        clock.advance(1)
        await channel.send(PHONE, ALIYUN, IdempotencyKey(f"notice-{100 + n}", "4", "sms"))

    found = await channel.lookup(PHONE, KEY, since=started)

    assert found.kind is OutcomeKind.DELIVERED
    assert actions(aliyun_fake, "x-acs-action").count("QuerySendDetails") == 2  # ours, the oldest, is on page 2


async def test_aliyun_matches_a_long_key_by_its_hashed_out_id(aliyun_fake, clock):
    key = IdempotencyKey("notice-" + "9" * 80, "4", "sms")
    channel = aliyun_channel(aliyun_fake)
    await channel.send(PHONE, ALIYUN, key)

    assert (await channel.lookup(PHONE, key, since=clock() - timedelta(minutes=1))).kind is OutcomeKind.DELIVERED


# -- Tencent PullSmsSendStatusByPhoneNumber ----------------------------------------------------------------------------


async def test_tencent_finds_the_message_it_accepted_by_session_context(tencent_fake, clock):
    channel = tencent_channel(tencent_fake)
    sent = await channel.send(PHONE, TENCENT, KEY)
    started = clock() - timedelta(minutes=1)
    clock.advance(130)

    found = await channel.lookup("+86" + PHONE, KEY, since=started)

    assert found.kind is OutcomeKind.DELIVERED and found.provider_message_id == sent.provider_message_id
    assert len(tencent_fake.accepted) == 1
    assert actions(tencent_fake, "X-TC-Action") == ["SendSms", "PullSmsSendStatusByPhoneNumber"]


async def test_tencent_without_the_session_context_echo_cannot_find_it(clock):
    """The echo is an account option Tencent enables on request: without it, lookup truthfully finds nothing."""
    with FakeTencentSms(key_id=TENCENT_KEY[0], secret=TENCENT_KEY[1], sdk_app_id=SDK_APP_ID, sign_names=(SIGN,),
                        clock=clock, pull_session_context=False) as fake:
        channel = tencent_channel(fake)
        await channel.send(PHONE, TENCENT, KEY)

        assert await channel.lookup(PHONE, KEY, since=clock() - timedelta(minutes=1)) is None


async def test_tencent_asks_at_most_seven_days_back(tencent_fake, clock):
    channel = tencent_channel(tencent_fake)
    await channel.send(PHONE, TENCENT, KEY)

    found = await channel.lookup(PHONE, KEY, since=clock() - timedelta(days=30))

    assert found.kind is OutcomeKind.DELIVERED


# -- which channels can be asked ---------------------------------------------------------------------------------------


async def test_sms_channels_can_be_asked_wechat_cannot_console_sent_nothing(aliyun_fake, tencent_fake, clock):
    console = ConsoleSmsChannel()
    await console.send(PHONE, ALIYUN, KEY)

    assert isinstance(aliyun_channel(aliyun_fake), LookupChannel)
    assert isinstance(tencent_channel(tencent_fake), LookupChannel)
    assert not isinstance(WechatSubscribeChannel(client=None), LookupChannel)
    assert await console.lookup(PHONE, KEY, since=clock() - timedelta(minutes=1)) is None
