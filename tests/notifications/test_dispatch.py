"""The outbox and the dispatcher, end to end: a case transition through the API writes the notice in its transaction,
and the dispatcher delivers it by WeChat subscribe message or SMS to the fake providers (issue #5).

The app runs without its own dispatcher here: each test drives one with the test's clock, so that retries, windows and
quiet hours are exact and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from api.app import create_app
from api.models import Delivery, DeliveryAttempt, Notice, SubscribeConsent, User
from api.models.notices import DeliveryStatus
from api.settings import Settings
from notifications.setup import build_dispatcher
from tests.api.flows import act, act_ok, submit_ok
from tests.conftest import FrozenClock
from tests.factories import APPLICANT_PHONE as PHONE
from tests.fakes.wechat import FakeWeChat
from tests.notifications.sms_setup import SDK_APP_ID, SIGN, TENCENT_KEY

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
OPENID = "o-applicant-openid-0001"
ACCEPTED_TEMPLATE = "WECHAT_TEMPLATE_CASE_ACCEPTED"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(dt.datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))


@pytest.fixture
def fake_wechat():
    with FakeWeChat.start() as fake:
        yield fake


@pytest.fixture
def settings(database_url, tmp_path, fake_wechat, tencent_fake) -> Settings:
    return Settings(
        database_url=database_url,
        upload_dir=tmp_path / "uploads",
        **fake_wechat.settings_overrides(),
        sms_provider="tencent",
        sms_sign_name=SIGN,
        tencent_secret_id=TENCENT_KEY[0],
        tencent_secret_key=TENCENT_KEY[1],
        tencent_sms_sdk_app_id=SDK_APP_ID,
        tencent_sms_endpoint=tencent_fake.host,
        tencent_sms_scheme="http",
        # Far above a send to the local fake: a busy machine (make test runs a worker per core) must not turn a send
        # into a timeout. The timeout itself is tested in test_tencent.py / test_aliyun.py.
        sms_timeout=10.0,
        notice_retry_base_seconds=30,
    )


@pytest.fixture
async def app(settings, clock):
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    from api.services.calendar import invalidate_calendar_cache

    EXECUTOR_CACHE.clear()
    invalidate_calendar_cache()
    application = create_app(settings, clock=clock, run_dispatcher=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def dispatcher(settings, clock, app):
    return build_dispatcher(settings, clock=clock)


async def reach(world, *, sms: bool = True, openid: str | None = None) -> User:
    """How the applicant can be reached: its verified phone (the factory's) and / or a WeChat openid. Without SMS the
    phone is not bound any more, so the applicant still acts for its company only through an earlier session."""
    user = world.users["applicant"]
    await User.filter(id=user.id).update(openid=openid)
    if not sms:
        await User.filter(id=user.id).update(phone=None)
    return await User.get(id=user.id)


async def accept_one(gql, client) -> str:
    case = (await submit_ok(gql, client, ("A",)))["A"]
    await act_ok(gql, "AcceptCase", "clerk", caseId=case["id"])
    return case["id"]


async def only_delivery() -> Delivery:
    (delivery,) = await Delivery.all()
    return delivery


async def attempts() -> list[tuple[str, str | None, str | None]]:
    return [(a.channel, a.outcome, a.error_code) for a in await DeliveryAttempt.all().order_by("id")]


async def test_acceptance_notice_written_with_the_transition_and_sent_by_sms_once(gql, client, world, dispatcher, tencent_fake):
    await reach(world)
    await accept_one(gql, client)
    (notice,) = await Notice.all()
    assert (notice.kind, notice.title) == ("case_accepted", "申请已受理")
    assert "已由" in notice.body and "受理" in notice.body
    assert await dispatcher.run_once() == 1
    delivery = await only_delivery()
    assert (delivery.status, delivery.channel, delivery.attempts) == (DeliveryStatus.DELIVERED, "sms", 1)
    (sms,) = tencent_fake.accepted
    assert sms.phone == PHONE and sms.idempotency == f"notice-{notice.id}:{notice.recipient_id}:sms"
    assert await dispatcher.run_once() == 0  # nothing due: never twice
    assert len(tencent_fake.accepted) == 1


async def test_in_app_notices_read_and_marked(gql, client, world, dispatcher):
    await reach(world)
    await accept_one(gql, client)
    data = await gql("{ unreadNoticeCount notices(first: 5) { nodes { id title kind readAt subjectId } } }",
                     as_user="applicant")
    assert data["unreadNoticeCount"] == 1
    (node,) = data["notices"]["nodes"]
    assert node["kind"] == "CASE_ACCEPTED" and node["readAt"] is None and node["subjectId"]
    # Nobody else sees it; marking another's notice changes nothing and says nothing.
    other = await gql("{ unreadNoticeCount notices(first: 5) { nodes { id } } }", as_user="clerk")
    assert other == {"unreadNoticeCount": 0, "notices": {"nodes": []}}
    marked = await gql("mutation($i: MarkNoticesReadInput) { markNoticesRead(input: $i) { marked unreadCount errors { code } } }",
                       {"i": {"noticeIds": [node["id"]]}}, as_user="clerk")
    assert marked["markNoticesRead"] == {"marked": 0, "unreadCount": 0, "errors": []}
    for _ in range(2):  # safe to retry
        marked = await gql("mutation($i: MarkNoticesReadInput) { markNoticesRead(input: $i) { unreadCount errors { code } } }",
                           {"i": {"noticeIds": [node["id"]]}}, as_user="applicant")
        assert marked["markNoticesRead"] == {"unreadCount": 0, "errors": []}


async def test_refused_transition_writes_no_notice_and_a_retry_writes_one(gql, client, world):
    await reach(world)
    case = (await submit_ok(gql, client, ("A",)))["A"]
    payload = await act(gql, "StartCase", "planner", caseId=case["id"])  # not accepted yet: refused
    assert payload["errors"]
    assert await Notice.all().count() == 0
    for _ in range(2):
        await act_ok(gql, "AcceptCase", "clerk", caseId=case["id"], requestId="accept-1")
    assert await Notice.all().count() == 1 and await Delivery.all().count() == 1


async def test_wechat_when_consent_is_held_and_the_consent_is_spent(gql, client, world, dispatcher, fake_wechat, tencent_fake):
    user = await reach(world, openid=OPENID)
    fake_wechat.grant_consent(OPENID, ACCEPTED_TEMPLATE)
    await SubscribeConsent.create(user_id=user.id, template_id=ACCEPTED_TEMPLATE, remaining=1)
    case_id = await accept_one(gql, client)
    await dispatcher.run_once()
    delivery = await only_delivery()
    assert (delivery.status, delivery.channel) == (DeliveryStatus.DELIVERED, "wechat")
    (sent,) = fake_wechat.sent
    assert sent.openid == OPENID and sent.template_id == ACCEPTED_TEMPLATE
    assert case_id in sent.page  # the page opens the case
    assert all(len(v) <= 20 for k, v in sent.data.items() if k.startswith("thing"))
    assert tencent_fake.accepted == []
    assert (await SubscribeConsent.get(user_id=user.id)).remaining == 0


async def test_43101_falls_back_to_sms(gql, client, world, dispatcher, fake_wechat, tencent_fake):
    user = await reach(world, openid=OPENID)
    fake_wechat.add_openid(OPENID)  # WeChat knows the user, but no consent there: 43101
    await SubscribeConsent.create(user_id=user.id, template_id=ACCEPTED_TEMPLATE, remaining=1)
    await accept_one(gql, client)
    await dispatcher.run_once()  # WeChat: 43101 → fallback
    await dispatcher.run_once()  # SMS
    delivery = await only_delivery()
    assert (delivery.status, delivery.channel, delivery.channels_done) == (DeliveryStatus.DELIVERED, "sms", ["wechat"])
    assert await attempts() == [("wechat", "FALLBACK", "43101"), ("sms", "DELIVERED", None)]
    assert len(tencent_fake.accepted) == 1


async def test_sms_500_is_retried_after_the_back_off_and_delivered_once(gql, client, world, dispatcher, tencent_fake, clock):
    await reach(world)
    await accept_one(gql, client)
    tencent_fake.http_error_next(500)
    await dispatcher.run_once()
    delivery = await only_delivery()
    assert delivery.status is DeliveryStatus.PENDING and delivery.next_attempt_at > clock.now
    assert await dispatcher.run_once() == 0  # not before its time
    clock.set(delivery.next_attempt_at + dt.timedelta(seconds=1))
    await dispatcher.run_once()
    assert (await only_delivery()).status is DeliveryStatus.DELIVERED
    assert len(tencent_fake.accepted) == 1
    assert [a[1] for a in await attempts()] == ["RETRY_AFTER", "DELIVERED"]


async def test_sms_rate_limit_waits_for_its_window(gql, client, world, dispatcher, tencent_fake, clock):
    await reach(world)
    await accept_one(gql, client)
    tencent_fake.fail_next("LimitExceeded.PhoneNumberDailyLimit", "单个手机号日下发短信条数超过设定的上限")
    await dispatcher.run_once()
    delivery = await only_delivery()
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.last_error_code == "LimitExceeded.PhoneNumberDailyLimit"
    # Tencent's daily limit ends at midnight in China; the quiet hours then hold SMS until 08:00.
    assert delivery.next_attempt_at.astimezone(SHANGHAI) == dt.datetime(2026, 11, 25, 8, 0, tzinfo=SHANGHAI)
    clock.set(delivery.next_attempt_at)
    await dispatcher.run_once()
    assert (await only_delivery()).status is DeliveryStatus.DELIVERED


async def test_no_sms_at_night(gql, client, world, dispatcher, tencent_fake, clock):
    await reach(world)
    clock.set(dt.datetime(2026, 11, 24, 23, 0, tzinfo=SHANGHAI))
    await accept_one(gql, client)
    await dispatcher.run_once()
    delivery = await only_delivery()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)  # waiting costs no attempt
    assert delivery.next_attempt_at.astimezone(SHANGHAI) == dt.datetime(2026, 11, 25, 8, 0, tzinfo=SHANGHAI)
    assert tencent_fake.accepted == []
    clock.set(dt.datetime(2026, 11, 25, 8, 0, tzinfo=SHANGHAI))
    await dispatcher.run_once()
    assert len(tencent_fake.accepted) == 1


async def test_permanent_failure_is_dead_visible_to_staff_and_resendable(gql, client, world, dispatcher, tencent_fake):
    await reach(world)
    await accept_one(gql, client)
    tencent_fake.fail_next("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配")
    await dispatcher.run_once()
    assert (await only_delivery()).status is DeliveryStatus.DEAD
    query = """{ notificationDeliveries(filter: {status: DEAD}) { nodes { id status channel recipient lastErrorCode
                 attemptLog { number channel outcome errorCode reason } } } }"""
    (row,) = (await gql(query, as_user="supervisor"))["notificationDeliveries"]["nodes"]
    assert row["lastErrorCode"] == "FailedOperation.TemplateIncorrectOrUnapproved"
    assert row["recipient"].endswith(PHONE[:3] + "****" + PHONE[-4:]) and PHONE not in row["recipient"]
    assert row["attemptLog"][0]["outcome"] == "PERMANENT_FAILURE"
    denied = await gql.errors(query, as_user="applicant")
    assert denied[0]["extensions"]["code"] == "PERMISSION_DENIED"
    resend = "mutation($i: ResendNotificationInput!) { resendNotification(input: $i) { delivery { status } errors { code } } }"
    result = await gql(resend, {"i": {"deliveryId": row["id"]}}, as_user="supervisor")
    assert result["resendNotification"] == {"delivery": {"status": "PENDING"}, "errors": []}
    await dispatcher.run_once()
    assert (await only_delivery()).status is DeliveryStatus.DELIVERED
    again = await gql(resend, {"i": {"deliveryId": row["id"]}}, as_user="supervisor")
    assert again["resendNotification"]["errors"][0]["code"] == "CONFLICT"  # delivered: nothing to resend


async def test_nobody_reachable_keeps_the_in_app_notice(gql, client, world, dispatcher, tencent_fake):
    case = (await submit_ok(gql, client, ("A",)))["A"]
    await reach(world, sms=False)
    await act_ok(gql, "AcceptCase", "clerk", caseId=case["id"])
    await dispatcher.run_once()
    assert (await only_delivery()).status is DeliveryStatus.IN_APP_ONLY
    assert tencent_fake.accepted == []


async def test_a_dispatcher_that_died_mid_send_is_taken_over_after_its_lease(gql, client, world, settings, clock, tencent_fake):
    await reach(world)
    await accept_one(gql, client)
    dying = build_dispatcher(settings, clock=clock)
    delivery = await only_delivery()
    token = await dying.claim(delivery.id)
    await DeliveryAttempt.create(delivery_id=delivery.id, number=1, channel="sms", started_at=clock.now)
    await Delivery.filter(id=delivery.id).update(attempts=1, channel="sms")  # as the dying one left it
    survivor = build_dispatcher(settings, clock=clock)
    assert await survivor.run_once() == 0  # the lease still holds
    clock.set(clock.now + dt.timedelta(seconds=settings.notice_lease_seconds + 1))
    assert await survivor.run_once() == 1
    assert (await only_delivery()).status is DeliveryStatus.DELIVERED
    assert [a[1] for a in await attempts()] == ["LOST", "DELIVERED"]
    assert token


async def test_two_dispatchers_deliver_each_notice_once(gql, client, world, settings, clock, tencent_fake):
    await reach(world)
    for _ in range(6):
        case = (await submit_ok(gql, client, ("C",)))["C"]
        await act_ok(gql, "AcceptCase", "clerk", caseId=case["id"])
        await act_ok(gql, "StartCase", "water", caseId=case["id"])
        await act_ok(gql, "DecideCase", "water", caseId=case["id"], decision="DISAPPROVED", reason="材料不符合要求")
    first, second = build_dispatcher(settings, clock=clock), build_dispatcher(settings, clock=clock)
    worked = await asyncio.gather(first.run_once(), second.run_once())
    assert sum(worked) == 12
    keys = [sms.idempotency for sms in tencent_fake.accepted]
    assert len(keys) == 12 == len(set(keys))
    assert await Delivery.filter(status=DeliveryStatus.DELIVERED).count() == 12


async def test_due_notices_are_found_whatever_the_zone_of_now(gql, client, world, dispatcher, tencent_fake, clock):
    """The real clock is in UTC while SQLite keeps times as +08:00 text: a due notice must still be due (api/db.py)."""
    clock.set(dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.timezone.utc))  # 10:00 in Shanghai
    await reach(world)
    await accept_one(gql, client)
    clock.set(clock.now + dt.timedelta(seconds=1))
    assert await dispatcher.run_once() == 1
    assert len(tencent_fake.accepted) == 1
