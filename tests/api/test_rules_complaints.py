"""Rules of complaints (DOMAIN.md §9) that no other test pinned: each test here fails when its one rule is broken
(issue #10, "Rules nobody tests"). The fixtures are those of tests/api/test_complaints.py (the fake WeChat server
answers content security)."""

from __future__ import annotations

from api.models import Application, Complaint, ComplaintMessage
from tests.api.flows import submit
from tests.api.test_complaints import department_id, file, file_ok, filers, settings, step, step_ok, thread  # noqa: F401
from tests.factories import OTHER_PROJECT_CODE, shanghai

PHONE = "13812345678"


async def listed(gql, user: str) -> set[str]:
    return {n["id"] for n in (await gql.op("Complaints", as_user=user))["complaints"]["nodes"]}


async def test_a_department_does_not_see_a_submitted_complaint_filed_naming_it(gql, filers):
    """Naming a department when filing routes nothing: until a dispatcher assigns it, the department sees nothing."""
    cid = await file_ok(gql, departmentId=department_id(filers, "water"))
    assert (await thread(gql, cid, "supervisor"))["department"]["name"] == "珠海市水务局"
    assert await thread(gql, cid, "water") is None
    assert cid not in await listed(gql, "water")
    reply = await step(gql, "ReplyComplaint", "water", complaintId=cid, text="已处理")
    post = await step(gql, "PostComplaintMessage", "water", complaintId=cid, text="请补充材料")
    assert (reply["errors"][0]["code"], post["errors"][0]["code"]) == ("NOT_FOUND", "NOT_FOUND")
    assert await ComplaintMessage.all().count() == 0

    await step_ok(gql, "AssignComplaint", "clerk", complaintId=cid, departmentId=department_id(filers, "water"))
    assert (await thread(gql, cid, "water"))["state"] == "ASSIGNED"
    assert cid in await listed(gql, "water")


async def test_only_the_filer_and_the_handling_department_post_in_a_thread(gql, filers):
    """Dispatchers route and read a complaint, but the thread is the filer's and the handler's conversation."""
    cid = await file_ok(gql)
    await step_ok(gql, "AssignComplaint", "clerk", complaintId=cid, departmentId=department_id(filers, "water"))
    for user in ("clerk", "supervisor"):
        assert await thread(gql, cid, user) is not None  # they see it …
        refused = await step(gql, "PostComplaintMessage", user, complaintId=cid, text="督办意见")
        assert refused["message"] is None and refused["errors"][0]["code"] == "PERMISSION_DENIED", user  # … not post
    assert await ComplaintMessage.all().count() == 0
    for user in ("citizen", "water"):
        posted = await step(gql, "PostComplaintMessage", user, complaintId=cid, text="请尽快处理")
        assert posted["errors"] == [], user
    assert await ComplaintMessage.all().count() == 2


async def test_a_complaints_contact_phone_is_masked_to_staff(gql, filers):
    cid = await file_ok(gql, contactPhone=PHONE, departmentId=department_id(filers, "water"))
    await step_ok(gql, "AssignComplaint", "clerk", complaintId=cid, departmentId=department_id(filers, "water"))
    assert (await thread(gql, cid, "citizen"))["contactPhone"] == PHONE  # the filer sees its own number
    for user in ("clerk", "supervisor", "water"):
        assert (await thread(gql, cid, user))["contactPhone"] == "138****5678", user


async def test_reopening_a_complaint_restarts_its_reply_clock(gql, filers, clock):
    """A reopened complaint is a new round: the department has its whole reply period again, counted from the
    reopening, not what was left of the first round."""
    clock.set(shanghai(2026, 11, 2))  # a Monday
    cid = await file_ok(gql)
    await step_ok(gql, "AssignComplaint", "clerk", complaintId=cid, departmentId=department_id(filers, "water"))
    clock.set(shanghai(2026, 11, 12))  # 8 of 10 working days used
    assert (await thread(gql, cid, "supervisor"))["replyRemainingDays"] == 2
    await step_ok(gql, "ReplyComplaint", "water", complaintId=cid, text="已答复")
    clock.set(shanghai(2026, 11, 13))
    await step_ok(gql, "ReopenComplaint", "citizen", complaintId=cid, reason="仍未解决")
    view = await thread(gql, cid, "supervisor")
    assert (view["replyRemainingDays"], view["light"]) == (10, "GREEN")
    clock.set(shanghai(2026, 11, 26))  # 9 working days into the new round: 1 left, not 2 − 10
    view = await thread(gql, cid, "supervisor")
    assert (view["replyRemainingDays"], view["light"]) == (1, "YELLOW")
    overdue = await gql.op("Complaints", {"filter": {"overdueOnly": True}}, as_user="supervisor")
    assert overdue["complaints"]["nodes"] == []


async def test_idempotency_keys_are_per_person(gql, client, filers):
    """Another person sending the same ``idempotencyKey`` gets a new application or complaint of its own, never the
    first person's (the key is "<user>:<client key>")."""
    mine = await file(gql, "citizen", idempotencyKey="key-1", contactPhone=PHONE)
    theirs = await file(gql, "other_citizen", idempotencyKey="key-1")
    assert (mine["duplicate"], theirs["duplicate"]) == (False, False)
    assert theirs["complaint"]["id"] != mine["complaint"]["id"]
    owners = {c.filer_id for c in await Complaint.all()}
    assert owners == {filers.users["citizen"].id, filers.users["other_citizen"].id}

    first = await submit(gql, client, ("A",), idempotencyKey="key-1")
    second = await submit(gql, client, ("A",), project=OTHER_PROJECT_CODE, user="other_applicant",
                          idempotencyKey="key-1")
    assert (first["errors"], second["errors"]) == ([], [])
    assert (first["duplicate"], second["duplicate"]) == (False, False)
    assert second["application"]["id"] != first["application"]["id"]
    assert {a.applicant_id for a in await Application.all()} == {
        filers.users["applicant"].id, filers.users["other_applicant"].id
    }
    again = await submit(gql, client, ("A",), idempotencyKey="key-1")  # the same person's retry: the first one
    assert (again["duplicate"], again["application"]["id"]) == (True, first["application"]["id"])
