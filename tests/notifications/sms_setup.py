"""The fake SMS providers' credentials and channels pointed at a fake, through the real SDKs."""

from __future__ import annotations

from notifications.channels.aliyun import AliyunSmsChannel
from notifications.channels.tencent import TencentSmsChannel
from tests.fakes.sms import FakeAliyunSms, FakeTencentSms

ALIYUN_KEY = ("LTAI5tFakeKeyId0000", "fake-aliyun-secret-0123456789")
TENCENT_KEY = ("AKIDfakeSecretId000000000000000000", "fake-tencent-secret-0123456789")
SDK_APP_ID = "1400006666"
SIGN = "珠海建审"
TIMEOUT = 0.5  # seconds: short, so the hang tests are quick


def aliyun_channel(fake: FakeAliyunSms, secret: str = ALIYUN_KEY[1], key_id: str = ALIYUN_KEY[0], sign: str = SIGN):
    return AliyunSmsChannel(
        access_key_id=key_id,
        access_key_secret=secret,
        sign_name=sign,
        endpoint=fake.host,
        protocol="http",
        timeout=TIMEOUT,
        clock=fake.clock,
    )


def tencent_channel(
    fake: FakeTencentSms,
    secret: str = TENCENT_KEY[1],
    key_id: str = TENCENT_KEY[0],
    sign: str = SIGN,
    app_id: str = SDK_APP_ID,
):
    return TencentSmsChannel(
        secret_id=key_id,
        secret_key=secret,
        sdk_app_id=app_id,
        sign_name=sign,
        endpoint=fake.host,
        scheme="http",
        timeout=TIMEOUT,
        clock=fake.clock,
    )
