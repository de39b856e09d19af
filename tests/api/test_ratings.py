"""Service ratings (好差评) through the API: who may rate what and when, the follow-up of a 差评 with its deadlines in
working days, appeals, statistics, and masking (issue #6, DOMAIN.md §8)."""

from __future__ import annotations

import asyncio

import pytest

from api.models import Notice
from tests.api.flows import approve, run_to_in_progress, submit_ok
from tests.factories import shanghai


async def decided_case(gql, client, clock, day=(2026, 9, 29)) -> str:
    clock.set(shanghai(*day))
    case = (await submit_ok(gql, client, ("A",)))["A"]
    await run_to_in_progress(gql, case["id"])
    await approve(gql, case["id"])
    return case["id"]


async def rate(gql, user="applicant", **fields) -> dict:
    return (await gql.op("RateService", {"input": fields}, as_user=user))["rateService"]


async def follow(gql, name: str, user: str, **fields) -> dict:
    data = await gql.op(name, {"input": fields}, as_user=user)
    (payload,) = data.values()
    return payload


async def test_one_rating_per_matter_by_the_person_served(gql, client, world, clock):
    case_id = await decided_case(gql, client, clock)
    clock.set(shanghai(2026, 9, 30))
    first = await rate(gql, caseId=case_id, level=5, comment="很快")
    assert first["errors"] == [] and first["rating"]["levelLabel"] == "非常满意"
    assert first["rating"]["contactDue"] is None  # only a 差评 is followed up
    again = await rate(gql, caseId=case_id, level=5, comment=" 很快 ")  # the same rating resent
    assert again["errors"] == [] and again["duplicate"] is True and again["rating"]["id"] == first["rating"]["id"]
    for user in ("other_applicant", "citizen", "planner"):
        refused = await rate(gql, user, caseId=case_id, level=3)
        assert refused["errors"][0]["code"] == "NOT_FOUND", user


async def test_not_before_the_decision_nor_after_the_window(gql, client, world, clock):
    clock.set(shanghai(2026, 9, 29))
    case = (await submit_ok(gql, client, ("A",)))["A"]
    early = await rate(gql, caseId=case["id"], level=4)
    assert early["errors"][0]["code"] == "NOT_RATABLE_YET"
    await run_to_in_progress(gql, case["id"])
    await approve(gql, case["id"])
    clock.set(shanghai(2026, 10, 29, 11))  # 30 days and an hour after the decision
    late = await rate(gql, caseId=case["id"], level=4)
    assert late["errors"][0]["code"] == "RATING_WINDOW_CLOSED"


async def test_a_second_rating_of_a_matter_with_other_content_is_refused(gql, client, world, clock):
    """一事一评: a different level or comment is not a duplicate to report as 评价成功 but ALREADY_RATED, and the first
    rating stands."""
    case_id = await decided_case(gql, client, clock)
    clock.set(shanghai(2026, 9, 30))
    first = await rate(gql, caseId=case_id, level=5, comment="很快")
    for fields in ({"level": 1, "reasons": ["SLOW"]}, {"level": 4, "comment": "很快"}, {"level": 5, "comment": "还行"}):
        again = await rate(gql, caseId=case_id, **fields)
        assert again["rating"] is None and again["duplicate"] is False, fields
        assert [e["code"] for e in again["errors"]] == ["ALREADY_RATED"], fields
    assert (await rate(gql, caseId=case_id, level=5, comment="很快"))["rating"] == first["rating"]


async def test_simultaneous_ratings_of_one_matter_with_different_levels(gql, client, world, clock):
    """Sent at once: one rating is kept; each answer is that rating (its own content) or ALREADY_RATED (another)."""
    case_id = await decided_case(gql, client, clock)
    clock.set(shanghai(2026, 9, 30))
    levels = [5, 4, 5, 3, 4, 5, 3, 4]
    payloads = await asyncio.gather(*(rate(gql, caseId=case_id, level=level) for level in levels))
    kept = {p["rating"]["id"]: p["rating"]["level"] for p in payloads if p["rating"]}
    assert len(kept) == 1
    (level,) = kept.values()
    for sent, payload in zip(levels, payloads):
        if sent == level:
            assert payload["errors"] == [] and payload["rating"]["level"] == level
        else:
            assert payload["rating"] is None and [e["code"] for e in payload["errors"]] == ["ALREADY_RATED"]
    assert sum(not p["duplicate"] for p in payloads if p["rating"]) == 1


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"level": 2}, "REASON_REQUIRED"),
        ({"level": 9}, "INVALID_INPUT"),
        ({}, "INVALID_INPUT"),  # neither a case nor a complaint
    ],
)
async def test_bad_ratings_need_a_reason_and_bad_input_changes_nothing(gql, client, world, clock, fields, code):
    case_id = await decided_case(gql, client, clock)
    values = {"caseId": case_id, **fields} if fields else {"level": 3}
    payload = await rate(gql, **values)
    assert payload["rating"] is None and payload["errors"][0]["code"] == code
    assert (await gql.op("Ratings", as_user="supervisor"))["ratings"]["totalCount"] == 0


async def test_bad_rating_follow_up_across_national_day(gql, client, world, clock):
    case_id = await decided_case(gql, client, clock)
    clock.set(shanghai(2026, 9, 30, 16))
    bad = await rate(gql, caseId=case_id, level=1, reasons=["SLOW", "BAD_ATTITUDE"], comment="等了很久")
    rating = bad["rating"]
    # 回访 within 1 working day, 整改 within 5: National Day is off, Saturday 10-10 is worked.
    assert (rating["contactDue"], rating["rectifyDue"]) == ("2026-10-08", "2026-10-13")
    rid = rating["id"]

    other_department = await follow(gql, "RecordRatingFollowUp", "water", ratingId=rid, step="CONTACT", note="已联系")
    assert other_department["errors"][0]["code"] == "NOT_FOUND"
    too_soon = await follow(gql, "RecordRatingFollowUp", "planner", ratingId=rid, step="RESULT", note="已整改")
    assert too_soon["errors"][0]["code"] == "INVALID_TRANSITION"

    clock.set(shanghai(2026, 10, 9))  # contact is a day late
    overdue = await gql.op("Ratings", {"overdueOnly": True}, as_user="supervisor")
    assert [n["id"] for n in overdue["ratings"]["nodes"]] == [rid]
    assert overdue["ratings"]["nodes"][0]["raterName"] == "张**"  # staff see the rater masked
    for step, note in (("CONTACT", "已电话联系评价人"), ("RECTIFY", "已优化受理流程"), ("RESULT", "整改已完成，办理时限缩短至3个工作日")):
        done = await follow(gql, "RecordRatingFollowUp", "planner", ratingId=rid, step=step, note=note)
        assert done["errors"] == [], done["errors"]
    assert done["rating"]["resultReportedAt"]
    (notice,) = await Notice.filter(kind="rating_followup_result")
    assert notice.recipient_id == world.users["applicant"].id and "整改已完成" in notice.body
    confirmed = await follow(gql, "ConfirmRatingResult", "applicant", ratingId=rid, satisfied=True)
    assert confirmed["rating"]["raterSatisfied"] is True
    mine = await gql.op("Ratings", as_user="applicant")
    assert mine["ratings"]["nodes"][0]["raterName"] == "张经办"

    stats = (await gql.op("RatingStats", as_user="supervisor"))["ratingStats"]
    assert (stats["count"], stats["badCount"], stats["rectifiedRate"], stats["overdueFollowUps"]) == (1, 1, 1.0, 1)
    assert stats["goodRate"] == 0.0


async def test_an_upheld_appeal_leaves_the_statistics(gql, client, world, clock):
    case_id = await decided_case(gql, client, clock)
    clock.set(shanghai(2026, 9, 30))
    rid = (await rate(gql, caseId=case_id, level=1, reasons=["OTHER"], comment="恶意"))["rating"]["id"]
    appealed = await follow(gql, "AppealRating", "planner", ratingId=rid, reason="评价内容与本事项无关")
    assert appealed["rating"]["appealStatus"] == "PENDING"
    twice = await follow(gql, "AppealRating", "planner", ratingId=rid, reason="再次申诉")
    assert twice["errors"][0]["code"] == "INVALID_TRANSITION"
    not_supervisor = await follow(gql, "DecideRatingAppeal", "clerk", ratingId=rid, upheld=True, note="同意")
    assert not_supervisor["errors"][0]["code"] in ("PERMISSION_DENIED", "NOT_FOUND")
    decided = await follow(gql, "DecideRatingAppeal", "supervisor", ratingId=rid, upheld=True, note="经核实属实")
    assert decided["rating"]["appealStatus"] == "UPHELD"
    stats = (await gql.op("RatingStats", as_user="supervisor"))["ratingStats"]
    assert (stats["count"], stats["goodRate"], stats["badCount"]) == (0, None, 0)


async def test_stats_are_for_staff_and_scoped_to_a_department(gql, client, world, clock):
    case_id = await decided_case(gql, client, clock)
    clock.set(shanghai(2026, 9, 30))
    await rate(gql, caseId=case_id, level=4)
    errors = await gql.errors("{ ratingStats { count } }", as_user="applicant")
    assert errors[0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert (await gql("{ ratingStats { count } }", as_user="planner"))["ratingStats"]["count"] == 1
    assert (await gql("{ ratingStats { count } }", as_user="water"))["ratingStats"]["count"] == 0


async def test_a_closed_complaint_is_rated_by_its_filer(gql, client, world, clock):
    from api.domain.ids import to_global_id

    clock.set(shanghai(2026, 11, 2))
    filed = await gql.op("FileComplaint", {"input": {"kind": "SUGGESTION", "category": "POLICY_SUGGESTION",
                                                     "text": "建议公开各事项平均办理时长"}}, as_user="citizen")
    cid = filed["fileComplaint"]["complaint"]["id"]
    early = await rate(gql, "citizen", complaintId=cid, level=5)
    assert early["errors"][0]["code"] == "NOT_RATABLE_YET"
    water = to_global_id("Department", world.departments["water"].id)
    await act_ok_complaint(gql, "AssignComplaint", "clerk", complaintId=cid, departmentId=water)
    await act_ok_complaint(gql, "ReplyComplaint", "water", complaintId=cid, text="感谢建议，已采纳")
    await act_ok_complaint(gql, "CloseComplaint", "citizen", complaintId=cid, satisfied=True)
    rated = await rate(gql, "citizen", complaintId=cid, level=5)
    assert rated["errors"] == []
    assert (await gql("{ ratingStats { count } }", as_user="water"))["ratingStats"]["count"] == 1


async def act_ok_complaint(gql, name, user, **fields):
    payload = (await gql.op(name, {"input": fields}, as_user=user))
    (result,) = payload.values()
    assert result["errors"] == [], result["errors"]

