"""Fixtures: the fake SMS providers, real HTTP servers on 127.0.0.1, with a clock the tests move."""

from __future__ import annotations

import pytest

from tests.fakes.sms import Clock, FakeAliyunSms, FakeTencentSms
from tests.notifications.sms_setup import ALIYUN_KEY, SDK_APP_ID, SIGN, TENCENT_KEY


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def aliyun_fake(clock):
    with FakeAliyunSms(key_id=ALIYUN_KEY[0], secret=ALIYUN_KEY[1], sign_names=(SIGN,), clock=clock) as fake:
        yield fake


@pytest.fixture
def tencent_fake(clock):
    with FakeTencentSms(
        key_id=TENCENT_KEY[0], secret=TENCENT_KEY[1], sdk_app_id=SDK_APP_ID, sign_names=(SIGN,), clock=clock
    ) as fake:
        yield fake

