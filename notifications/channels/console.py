"""The console "SMS" of embedded mode (DESIGN.md §1): the message is logged, not sent, and counts as delivered.

The phone number is masked in the log (DESIGN.md §6). The provider message id is derived from the idempotency key,
so a re-run of the same delivery logs the same id.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from notifications.channels.base import IdempotencyKey, Outcome, mainland_number, mask_phone
from notifications.templates import SmsContent

log = logging.getLogger(__name__)


class ConsoleSmsChannel:
    name = "sms"
    provider = "console"

    def __init__(self) -> None:
        self.sent: list[tuple[str, SmsContent, str]] = []  # (masked phone, content, key): for the demo and tests

    async def send(self, address: str, message: SmsContent, key: IdempotencyKey) -> Outcome:
        if mainland_number(address) is None:
            return Outcome.permanent("手机号码格式错误 (console)", "InvalidPhoneNumber")
        masked = mask_phone(address)
        text = " ".join(value for _, value in message.params)
        log.info("sms (console, not sent) to %s [%s]: %s", masked, message.template_id, text,
                 extra={"fields": {"key": key.value}})
        self.sent.append((masked, message, key.value))
        return Outcome.delivered("console-" + hashlib.sha256(key.value.encode()).hexdigest()[:16])

    async def lookup(self, address: str, key: IdempotencyKey, since: datetime) -> Outcome | None:
        """Nothing leaves the process, so nothing was sent before a crash: logging the message again is right."""
        return None
