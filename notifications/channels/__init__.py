"""Delivery channels: each sends one rendered message to one recipient and reports an ``Outcome`` (see ``base``).

SMS: ``aliyun.AliyunSmsChannel``, ``tencent.TencentSmsChannel``, ``console.ConsoleSmsChannel``, chosen by settings
with ``factory.sms_channel(settings)``. The WeChat subscribe-message channel uses the ``miniapp`` client.
"""

from notifications.channels.base import Channel, IdempotencyKey, Outcome, OutcomeKind, mainland_number, mask_phone

__all__ = ["Channel", "IdempotencyKey", "Outcome", "OutcomeKind", "mainland_number", "mask_phone"]
