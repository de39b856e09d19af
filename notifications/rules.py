"""Delivery rules, pure: which channels, when SMS may go out, when to try again (DOMAIN.md §10, DESIGN.md §5).

No I/O and no clock of their own: the dispatcher passes the facts and "now" in, so every rule is tested on fixed dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from notifications.channels.base import Outcome, OutcomeKind

SHANGHAI = ZoneInfo("Asia/Shanghai")

WECHAT = "wechat"
SMS = "sms"
INAPP = "inapp"


# -- quiet hours ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    """A daily window, in local time, when no SMS goes out (default 22:00–08:00 Asia/Shanghai); it may span midnight.

    A notice due in the window waits for its end: an applicant is not woken by an approval at 23:30.
    ``start == end`` means no quiet hours.
    """

    start: time
    end: time
    tz: ZoneInfo = SHANGHAI

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo = SHANGHAI) -> "QuietHours":
        """``"22:00-08:00"``; an empty string means none."""
        if not text.strip():
            return cls(time(0), time(0), tz)
        match = re.fullmatch(r"\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*", text)
        if not match:
            raise ValueError(f"quiet hours {text!r}: expected HH:MM-HH:MM, e.g. 22:00-08:00")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        return cls(time(h1, m1), time(h2, m2), tz)

    def contains(self, moment: datetime) -> bool:
        if self.start == self.end:
            return False
        local = moment.astimezone(self.tz).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: datetime) -> datetime:
        """``moment`` itself when outside the window, else the window's end (the same or the next local day)."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(self.tz)
        end = datetime.combine(local.date(), self.end, tzinfo=self.tz)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=self.tz)
        return end.astimezone(moment.tzinfo or timezone.utc)


def next_local_midnight(moment: datetime, tz: ZoneInfo = SHANGHAI) -> datetime:
    """The start of the next calendar day in China: when a provider's per-day limit starts over."""
    local = moment.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz).astimezone(moment.tzinfo)


# -- retries ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter, up to ``max_attempts`` attempts in all; then the delivery is dead."""

    max_attempts: int = 8
    base_delay: float = 30.0  # seconds before the second attempt (before jitter)
    max_delay: float = 3600.0

    def backoff(self, attempt: int, jitter: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 = the first), ``jitter`` in [0, 1).

        "Equal jitter": half the exponential delay is fixed, half is random, so workers retrying after one outage
        spread out instead of hitting the provider together, and no retry comes sooner than half the delay.
        """
        if attempt < 1 or not 0 <= jitter < 1:
            raise ValueError("attempt starts at 1; jitter is in [0, 1)")
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay / 2 + jitter * delay / 2


@dataclass(frozen=True)
class NextStep:
    """What to do with a delivery after an attempt: ``DONE``, ``RETRY`` at ``at``, ``FALLBACK`` or ``DEAD``."""

    action: str
    at: datetime | None = None
    reason: str = ""


def after_attempt(
    outcome: Outcome,
    *,
    attempt: int,
    now: datetime,
    policy: RetryPolicy,
    jitter: float,
    channel: str,
    quiet: QuietHours | None = None,
) -> NextStep:
    """The next step after attempt number ``attempt`` of one channel ended with ``outcome``.

    A retry waits for the provider's window when it gave one (rate limits), else for the back-off; an SMS retry that
    would fall in the quiet hours waits for their end. Past ``policy.max_attempts`` the delivery is dead (visible to
    staff, who may re-send it). Rate-limit windows do not count as failures of the provider but still count as
    attempts, so a recipient over a daily limit for days does not keep a row alive forever.
    """
    if outcome.kind is OutcomeKind.DELIVERED:
        return NextStep("DONE")
    if outcome.kind is OutcomeKind.FALLBACK:
        return NextStep("FALLBACK", reason=outcome.reason)
    if outcome.kind is OutcomeKind.PERMANENT_FAILURE:
        return NextStep("DEAD", reason=outcome.reason)
    if attempt >= policy.max_attempts:
        return NextStep("DEAD", reason=f"已尝试 {attempt} 次仍未送达：{outcome.reason}")
    delay = outcome.retry_after if outcome.retry_after is not None else policy.backoff(attempt, jitter)
    at = now + timedelta(seconds=delay)
    if channel == SMS and quiet is not None:
        at = quiet.next_allowed(at)
    return NextStep("RETRY", at=at, reason=outcome.reason)


def settle_rate_limit(outcome: Outcome, *, other_channel_available: bool) -> Outcome:
    """A rate-limited SMS falls back to another channel when the recipient has one (issue #5), else waits it out."""
    if outcome.kind is OutcomeKind.RETRY_AFTER and outcome.rate_limited and other_channel_available:
        return replace(outcome, kind=OutcomeKind.FALLBACK)
    return outcome


# -- channel choice --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientFacts:
    """What the dispatcher knows about one recipient of one notice, read from the database before choosing."""

    has_openid: bool = False
    wechat_consent: bool = False  # holds a one-time consent for this notice's template (one is used by one message)
    long_term_subscription: bool = False  # 长期订阅, an account setting for public services
    phone: str | None = None  # the bound phone
    sms_enabled: bool = True  # an SMS provider (or the console) is configured


@dataclass(frozen=True)
class DeliveryPlan:
    """External channels in the order to try (the first, then its fallbacks); in-app is always written."""

    external: tuple[str, ...]
    inapp: bool = True


def plan_channels(facts: RecipientFacts) -> DeliveryPlan:
    """WeChat when the user holds a consent (or long-term subscription is on), else SMS to the bound phone (issue #5).

    WeChat first, SMS as its fallback (43101: the consent is gone); SMS alone when there is no usable WeChat. A
    recipient with neither still gets the in-app notice.
    """
    channels: list[str] = []
    if facts.has_openid and (facts.wechat_consent or facts.long_term_subscription):
        channels.append(WECHAT)
    if facts.phone and facts.sms_enabled:
        channels.append(SMS)
    return DeliveryPlan(tuple(channels))
