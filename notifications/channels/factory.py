"""The SMS channel the settings ask for (``JIANSHEN_SMS_PROVIDER``): console, Aliyun or Tencent Cloud."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from notifications.channels.console import ConsoleSmsChannel


def sms_channel(settings, clock: Callable[[], datetime] | None = None):
    """``settings`` is ``api.settings.Settings`` (not imported: notifications does not depend on the web app).

    Only the chosen provider's SDK is imported (Aliyun's alone is ~250 modules, ~10 MB of a process)."""
    if settings.sms_provider == "aliyun":
        from notifications.channels.aliyun import AliyunSmsChannel

        return AliyunSmsChannel(
            access_key_id=settings.aliyun_access_key_id,
            access_key_secret=settings.aliyun_access_key_secret,
            sign_name=settings.sms_sign_name,
            endpoint=settings.aliyun_sms_endpoint,
            protocol=settings.aliyun_sms_protocol,
            timeout=settings.sms_timeout,
            clock=clock,
        )
    if settings.sms_provider == "tencent":
        from notifications.channels.tencent import TencentSmsChannel

        return TencentSmsChannel(
            secret_id=settings.tencent_secret_id,
            secret_key=settings.tencent_secret_key,
            sdk_app_id=settings.tencent_sms_sdk_app_id,
            sign_name=settings.sms_sign_name,
            region=settings.tencent_sms_region,
            endpoint=settings.tencent_sms_endpoint,
            scheme=settings.tencent_sms_scheme,
            timeout=settings.sms_timeout,
            clock=clock,
        )
    return ConsoleSmsChannel()
