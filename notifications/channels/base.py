"""What every channel has in common: the idempotency key, the outcome of one attempt, the channel interface.

A channel sends one rendered message to one recipient and says what happened, in four words the dispatcher acts on
(DESIGN.md §5): DELIVERED (with the provider's message id), RETRY_AFTER (seconds, or ``None`` for "use the back-off"),
FALLBACK (this channel cannot serve this recipient now; try the next one) and PERMANENT_FAILURE (a reason staff can
read). A channel never raises for a provider's answer, a network error or a timeout: those are outcomes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol, runtime_checkable


class OutcomeKind(str, Enum):
    DELIVERED = "DELIVERED"
    RETRY_AFTER = "RETRY_AFTER"
    FALLBACK = "FALLBACK"
    PERMANENT_FAILURE = "PERMANENT_FAILURE"


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    provider_message_id: str | None = None
    retry_after: float | None = None  # seconds; None with RETRY_AFTER = transient, the caller's back-off decides
    rate_limited: bool = False  # the provider's per-recipient limit: another channel may serve instead
    error_code: str | None = None  # the provider's own code, as it sent it
    reason: str = ""  # for staff, in Chinese, with the provider's code

    @classmethod
    def delivered(cls, message_id: str | None, reason: str = "") -> "Outcome":
        """``message_id`` is ``None`` only when a lookup found the message in records that do not carry it."""
        return cls(OutcomeKind.DELIVERED, provider_message_id=message_id, reason=reason)

    @classmethod
    def retry(cls, reason: str, code: str | None = None, after: float | None = None) -> "Outcome":
        return cls(OutcomeKind.RETRY_AFTER, retry_after=after, error_code=code, reason=reason)

    @classmethod
    def rate_limit(cls, reason: str, code: str, after: float) -> "Outcome":
        return cls(OutcomeKind.RETRY_AFTER, retry_after=after, rate_limited=True, error_code=code, reason=reason)

    @classmethod
    def fallback(cls, reason: str, code: str | None = None) -> "Outcome":
        return cls(OutcomeKind.FALLBACK, error_code=code, reason=reason)

    @classmethod
    def permanent(cls, reason: str, code: str | None = None) -> "Outcome":
        return cls(OutcomeKind.PERMANENT_FAILURE, error_code=code, reason=reason)


@dataclass(frozen=True)
class IdempotencyKey:
    """One send = one (event, recipient, channel) (DESIGN.md §5).

    Neither SMS provider de-duplicates (DOMAIN.md §10): the key travels as Aliyun's ``OutId`` / Tencent's
    ``SessionContext`` so a delivery can be matched to the provider's records after a crash, and the dispatcher uses it
    to never send the same key twice once it is recorded as delivered.
    """

    event_id: str
    recipient_id: str
    channel: str

    @property
    def value(self) -> str:
        return f"{self.event_id}:{self.recipient_id}:{self.channel}"

    def fitted(self, max_length: int) -> str:
        """The key within a provider's length limit: as is when it fits, else a hash of it (stable, same length)."""
        value = self.value
        if len(value) <= max_length and value.isascii():
            return value
        return hashlib.sha256(value.encode()).hexdigest()[:max_length]


class Channel(Protocol):
    """A way to reach a recipient. ``address`` is a phone number (SMS) or an openid (WeChat)."""

    name: str  # "sms", "wechat"

    async def send(self, address: str, message: Any, key: IdempotencyKey) -> Outcome: ...


@runtime_checkable
class LookupChannel(Protocol):
    """A channel whose provider can say what it already sent (the SMS providers; WeChat cannot).

    After a dispatcher died between the provider's answer and our commit, the attempt is LOST: the provider may or may
    not have the message. ``lookup`` asks it: DELIVERED (with the provider's message id when its records carry one)
    when it holds a message with ``key`` to ``address`` sent since ``since``; ``None`` when it holds none, so sending
    again is right; a RETRY outcome when the question itself failed, so nobody knows yet and nothing may be resent.
    """

    async def lookup(self, address: str, key: IdempotencyKey, since: datetime) -> Outcome | None: ...


# -- phone numbers -------------------------------------------------------------------------------------------------

_MAINLAND = re.compile(r"1\d{10}")


def mainland_number(phone: str) -> str | None:
    """The 11-digit mainland mobile number in ``phone`` (``+86…``, ``0086…``, ``86…`` or bare), or ``None``."""
    digits = re.sub(r"[\s-]", "", phone)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    return digits if _MAINLAND.fullmatch(digits) else None


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``: phone numbers are never logged in clear (DESIGN.md §6)."""
    number = mainland_number(phone) or phone
    return number[:3] + "****" + number[-4:] if len(number) >= 8 else "****"
