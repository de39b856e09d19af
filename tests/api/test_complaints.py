"""Suggestions and complaints through the API: filing with WeChat content security, the flow, the thread, deadlines and
who sees what (issue #6, DOMAIN.md §9). Content security runs against the fake WeChat server."""

from __future__ import annotations

import pytest

from api.models import Complaint, Notice, User
from api.settings import Settings
from tests.conftest import operation
from tests.fakes.wechat import REVIEW_MARKER, RISKY_MARKER, FakeWeChat
from tests.factories import shanghai

CITIZEN_OPENID = "o-citizen-0001"
OTHER_OPENID = "o-citizen-0002"


@pytest.fixture
def settings(database_url, tmp_path, fake_wechat: FakeWeChat) -> Settings:
    return Settings(
        database_url=database_url, upload_dir=tmp_path / "uploads", complaint_daily_limit=3,
        **fake_wechat.settings_overrides(),
    )


@pytest.fixture
async def filers(world, fake_wechat):
    from api.domain.accounts import Role

    await User.filter(id=world.users["citizen"].id).update(openid=CITIZEN_OPENID)
    fake_wechat.add_openid(CITIZEN_OPENID)
    await world.add_user("other_citizen", "钱市民", Role.CITIZEN, openid=OTHER_OPENID)
    fake_wechat.add_openid(OTHER_OPENID)
    return world


def department_id(world, key: str) -> str:
    from api.domain.ids import to_global_id

    return to_global_id("Department", world.departments[key].id)


async def file(gql, user="citizen", **fields) -> dict:
    values = {"kind": "COMPLAINT", "category": "OVERDUE", "text": "施工许可办理时间远超承诺时限", **fields}
    return (await gql.op("FileComplaint", {"input": values}, as_user=user))["fileComplaint"]


async def file_ok(gql, user="citizen", **fields) -> str:
    payload = await file(gql, user, **fields)
    assert payload["errors"] == [], payload["errors"]
    return payload["complaint"]["id"]


async def step(gql, name: str, user: str, **fields) -> dict:
    data = await gql.op(name, {"input": fields}, as_user=user)
    (payload,) = data.values()
    return payload


async def step_ok(gql, name: str, user: str, **fields) -> dict:
    payload = await step(gql, name, user, **fields)
    assert payload["errors"] == [], payload["errors"]
    return payload["complaint"]


async def thread(gql, complaint_id: str, user: str) -> dict | None:
    return (await gql.op("ComplaintThread", {"id": complaint_id}, as_user=user))["complaint"]


async def test_filing_checks_content_and_is_idempotent(gql, filers, fake_wechat):
    payload = await file(gql, idempotencyKey="k1", contactPhone="13812345678", projectCode="2026-440402-47-01-000001")
    assert payload["errors"] == [] and payload["duplicate"] is False
    assert payload["complaint"]["state"] == "SUBMITTED" and payload["complaint"]["flaggedForReview"] is False
    again = await file(gql, idempotencyKey="k1")
    assert again["duplicate"] is True and again["complaint"]["id"] == payload["complaint"]["id"]
    assert fake_wechat.calls["/wxa/msg_sec_check"] == 1

    risky = await file(gql, text=f"内容{RISKY_MARKER}")
    assert risky["complaint"] is None and risky["errors"][0]["code"] == "CONTENT_RISKY"
    assert "违法违规" in risky["errors"][0]["message"]
    review = await file(gql, text=f"内容{REVIEW_MARKER}")
    assert review["errors"] == [] and review["complaint"]["flaggedForReview"] is True
    assert await Complaint.all().count() == 2


@pytest.mark.parametrize(
    "fields, code, field",
    [
        ({"text": "   "}, "REQUIRED", "text"),
        ({"text": "字" * 2001}, "INVALID_INPUT", "text"),
        ({"projectCode": "2026-4404"}, "INVALID_PROJECT_CODE", "projectCode"),
        ({"contactPhone": "12345"}, "INVALID_INPUT", "contactPhone"),
        ({"imageUploadIds": ["00000000-0000-0000-0000-000000000000"]}, "UPLOAD_NOT_FOUND", "imageIds"),
    ],
)
async def test_bad_input_changes_nothing(gql, filers, fields, code, field):
    payload = await file(gql, **fields)
    assert payload["complaint"] is None
    assert (payload["errors"][0]["code"], payload["errors"][0]["field"]) == (code, field)
    assert await Complaint.all().count() == 0


async def test_daily_limit_per_filer(gql, filers):
    for _ in range(3):
        await file_ok(gql)
    limited = await file(gql)
    assert limited["errors"][0]["code"] == "RATE_LIMITED"
    await file_ok(gql, user="other_citizen")  # another person is not limited by it


async def test_staff_cannot_file_as_themselves(gql, filers):
    payload = await file(gql, user="clerk")
    assert payload["errors"][0]["code"] == "PERMISSION_DENIED"


async def test_the_whole_flow_with_the_thread_and_the_reply_notice(gql, filers):
    cid = await file_ok(gql)
    # Before assignment no department sees it; the dispatcher (window) routes it.
    assert await thread(gql, cid, "water") is None
    refused = await step(gql, "ReplyComplaint", "water", complaintId=cid, text="已处理")
    assert refused["errors"][0]["code"] == "NOT_FOUND"
    filer_assigns = await step(gql, "AssignComplaint", "citizen", complaintId=cid,
                               departmentId=department_id(filers, "water"))
    assert filer_assigns["errors"][0]["code"] == "PERMISSION_DENIED"
    assigned = await step_ok(gql, "AssignComplaint", "clerk", complaintId=cid,
                             departmentId=department_id(filers, "water"))
    assert assigned["state"] == "ASSIGNED" and assigned["department"]["name"] == "珠海市水务局"
    assert await thread(gql, cid, "planner") is None  # another department: as if it did not exist
    assert await thread(gql, cid, "other_citizen") is None

    posted = await step(gql, "PostComplaintMessage", "citizen", complaintId=cid, text="请尽快处理", requestId="m1")
    assert posted["errors"] == [] and posted["message"]["fromFiler"] is True
    again = await step(gql, "PostComplaintMessage", "citizen", complaintId=cid, text="请尽快处理", requestId="m1")
    assert again["duplicate"] is True and again["message"]["id"] == posted["message"]["id"]
    stranger = await step(gql, "PostComplaintMessage", "other_citizen", complaintId=cid, text="路过")
    assert stranger["errors"][0]["code"] == "NOT_FOUND"

    replied = await step_ok(gql, "ReplyComplaint", "water", complaintId=cid, text="已督促经办科室在三个工作日内办结")
    assert replied["state"] == "REPLIED" and replied["repliedAt"]
    (notice,) = await Notice.filter(kind="complaint_replied")
    assert notice.recipient_id == filers.users["citizen"].id

    view = await thread(gql, cid, "citizen")
    assert [m["fromFiler"] for m in view["messages"]["nodes"]] == [True, False]
    assert view["messages"]["nodes"][1]["authorName"] == "珠海市水务局"
    staff_view = await thread(gql, cid, "water")
    assert staff_view["filerName"] == "孙**"  # staff see the filer masked
    assert view["filerName"] == "孙市民"

    reopened = await step_ok(gql, "ReopenComplaint", "citizen", complaintId=cid, reason="仍未办结")
    assert reopened["state"] == "REOPENED"
    await step_ok(gql, "ReplyComplaint", "water", complaintId=cid, text="已办结，请查收")
    closed = await step_ok(gql, "CloseComplaint", "citizen", complaintId=cid, satisfied=True)
    assert (closed["state"], closed["satisfied"]) == ("CLOSED", True)
    late = await step(gql, "PostComplaintMessage", "water", complaintId=cid, text="补充")
    assert late["errors"][0]["code"] == "INVALID_TRANSITION"
    wrong = await step(gql, "ReopenComplaint", "citizen", complaintId=cid, reason="再看看")
    assert wrong["errors"][0]["code"] == "INVALID_TRANSITION" and "已办结" in wrong["errors"][0]["message"]


async def test_a_retried_step_changes_nothing(gql, filers):
    cid = await file_ok(gql)
    water, planning = department_id(filers, "water"), department_id(filers, "planning")
    first = await step(gql, "AssignComplaint", "clerk", complaintId=cid, departmentId=water, requestId="a1")
    # A retry after a lost answer: the first result, nothing changed (not even when its body differs).
    second = await step(gql, "AssignComplaint", "clerk", complaintId=cid, departmentId=planning, requestId="a1")
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert second["complaint"]["department"]["name"] == "珠海市水务局"
    # The same request id for another complaint is a mistake, said as such.
    other = await file_ok(gql)
    misuse = await step(gql, "AssignComplaint", "clerk", complaintId=other, departmentId=water, requestId="a1")
    assert misuse["errors"][0]["code"] == "DUPLICATE_REQUEST_ID"
    assert (await thread(gql, other, "supervisor"))["state"] == "SUBMITTED"


async def test_reply_deadline_lights_and_the_overdue_list(gql, filers, clock):
    clock.set(shanghai(2026, 9, 30))
    cid = await file_ok(gql)
    await step_ok(gql, "AssignComplaint", "clerk", complaintId=cid, departmentId=department_id(filers, "water"))
    clock.set(shanghai(2026, 10, 16))  # 8 of 10 working days used (National Day off, Saturday 10-10 worked)
    view = await thread(gql, cid, "supervisor")
    assert (view["replyRemainingDays"], view["light"]) == (2, "YELLOW")
    overdue = await gql.op("Complaints", {"filter": {"overdueOnly": True}}, as_user="supervisor")
    assert overdue["complaints"]["nodes"] == []
    clock.set(shanghai(2026, 10, 21))
    view = await thread(gql, cid, "supervisor")
    assert (view["replyRemainingDays"], view["light"]) == (-1, "RED")
    overdue = await gql.op("Complaints", {"filter": {"overdueOnly": True}}, as_user="supervisor")
    assert [n["id"] for n in overdue["complaints"]["nodes"]] == [cid]
    citizen = await gql.errors(operation("Complaints"), {"filter": {"overdueOnly": True}}, as_user="citizen")
    assert citizen[0]["extensions"]["code"] == "PERMISSION_DENIED"


async def test_a_reply_left_unanswered_closes_after_seven_days(gql, filers, clock):
    clock.set(shanghai(2026, 11, 2))
    cid = await file_ok(gql)
    await step_ok(gql, "AssignComplaint", "clerk", complaintId=cid, departmentId=department_id(filers, "water"))
    await step_ok(gql, "ReplyComplaint", "water", complaintId=cid, text="已答复")
    clock.set(shanghai(2026, 11, 9, 9))
    assert (await step_ok(gql, "ReopenComplaint", "citizen", complaintId=cid, reason="不满意"))["state"] == "REOPENED"
    await step_ok(gql, "ReplyComplaint", "water", complaintId=cid, text="再次答复")
    clock.set(shanghai(2026, 11, 16, 11))
    refused = await step(gql, "ReopenComplaint", "citizen", complaintId=cid, reason="还是不满意")
    assert refused["errors"][0]["code"] == "INVALID_TRANSITION"
    assert (await thread(gql, cid, "citizen"))["state"] == "CLOSED"


async def test_lists_are_scoped(gql, filers):
    mine = await file_ok(gql)
    theirs = await file_ok(gql, user="other_citizen")
    await step_ok(gql, "AssignComplaint", "clerk", complaintId=theirs, departmentId=department_id(filers, "planning"))

    async def ids(user):
        return {n["id"] for n in (await gql.op("Complaints", as_user=user))["complaints"]["nodes"]}

    assert await ids("citizen") == {mine}
    assert await ids("other_citizen") == {theirs}
    assert await ids("planner") == {theirs}
    assert await ids("water") == set()
    assert await ids("supervisor") == {mine, theirs}
