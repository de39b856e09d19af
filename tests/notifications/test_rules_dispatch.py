"""Rules of the outbox that no other test pinned: each test here fails when its one rule is broken (issue #10, "Rules
nobody tests"). The fixtures are those of tests/notifications/test_dispatch.py: the app without its own dispatcher,
one driven by the test's clock, the fake Tencent SMS and WeChat servers."""

from __future__ import annotations

import asyncio
import datetime as dt

from api.domain.accounts import Role
from api.models import Delivery, User
from api.models.notices import DeliveryStatus
from notifications.setup import build_dispatcher
from tests.api.flows import act_ok, submit_ok
from tests.notifications.test_dispatch import (  # noqa: F401 - fixtures
    accept_one,
    app,
    clock,
    dispatcher,
    fake_wechat,
    only_delivery,
    reach,
    settings,
)

DELIVERIES = "{ notificationDeliveries { nodes { id status recipient } } }"
RESEND = "mutation($i: ResendNotificationInput!) { resendNotification(input: $i) { delivery { status } errors { code } } }"


async def test_only_supervisors_and_admins_read_notice_delivery_records(gql, client, world, dispatcher, tencent_fake):
    """Who was told what, when and on which number is for supervisors and admins: not for the window, the
    departments or the people served — not even their own."""
    await world.add_user("admin", "钱管理", Role.ADMIN)
    await reach(world)
    await accept_one(gql, client)
    for user in ("supervisor", "admin"):
        assert len((await gql(DELIVERIES, as_user=user))["notificationDeliveries"]["nodes"]) == 1, user
    for user in ("applicant", "citizen", "clerk", "planner", "water"):
        errors = await gql.errors(DELIVERIES, as_user=user)
        assert errors[0]["extensions"]["code"] == "PERMISSION_DENIED", user
    from api.domain.ids import to_global_id

    delivery_id = to_global_id("Delivery", (await only_delivery()).id)
    for user in ("applicant", "clerk", "planner"):
        refused = (await gql(RESEND, {"i": {"deliveryId": delivery_id}}, as_user=user))["resendNotification"]
        assert refused["errors"][0]["code"] == "PERMISSION_DENIED", user


async def test_resend_leaves_a_pending_or_in_flight_delivery_alone(gql, client, world, settings, clock, tencent_fake):
    """A re-send is for a dead delivery. One waiting out its back-off keeps its time and its error; one a dispatcher
    holds keeps its lease, and that dispatcher's result stands."""
    from api.domain.ids import to_global_id

    await reach(world)
    await accept_one(gql, client)
    sender = build_dispatcher(settings, clock=clock)
    tencent_fake.http_error_next(500)
    assert await sender.run_once() == 1
    waiting = await only_delivery()
    assert waiting.status is DeliveryStatus.PENDING and waiting.next_attempt_at > clock.now
    gid = to_global_id("Delivery", waiting.id)

    payload = (await gql(RESEND, {"i": {"deliveryId": gid}}, as_user="supervisor"))["resendNotification"]
    assert payload["delivery"]["status"] == "PENDING"
    after = await only_delivery()
    assert (after.next_attempt_at, after.last_error_code, after.channel, after.attempts) == (
        waiting.next_attempt_at, waiting.last_error_code, waiting.channel, waiting.attempts
    )

    clock.set(waiting.next_attempt_at)
    tencent_fake.hang_next()
    in_flight = asyncio.create_task(sender.run_once())  # claimed, its provider call under way
    await provider_holds_a_request(tencent_fake, 2)
    held = await only_delivery()
    assert held.status is DeliveryStatus.SENDING and held.lease_owner
    payload = (await gql(RESEND, {"i": {"deliveryId": gid}}, as_user="supervisor"))["resendNotification"]
    assert payload["delivery"]["status"] == "SENDING"
    still = await only_delivery()
    assert (still.status, still.lease_owner, still.lease_until, still.channel) == (
        held.status, held.lease_owner, held.lease_until, held.channel
    )
    assert await build_dispatcher(settings, clock=clock).run_once() == 0  # nobody else may take it meanwhile
    tencent_fake.release()
    assert await in_flight == 1
    done = await only_delivery()  # the holder's own result: its call failed, so it waits to retry
    assert (done.status, done.lease_owner, done.attempts) == (DeliveryStatus.PENDING, None, 2)
    assert tencent_fake.accepted == []


async def provider_holds_a_request(fake, count: int) -> None:
    """Wait (bounded) until the fake provider has received ``count`` requests: it is holding the last one."""
    for _ in range(1000):
        if len(fake.requests) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the provider never got the request")


async def test_a_deactivated_recipient_gets_no_notice(gql, client, world, dispatcher, tencent_fake, clock):
    """An account switched off is sent nothing more: neither a first attempt nor the retry of one that failed while
    it was still active. The in-app notice stays."""
    await reach(world)
    await accept_one(gql, client)
    await User.filter(id=world.users["applicant"].id).update(is_active=False)
    await dispatcher.run_once()
    first = await only_delivery()
    assert (first.status, first.last_error) == (DeliveryStatus.IN_APP_ONLY, "账号已停用，仅站内通知")
    assert tencent_fake.accepted == []

    await User.filter(id=world.users["applicant"].id).update(is_active=True)
    await Delivery.all().delete()
    case = (await submit_ok(gql, client, ("C",)))["C"]  # another case: a new notice
    await act_ok(gql, "AcceptCase", "clerk", caseId=case["id"])
    tencent_fake.http_error_next(500)
    await dispatcher.run_once()
    retrying = await only_delivery()
    assert retrying.status is DeliveryStatus.PENDING and retrying.channel == "sms"
    await User.filter(id=world.users["applicant"].id).update(is_active=False)
    clock.set(retrying.next_attempt_at)
    await dispatcher.run_once()
    assert (await only_delivery()).status is DeliveryStatus.IN_APP_ONLY
    assert tencent_fake.accepted == []


async def test_a_dispatcher_whose_lease_expired_cannot_overwrite_the_new_owners_result(
    gql, client, world, settings, clock, tencent_fake
):
    """The first dispatcher's provider call hangs past its lease; a second takes the delivery over and delivers it.
    When the first one's call finally times out, its "retry later" must not undo the second one's DELIVERED."""
    await reach(world)
    await accept_one(gql, client)
    slow, fast = build_dispatcher(settings, clock=clock), build_dispatcher(settings, clock=clock)
    tencent_fake.hang_next()
    hung = asyncio.create_task(slow.run_once())
    await provider_holds_a_request(tencent_fake, 1)
    clock.set(clock.now + dt.timedelta(seconds=settings.notice_lease_seconds + 1))
    assert await fast.run_once() == 1
    assert (await only_delivery()).status is DeliveryStatus.DELIVERED
    assert await hung == 1  # the slow one's timeout came back: RETRY_AFTER, with a token no longer valid
    final = await only_delivery()
    assert (final.status, final.lease_owner) == (DeliveryStatus.DELIVERED, None)
    assert len(tencent_fake.accepted) == 1
    tencent_fake.release()
