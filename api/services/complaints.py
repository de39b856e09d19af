"""Suggestions and complaints (建议和投诉): filing, routing, the chat-style thread, replies and closing (DOMAIN.md §9).

Who sees what: the filer its own; a department's staff those assigned to it; dispatchers (window clerks, supervisors,
admins) all of them, since they route them. Asking for another's complaint answers like one that does not exist.
Every step is an append-only ``ComplaintEvent`` with the complaint's projection, in one transaction; a reply also writes
the filer's notice there. New thread messages are published to live subscribers after the commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Sequence

from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from api.domain.accounts import Role
from api.domain.codes import is_valid_mobile
from api.domain.errors import DomainError
from api.domain.ids import to_global_id
from api.domain.feedback import (
    MAX_MESSAGE,
    ComplaintAction,
    ComplaintCategory,
    ComplaintKind,
    ComplaintParty,
    ComplaintState,
    auto_closed,
    check_complaint_text,
    check_images,
    plan_complaint_action,
    reply_timing,
)
from api.domain.timing import Timing
from api.models import Department, User
from api.models.feedback import Complaint, ComplaintEvent, ComplaintMessage
from api.services.access import NOTHING, Viewer, client_key, require_viewer
from api.services.applications import check_project_code
from api.services.cases import resolve_uploads
from api.services.locks import lock_row
from api.services.progress import Page, page_of
from api.settings import Settings

DISPATCHER_ROLES = frozenset({Role.WINDOW_CLERK, Role.SUPERVISOR, Role.ADMIN})
FILER_ROLES = frozenset({Role.CITIZEN, Role.APPLICANT})
SHANGHAI = ZoneInfo("Asia/Shanghai")


def complaint_scope(viewer: Viewer | None) -> Q:
    if viewer is None:
        return NOTHING
    if viewer.role in FILER_ROLES:
        return Q(filer_id=viewer.user_id)
    if viewer.role in DISPATCHER_ROLES:
        return Q()
    if viewer.role is Role.APPROVER and viewer.department_id:
        return Q(department_id=viewer.department_id, state__not=ComplaintState.SUBMITTED)
    return NOTHING


def _not_found() -> DomainError:
    return DomainError("NOT_FOUND", "诉求不存在或您无权查看", None)


async def get_complaint(viewer: Viewer | None, complaint_id: int, *, lock: bool = False) -> Complaint:
    query = Complaint.filter(complaint_scope(require_viewer(viewer)), id=complaint_id)
    if lock:
        query = query.select_for_update()
    complaint = await query.first()
    if complaint is None:
        raise _not_found()
    return complaint


def party_of(viewer: Viewer, complaint: Complaint) -> ComplaintParty | None:
    if viewer.user_id == complaint.filer_id:
        return ComplaintParty.FILER
    if viewer.role is Role.APPROVER and viewer.department_id and viewer.department_id == complaint.department_id:
        return ComplaintParty.HANDLER
    if viewer.role in DISPATCHER_ROLES:
        return ComplaintParty.DISPATCHER
    return None


# -- filing ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FiledComplaint:
    complaint: Complaint
    duplicate: bool


async def file_complaint(
    viewer: Viewer | None,
    *,
    kind: ComplaintKind,
    category: ComplaintCategory,
    text: str,
    image_ids: Sequence[Any],
    project_code: str | None,
    department_id: int | None,
    contact_phone: str | None,
    idempotency_key: str | None,
    settings: Settings,
    check_text,
    now: dt.datetime,
) -> FiledComplaint:
    """``check_text(text, openid) -> "pass" | "review" | "risky"`` is WeChat content security (msgSecCheck v2)."""
    viewer = require_viewer(viewer)
    if viewer.role not in FILER_ROLES:
        raise DomainError("PERMISSION_DENIED", "工作人员不能以本人身份提交建议或投诉", None)
    key = client_key(viewer, idempotency_key)
    if key and (previous := await Complaint.get_or_none(idempotency_key=key)) is not None:
        return FiledComplaint(previous, duplicate=True)
    cleaned = check_complaint_text(text)
    check_images(image_ids)
    code = check_project_code(project_code, field="projectCode") if project_code else None
    phone = (contact_phone or "").strip() or None
    if phone is not None and not is_valid_mobile(phone):
        raise DomainError("INVALID_INPUT", "联系电话应为11位手机号码", "contactPhone")
    department = None
    if department_id is not None:
        department = await Department.get_or_none(id=department_id)
        if department is None:
            raise DomainError("NOT_FOUND", "部门不存在", "departmentId")
    # Rate limit per filer and calendar day in China (a 差 flood helps no one). Checked here to spare the content
    # check, and again, atomically with the insert, below.
    day_start = dt.datetime.combine(
        now.astimezone(SHANGHAI).date(), dt.time(0), tzinfo=SHANGHAI
    )
    await _check_daily_limit(viewer.user_id, day_start, settings)
    images = await resolve_uploads(viewer, image_ids, field="imageIds")
    user = await User.get(id=viewer.user_id)
    verdict = await check_text(cleaned, user.openid)
    if verdict == "risky":
        raise DomainError("CONTENT_RISKY", "内容含有违法违规信息，请修改后再提交", "text")

    try:
        async with in_transaction():
            # The filer's row is the lock of its daily count: simultaneous filings (also from other processes)
            # count and insert one after the other, so the limit holds however they interleave (issue #10).
            await lock_row(User, viewer.user_id, "display_name")
            if key and (previous := await Complaint.get_or_none(idempotency_key=key)) is not None:
                return FiledComplaint(previous, duplicate=True)
            await _check_daily_limit(viewer.user_id, day_start, settings)
            complaint = await Complaint.create(
                filer_id=viewer.user_id, kind=kind, category=category, text=cleaned, images=images,
                project_code=code, department_id=department.id if department else None, contact_phone=phone,
                flagged_for_review=verdict == "review", state=ComplaintState.SUBMITTED, round_started_at=now,
                idempotency_key=key, created_at=now,
            )
    except IntegrityError:
        if key and (previous := await Complaint.get_or_none(idempotency_key=key)) is not None:
            return FiledComplaint(previous, duplicate=True)
        raise DomainError("CONFLICT", "提交冲突，请稍后重试", None) from None
    return FiledComplaint(complaint, duplicate=False)


async def _check_daily_limit(filer_id: int, day_start: dt.datetime, settings: Settings) -> None:
    filed_today = await Complaint.filter(filer_id=filer_id, created_at__gte=day_start).count()
    if filed_today >= settings.complaint_daily_limit:
        raise DomainError(
            "RATE_LIMITED", f"每人每天最多提交{settings.complaint_daily_limit}条建议或投诉，请明天再试", None
        )


# -- the flow -------------------------------------------------------------------------------------------------------


def effective_state(complaint: Complaint, settings: Settings, now: dt.datetime) -> ComplaintState:
    """What the complaint is now: a reply left unanswered past the auto-close period has closed it, even before the
    closing is recorded (it is recorded when the complaint is next acted on)."""
    if auto_closed(complaint.state, complaint.replied_at, now, settings.complaint_auto_close_days):
        return ComplaintState.CLOSED
    return complaint.state


async def _settle_auto_close(complaint_id: int, settings: Settings, now: dt.datetime) -> None:
    """Record a due auto-close in a transaction of its own, so that a refused action after it does not undo it."""
    async with in_transaction():
        complaint = await Complaint.filter(id=complaint_id).select_for_update().first()
        if complaint is None or effective_state(complaint, settings, now) is complaint.state:
            return
        at = complaint.replied_at + dt.timedelta(days=settings.complaint_auto_close_days)
        await _record(complaint, ComplaintAction.AUTO_CLOSE, ComplaintState.CLOSED, actor_id=None, at=at)
        await Complaint.filter(id=complaint.id).update(closed_at=at)


async def _record(
    complaint: Complaint,
    action: ComplaintAction,
    target: ComplaintState,
    *,
    actor_id: int | None,
    at: dt.datetime,
    department_id: int | None = None,
    note: str | None = None,
    dedupe_key: str | None = None,
) -> ComplaintEvent:
    event = await ComplaintEvent.create(
        complaint_id=complaint.id, seq=complaint.last_seq + 1, action=action, state_after=target,
        actor_id=actor_id, department_id=department_id, note=note, dedupe_key=dedupe_key, occurred_at=at,
    )
    changed = await Complaint.filter(id=complaint.id, last_seq=complaint.last_seq).update(
        state=target, last_seq=complaint.last_seq + 1
    )
    if changed != 1:
        raise IntegrityError("complaint changed concurrently")
    complaint.state, complaint.last_seq = target, complaint.last_seq + 1
    return event


async def act(
    viewer: Viewer | None,
    complaint_id: int,
    action: ComplaintAction,
    *,
    settings: Settings,
    now: dt.datetime,
    department_id: int | None = None,
    text: str | None = None,
    satisfied: bool | None = None,
    request_id: str | None = None,
) -> tuple[Complaint, bool]:
    """Assign, reply, close or reopen. Returns (complaint, duplicate). A retry with the same ``request_id`` changes
    nothing; every refusal changes nothing."""
    viewer = require_viewer(viewer)
    dedupe = f"user:{viewer.user_id}:{request_id}" if request_id else None
    if dedupe and len(request_id) > 128:
        raise DomainError("INVALID_INPUT", "请求编号不能超过128个字符", "requestId")
    if dedupe and (done := await _previous_act(viewer, dedupe, complaint_id, action)) is not None:
        return done
    from api.services.notices import record_notice
    from notifications import dispatch
    from notifications.kinds import NoticeKind

    notified = False
    await _settle_auto_close((await get_complaint(viewer, complaint_id)).id, settings, now)
    try:
        async with in_transaction():
            complaint = await get_complaint(viewer, complaint_id, lock=True)
            # The same request sent twice at once: the first has acted by now; the second answers like a retry
            # instead of being refused by the state the first left (issue #10).
            if dedupe and (done := await _previous_act(viewer, dedupe, complaint_id, action)) is not None:
                return done
            party = party_of(viewer, complaint)
            if party is None:
                raise _not_found()
            target = plan_complaint_action(complaint.state, action, party)
            note = None
            values: dict[str, Any] = {}
            dept = None
            if action is ComplaintAction.ASSIGN:
                if department_id is None:
                    raise DomainError("REQUIRED", "请选择承办部门", "departmentId")
                dept = await Department.get_or_none(id=department_id)
                if dept is None:
                    raise DomainError("NOT_FOUND", "部门不存在", "departmentId")
                values["department_id"] = dept.id
            elif action is ComplaintAction.REPLY:
                note = check_complaint_text(text or "", field="text", limit=MAX_MESSAGE * 2)
                values["replied_at"] = now
            elif action is ComplaintAction.CLOSE:
                if satisfied is None:
                    raise DomainError("REQUIRED", "请说明是否满意", "satisfied")
                values |= {"closed_at": now, "satisfied": satisfied}
            elif action is ComplaintAction.REOPEN:
                note = check_complaint_text(text or "", field="reason", limit=MAX_MESSAGE)
                values |= {"round_started_at": now, "replied_at": None}
            await _record(complaint, action, target, actor_id=viewer.user_id, at=now,
                          department_id=dept.id if dept else None, note=note, dedupe_key=dedupe)
            if values:
                await Complaint.filter(id=complaint.id).update(**values)
            if action is ComplaintAction.REPLY:
                # The reply is the department's word in the thread, and the filer is told [规程 11.2].
                await ComplaintMessage.create(
                    complaint_id=complaint.id, author_id=viewer.user_id, from_filer=False, text=note, images=[],
                    created_at=now,
                )
                department = await Department.get(id=complaint.department_id)
                await record_notice(
                    recipient_id=complaint.filer_id, kind=NoticeKind.COMPLAINT_REPLIED,
                    source_key=f"complaint_event:{complaint.id}:{complaint.last_seq}",
                    variables={
                        "complaint_id": _global_id(complaint.id), "complaint_title": complaint.text[:20],
                        "department": department.name, "replied_at": now,
                    },
                    now=now,
                )
                notified = True
    except IntegrityError:
        if dedupe and (done := await _previous_act(viewer, dedupe, complaint_id, action)) is not None:
            return done
        raise DomainError("CONFLICT", "诉求刚被他人处理，请刷新后重试", None) from None
    if notified:
        await dispatch.wake()
    return await Complaint.get(id=complaint_id), False


async def _previous_act(
    viewer: Viewer, dedupe: str, complaint_id: int, action: ComplaintAction
) -> tuple[Complaint, bool] | None:
    """The answer to a retry of an action already done with this request id; ``None`` when it was not done."""
    previous = await ComplaintEvent.get_or_none(dedupe_key=dedupe)
    if previous is None:
        return None
    if previous.complaint_id != complaint_id or previous.action is not action:
        raise DomainError("DUPLICATE_REQUEST_ID", "该请求编号已用于另一项操作", "requestId")
    return await get_complaint(viewer, complaint_id), True


def _global_id(complaint_id: int) -> str:
    return to_global_id("Complaint", complaint_id)


# -- the thread -----------------------------------------------------------------------------------------------------


async def post_message(
    viewer: Viewer | None,
    complaint_id: int,
    *,
    text: str,
    image_ids: Sequence[Any],
    request_id: str | None,
    settings: Settings,
    broker,
    now: dt.datetime,
) -> tuple[ComplaintMessage, bool]:
    viewer = require_viewer(viewer)
    dedupe = f"user:{viewer.user_id}:{request_id}" if request_id else None
    if dedupe and (previous := await ComplaintMessage.get_or_none(dedupe_key=dedupe)) is not None:
        if previous.complaint_id != complaint_id:
            raise DomainError("DUPLICATE_REQUEST_ID", "该请求编号已用于另一条消息", "requestId")
        return previous, True
    cleaned = check_complaint_text(text, field="text", limit=MAX_MESSAGE)
    check_images(image_ids)
    await _settle_auto_close((await get_complaint(viewer, complaint_id)).id, settings, now)
    complaint = await get_complaint(viewer, complaint_id)
    party = party_of(viewer, complaint)
    if party not in (ComplaintParty.FILER, ComplaintParty.HANDLER):
        raise DomainError("PERMISSION_DENIED", "只有诉求人和承办部门可以在此留言", None)
    if complaint.state is ComplaintState.CLOSED:
        raise DomainError("INVALID_TRANSITION", "诉求已办结，不能再留言", None)
    images = await resolve_uploads(viewer, image_ids, field="imageIds")
    try:
        message = await ComplaintMessage.create(
            complaint_id=complaint.id, author_id=viewer.user_id, from_filer=party is ComplaintParty.FILER,
            text=cleaned, images=images, dedupe_key=dedupe, created_at=now,
        )
    except IntegrityError:
        if dedupe and (previous := await ComplaintMessage.get_or_none(dedupe_key=dedupe)) is not None:
            if previous.complaint_id != complaint.id:
                raise DomainError("DUPLICATE_REQUEST_ID", "该请求编号已用于另一条消息", "requestId") from None
            return previous, True
        raise DomainError("CONFLICT", "留言提交冲突，请稍后重试", None) from None
    await broker.publish(thread_channel(complaint.id), {"messageId": message.id})
    return message, False


def thread_channel(complaint_id: int) -> str:
    return f"complaint:{complaint_id}:messages"


async def list_complaints(
    viewer: Viewer | None, *, first: int, after: str | None, state: ComplaintState | None, overdue_only: bool,
    settings: Settings, calendar, now: dt.datetime,
) -> Page[Complaint]:
    viewer = require_viewer(viewer)
    query = Complaint.filter(complaint_scope(viewer))
    if state is not None:
        query = query.filter(state=state)
    if overdue_only:
        if viewer.role not in DISPATCHER_ROLES and viewer.role is not Role.APPROVER:
            raise DomainError("PERMISSION_DENIED", "仅工作人员可查看逾期诉求", "overdueOnly")
        candidates = await query.filter(state__in=[ComplaintState.SUBMITTED, ComplaintState.ASSIGNED,
                                                   ComplaintState.REOPENED])
        late = [c.id for c in candidates if complaint_timing(c, settings, calendar, now).remaining < 0]
        query = Complaint.filter(id__in=late)
    return await page_of(query, first, after, newest_first=True)


def complaint_timing(complaint: Complaint, settings: Settings, calendar, now: dt.datetime) -> Timing:
    return reply_timing(
        complaint.round_started_at, complaint.replied_at, limit=settings.complaint_reply_days,
        warning_days=settings.complaint_warning_days, calendar=calendar, now=now,
    )
