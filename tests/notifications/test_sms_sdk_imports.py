"""A process imports only the SMS SDK its settings choose (issue #13: an API process at rest ≤ 150 MB; Aliyun's SDK
alone is ~250 modules and ~10 MB, Tencent's and their HTTP stacks more)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SDKS = ("alibabacloud_dysmsapi20170525", "tencentcloud")

PROBE = """
import json, sys
from api.settings import Settings
from notifications.setup import build_dispatcher
settings = Settings(database_url="sqlite://:memory:", sms_provider=sys.argv[1], sms_sign_name="建审",
                    aliyun_access_key_id="LTAI5tFakeKeyId0000", aliyun_access_key_secret="fake-aliyun-secret-0123456789",
                    tencent_secret_id="AKIDfakeSecretId000000000000000000", tencent_secret_key="fake-tencent-secret-0",
                    tencent_sms_sdk_app_id="1400006666")
build_dispatcher(settings)
print(json.dumps({name: name in sys.modules for name in sys.argv[2:]}))
"""


@pytest.mark.parametrize(
    ("provider", "expected"),
    [("console", {s: False for s in SDKS}),
     ("aliyun", {SDKS[0]: True, SDKS[1]: False}),
     ("tencent", {SDKS[0]: False, SDKS[1]: True})],
)
def test_only_the_chosen_sms_sdk_is_imported(provider, expected):
    done = subprocess.run([sys.executable, "-c", PROBE, provider, *SDKS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected
