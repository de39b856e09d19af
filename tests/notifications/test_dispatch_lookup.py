"""A dispatcher that died between the provider's answer and our commit: the next one asks the provider first (issue #5).

The crash is reproduced as it happens: the dying dispatcher claims the delivery, writes its attempt and has the SMS
sent (or not) with the delivery's idempotency key, then never finishes. After its lease, a survivor takes over and must
neither lose the notice nor send it twice. The fixtures are those of ``test_dispatch`` (app, fake Tencent server).
"""

from __future__ import annotations

import datetime as dt

from api.models import Delivery, DeliveryAttempt, Notice, User
from api.models.notices import DeliveryStatus
from api.services.notices import stored_variables
from notifications.dispatch import Dispatcher, key_of
from notifications.kinds import NoticeKind
from notifications.setup import build_dispatcher
from tests.notifications.test_dispatch import (  # noqa: F401 - fixtures
    accept_one,
    app,
    attempts,
    clock,
    fake_wechat,
    only_delivery,
    reach,
    settings,
)


async def survivor_of_a_crash(gql, client, world, settings, clock, *, provider_accepts: bool) -> Dispatcher:
    """An acceptance notice, and what a worker SIGKILLed mid-send leaves of it: a claimed delivery, an unfinished
    attempt, the message sent or not; then the lease runs out. Returns the dispatcher that takes over."""
    await reach(world)
    await accept_one(gql, client)
    dying = build_dispatcher(settings, clock=clock)
    delivery = await only_delivery()
    assert await dying.claim(delivery.id)
    await DeliveryAttempt.create(delivery_id=delivery.id, number=1, channel="sms", started_at=clock.now)
    await Delivery.filter(id=delivery.id).update(attempts=1, channel="sms")
    if provider_accepts:
        notice = await Notice.get(id=delivery.notice_id)
        user = await User.get(id=notice.recipient_id)
        message = dying.templates.sms(NoticeKind(notice.kind), stored_variables(notice), "tencent")
        sent = await dying.channels["sms"].send(user.phone, message, key_of(notice, user, "sms"))
        assert sent.provider_message_id
    clock.set(clock.now + dt.timedelta(seconds=settings.notice_lease_seconds + 1))
    return build_dispatcher(settings, clock=clock)


def sends(fake) -> int:
    return sum(1 for request in fake.requests if request["headers"].get("X-TC-Action") == "SendSms")


async def test_a_message_the_provider_got_before_the_crash_is_not_sent_again(
    gql, client, world, settings, clock, tencent_fake
):
    survivor = await survivor_of_a_crash(gql, client, world, settings, clock, provider_accepts=True)

    assert await survivor.run_once() == 1

    delivery = await only_delivery()
    (sms,) = tencent_fake.accepted
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)
    assert delivery.provider_message_id == sms.message_id
    (attempt,) = await DeliveryAttempt.all()
    assert attempt.outcome == "DELIVERED" and "进程中断" in attempt.reason and "不再重发" in attempt.reason
    assert sends(tencent_fake) == 1


async def test_a_message_the_provider_never_got_is_sent_once(gql, client, world, settings, clock, tencent_fake):
    survivor = await survivor_of_a_crash(gql, client, world, settings, clock, provider_accepts=False)

    await survivor.run_once()

    assert (await only_delivery()).status is DeliveryStatus.DELIVERED
    assert [a[1] for a in await attempts()] == ["LOST", "DELIVERED"]
    assert "没有此消息" in (await DeliveryAttempt.get(number=1)).reason
    assert len(tencent_fake.accepted) == 1
    actions = [request["headers"].get("X-TC-Action") for request in tencent_fake.requests]
    assert actions == ["PullSmsSendStatusByPhoneNumber", "SendSms"]


async def test_when_the_provider_cannot_be_asked_nothing_is_sent_until_it_answers(
    gql, client, world, settings, clock, tencent_fake
):
    survivor = await survivor_of_a_crash(gql, client, world, settings, clock, provider_accepts=True)
    tencent_fake.fail_next("InternalError.Timeout")

    await survivor.run_once()

    delivery = await only_delivery()
    assert delivery.status is DeliveryStatus.PENDING and delivery.next_attempt_at > clock.now
    assert delivery.last_error_code == "InternalError.Timeout" and "稍后再查" in delivery.last_error
    assert sends(tencent_fake) == 1 and delivery.attempts == 1
    assert await survivor.run_once() == 0  # not before its time
    clock.set(delivery.next_attempt_at + dt.timedelta(seconds=1))
    await survivor.run_once()
    assert (await only_delivery()).status is DeliveryStatus.DELIVERED
    assert len(tencent_fake.accepted) == 1 and sends(tencent_fake) == 1


async def test_a_provider_unreadable_past_the_patience_gets_the_message_again(
    gql, client, world, settings, clock, tencent_fake
):
    """At least once: when the records stay unreadable for long, a repeat is better than a loss."""
    survivor = await survivor_of_a_crash(gql, client, world, settings, clock, provider_accepts=False)
    tencent_fake.fail_next("InternalError.Timeout")
    await survivor.run_once()
    clock.set(clock.now + dt.timedelta(seconds=survivor.config.lookup_patience + 1))
    tencent_fake.fail_next("InternalError.Timeout")

    await survivor.run_once()

    assert (await only_delivery()).status is DeliveryStatus.DELIVERED
    assert "长时间无法查询" in (await DeliveryAttempt.get(number=1)).reason
    assert len(tencent_fake.accepted) == 1
