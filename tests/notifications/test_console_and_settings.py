"""The console channel of embedded mode, and the notice settings: production refuses missing SMS credentials."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from api.settings import Settings
from notifications.channels.aliyun import AliyunSmsChannel
from notifications.channels.base import IdempotencyKey, OutcomeKind, mask_phone
from notifications.channels.console import ConsoleSmsChannel
from notifications.channels.factory import sms_channel
from notifications.channels.tencent import TencentSmsChannel
from notifications.kinds import NoticeKind
from notifications.templates import SmsContent, load_templates
from tests.notifications.sms_setup import ALIYUN_KEY, SDK_APP_ID, SIGN, TENCENT_KEY

PRODUCTION = {"env": "production", "secret_key": "s" * 40, "esign_kek": "k" * 40, "certificate_check_secret": "c" * 40,
              "public_base_url": "https://js.example"}
KEY = IdempotencyKey("event-1", "user-1", "sms")


async def test_the_console_logs_with_the_phone_masked_and_delivers(caplog):
    channel = ConsoleSmsChannel()
    content = SmsContent("case_accepted", (("text", "申请已受理"),))

    with caplog.at_level(logging.INFO, logger="notifications.channels.console"):
        first = await channel.send("+8613812345678", content, KEY)
        again = await channel.send("+8613812345678", content, KEY)

    assert first.kind is OutcomeKind.DELIVERED and first.provider_message_id == again.provider_message_id
    assert "138****5678" in caplog.text and "13812345678" not in caplog.text and "申请已受理" in caplog.text
    assert (await channel.send("555", content, KEY)).kind is OutcomeKind.PERMANENT_FAILURE


def test_mask_phone():
    assert mask_phone("+86 138-1234-5678") == "138****5678" and mask_phone("12") == "****"


def test_embedded_mode_needs_no_sms_settings():
    settings = Settings()

    assert settings.sms_provider == "console" and settings.aliyun_access_key_secret == ""
    assert isinstance(sms_channel(settings), ConsoleSmsChannel)


@pytest.mark.parametrize(
    "provider, missing",
    [
        ("aliyun", "JIANSHEN_ALIYUN_ACCESS_KEY_ID"),
        ("tencent", "JIANSHEN_TENCENT_SECRET_ID"),
    ],
)
def test_production_refuses_a_provider_without_credentials(provider, missing):
    with pytest.raises(ValidationError, match=missing):
        Settings(**PRODUCTION, sms_provider=provider, sms_sign_name=SIGN)


def test_the_factory_builds_each_provider_from_settings():
    aliyun = Settings(**PRODUCTION, sms_provider="aliyun", sms_sign_name=SIGN, aliyun_access_key_id=ALIYUN_KEY[0],
                      aliyun_access_key_secret=ALIYUN_KEY[1])
    tencent = Settings(**PRODUCTION, sms_provider="tencent", sms_sign_name=SIGN, tencent_secret_id=TENCENT_KEY[0],
                       tencent_secret_key=TENCENT_KEY[1], tencent_sms_sdk_app_id=SDK_APP_ID)

    assert isinstance(sms_channel(aliyun), AliyunSmsChannel)
    assert isinstance(sms_channel(tencent), TencentSmsChannel)


async def test_settings_point_the_channel_at_a_fake_provider(tencent_fake):
    settings = Settings(sms_provider="tencent", sms_sign_name=SIGN, tencent_secret_id=TENCENT_KEY[0],
                        tencent_secret_key=TENCENT_KEY[1], tencent_sms_sdk_app_id=SDK_APP_ID,
                        tencent_sms_endpoint=tencent_fake.host, tencent_sms_scheme="http")
    templates = load_templates(settings.notice_templates_file, sms_provider=settings.sms_provider)
    variables = {
        "case_id": "Q2FzZTox", "case_code": "44040020261124000123", "item_name": "施工许可", "department": "住建局",
        "project_name": "某项目", "decided_at": tencent_fake.clock(),
    }

    outcome = await sms_channel(settings).send(
        "13812345678", templates.sms(NoticeKind.CASE_APPROVED, variables, "tencent"), KEY
    )

    assert outcome.kind is OutcomeKind.DELIVERED
    [sms] = tencent_fake.accepted_for(KEY.value)
    assert sms.params == ["施工许可", "44040020261124000123", "已通过"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sms_quiet_hours": "22:00"}, "HH:MM-HH:MM"),
        ({"notice_templates_file": "/nonexistent/templates.toml"}, "/nonexistent/templates.toml"),
        ({"sms_provider": "sms-bao"}, "sms_provider"),
    ],
)
def test_bad_notice_settings_stop_the_start(change, message):
    with pytest.raises(ValidationError, match=message):
        Settings(**change)
