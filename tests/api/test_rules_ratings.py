"""Rules of ratings (好差评, DOMAIN.md §8) that no other test pinned: each test here fails when its one rule is broken
(issue #10, "Rules nobody tests")."""

from __future__ import annotations

import datetime as dt

from api.domain.accounts import Role
from api.models import Rating
from tests.api.flows import approve, run_to_in_progress, submit_ok
from tests.api.test_ratings import decided_case, follow, rate
from tests.factories import shanghai

RATING = """query($id: ID!) { node(id: $id) { ... on Rating { appealStatus overdue rectifiedAt contactedAt } } }"""


async def rating_of(gql, rid: str, user: str = "supervisor") -> dict:
    return (await gql(RATING, {"id": rid}, as_user=user))["node"]


async def bad_rating(gql, client, clock) -> str:
    case_id = await decided_case(gql, client, clock)
    clock.set(shanghai(2026, 9, 30, 16))
    payload = await rate(gql, caseId=case_id, level=1, reasons=["SLOW"], comment="等了很久")
    assert payload["errors"] == [], payload["errors"]
    return payload["rating"]["id"]


async def overdue_ids(gql) -> list[str]:
    data = await gql.op("Ratings", {"overdueOnly": True}, as_user="supervisor")
    return [n["id"] for n in data["ratings"]["nodes"]]


async def test_only_a_supervisor_decides_a_rating_appeal(gql, client, world, clock):
    """The rated department sees its rating and appeals it, but may not decide its own appeal; nor may anyone else
    but a supervisor."""
    await world.add_user("admin", "钱管理", Role.ADMIN)
    rid = await bad_rating(gql, client, clock)
    appealed = await follow(gql, "AppealRating", "planner", ratingId=rid, reason="评价内容与本事项无关")
    assert appealed["rating"]["appealStatus"] == "PENDING"
    assert (await rating_of(gql, rid, "planner"))["appealStatus"] == "PENDING"  # it can see the rating
    for user in ("planner", "clerk", "water", "applicant", "admin"):
        refused = await follow(gql, "DecideRatingAppeal", user, ratingId=rid, upheld=True, note="同意")
        assert refused["rating"] is None and refused["errors"][0]["code"] in ("PERMISSION_DENIED", "NOT_FOUND"), user
    assert (await Rating.get()).appeal_status == "PENDING"
    decided = await follow(gql, "DecideRatingAppeal", "supervisor", ratingId=rid, upheld=False, note="评价属实")
    assert decided["rating"]["appealStatus"] == "REJECTED"


async def test_bad_rating_follow_up_steps_go_in_order(gql, client, world, clock):
    """回访 before 整改, 整改 before 反馈: a step out of order is refused and records nothing."""
    rid = await bad_rating(gql, client, clock)
    early = await follow(gql, "RecordRatingFollowUp", "planner", ratingId=rid, step="RECTIFY", note="已整改")
    assert early["rating"] is None and early["errors"][0]["code"] == "INVALID_TRANSITION"
    assert (await rating_of(gql, rid))["rectifiedAt"] is None
    contacted = await follow(gql, "RecordRatingFollowUp", "planner", ratingId=rid, step="CONTACT", note="已电话联系")
    assert contacted["errors"] == []
    result_first = await follow(gql, "RecordRatingFollowUp", "planner", ratingId=rid, step="RESULT", note="已反馈")
    assert result_first["errors"][0]["code"] == "INVALID_TRANSITION"
    rectified = await follow(gql, "RecordRatingFollowUp", "planner", ratingId=rid, step="RECTIFY", note="已整改")
    assert rectified["errors"] == [] and (await rating_of(gql, rid))["rectifiedAt"]


async def test_an_upheld_appeal_is_no_longer_overdue(gql, client, world, clock):
    rid = await bad_rating(gql, client, clock)
    clock.set(shanghai(2026, 10, 9))  # the call-back was due on 10-08
    assert await overdue_ids(gql) == [rid] and (await rating_of(gql, rid))["overdue"] is True
    await follow(gql, "AppealRating", "planner", ratingId=rid, reason="恶意评价")
    assert await overdue_ids(gql) == [rid]  # a pending appeal does not stop the clock
    await follow(gql, "DecideRatingAppeal", "supervisor", ratingId=rid, upheld=True, note="经核实属实")
    assert await overdue_ids(gql) == []
    assert (await rating_of(gql, rid))["overdue"] is False
    stats = (await gql.op("RatingStats", as_user="supervisor"))["ratingStats"]
    assert stats["overdueFollowUps"] == 0


async def test_the_rating_window_ends_at_its_exact_last_instant(gql, client, world, clock, settings):
    """Rateable until exactly ``rating_window_days`` after the decision, that instant included; not a moment later."""
    case_id = await decided_case(gql, client, clock)  # decided at 2026-09-29 10:00 (Shanghai)
    last = shanghai(2026, 9, 29) + dt.timedelta(days=settings.rating_window_days)
    clock.set(last + dt.timedelta(microseconds=1))
    late = await rate(gql, caseId=case_id, level=4)
    assert late["rating"] is None and late["errors"][0]["code"] == "RATING_WINDOW_CLOSED"
    clock.set(last)
    on_time = await rate(gql, caseId=case_id, level=4)
    assert on_time["errors"] == [] and on_time["rating"]["level"] == 4


async def test_a_ratings_provisional_flag_follows_its_rectify_deadline(gql, client, world, clock):
    """The call-back falls in 2026 (a year the calendar knows), the rectification in 2027 (no data: Monday–Friday
    assumed): the deadlines are provisional because of the rectify deadline alone."""
    case_id = await decided_case(gql, client, clock, day=(2026, 12, 28))
    clock.set(shanghai(2026, 12, 30))
    rating = (await rate(gql, caseId=case_id, level=2, reasons=["SLOW"]))["rating"]
    assert (rating["contactDue"], rating["rectifyDue"]) == ("2026-12-31", "2027-01-06")
    assert rating["deadlineProvisional"] is True

    clock.set(shanghai(2026, 12, 14))
    known = (await submit_ok(gql, client, ("C",)))["C"]["id"]  # another item: A is decided already
    await run_to_in_progress(gql, known, approver="water")
    await approve(gql, known, user="water")
    clock.set(shanghai(2026, 12, 15))
    rating = (await rate(gql, caseId=known, level=2, reasons=["SLOW"]))["rating"]
    assert rating["rectifyDue"] == "2026-12-22" and rating["deadlineProvisional"] is False
