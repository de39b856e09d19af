"""Building the dispatcher from the settings: the same in the API process (embedded mode) and in an arq worker."""

from __future__ import annotations

from typing import Any, Callable

from miniapp.client import MiniProgram
from notifications.channels.factory import sms_channel
from notifications.channels.wechat import WechatSubscribeChannel
from notifications.dispatch import Clock, DispatchConfig, Dispatcher, utcnow
from notifications.rules import SMS, WECHAT, QuietHours, RetryPolicy


def dispatch_config(settings: Any) -> DispatchConfig:
    return DispatchConfig(
        retry=RetryPolicy(
            max_attempts=settings.notice_max_attempts,
            base_delay=settings.notice_retry_base_seconds,
            max_delay=settings.notice_retry_max_seconds,
        ),
        quiet=QuietHours.parse(settings.sms_quiet_hours) if settings.sms_quiet_hours else None,
        lease_seconds=settings.notice_lease_seconds,
        concurrency=settings.notice_concurrency,
        lookup_patience=settings.notice_lookup_patience_seconds,
        long_term_subscription=settings.wechat_long_term_subscription,
    )


def build_dispatcher(
    settings: Any,
    *,
    wechat: MiniProgram | None = None,
    clock: Clock = utcnow,
    take_consent: Callable[[int, str], Any] | None = None,
) -> Dispatcher:
    """``settings`` is ``api.settings.Settings``. ``wechat`` is the process's one WeChat client (made if not given)."""
    from api.services.notices import notice_templates

    client = wechat or MiniProgram.from_settings(settings)
    channels = {
        WECHAT: WechatSubscribeChannel(client, timeout=settings.wechat_timeout),
        SMS: sms_channel(settings, clock=clock),
    }
    return Dispatcher(
        channels,
        notice_templates(settings),
        dispatch_config(settings),
        sms_provider=settings.sms_provider,
        clock=clock,
        take_consent=take_consent,
    )
