"""The dispatcher: delivers the outbox at least once, never twice in normal operation (DESIGN.md §5, issue #5).

The database is the only source of truth. A delivery is *claimed* by a compare-and-set on its lease token, so any
number of dispatchers (in-process in embedded mode, arq workers in scaled mode) can run at once and each delivery is
worked on by one of them at a time. A dispatcher that dies mid-send leaves its delivery ``SENDING`` with an expired
lease and an unfinished attempt; the next claim notes the attempt as lost, asks the provider whether it has the
message (SMS, by the idempotency key it carried) and sends again only when it has not (at least once: a lost notice is
worse than a repeated one; WeChat cannot be asked). Queues (arq, Redis) only say "look now": losing them loses
nothing, because the sweep finds every due row in the database.

One delivery, one notice, one recipient: WeChat subscribe message while the person holds a consent for the notice's
template (or long-term subscription is on), else SMS to the bound phone; 43101 falls back to SMS, an SMS rate limit to
WeChat when possible; SMS waits out the quiet hours. Each attempt is a ``DeliveryAttempt`` row for staff.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from api.logs import bound_request_id
from api.models import Delivery, DeliveryAttempt, Notice, User
from api.models.notices import DeliveryStatus
from notifications.channels.base import IdempotencyKey, LookupChannel, Outcome, OutcomeKind
from notifications.kinds import NoticeKind
from notifications.rules import SMS, WECHAT, QuietHours, RetryPolicy, after_attempt, settle_rate_limit
from notifications.templates import NoticeRenderError, NoticeTemplates

log = logging.getLogger("jianshen.notifications")
Clock = Callable[[], dt.datetime]
LOST = "LOST"  # the outcome of an attempt whose dispatcher died before it could record the provider's answer


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def key_of(notice: Notice, user: User, channel: str) -> IdempotencyKey:
    """The idempotency key of one notice to one person on one channel: what the provider echoes (DESIGN.md §5)."""
    return IdempotencyKey(event_id=f"notice-{notice.id}", recipient_id=str(user.id), channel=channel)


def address_of(user: User, channel: str) -> str:
    return (user.openid if channel == WECHAT else user.phone) or ""


@dataclass
class DispatchConfig:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    quiet: QuietHours | None = None
    lease_seconds: float = 120.0  # longer than any one provider call with its timeout
    batch: int = 50
    concurrency: int = 8
    long_term_subscription: bool = False  # 长期订阅 (政务民生 accounts): no one-time consent needed
    # After a lost attempt, how long the provider's records may stay unreadable before the message is sent again
    # anyway (a repeated notice is better than a lost one), seconds.
    lookup_patience: float = 3600.0


class Dispatcher:
    def __init__(
        self,
        channels: Mapping[str, Any],
        templates: NoticeTemplates,
        config: DispatchConfig | None = None,
        *,
        sms_provider: str | None = None,
        clock: Clock = utcnow,
        take_consent: Callable[[int, str], Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.channels = dict(channels)  # "wechat" → WechatSubscribeChannel, "sms" → an SMS channel
        self.templates = templates
        self.config = config or DispatchConfig()
        self.sms_provider = sms_provider
        self.clock = clock
        self.rng = rng or random.Random()
        if take_consent is None:
            from api.services.consents import take_consent as default_take_consent

            take_consent = default_take_consent
        self.take_consent = take_consent

    # -- claiming -------------------------------------------------------------------------------------------------

    async def due_ids(self, limit: int | None = None) -> list[int]:
        """Deliveries that are due now, or whose dispatcher died holding them (expired lease)."""
        now = self.clock()
        query = Delivery.filter(
            Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=DeliveryStatus.SENDING, lease_until__lt=now)
        )
        return list(await query.order_by("next_attempt_at", "id").limit(limit or self.config.batch).values_list("id", flat=True))

    async def claim(self, delivery_id: int) -> str | None:
        """Take the delivery for this dispatcher; the lease token, or None when it is not due or someone else has it."""
        now = self.clock()
        row = await Delivery.get_or_none(id=delivery_id).values("status", "lease_owner", "lease_until", "next_attempt_at")
        if row is None:
            return None
        status = DeliveryStatus(row["status"])
        if status is DeliveryStatus.PENDING:
            if row["next_attempt_at"] > now:
                return None
        elif status is DeliveryStatus.SENDING:
            if row["lease_until"] is not None and row["lease_until"] >= now:
                return None
        else:
            return None
        token = uuid.uuid4().hex
        query = Delivery.filter(id=delivery_id, status=status)
        query = query.filter(lease_owner=row["lease_owner"]) if row["lease_owner"] else query.filter(lease_owner__isnull=True)
        changed = await query.update(
            status=DeliveryStatus.SENDING,
            lease_owner=token,
            lease_until=now + dt.timedelta(seconds=self.config.lease_seconds),
            updated_at=now,
        )
        return token if changed == 1 else None

    async def run_once(self) -> int:
        """Claim and deliver what is due now (one batch, bounded concurrency); the number of deliveries worked on."""
        ids = await self.due_ids()
        if not ids:
            return 0
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(delivery_id: int) -> int:
            async with gate:
                return await self.deliver(delivery_id)

        return sum(await asyncio.gather(*(one(i) for i in ids)))

    async def deliver(self, delivery_id: int) -> int:
        """Claim one delivery and make one attempt; 1 when this dispatcher worked on it, else 0. Never raises for a
        provider's answer; an unexpected error leaves the row to its lease expiry and the next sweep."""
        token = await self.claim(delivery_id)
        if token is None:
            return 0
        request_id = next(iter(await Delivery.filter(id=delivery_id).values_list("request_id", flat=True)), None)
        with bound_request_id(request_id):  # its lines name the request that caused the notice (api/logs.py)
            try:
                await self._attempt(delivery_id, token)
            except Exception:  # noqa: BLE001 - a bug or the database: the lease expires and the row is retried
                log.exception("delivery failed unexpectedly", extra={"fields": {"delivery_id": delivery_id}})
        return 1

    # -- one attempt ----------------------------------------------------------------------------------------------

    async def _attempt(self, delivery_id: int, token: str) -> None:
        now = self.clock()
        delivery = await Delivery.get(id=delivery_id)
        notice = await Notice.get(id=delivery.notice_id)
        user = await User.get(id=notice.recipient_id)
        if await self._settle_lost_attempt(delivery, notice, user, token, now):
            return

        channel = await self._choose(delivery, notice, user)
        if channel is None:
            tried = bool(delivery.channels_done)
            reason = "所有渠道均无法送达，仅站内通知" if tried else "用户未授权订阅消息且未绑定手机，仅站内通知"
            await self._finish(
                delivery, token,
                status=DeliveryStatus.DEAD if tried and user.is_active else DeliveryStatus.IN_APP_ONLY,
                reason=reason if user.is_active else "账号已停用，仅站内通知",
            )
            return
        if channel == SMS and self.config.quiet is not None and self.config.quiet.contains(now):
            # Not at night: wait for the morning without spending an attempt (DOMAIN.md §10, issue #5).
            await self._finish(delivery, token, status=DeliveryStatus.PENDING, next_at=self.config.quiet.next_allowed(now),
                               channel=channel)
            return

        kind = NoticeKind(notice.kind)
        from api.services.notices import stored_variables

        variables = stored_variables(notice)
        async with in_transaction():  # the attempt and its count together: a crash leaves both or neither
            last = await DeliveryAttempt.filter(delivery_id=delivery.id).order_by("-number").first()
            number = max(delivery.attempts, last.number if last else 0) + 1
            attempt = await DeliveryAttempt.create(
                delivery_id=delivery.id, number=number, channel=channel, started_at=now
            )
            await Delivery.filter(id=delivery.id, lease_owner=token).update(
                attempts=number, channel=channel, updated_at=now
            )
        delivery.attempts, delivery.channel = number, channel

        try:
            if channel == WECHAT:
                message = self.templates.wechat(kind, variables)
            else:
                message = self.templates.sms(kind, variables, self.sms_provider or "aliyun")
        except (NoticeRenderError, KeyError, ValueError) as exc:
            outcome = Outcome.permanent(f"通知模板无法生成内容：{exc}", "template")
        else:
            key = key_of(notice, user, channel)
            outcome = await self.channels[channel].send(address_of(user, channel), message, key)

        if channel == SMS:
            outcome = settle_rate_limit(outcome, other_channel_available=await self._wechat_possible(delivery, notice, user))
        finished = self.clock()
        step = after_attempt(
            outcome, attempt=number, now=finished, policy=self.config.retry, jitter=self.rng.random(),
            channel=channel, quiet=self.config.quiet,
        )
        async with in_transaction():
            await DeliveryAttempt.filter(id=attempt.id).update(
                finished_at=finished, outcome=outcome.kind.value, error_code=outcome.error_code,
                reason=outcome.reason or None, provider_message_id=outcome.provider_message_id,
            )
            if step.action == "DONE":
                await self._finish(delivery, token, status=DeliveryStatus.DELIVERED, channel=channel,
                                   message_id=outcome.provider_message_id)
            elif step.action == "RETRY":
                await self._finish(delivery, token, status=DeliveryStatus.PENDING, next_at=step.at, channel=channel,
                                   code=outcome.error_code, reason=outcome.reason)
            elif step.action == "FALLBACK":
                await self._finish(delivery, token, status=DeliveryStatus.PENDING, next_at=finished, channel=None,
                                   done=[*delivery.channels_done, channel], code=outcome.error_code,
                                   reason=outcome.reason)
            else:
                await self._finish(delivery, token, status=DeliveryStatus.DEAD, channel=channel,
                                   code=outcome.error_code, reason=step.reason or outcome.reason)
        log.info(
            "notice attempt",
            extra={"fields": {"delivery_id": delivery.id, "channel": channel, "attempt": number,
                              "outcome": outcome.kind.value, "code": outcome.error_code}},
        )

    async def _settle_lost_attempt(
        self, delivery: Delivery, notice: Notice, user: User, token: str, now: dt.datetime
    ) -> bool:
        """An attempt left unfinished was cut short by a dying dispatcher: whether the provider got it is unknown.

        Where the provider can be asked what it sent (``lookup``: Aliyun and Tencent SMS, by the idempotency key the
        message carried), it is asked before anything is sent again: the message is there → the delivery is done and
        nothing is sent; it is not → send again; the question failed → nothing is sent, the delivery waits (back-off)
        and asks again, until ``lookup_patience`` has passed since the lost attempt began: then it is sent again,
        since a repeated notice is better than a lost one. WeChat cannot be asked: a lost WeChat attempt is re-sent.
        True when the delivery is settled for now (delivered, or waiting to ask again): no attempt is to be made.
        """
        await DeliveryAttempt.filter(delivery_id=delivery.id, finished_at__isnull=True).update(
            finished_at=now, outcome=LOST, reason="发送过程中进程中断，结果未知"
        )
        last = await DeliveryAttempt.filter(delivery_id=delivery.id).order_by("-number").first()
        if last is None or last.outcome != LOST:
            return False
        channel = self.channels.get(last.channel)
        if not isinstance(channel, LookupChannel):
            await DeliveryAttempt.filter(id=last.id).update(reason="发送过程中进程中断，结果未知，将重新发送")
            return False
        since = last.started_at - dt.timedelta(minutes=1)  # the provider's clock may run a little behind ours
        found = await channel.lookup(address_of(user, last.channel), key_of(notice, user, last.channel), since)
        if found is None:
            await DeliveryAttempt.filter(id=last.id).update(
                reason="发送过程中进程中断；服务商发送记录中没有此消息，将重新发送"
            )
            return False
        if found.kind is OutcomeKind.DELIVERED:
            async with in_transaction():
                await DeliveryAttempt.filter(id=last.id).update(
                    outcome=OutcomeKind.DELIVERED.value, provider_message_id=found.provider_message_id,
                    reason=f"发送过程中进程中断；{found.reason}，不再重发",
                )
                await self._finish(delivery, token, status=DeliveryStatus.DELIVERED, channel=last.channel,
                                   message_id=found.provider_message_id)
            log.info("lost attempt found delivered", extra={"fields": {"delivery_id": delivery.id}})
            return True
        if (now - last.started_at).total_seconds() > self.config.lookup_patience:
            await DeliveryAttempt.filter(id=last.id).update(
                reason=f"发送过程中进程中断；长时间无法查询服务商发送记录（{found.reason}），将重新发送"
            )
            return False
        delay = found.retry_after or self.config.retry.backoff(max(1, delivery.attempts), self.rng.random())
        await self._finish(
            delivery, token, status=DeliveryStatus.PENDING, next_at=now + dt.timedelta(seconds=delay),
            channel=last.channel, code=found.error_code, reason=f"上次发送结果未知，{found.reason}，稍后再查",
        )
        return True

    async def _wechat_possible(self, delivery: Delivery, notice: Notice, user: User) -> bool:
        if WECHAT not in self.channels or WECHAT in delivery.channels_done or not user.openid:
            return False
        if self.config.long_term_subscription or delivery.wechat_consent_taken:
            return True
        from api.models import SubscribeConsent

        template_id = self.templates.wechat_template_id(NoticeKind(notice.kind))
        return await SubscribeConsent.exists(user_id=user.id, template_id=template_id, remaining__gt=0)

    async def _choose(self, delivery: Delivery, notice: Notice, user: User) -> str | None:
        """The channel of this attempt: the current one while it is being retried, else the next one that can serve.
        None for a deactivated account, also mid-retry: an account switched off is sent nothing more."""
        if not user.is_active:
            return None
        if delivery.channel and delivery.channel not in delivery.channels_done:
            return delivery.channel
        if WECHAT in self.channels and WECHAT not in delivery.channels_done and user.openid:
            if self.config.long_term_subscription or delivery.wechat_consent_taken:
                return WECHAT
            template_id = self.templates.wechat_template_id(NoticeKind(notice.kind))
            async with in_transaction():
                # Spend the consent and remember it together: a retry after a crash does not spend a second one.
                if await self.take_consent(user.id, template_id):
                    await Delivery.filter(id=delivery.id).update(wechat_consent_taken=True)
                    delivery.wechat_consent_taken = True
                    return WECHAT
        if SMS in self.channels and SMS not in delivery.channels_done and user.phone:
            return SMS
        return None

    async def _finish(
        self,
        delivery: Delivery,
        token: str,
        *,
        status: DeliveryStatus,
        next_at: dt.datetime | None = None,
        channel: str | None = None,
        done: list[str] | None = None,
        message_id: str | None = None,
        code: str | None = None,
        reason: str | None = None,
    ) -> None:
        now = self.clock()
        values: dict[str, Any] = {
            "status": status, "lease_owner": None, "lease_until": None, "updated_at": now, "channel": channel,
        }
        if next_at is not None:
            values["next_attempt_at"] = next_at
        if done is not None:
            values["channels_done"] = done
        if message_id is not None:
            values["provider_message_id"] = message_id
        if code is not None or reason is not None:
            values["last_error_code"] = code
            values["last_error"] = reason
        changed = await Delivery.filter(id=delivery.id, lease_owner=token).update(**values)
        if changed != 1:
            log.warning("delivery lease lost before finishing", extra={"fields": {"delivery_id": delivery.id}})


async def resend(delivery_id: int, now: dt.datetime) -> bool:
    """Staff re-send a dead (or in-app-only) delivery: all channels may be tried again. False when it is not dead."""
    changed = await Delivery.filter(
        id=delivery_id, status__in=[DeliveryStatus.DEAD, DeliveryStatus.IN_APP_ONLY]
    ).update(
        status=DeliveryStatus.PENDING, next_attempt_at=now, channels_done=[], channel=None,
        last_error=None, last_error_code=None, updated_at=now,
    )
    return changed == 1


# -- waking ----------------------------------------------------------------------------------------------------------

_wakers: list[Callable[[], Any]] = []


def register_waker(waker: Callable[[], Any]) -> Callable[[], None]:
    """The app registers how to say "look now" (an in-process event, or an arq enqueue); returns the unregister."""
    _wakers.append(waker)
    return lambda: _wakers.remove(waker) if waker in _wakers else None


async def wake() -> None:
    """Called after a commit that wrote notices. Best effort: the sweep finds anything a lost wake-up missed."""
    for waker in list(_wakers):
        try:
            result = waker()
            if asyncio.iscoroutine(result):
                await result
        except Exception:  # noqa: BLE001 - never fail the user's request over a wake-up
            log.warning("dispatcher wake-up failed; the sweep will pick the notice up", exc_info=True)


class InProcessRunner:
    """Embedded mode: the dispatcher runs in the API process, woken after commits and sweeping every few seconds."""

    def __init__(self, dispatcher: Dispatcher, *, interval: float = 5.0) -> None:
        self.dispatcher = dispatcher
        self.interval = interval
        self._event = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._unregister: Callable[[], None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._event.set()

    async def start(self) -> None:
        self._unregister = register_waker(self.wake)
        self._task = asyncio.create_task(self._loop(), name="notice-dispatcher")

    async def stop(self, grace: float = 15.0) -> None:
        """Let the current pass finish, then stop. Cancelling it mid-transaction could leave a database connection
        checked out, and closing the pool then waits for it forever (a hung shutdown); cancel only past ``grace``."""
        if self._unregister:
            self._unregister()
        await stop_loop(self, grace)

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                while not self._stopping and await self.dispatcher.run_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep the loop alive; the rows stay pending
                log.exception("dispatcher sweep failed")
            if self._stopping:
                return
            try:
                await asyncio.wait_for(self._event.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._event.clear()


async def stop_loop(runner: Any, grace: float) -> None:
    """Stop a background loop that checks ``runner._stopping`` between passes: ask, wake it, wait up to ``grace``
    seconds for the pass under way to end, and only then cancel it."""
    runner._stopping = True
    runner.wake()
    task = runner._task
    if task is None:
        return
    try:
        await asyncio.wait_for(asyncio.shield(task), grace)
    except asyncio.TimeoutError:
        log.warning("background loop did not stop within %s s; cancelling it", grace)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
