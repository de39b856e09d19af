"""在线咨询 (issue #11, 规程 6.5): a question handed from the conversation to a person.

A consultation is routed to the department of the item being discussed (or named), else to the window (综合窗口); that
department's approvers (the window's clerks) answer, supervisors and admins read. The answer arrives in the asker's
conversation as a STAFF message, in the transaction that records it. The reply clock and lights are the complaints'
(``complaints.complaint_timing``: due within JIANSHEN_COMPLAINT_REPLY_DAYS working days, DOMAIN.md §9).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from api.domain.accounts import READ_ALL_ROLES, Role
from api.domain.errors import DomainError
from api.domain.feedback import MAX_MESSAGE, check_complaint_text
from api.models import ApprovalItem, Consultation, Conversation, ConversationMessage, Department
from api.models.conversation import ConsultationState, MessageAuthor
from api.services import conversation as conversations
from api.services.access import NOTHING, Viewer, client_key, require_viewer
from api.services.complaints import complaint_timing
from api.services.locks import lock_row
from api.services.progress import Page, page_of
from api.settings import Settings

WINDOW_NAME = "综合服务窗口"


def consultation_scope(viewer: Viewer | None) -> Q:
    if viewer is None:
        return NOTHING
    if viewer.role in READ_ALL_ROLES:
        return Q()
    if viewer.role is Role.WINDOW_CLERK:
        return Q(department_id__isnull=True)
    if viewer.role is Role.APPROVER and viewer.department_id:
        return Q(department_id=viewer.department_id)
    if not viewer.role.is_staff:
        return Q(asker_id=viewer.user_id)
    return NOTHING


def may_answer(viewer: Viewer, consultation: Consultation) -> bool:
    if consultation.department_id is None:
        return viewer.role is Role.WINDOW_CLERK
    return viewer.role is Role.APPROVER and viewer.department_id == consultation.department_id


def _not_found() -> DomainError:
    return DomainError("NOT_FOUND", "咨询不存在或您无权查看", None)


async def get_consultation(viewer: Viewer | None, consultation_id: int) -> Consultation:
    found = await Consultation.filter(consultation_scope(require_viewer(viewer)), id=consultation_id).first()
    if found is None:
        raise _not_found()
    return found


@dataclass(frozen=True)
class Opened:
    consultation: Consultation
    duplicate: bool  # the same request was answered before, or the same question is already waiting


async def open_consultation(
    viewer: Viewer | None, *, item_code: str | None, question: str | None, request_id: str | None,
    settings: Settings, now: dt.datetime,
) -> Opened:
    """Hand the conversation to a person. The question is the one given, else the person's latest message; the route
    is the item given, else the item being discussed, else the window. One waiting consultation per route: asking
    again while it waits answers the waiting one."""
    viewer = require_viewer(viewer)
    if viewer.role.is_staff:
        raise DomainError("PERMISSION_DENIED", "工作人员不能发起在线咨询", None)
    key = client_key(viewer, request_id, field="requestId")
    if key and (previous := await Consultation.get_or_none(request_key=key)) is not None:
        return Opened(previous, duplicate=True)
    conversation = await conversations.conversation_of(viewer.user_id, now)
    if question is not None and question.strip():
        text = conversations.check_text(question, settings)
    else:
        last = await ConversationMessage.filter(
            conversation_id=conversation.id, author=MessageAuthor.USER
        ).order_by("-id").first()
        if last is None:
            raise DomainError("REQUIRED", "请说明要咨询的问题", "question")
        text = last.text
    code = (item_code or "").strip() or await conversations.item_in_discussion(conversation.id)
    department = None
    if code:
        if len(code) > 64 or (item := await ApprovalItem.get_or_none(code=code)) is None:
            if item_code:
                raise DomainError("NOT_FOUND", "事项不存在", "itemCode")
            code = None  # an item the conversation named that is gone: the window answers
        else:
            department = await Department.get(id=item.department_id)
    try:
        async with in_transaction():
            await lock_row(Conversation, conversation.id, "read_up_to")  # one open at a time per person
            if key and (previous := await Consultation.get_or_none(request_key=key)) is not None:
                return Opened(previous, duplicate=True)
            waiting = await Consultation.filter(
                asker_id=viewer.user_id, department_id=department.id if department else None,
                state=ConsultationState.WAITING,
            ).first()
            if waiting is not None:
                return Opened(waiting, duplicate=True)
            consultation = await Consultation.create(
                asker_id=viewer.user_id, conversation_id=conversation.id,
                department_id=department.id if department else None, item_code=code, question=text,
                state=ConsultationState.WAITING, round_started_at=now, request_key=key, created_at=now,
            )
            who = department.name if department else WINDOW_NAME
            await conversations.append_message(
                conversation, MessageAuthor.SYSTEM,
                f"已为您转人工咨询，由{who}在{settings.complaint_reply_days}个工作日内答复，答复将显示在这里。",
                now=now, consultation_id=consultation.id, item_code=code,
            )
    except IntegrityError:
        if key and (previous := await Consultation.get_or_none(request_key=key)) is not None:
            return Opened(previous, duplicate=True)
        raise DomainError("CONFLICT", "提交冲突，请稍后重试", None) from None
    return Opened(consultation, duplicate=False)


async def answer_consultation(
    viewer: Viewer | None, consultation_id: int, *, text: str, request_id: str | None, now: dt.datetime,
) -> tuple[Consultation, ConversationMessage, bool]:
    """Staff of the consultation's department (the window's clerks) answer; the answer is a STAFF message in the
    asker's conversation. Returns (consultation, message, duplicate)."""
    viewer = require_viewer(viewer)
    dedupe = None
    if request_id:
        if len(request_id) > 128:
            raise DomainError("INVALID_INPUT", "请求编号不能超过128个字符", "requestId")
        dedupe = f"user:{viewer.user_id}:{request_id}"
        if (done := await _previous_answer(viewer, dedupe, consultation_id)) is not None:
            return done
    consultation = await get_consultation(viewer, consultation_id)
    if not may_answer(viewer, consultation):
        raise DomainError("PERMISSION_DENIED", "仅承办部门的工作人员可以答复该咨询", None)
    cleaned = check_complaint_text(text, field="text", limit=MAX_MESSAGE * 2)
    try:
        async with in_transaction():
            await lock_row(Consultation, consultation.id, "state")
            if dedupe and (done := await _previous_answer(viewer, dedupe, consultation_id)) is not None:
                return done
            conversation = await Conversation.get(id=consultation.conversation_id)
            message = await conversations.append_message(
                conversation, MessageAuthor.STAFF, cleaned, now=now, consultation_id=consultation.id,
                staff_id=viewer.user_id, item_code=consultation.item_code, dedupe_key=dedupe,
            )
            # The first answer of the round stops the reply clock; later ones add to the thread.
            await Consultation.filter(id=consultation.id, state=ConsultationState.WAITING).update(
                state=ConsultationState.ANSWERED, replied_at=now
            )
    except IntegrityError:
        if dedupe and (done := await _previous_answer(viewer, dedupe, consultation_id)) is not None:
            return done
        raise DomainError("CONFLICT", "提交冲突，请稍后重试", None) from None
    return await Consultation.get(id=consultation.id), message, False


async def _previous_answer(
    viewer: Viewer, dedupe: str, consultation_id: int
) -> tuple[Consultation, ConversationMessage, bool] | None:
    message = await ConversationMessage.get_or_none(dedupe_key=dedupe)
    if message is None:
        return None
    if message.consultation_id != consultation_id:
        raise DomainError("DUPLICATE_REQUEST_ID", "该请求编号已用于另一项操作", "requestId")
    return await get_consultation(viewer, consultation_id), message, True


async def list_consultations(
    viewer: Viewer | None, *, first: int, after: str | None, state: ConsultationState | None, overdue_only: bool,
    settings: Settings, calendar, now: dt.datetime,
) -> Page[Consultation]:
    """The queue: those the viewer may see, oldest first (the longest waiting on top)."""
    viewer = require_viewer(viewer)
    query = Consultation.filter(consultation_scope(viewer))
    if state is not None:
        query = query.filter(state=state)
    if overdue_only:
        waiting = await query.filter(state=ConsultationState.WAITING)
        late = [c.id for c in waiting if complaint_timing(c, settings, calendar, now).remaining < 0]
        query = Consultation.filter(id__in=late)
    return await page_of(query, first, after, newest_first=False)
