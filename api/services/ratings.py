"""Service ratings (好差评) and the follow-up of bad ones (DOMAIN.md §8).

One rating per matter (a case or a complaint) and rater, by the person served, after the matter is decided and within
the rating window. A 差评 gets deadlines at once: contact the rater within 1 working day, rectify within the configured
working days; each step is recorded by the department, the result reported to the rater (a notice), who may say
whether satisfied. A department may appeal; a supervisor decides; an upheld appeal leaves the statistics.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from api.domain.accounts import READ_ALL_ROLES, Role
from api.domain.errors import DomainError
from api.domain.feedback import (
    ComplaintState,
    FollowUpStep,
    RatingFacts,
    RatingStats,
    check_complaint_text,
    check_rating,
    follow_up_overdue,
    rating_stats,
    working_days_after,
)
from api.domain.ids import to_global_id
from api.domain.lifecycle import Action
from api.domain.timing import CaseState
from api.models import Application, ApprovalItem, Case, CaseEvent, Department
from api.models.feedback import Complaint, Rating
from api.services.access import NOTHING, Viewer, require_viewer
from api.settings import Settings

# A case is "decided" for rating once the service is over: a decision, or not accepted / refused at the window.
RATABLE_CASE_STATES = {
    CaseState.APPROVED, CaseState.APPROVED_DEFICIENT, CaseState.DISAPPROVED, CaseState.NOT_ACCEPTED,
    CaseState.REFUSED, CaseState.REVOKED,
}
DECISION_ACTIONS = [Action.APPROVE, Action.APPROVE_DEFICIENT, Action.DISAPPROVE, Action.NOT_ACCEPT, Action.REFUSE]


def rating_scope(viewer: Viewer | None) -> Q:
    """The rater sees its own; a department the ratings of its services; supervisors and admins all."""
    if viewer is None:
        return NOTHING
    if viewer.role in READ_ALL_ROLES:
        return Q()
    if viewer.role is Role.APPROVER and viewer.department_id:
        return Q(department_id=viewer.department_id)
    if viewer.role in (Role.CITIZEN, Role.APPLICANT):
        return Q(rater_id=viewer.user_id)
    return NOTHING


def _not_found() -> DomainError:
    return DomainError("NOT_FOUND", "评价不存在或您无权查看", None)


async def rate_service(
    viewer: Viewer | None,
    *,
    case_id: int | None,
    complaint_id: int | None,
    level: int,
    reasons: Sequence[str],
    comment: str | None,
    settings: Settings,
    calendar,
    now: dt.datetime,
) -> tuple[Rating, bool]:
    """Rate one matter. Rating the same matter again returns the first rating with ``duplicate`` (一事一评)."""
    viewer = require_viewer(viewer)
    if (case_id is None) == (complaint_id is None):
        raise DomainError("INVALID_INPUT", "请指定要评价的办件或诉求（二选一）", "caseId")
    if case_id is not None:
        case = await Case.get_or_none(id=case_id)
        application = await Application.get_or_none(id=case.application_id) if case else None
        # Only the person served rates; to anyone else the case "does not exist" here.
        if case is None or application.applicant_id != viewer.user_id:
            raise DomainError("NOT_FOUND", "办件不存在或您无权评价", "caseId")
        matter_key, department_id = f"case:{case.id}", case.department_id
        item_code = (await ApprovalItem.get(id=case.item_id)).code
        decided_at = None
        if case.state in RATABLE_CASE_STATES:
            event = await CaseEvent.filter(case_id=case.id, action__in=DECISION_ACTIONS).order_by("-seq").first()
            decided_at = event.occurred_at if event else None
    else:
        complaint = await Complaint.get_or_none(id=complaint_id, filer_id=viewer.user_id)
        if complaint is None:
            raise DomainError("NOT_FOUND", "诉求不存在或您无权评价", "complaintId")
        if complaint.department_id is None:
            raise DomainError("NOT_RATABLE_YET", "诉求尚未分派承办部门，暂不能评价", None)
        matter_key, department_id, item_code = f"complaint:{complaint.id}", complaint.department_id, None
        decided_at = complaint.closed_at if complaint.state is ComplaintState.CLOSED else None
    previous = await Rating.get_or_none(rater_id=viewer.user_id, matter_key=matter_key)
    if previous is not None:
        return previous, True
    rating_level, chosen, text = check_rating(
        level=level, reasons=reasons, comment=comment, rater_is_served=True, decided_at=decided_at, now=now,
        window_days=settings.rating_window_days,
    )
    values = dict(
        rater_id=viewer.user_id, case_id=case_id, complaint_id=complaint_id, matter_key=matter_key,
        department_id=department_id, item_code=item_code, level=rating_level.value,
        reasons=[r.value for r in chosen], comment=text, created_at=now,
    )
    if rating_level.is_bad:
        contact_due, p1 = working_days_after(now, settings.rating_contact_days, calendar)
        rectify_due, p2 = working_days_after(now, settings.rating_rectify_days, calendar)
        values |= {"contact_due": contact_due, "rectify_due": rectify_due, "deadline_provisional": p1 or p2}
    try:
        return await Rating.create(**values), False
    except IntegrityError:  # the same rating sent twice at once
        return await Rating.get(rater_id=viewer.user_id, matter_key=matter_key), True


async def get_rating(viewer: Viewer | None, rating_id: int) -> Rating:
    rating = await Rating.filter(rating_scope(require_viewer(viewer)), id=rating_id).first()
    if rating is None:
        raise _not_found()
    return rating


async def _department_rating(viewer: Viewer | None, rating_id: int) -> Rating:
    viewer = require_viewer(viewer)
    rating = await get_rating(viewer, rating_id)
    if viewer.role is not Role.APPROVER or viewer.department_id != rating.department_id:
        raise DomainError("PERMISSION_DENIED", "仅被评价部门的工作人员可以处理该评价", None)
    if rating.level > 2:
        raise DomainError("INVALID_TRANSITION", "只有差评需要回访整改", None)
    return rating


async def record_follow_up(
    viewer: Viewer | None, rating_id: int, step: FollowUpStep, note: str, *, now: dt.datetime
) -> Rating:
    """The department records contact, rectification, then the result reported back (which notifies the rater)."""
    from api.services.notices import record_notice
    from notifications import dispatch
    from notifications.kinds import NoticeKind

    text = check_complaint_text(note, field="note")
    async with in_transaction():
        rating = await _department_rating(viewer, rating_id)
        if step is FollowUpStep.CONTACT:
            if rating.contacted_at is not None:
                return rating  # recorded already: a retry changes nothing
            # Each step is recorded once, also when sent twice at once: the update is conditional (issue #10).
            await Rating.filter(id=rating.id, contacted_at__isnull=True).update(contacted_at=now, contact_note=text)
        elif step is FollowUpStep.RECTIFY:
            if rating.contacted_at is None:
                raise DomainError("INVALID_TRANSITION", "请先回访评价人，再记录整改情况", None)
            if rating.rectified_at is not None:
                return rating
            await Rating.filter(id=rating.id, rectified_at__isnull=True).update(rectified_at=now, rectification=text)
        else:
            if rating.rectified_at is None:
                raise DomainError("INVALID_TRANSITION", "请先记录整改情况，再反馈整改结果", None)
            if rating.result_reported_at is not None:
                return rating
            if not await Rating.filter(id=rating.id, result_reported_at__isnull=True).update(
                result=text, result_reported_at=now
            ):
                return await Rating.get(id=rating.id)  # reported by a simultaneous twin: one notice only
            department = await Department.get(id=rating.department_id)
            item_name = "建议和投诉"
            if rating.item_code:
                item = await ApprovalItem.get_or_none(code=rating.item_code)
                item_name = item.name if item else rating.item_code
            await record_notice(
                recipient_id=rating.rater_id, kind=NoticeKind.RATING_FOLLOWUP_RESULT,
                source_key=f"rating:{rating.id}:result",
                variables={"rating_id": to_global_id("Rating", rating.id), "item_name": item_name,
                           "department": department.name, "result": text, "followed_up_at": now},
                now=now,
            )
    if step is FollowUpStep.RESULT:
        await dispatch.wake()
    return await Rating.get(id=rating_id)


async def confirm_result(viewer: Viewer | None, rating_id: int, satisfied: bool) -> Rating:
    viewer = require_viewer(viewer)
    rating = await Rating.get_or_none(id=rating_id, rater_id=viewer.user_id)
    if rating is None:
        raise _not_found()
    if rating.result_reported_at is None:
        raise DomainError("INVALID_TRANSITION", "部门尚未反馈整改结果", None)
    await Rating.filter(id=rating.id).update(rater_satisfied=satisfied)
    return await Rating.get(id=rating_id)


async def appeal(viewer: Viewer | None, rating_id: int, reason: str) -> Rating:
    """申诉复核: the department says the rating is mistaken or malicious; once."""
    text = check_complaint_text(reason, field="reason")
    rating = await _department_rating(viewer, rating_id)
    if rating.appeal_status != "NONE":
        raise DomainError("INVALID_TRANSITION", "该评价已申诉过", None)
    if not await Rating.filter(id=rating.id, appeal_status="NONE").update(appeal_status="PENDING", appeal_reason=text):
        raise DomainError("INVALID_TRANSITION", "该评价已申诉过", None)  # a simultaneous appeal came first
    return await Rating.get(id=rating_id)


async def decide_appeal(viewer: Viewer | None, rating_id: int, upheld: bool, note: str, now: dt.datetime) -> Rating:
    viewer = require_viewer(viewer)
    if viewer.role is not Role.SUPERVISOR:
        raise DomainError("PERMISSION_DENIED", "申诉由督办人员复核", None)
    text = check_complaint_text(note, field="note")
    rating = await get_rating(viewer, rating_id)
    if rating.appeal_status != "PENDING":
        raise DomainError("INVALID_TRANSITION", "该评价没有待复核的申诉", None)
    decided = await Rating.filter(id=rating.id, appeal_status="PENDING").update(
        appeal_status="UPHELD" if upheld else "REJECTED", appeal_decided_at=now, appeal_decision_note=text
    )
    if not decided:  # a simultaneous decision came first: this one was not applied, say so
        raise DomainError("INVALID_TRANSITION", "该评价没有待复核的申诉", None)
    return await Rating.get(id=rating_id)


def is_overdue(rating: Rating, now: dt.datetime) -> bool:
    if rating.level > 2 or rating.appeal_status == "UPHELD":
        return False
    return (rating.contact_due is not None and follow_up_overdue(due=rating.contact_due, done_at=rating.contacted_at,
                                                                  now=now)) or (
        rating.rectify_due is not None and follow_up_overdue(due=rating.rectify_due, done_at=rating.rectified_at,
                                                             now=now)
    )


async def stats(
    viewer: Viewer | None,
    *,
    department_id: int | None,
    item_code: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    now: dt.datetime,
) -> RatingStats:
    viewer = require_viewer(viewer)
    if viewer.role not in READ_ALL_ROLES and viewer.role is not Role.APPROVER:
        raise DomainError("PERMISSION_DENIED", "仅工作人员可查看评价统计", None)
    query = Rating.filter(rating_scope(viewer))
    if department_id is not None:
        query = query.filter(department_id=department_id)
    if item_code:
        query = query.filter(item_code=item_code)
    if since is not None:
        query = query.filter(created_at__gte=since)
    if until is not None:
        query = query.filter(created_at__lt=until)
    ratings = await query
    return rating_stats(
        RatingFacts(
            level=r.level, excluded=r.appeal_status == "UPHELD", rectified=r.rectified_at is not None,
            overdue=is_overdue(r, now),
        )
        for r in ratings
    )
