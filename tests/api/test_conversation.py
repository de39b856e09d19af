"""The conversation's plumbing (issue #11 §2), through the public GraphQL API: sending with a retry key, the backward
connection, the read marker, cards resolved through the reader's permissions, SYSTEM messages written with every
notice, 在线咨询 with the staff's queue and answers, and the live subscription (embedded, and two processes with Redis).

The understanding is not tested here (tests of api/services/assistant.py do that): these tests rely only on its
fallback — every answer offers CONSULT_STAFF — or on hand-made CardRefs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json

import httpx
import pytest
import websockets

from api.domain.ids import to_global_id
from api.models import AgentAuthorization, Case, Certificate, Complaint, ConversationMessage, Notice
from api.services import assistant
from api.services.agents import load_viewer
from api.services.conversation import visible_cards
from api.settings import Settings
from notifications.kinds import NoticeKind
from tests.api.flows import act_ok, submit_ok
from tests.api.test_subscriptions import api_process, wait_subscribed
from tests.conftest import operation
from tests.factories import shanghai

RATE = 5  # messages a minute in this file: small, to test the limit without sending many


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(database_url=database_url, upload_dir=tmp_path / "uploads", esign_dir=tmp_path / "esign",
                    certificate_dir=tmp_path / "certificates", conversation_messages_per_minute=RATE)


@pytest.fixture(autouse=True)
def monday(clock):
    clock.set(shanghai(2026, 9, 28, 10))


async def send(gql, text: str, key: str, user: str = "applicant") -> dict:
    data = await gql.op("SendMessage", {"input": {"text": text, "clientMessageId": key}}, as_user=user)
    return data["sendMessage"]


async def conversation(gql, user: str = "applicant", **variables) -> dict:
    return (await gql.op("Conversation", variables, as_user=user))["conversation"]


def codes(payload: dict) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in payload["errors"]]


# -- sending and reading -----------------------------------------------------------------------------------------


async def test_a_message_and_its_answer_are_stored_together_newest_at_the_bottom(gql):
    sent = await send(gql, "  我想问个问题  ", "m-1")
    assert sent["errors"] == [] and sent["duplicate"] is False
    assert sent["message"]["author"] == "USER" and sent["message"]["text"] == "我想问个问题"
    reply = sent["reply"]
    assert reply["author"] == "ASSISTANT" and "没有找到" in reply["text"]
    # An unknown question: the honest answer offers a person (its wording is the assistant's, tested there).
    assert [(c["__typename"], c["action"], c["caseToRate"]) for c in reply["cards"]] == [
        ("ActionCard", "CONSULT_STAFF", None)
    ]
    assert reply["cards"][0]["label"] and reply["quickReplies"]
    page = await conversation(gql)
    assert [m["id"] for m in page["nodes"]] == [sent["message"]["id"], reply["id"]]
    assert page["totalCount"] == 2 and page["unreadCount"] == 1  # one's own message is never unread
    read = (await gql.op("MarkConversationRead", {"input": {"upTo": reply["id"]}}, as_user="applicant"))
    assert read["markConversationRead"] == {"unreadCount": 0, "errors": []}
    # The marker never moves back.
    back = await gql.op("MarkConversationRead", {"input": {"upTo": sent["message"]["id"]}}, as_user="applicant")
    assert back["markConversationRead"]["unreadCount"] == 0


async def test_the_connection_pages_backwards(gql, clock, sqlite_only):
    ids = []
    for n in range(3):
        sent = await send(gql, f"问题{n}", f"p-{n}")
        ids += [sent["message"]["id"], sent["reply"]["id"]]
    newest = await conversation(gql, last=4)
    assert [m["id"] for m in newest["nodes"]] == ids[2:]
    assert newest["pageInfo"]["hasPreviousPage"] is True
    older = (await gql.op("Conversation", {"last": 4, "before": newest["pageInfo"]["startCursor"]},
                          as_user="applicant"))["conversation"]
    assert [m["id"] for m in older["nodes"]] == ids[:2] and older["pageInfo"]["hasPreviousPage"] is False


async def test_anonymous_is_refused(gql, sqlite_only):
    errors = await gql.errors("{ conversation { totalCount } }")
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    sent = (await gql(operation("SendMessage"), {"input": {"text": "你好", "clientMessageId": "a"}}))["sendMessage"]
    assert codes(sent) == [(None, "UNAUTHENTICATED")]
    errors = await gql.errors("{ consultations { totalCount } }")
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_bad_inputs_are_coded_errors_and_change_nothing(gql):
    first = await send(gql, "第一条", "k-1")
    other = await send(gql, "别人的", "k-1", user="other_applicant")
    assert other["errors"] == [] and other["message"]["id"] != first["message"]["id"]  # keys are per person
    cases = [
        (("", "k-2"), ("text", "REQUIRED")),
        (("   ", "k-2"), ("text", "REQUIRED")),
        (("字" * 501, "k-2"), ("text", "INVALID_INPUT")),
        (("你好", ""), ("clientMessageId", "REQUIRED")),
        (("你好", "x" * 101), ("clientMessageId", "INVALID_INPUT")),
        (("不是第一条", "k-1"), ("clientMessageId", "DUPLICATE_REQUEST_ID")),
    ]
    for (text, key), expected in cases:
        payload = await send(gql, text, key)
        assert codes(payload) == [expected] and payload["message"] is None, (text[:10], key[:10], payload)
    assert (await send(gql, "字" * 500, "k-3"))["errors"] == []  # the limit itself is allowed
    mark = "mutation($i: MarkConversationReadInput!) { markConversationRead(input: $i) { unreadCount errors { field code } } }"
    theirs = (await gql(mark, {"i": {"upTo": other["reply"]["id"]}}, as_user="applicant"))["markConversationRead"]
    assert theirs["errors"] == [{"field": "upTo", "code": "NOT_FOUND"}]
    bad = (await gql(mark, {"i": {"upTo": "nonsense"}}, as_user="applicant"))["markConversationRead"]
    assert bad["errors"] == [{"field": "upTo", "code": "INVALID_ID"}]
    for variables, field in (({"last": 0}, "last"), ({"last": 10_000}, "last"), ({"before": "zzz"}, "before")):
        response = await gql.raw(operation("Conversation"), variables, as_user="applicant")
        error = response.json()["errors"][0]["extensions"]
        assert error == {"code": "INVALID_INPUT", "field": field}
    assert (await conversation(gql))["totalCount"] == 4
    assert (await conversation(gql, user="other_applicant"))["unreadCount"] == 1


async def test_another_persons_messages_are_never_visible(gql):
    sent = await send(gql, "我的项目怎么样了", "mine")
    stranger = await conversation(gql, user="other_applicant")
    assert stranger["nodes"] == [] and stranger["totalCount"] == 0
    node = "query($id: ID!) { node(id: $id) { id } }"
    assert (await gql(node, {"id": sent["reply"]["id"]}, as_user="other_applicant"))["node"] is None
    assert (await gql(node, {"id": sent["reply"]["id"]}, as_user="applicant"))["node"] == {"id": sent["reply"]["id"]}


async def test_a_retried_message_sent_twenty_times_at_once_is_stored_once(gql, db_backend):
    results = await asyncio.gather(*(send(gql, "施工许可要多久", "same-key") for _ in range(20)))
    assert all(r["errors"] == [] for r in results), [r["errors"] for r in results if r["errors"]]
    assert len({(r["message"]["id"], r["reply"]["id"]) for r in results}) == 1
    assert sorted(r["duplicate"] for r in results) == [False] + [True] * 19
    assert (await conversation(gql))["totalCount"] == 2


async def test_the_rate_limit_holds_under_concurrency_and_resets_the_next_minute(gql, clock):
    results = await asyncio.gather(*(send(gql, f"第{n}个问题", f"r-{n}") for n in range(RATE + 3)))
    refused = [r for r in results if r["errors"]]
    assert len(refused) == 3 and all(codes(r) == [(None, "RATE_LIMITED")] for r in refused)
    assert (await conversation(gql))["totalCount"] == 2 * RATE
    # A retry of a stored message is answered, not counted.
    stored = next(r for r in results if not r["errors"])
    again = await send(gql, stored["message"]["text"], f"r-{stored['message']['text'][1]}")
    assert again["duplicate"] is True and again["errors"] == []
    clock.set(clock.now + dt.timedelta(minutes=1))
    assert (await send(gql, "下一分钟", "r-next"))["errors"] == []


# -- notices as SYSTEM messages, and cards ---------------------------------------------------------------------


async def accepted_case(gql, client) -> dict:
    cases = await submit_ok(gql, client, ("A",))
    return await act_ok(gql, "AcceptCase", "clerk", caseId=cases["A"]["id"])


async def test_an_accepted_case_arrives_as_a_system_message_with_its_notice(gql, client, db_backend):
    case = await accepted_case(gql, client)
    page = await conversation(gql)
    (system,) = [m for m in page["nodes"] if m["author"] == "SYSTEM"]
    notice, case_card = system["cards"]
    assert notice["__typename"] == "NoticeCard" and notice["notice"]["kind"] == "CASE_ACCEPTED"
    assert notice["notice"]["title"] in system["text"]
    assert case_card == {"__typename": "CaseCard", "case": {"id": case["id"], "code": case["code"],
                         "stateLabel": case["stateLabel"], "light": "GREEN",
                         "item": {"code": "A", "name": "建设项目用地预审与选址意见书核发"}}}
    assert page["unreadCount"] == 1
    assert (await gql("{ unreadNoticeCount }", as_user="applicant"))["unreadNoticeCount"] == 1
    read = await gql.op("MarkConversationRead", {"input": {}}, as_user="applicant")
    assert read["markConversationRead"] == {"unreadCount": 0, "errors": []}
    assert (await gql("{ unreadNoticeCount }", as_user="applicant"))["unreadNoticeCount"] == 0  # one notice centre
    # The notice and the message are one: the notice table's row is the message's.
    stored = await ConversationMessage.get(author="SYSTEM")
    assert stored.notice_id == (await Notice.get(kind=NoticeKind.CASE_ACCEPTED.value)).id
    assert (await conversation(gql, user="other_applicant"))["totalCount"] == 0
    # The organisation withdraws its agent: the case card disappears; the person's own notice stays.
    await AgentAuthorization.filter(phone=gql.world.users["applicant"].phone).update(revoked_at=dt.datetime.now(dt.timezone.utc))
    page = await conversation(gql)
    (system,) = [m for m in page["nodes"] if m["author"] == "SYSTEM"]
    assert [c["__typename"] for c in system["cards"]] == ["NoticeCard"]


async def test_a_complaint_reply_arrives_as_a_system_message_with_the_complaint(gql, world, sqlite_only):
    from tests.api.test_subscriptions import assigned_complaint

    complaint_id = await assigned_complaint(gql, world)
    replied = await gql.op("ReplyComplaint", {"input": {"complaintId": complaint_id, "text": "已核实并整改"}},
                           as_user="water")
    assert replied["replyComplaint"]["errors"] == []
    (system,) = (await conversation(gql, user="citizen"))["nodes"]
    assert system["author"] == "SYSTEM"
    assert [c["__typename"] for c in system["cards"]] == ["NoticeCard", "ComplaintCard"]
    assert system["cards"][0]["notice"]["kind"] == NoticeKind.COMPLAINT_REPLIED.name
    assert system["cards"][1]["complaint"]["id"] == complaint_id


async def test_cards_resolve_the_live_object_through_the_viewers_permissions(gql, client, world):
    case = await accepted_case(gql, client)
    case_pk = (await Case.get(code=case["code"])).id
    notice_pk = (await Notice.get(kind=NoticeKind.CASE_ACCEPTED.value)).id
    project_pk = (await Case.get(id=case_pk)).project_id
    refs = [
        assistant.CardRef(kind="PROJECT", object_id=project_pk),
        assistant.CardRef(kind="CASE", object_id=case_pk),
        assistant.CardRef(kind="NOTICE", object_id=notice_pk),
        assistant.CardRef(kind="GUIDE", item_code="C", section="MATERIALS", title="取水许可 · 申请材料", text="申请书"),
        assistant.CardRef(kind="GUIDE", item_code="NO-SUCH-ITEM", section="MATERIALS"),
        assistant.CardRef(kind="GUIDE", item_code="C", section="NOT-A-SECTION"),
        assistant.CardRef(kind="ACTION", action="RATE_SERVICE", label="评价", object_id=case_pk),
        assistant.CardRef(kind="ACTION", action="CONSULT_STAFF", label="转人工"),
        assistant.CardRef(kind="ACTION", action="NOT-AN-ACTION"),
        assistant.CardRef(kind="CERTIFICATE", object_id=999_999),
        assistant.CardRef(kind="COMPLAINT", object_id=999_999),
    ]

    async def shown(user: str) -> list[str]:
        viewer = await load_viewer(world.users[user].id, world.sessions[user])
        return [f"{c.ref.kind}:{c.ref.action or c.ref.item_code or c.ref.object_id}"
                for c in await visible_cards(viewer, refs)]

    public = ["GUIDE:C", "ACTION:CONSULT_STAFF"]
    assert await shown("applicant") == [f"PROJECT:{project_pk}", f"CASE:{case_pk}", f"NOTICE:{notice_pk}", "GUIDE:C",
                                        "ACTION:RATE_SERVICE", "ACTION:CONSULT_STAFF"]
    assert await shown("other_applicant") == public  # another's project, case, notice: never shown
    assert await shown("water") == public  # the case is the planning department's
    assert await shown("planner") == [f"PROJECT:{project_pk}", f"CASE:{case_pk}", "GUIDE:C", "ACTION:RATE_SERVICE",
                                      "ACTION:CONSULT_STAFF"]  # a notice is its recipient's only
    assert not await Certificate.exists() and not await Complaint.exists()


# -- 在线咨询 -----------------------------------------------------------------------------------------------------

OPEN = "mutation($i: OpenConsultationInput!) { openConsultation(input: $i) { consultation { id state department { name } itemCode question } duplicate errors { field code } } }"
ANSWER = "mutation($i: AnswerConsultationInput!) { answerConsultation(input: $i) { consultation { state } message { id author authorName text } duplicate errors { field code } } }"
QUEUE = "{ consultations { totalCount nodes { id state question askerName light replyRemainingDays answers { text } } } }"


async def open_consultation(gql, user: str = "citizen", **fields) -> dict:
    return (await gql(OPEN, {"i": fields}, as_user=user))["openConsultation"]


async def answer(gql, user: str, **fields) -> dict:
    return (await gql(ANSWER, {"i": fields}, as_user=user))["answerConsultation"]


async def test_consult_staff_goes_to_the_window_and_the_answer_comes_back_as_a_staff_message(gql, db_backend):
    reply = (await send(gql, "这个问题怎么办理", "c-1", user="citizen"))["reply"]
    assert any(c.get("action") == "CONSULT_STAFF" for c in reply["cards"])  # the fallback offers a person
    opened = await open_consultation(gql, requestId="open-1")
    assert opened["errors"] == [] and opened["duplicate"] is False
    consultation = opened["consultation"]
    assert consultation["department"] is None and consultation["question"] == "这个问题怎么办理"
    again = await open_consultation(gql)  # asked again while it waits: the waiting one
    assert again["duplicate"] is True and again["consultation"]["id"] == consultation["id"]
    queue = (await gql(QUEUE, as_user="clerk"))["consultations"]
    assert queue["totalCount"] == 1
    assert queue["nodes"][0] | {"answers": None} == {
        "id": consultation["id"], "state": "WAITING", "question": "这个问题怎么办理", "askerName": "孙**",
        "light": "GREEN", "replyRemainingDays": 10, "answers": None,
    }
    assert (await gql(QUEUE, as_user="water"))["consultations"]["totalCount"] == 0  # not a department's
    assert (await gql(QUEUE, as_user="supervisor"))["consultations"]["totalCount"] == 1  # supervisors read
    assert codes(await answer(gql, "supervisor", consultationId=consultation["id"], text="答复")) == [
        (None, "PERMISSION_DENIED")]
    assert codes(await answer(gql, "water", consultationId=consultation["id"], text="答复")) == [(None, "NOT_FOUND")]
    assert codes(await answer(gql, "clerk", consultationId=consultation["id"], text="  ")) == [("text", "REQUIRED")]
    answered = await asyncio.gather(*(answer(gql, "clerk", consultationId=consultation["id"],
                                             text="请携带申请表到综合窗口办理", requestId="ans-1") for _ in range(5)))
    assert len({a["message"]["id"] for a in answered}) == 1 and sum(not a["duplicate"] for a in answered) == 1
    assert answered[0]["consultation"]["state"] == "ANSWERED"
    page = await conversation(gql, user="citizen")
    authors = [(m["author"], m["authorName"]) for m in page["nodes"]]
    assert authors == [("USER", None), ("ASSISTANT", None), ("SYSTEM", None), ("STAFF", "综合服务窗口")]
    assert page["nodes"][-1]["text"] == "请携带申请表到综合窗口办理"
    # Nothing of it reaches anyone else's conversation.
    assert (await conversation(gql, user="applicant"))["totalCount"] == 0


async def test_one_waiting_consultation_per_place_when_asked_many_times_at_once(gql, db_backend):
    # Ten taps at once (different request ids, or none): one consultation waits, one SYSTEM confirmation is written.
    opened = await asyncio.gather(*(
        open_consultation(gql, itemCode="C", question="取水许可需要什么材料？", **({"requestId": f"t-{n}"} if n % 2 else {}))
        for n in range(10)
    ))
    assert all(o["errors"] == [] for o in opened)
    assert len({o["consultation"]["id"] for o in opened}) == 1
    assert sum(not o["duplicate"] for o in opened) == 1
    assert (await gql(QUEUE, as_user="water"))["consultations"]["totalCount"] == 1
    page = await conversation(gql, user="citizen")
    assert [m["author"] for m in page["nodes"]] == ["SYSTEM"]


async def test_a_consultation_about_an_item_goes_to_its_department(gql, clock):
    opened = await open_consultation(gql, itemCode="C", question="取水许可需要什么材料？")
    consultation = opened["consultation"]
    assert consultation["department"] == {"name": "珠海市水务局"} and consultation["itemCode"] == "C"
    late = "{ consultations(filter: {overdueOnly: true}) { nodes { id light replyRemainingDays } } }"
    assert (await gql(late, as_user="water"))["consultations"]["nodes"] == []
    clock.set(shanghai(2026, 10, 30, 10))  # past 10 working days (the National Day holiday in between)
    (overdue,) = (await gql(late, as_user="water"))["consultations"]["nodes"]
    assert overdue["id"] == consultation["id"] and overdue["light"] == "RED" and overdue["replyRemainingDays"] < 0
    assert (await gql(QUEUE, as_user="clerk"))["consultations"]["totalCount"] == 0
    assert (await gql(QUEUE, as_user="planner"))["consultations"]["totalCount"] == 0
    assert codes(await answer(gql, "planner", consultationId=consultation["id"], text="答复")) == [(None, "NOT_FOUND")]
    done = await answer(gql, "water", consultationId=consultation["id"], text="需要取水许可申请书")
    assert done["errors"] == [] and done["message"]["authorName"] == "珠海市水务局"
    # The asker sees its own; another citizen sees none.
    assert (await gql(QUEUE, as_user="citizen"))["consultations"]["nodes"][0]["answers"] == [
        {"text": "需要取水许可申请书"}]
    assert (await gql(QUEUE, as_user="applicant"))["consultations"]["totalCount"] == 0


async def test_bad_consultation_inputs_are_coded_errors(gql, sqlite_only):
    assert codes(await open_consultation(gql)) == [("question", "REQUIRED")]  # nothing asked yet
    assert codes(await open_consultation(gql, itemCode="NO-SUCH", question="问")) == [("itemCode", "NOT_FOUND")]
    assert codes(await open_consultation(gql, question="字" * 501)) == [("text", "INVALID_INPUT")]
    assert codes(await open_consultation(gql, "clerk", question="问")) == [(None, "PERMISSION_DENIED")]
    assert codes(await answer(gql, "clerk", consultationId="bad", text="答")) == [("consultationId", "INVALID_ID")]
    missing = to_global_id("Consultation", 12345)
    assert codes(await answer(gql, "clerk", consultationId=missing, text="答")) == [(None, "NOT_FOUND")]
    assert (await gql(QUEUE, as_user="supervisor"))["consultations"]["totalCount"] == 0


# -- live ----------------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def events(host: str, token: str | None):
    """The ConversationEvents subscription over graphql-transport-ws; yields a bounded wait for the next frame."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(f"ws://{host}/graphql", subprotocols=["graphql-transport-ws"],
                                  additional_headers=headers, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": operation("ConversationEvents")}}))

        async def next_frame(timeout: float = 10) -> dict:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if frame["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                    continue
                return frame

        yield next_frame


async def post(host: str, token: str, name: str, variables: dict) -> dict:
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as http:
        response = await http.post("/graphql", json={"query": operation(name), "variables": variables},
                                   headers={"Authorization": f"Bearer {token}"})
    (payload,) = response.json()["data"].values()
    assert payload["errors"] == [], payload
    return payload


async def test_live_embedded_an_accepted_case_reaches_the_applicant(gql, client, world, settings, sqlite_only):
    cases = await submit_ok(gql, client, ("A",))
    with api_process(settings) as host:
        async with events(host, world.token("applicant")) as inbox:
            await wait_subscribed(inbox)
            await post(host, world.token("clerk"), "AcceptCase", {"input": {"caseId": cases["A"]["id"]}})
            frame = await inbox()
            event = frame["payload"]["data"]["conversationEvents"]
            assert event["message"]["author"] == "SYSTEM" and event["unreadCount"] == 1
            assert [c["__typename"] for c in event["message"]["cards"]] == ["NoticeCard", "CaseCard"]
            await post(host, world.token("applicant"), "SendMessage", {"input": {"text": "谢谢", "clientMessageId": "t"}})
            authors = [(await inbox())["payload"]["data"]["conversationEvents"]["message"]["author"] for _ in range(2)]
            assert authors == ["USER", "ASSISTANT"]
            opened = await post(host, world.token("applicant"), "OpenConsultation", {"input": {}})
            assert (await inbox())["payload"]["data"]["conversationEvents"]["message"]["author"] == "SYSTEM"
            # Signed out since the subscription began: the next message ends it instead of being delivered.
            assert (await gql.op("Logout", {}, as_user="applicant"))["logout"]["ok"]
            await post(host, world.token("clerk"), "AnswerConsultation",
                       {"input": {"consultationId": opened["consultation"]["id"], "text": "您好"}})
            assert (await inbox())["type"] == "complete"
        async with events(host, None) as anonymous:
            frame = await anonymous()
            payload = frame["payload"]
            errors = payload["errors"] if isinstance(payload, dict) else payload
            assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_live_across_two_processes_through_redis(gql, client, world, settings, redis_server, db_backend):
    if db_backend != "postgres":
        pytest.skip("the scaled mode: PostgreSQL and Redis")
    cases = await submit_ok(gql, client, ("A",))
    with api_process(settings, redis_server.url) as first, api_process(settings, redis_server.url) as second:
        async with events(first, world.token("applicant")) as inbox, \
                events(first, world.token("other_applicant")) as other_inbox:
            await wait_subscribed(inbox)
            await post(second, world.token("clerk"), "AcceptCase", {"input": {"caseId": cases["A"]["id"]}})
            event = (await inbox())["payload"]["data"]["conversationEvents"]
            assert event["message"]["author"] == "SYSTEM"
            assert event["message"]["cards"][0]["notice"]["kind"] == "CASE_ACCEPTED"
            # Nothing of it for anyone else: the other applicant's first event is its own message.
            await wait_subscribed(other_inbox)
            await post(second, world.token("other_applicant"), "SendMessage",
                       {"input": {"text": "你好", "clientMessageId": "o-1"}})
            mine = (await other_inbox())["payload"]["data"]["conversationEvents"]["message"]
            assert (mine["author"], mine["text"]) == ("USER", "你好")


@pytest.mark.quiet_app  # no dispatcher in the background, whose statements would be counted too
async def test_the_number_of_statements_does_not_grow_with_the_messages_and_their_cards(
    gql, client, count_queries, sqlite_only
):
    from api.models.conversation import MessageAuthor
    from api.services.conversation import append_message, conversation_of

    case = await accepted_case(gql, client)
    case_pk = (await Case.get(code=case["code"])).id
    notice_pk = (await Notice.get(kind=NoticeKind.CASE_ACCEPTED.value)).id
    user = gql.world.users["applicant"]
    cards = (assistant.CardRef(kind="CASE", object_id=case_pk), assistant.CardRef(kind="NOTICE", object_id=notice_pk),
             assistant.CardRef(kind="PROJECT", object_id=(await Case.get(id=case_pk)).project_id),
             assistant.CardRef(kind="GUIDE", item_code="A", section="OVERVIEW", title="t", text="x"),
             assistant.CardRef(kind="ACTION", action="RATE_SERVICE", label="评价", object_id=case_pk))

    async def statements(count: int) -> int:
        own = await conversation_of(user.id, dt.datetime.now(dt.timezone.utc))
        for _ in range(count):
            await append_message(own, MessageAuthor.ASSISTANT, "答", now=dt.datetime.now(dt.timezone.utc),
                                 cards=cards)
        with count_queries() as counter:
            page = await conversation(gql, last=100)
        assert all(len(m["cards"]) == 5 for m in page["nodes"][-count:])
        return counter.count

    assert await statements(3) == await statements(30)
