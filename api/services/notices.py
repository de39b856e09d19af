"""Writing notices to the outbox, and reading them back as the person's in-app notices (DESIGN.md §5, DOMAIN.md §10).

``record_notice`` must be called inside the transaction of the change that causes the notice: the notice, its in-app
text and its pending delivery are then committed together with the change, or not at all. After the commit the caller
wakes the dispatcher (``notifications.dispatch.wake``), which delivers it at least once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from tortoise.transactions import in_transaction

from api.domain.lifecycle import Action
from api.domain.timing import Timing
from api.models import Case, CaseEvent, Delivery, Notice
from api.models.notices import DeliveryStatus
from api.domain.accounts import READ_ALL_ROLES
from api.domain.errors import DomainError
from api.domain.ids import to_global_id
from api.logs import current_request_id
from api.services.access import Viewer, require_viewer
from api.services.conversation import record_system_message
from api.services.progress import Page, page_of
from api.settings import Settings, get_settings
from notifications.kinds import NoticeKind
from notifications.templates import NoticeTemplates, cached_templates

# Case transitions the applicant is told about [规程 6.7, 广东]: acceptance, correction (with the full list), not
# accepted / refused, and the three decisions.
CASE_NOTICES: dict[Action, NoticeKind] = {
    Action.ACCEPT: NoticeKind.CASE_ACCEPTED,
    Action.REQUEST_CORRECTION: NoticeKind.CORRECTION_REQUESTED,
    Action.NOT_ACCEPT: NoticeKind.CASE_NOT_ACCEPTED,
    Action.REFUSE: NoticeKind.CASE_REFUSED,
    Action.APPROVE: NoticeKind.CASE_APPROVED,
    Action.APPROVE_DEFICIENT: NoticeKind.CASE_APPROVED_DEFICIENT,
    Action.DISAPPROVE: NoticeKind.CASE_DISAPPROVED,
}


def notice_templates(settings: Settings | None = None) -> NoticeTemplates:
    settings = settings or get_settings()
    path = str(settings.notice_templates_file) if settings.notice_templates_file else None
    return cached_templates(path, settings.sms_provider)


async def record_notice(
    *,
    recipient_id: int,
    kind: NoticeKind,
    source_key: str,
    variables: Mapping[str, Any],
    now: dt.datetime,
) -> Notice:
    """Write one notice and its pending delivery. Idempotent: the same (recipient, kind, source) is written once."""
    existing = await Notice.get_or_none(recipient_id=recipient_id, kind=kind.value, source_key=source_key)
    if existing is not None:
        return existing
    text = notice_templates().inapp(kind, variables)  # checks the variables against the kind's contract
    stored = {k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in variables.items()}
    notice = await Notice.create(
        recipient_id=recipient_id,
        kind=kind.value,
        source_key=source_key,
        variables=stored,
        title=text.title[:100],
        body=text.body,
        created_at=now,
    )
    await Delivery.create(
        notice=notice, status=DeliveryStatus.PENDING, next_attempt_at=now, updated_at=now,
        request_id=current_request_id(),
    )
    # The conversation is the notice centre (issue #11): the same notice as a SYSTEM message, in this transaction.
    await record_system_message(notice, now)
    return notice


def stored_variables(notice: Notice) -> dict[str, Any]:
    """A notice's variables as the templates take them: times back to aware datetimes, dates to dates."""
    from notifications.kinds import NOTICE_VARIABLES, VariableType

    types = NOTICE_VARIABLES[NoticeKind(notice.kind)]
    out: dict[str, Any] = {}
    for name, value in notice.variables.items():
        vtype = types.get(name)
        if vtype is VariableType.DATETIME and isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        elif vtype is VariableType.DATE and isinstance(value, str):
            value = dt.date.fromisoformat(value)
        out[name] = value
    return out


async def record_case_notice(
    case: Case, event: CaseEvent, *, timing: Timing | None, now: dt.datetime
) -> Notice | None:
    """The notice of a case transition, to the person who applied; ``None`` when the transition is not notified."""
    kind = CASE_NOTICES.get(event.action)
    if kind is None:
        return None
    from api.models import Application

    await case.fetch_related("item", "department", "project")
    application = await Application.get(id=case.application_id).only("id", "applicant_id")
    data = event.data or {}
    variables: dict[str, Any] = {
        "case_id": to_global_id("Case", case.id),
        "case_code": case.code,
        "item_name": case.item.name,
        "department": case.department.name,
        "project_name": case.project.name,
    }
    at = event.occurred_at
    if kind is NoticeKind.CASE_ACCEPTED:
        variables |= {"accepted_at": at, "due_date": timing.due_date if timing else None}
    elif kind is NoticeKind.CORRECTION_REQUESTED:
        items = data.get("corrections", [])
        variables |= {
            "requested_at": at,
            "corrections": "；".join(f"{c['material']}：{c['requirement']}" for c in items),
        }
    elif kind is NoticeKind.CASE_APPROVED_DEFICIENT:
        variables |= {"decided_at": at, "deficiencies": "、".join(data.get("committed_items", []))}
    elif kind in (NoticeKind.CASE_NOT_ACCEPTED, NoticeKind.CASE_REFUSED, NoticeKind.CASE_DISAPPROVED):
        variables |= {"decided_at": at, "reason": data.get("reason", "")}
    else:
        variables |= {"decided_at": at}
    return await record_notice(
        recipient_id=application.applicant_id,
        kind=kind,
        source_key=f"case_event:{event.id}",
        variables=variables,
        now=now,
    )


# -- reading -----------------------------------------------------------------------------------------------------


async def unread_count(viewer: Viewer | None) -> int:
    viewer = require_viewer(viewer)
    return await Notice.filter(recipient_id=viewer.user_id, read_at__isnull=True).count()


async def mark_read(viewer: Viewer | None, notice_ids: list[int] | None, now: dt.datetime) -> int:
    """Mark the viewer's notices read (all of them when ``notice_ids`` is None). Another's ids are ignored silently:
    answering differently would tell that they exist. Safe to retry."""
    viewer = require_viewer(viewer)
    query = Notice.filter(recipient_id=viewer.user_id, read_at__isnull=True)
    if notice_ids is not None:
        query = query.filter(id__in=notice_ids)
    async with in_transaction():
        return await query.update(read_at=now)




async def list_notices(viewer: Viewer | None, *, first: int, after: str | None, unread_only: bool) -> Page[Notice]:
    viewer = require_viewer(viewer)
    query = Notice.filter(recipient_id=viewer.user_id)
    if unread_only:
        query = query.filter(read_at__isnull=True)
    return await page_of(query, first, after, newest_first=True)


def _require_delivery_staff(viewer: Viewer | None) -> Viewer:
    """Who sees and re-sends deliveries: supervisors and admins (they see who was told what, masked)."""
    viewer = require_viewer(viewer)
    if viewer.role not in READ_ALL_ROLES:
        raise DomainError("PERMISSION_DENIED", "仅督办人员和管理员可查看通知发送记录", None)
    return viewer


async def list_deliveries(
    viewer: Viewer | None,
    *,
    first: int,
    after: str | None,
    status: DeliveryStatus | None,
    kind: str | None,
    recipient_id: int | None,
) -> Page[Delivery]:
    _require_delivery_staff(viewer)
    query = Delivery.all()
    if status is not None:
        query = query.filter(status=status)
    if kind is not None:
        query = query.filter(notice__kind=kind)
    if recipient_id is not None:
        query = query.filter(notice__recipient_id=recipient_id)
    return await page_of(query, first, after, newest_first=True)


async def resend_delivery(viewer: Viewer | None, delivery_id: int, now: dt.datetime) -> Delivery:
    """Staff re-send a dead delivery (every channel may be tried again). Safe to retry: a pending or delivered one
    is left as it is and returned."""
    from notifications.dispatch import resend, wake

    _require_delivery_staff(viewer)
    delivery = await Delivery.get_or_none(id=delivery_id)
    if delivery is None:
        raise DomainError("NOT_FOUND", "发送记录不存在", "deliveryId")
    if delivery.status is DeliveryStatus.DELIVERED:
        raise DomainError("CONFLICT", "该通知已送达，无需重发", "deliveryId")
    if await resend(delivery_id, now):
        await wake()
    return await Delivery.get(id=delivery_id)
