"""Moving a case through its lifecycle: the one path every transition takes (DOMAIN.md §4).

A window clerk's or an approver's mutation, an applicant's mutation and a department system's pushed event all come
here, so they are validated in exactly the same way. One transaction: the event is appended and the case's projection
updated together, or nothing is written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain.errors import DomainError
from api.domain.lifecycle import (
    ACTION_LABELS,
    DECIDED_STATES,
    STATE_BLZT,
    Action,
    Party,
    plan_transition,
)
from api.domain.timing import DECISION_STATES
from api.models import ApprovalItem, Case, CaseEvent, Upload
from api.services import certificates, clocks
from api.services.access import Viewer, case_scope, not_found
from api.services.calendar import get_calendar
from api.services.notices import record_case_notice
from api.services.progress import case_timing
from notifications import dispatch

MAX_ATTACHMENTS = 20
# Actions a department's own system may push: the department's own, and the window's for its own cases (many
# departments receive and accept at their own halls and report it from their system) [规程 7.12]. Actions that belong
# to the applicant (接件, 撤件, 补正结束, 撤回) never come from a department.
DEPARTMENT_SYSTEM_PARTY: dict[Action, Party] = {
    Action.ACCEPT: Party.WINDOW,
    Action.NOT_ACCEPT: Party.WINDOW,
    Action.REFUSE: Party.WINDOW,
    Action.REQUEST_CORRECTION: Party.WINDOW,
    Action.START: Party.DEPARTMENT,
    Action.BEGIN_SPECIAL_PROCEDURE: Party.DEPARTMENT,
    Action.END_SPECIAL_PROCEDURE: Party.DEPARTMENT,
    Action.APPROVE: Party.DEPARTMENT,
    Action.APPROVE_DEFICIENT: Party.DEPARTMENT,
    Action.DISAPPROVE: Party.DEPARTMENT,
    Action.REVOKE: Party.DEPARTMENT,
}


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in person, or a department's own system (部门审批业务系统)."""

    viewer: Viewer | None = None
    department_id: int | None = None

    @classmethod
    def person(cls, viewer: Viewer) -> "Actor":
        return cls(viewer=viewer)

    @classmethod
    def department_system(cls, department_id: int) -> "Actor":
        return cls(department_id=department_id)

    def dedupe_key(self, request_id: str | None) -> str | None:
        if not request_id:
            return None
        if len(request_id) > 128:
            raise DomainError("INVALID_INPUT", "请求编号不能超过128个字符", "requestId")
        if self.viewer is not None:
            return f"user:{self.viewer.user_id}:{request_id}"
        return f"dept:{self.department_id}:{request_id}"


@dataclass(frozen=True)
class ActionResult:
    case: Case
    event: CaseEvent
    duplicate: bool  # the same request (event id) was applied before: nothing changed
    notified: bool = False  # the transition wrote a notice to the outbox
    certificate_id: int | None = None  # the approval issued this certificate (its PDF is made after the commit)


async def apply_case_action(
    actor: Actor,
    action: Action,
    *,
    case_id: int | None = None,
    case_code: str | None = None,
    data: Mapping[str, Any] | None = None,
    attachments: Sequence[Any] = (),
    occurred_at: dt.datetime | None = None,
    request_id: str | None = None,
    now: dt.datetime | None = None,
    certificate: certificates.CertificateReference | None = None,
) -> ActionResult:
    """Apply one transition. Raises ``DomainError`` for every expected refusal; then nothing has changed.

    ``certificate``: the certificate a department's system already issued with its approval (issue #15), recorded
    instead of one sealed here."""
    now = now or dt.datetime.now(dt.timezone.utc)
    dedupe_key = actor.dedupe_key(request_id)
    if dedupe_key is not None:
        previous = await _previous_result(dedupe_key, action, case_id, case_code)
        if previous is not None:
            return previous
    try:
        async with in_transaction():
            result = await _apply(
                actor, action, case_id, case_code, data, attachments, occurred_at, dedupe_key, now, certificate
            )
    except IntegrityError:
        # A concurrent writer took the same sequence number or the same request id first.
        if dedupe_key is not None:
            previous = await _previous_result(dedupe_key, action, case_id, case_code)
            if previous is not None:
                return previous
        raise DomainError("CONFLICT", "办件刚被他人处理，请刷新后重试", None) from None
    if result.notified:
        await dispatch.wake()  # after the commit: the notice is there to be found
    if result.certificate_id is not None:
        certificates.wake()  # seal the PDF now; the sweep would find it anyway
    return result


async def _previous_result(
    dedupe_key: str, action: Action, case_id: int | None, case_code: str | None
) -> ActionResult | None:
    event = await CaseEvent.get_or_none(dedupe_key=dedupe_key).select_related("case")
    if event is None:
        return None
    same_case = (case_id is None or event.case.id == case_id) and (case_code is None or event.case.code == case_code)
    if not same_case or event.action is not action:
        raise DomainError("DUPLICATE_REQUEST_ID", "该请求编号已用于另一项操作", "requestId")
    case = await Case.get(id=event.case.id)
    return ActionResult(case=case, event=event, duplicate=True)


async def _load_case(actor: Actor, case_id: int | None, case_code: str | None) -> Case:
    query = Case.filter(id=case_id) if case_id is not None else Case.filter(code=case_code or "")
    if actor.viewer is not None:
        query = query.filter(case_scope(actor.viewer))
    else:
        query = query.filter(department_id=actor.department_id)
    case = await query.select_for_update().first()
    if case is None:
        raise not_found()
    return case


def _party(actor: Actor, action: Action) -> Party:
    if actor.viewer is not None:
        party = actor.viewer.party
        if party is None:
            raise DomainError("PERMISSION_DENIED", f"您的角色不能“{ACTION_LABELS[action]}”", None)
        return party
    party = DEPARTMENT_SYSTEM_PARTY.get(action)
    if party is None:
        raise DomainError("WRONG_PARTY", f"“{ACTION_LABELS[action]}”只能由申请人办理，不能由部门系统推送", None)
    return party


# The applicant's own acts a department system may report for a case its own window received (issue #15): the
# applicant withdrew, resubmitted corrections or retracted at that window.
_APPLICANT_AT_DEPARTMENT_WINDOW = frozenset({Action.WITHDRAW, Action.SUBMIT_CORRECTION, Action.RETRACT})


async def _received_by(actor: Actor, case: Case) -> bool:
    """The acting department's own system received this case (``blzt: 1`` from it)."""
    return actor.viewer is None and await CaseEvent.exists(
        case_id=case.id, seq=1, action=Action.RECEIVE, department_id=actor.department_id
    )


async def _party_on(case: Case, actor: Actor, action: Action) -> Party:
    if action in _APPLICANT_AT_DEPARTMENT_WINDOW and await _received_by(actor, case):
        return Party.APPLICANT
    return _party(actor, action)


async def _apply(
    actor: Actor,
    action: Action,
    case_id: int | None,
    case_code: str | None,
    data: Mapping[str, Any] | None,
    attachments: Sequence[Any],
    occurred_at: dt.datetime | None,
    dedupe_key: str | None,
    now: dt.datetime,
    reference: certificates.CertificateReference | None = None,
) -> ActionResult:
    case = await _load_case(actor, case_id, case_code)
    if dedupe_key is not None:
        # The same request sent twice at once: the first has applied it by now (the case row is locked); the second
        # answers like a retry instead of being refused by the state the first left (issue #10).
        previous = await _previous_result(dedupe_key, action, case_id, case_code)
        if previous is not None:
            return previous
    party = await _party_on(case, actor, action)
    try:
        plan = plan_transition(
            case.state, action, party, data, correction_already_requested=case.correction_requested
        )
    except DomainError as exc:
        if exc.code == "WRONG_PARTY" and actor.viewer is not None:
            raise DomainError("PERMISSION_DENIED", exc.message, None) from None
        raise
    stored_attachments = await _attachments(actor, attachments)
    if action is Action.SUBMIT_CORRECTION and not stored_attachments:
        raise DomainError("REQUIRED", "请上传补正材料", "uploadIds")
    if plan.target in DECISION_STATES:
        await _check_predecessors(case)
    approving = action in (Action.APPROVE, Action.APPROVE_DEFICIENT)
    if reference is not None and not approving:
        raise DomainError("INVALID_INPUT", "证照只能随办结（通过）登记", "certificate")
    if approving and reference is None and case.certificate_type and await _received_by(actor, case):
        # The department's own window received it: the department's system issued its certificate, not this platform.
        raise DomainError("REQUIRED", "该办件由部门系统接件，办结时须登记部门已签发的证照（certificate）", "certificate")

    last = await CaseEvent.filter(case_id=case.id).order_by("-seq").first()
    moment = _event_time(occurred_at, last, now)

    event = await CaseEvent.create(
        case_id=case.id,
        seq=case.last_seq + 1,
        action=action,
        blzt=plan.blzt,
        state_after=plan.target,
        party=party,
        actor_id=actor.viewer.user_id if actor.viewer else None,
        department_id=actor.department_id,
        external_id=dedupe_key.split(":", 2)[2] if dedupe_key and actor.viewer is None else None,
        dedupe_key=dedupe_key,
        occurred_at=moment,
        data=plan.data,
        attachments=stored_attachments,
    )
    changed = await Case.filter(id=case.id, last_seq=case.last_seq).update(
        state=plan.target,
        blzt=STATE_BLZT[plan.target],
        last_seq=case.last_seq + 1,
        correction_requested=case.correction_requested or action is Action.REQUEST_CORRECTION,
        updated_at=now,
    )
    if changed != 1:
        raise IntegrityError("case changed concurrently")
    case.state, case.blzt, case.last_seq = plan.target, STATE_BLZT[plan.target], case.last_seq + 1
    case.correction_requested = case.correction_requested or action is Action.REQUEST_CORRECTION
    await clocks.refresh([case.id])  # the clock's read model, with its event
    # The applicant's notice, in this same transaction: it exists if and only if the transition happened.
    timing = None
    if action is Action.ACCEPT:  # the notice tells when the case is due
        events = await CaseEvent.filter(case_id=case.id).order_by("seq")
        timing = case_timing(case, events, await get_calendar(), now)
    notice = await record_case_notice(case, event, timing=timing, now=now)
    # 同步签发 (DOMAIN.md §6): the certificate record and its notice belong to the approval's transaction; 撤销 revokes it.
    certificate = None
    if action in (Action.APPROVE, Action.APPROVE_DEFICIENT):
        certificate = await certificates.record_issuance(case, event, now=now, reference=reference)
    elif action is Action.REVOKE:
        await certificates.revoke_for_case(case, event)
    return ActionResult(
        case=case,
        event=event,
        duplicate=False,
        notified=notice is not None or certificate is not None,
        certificate_id=certificate.id if certificate is not None else None,
    )


def _event_time(occurred_at: dt.datetime | None, last: CaseEvent | None, now: dt.datetime) -> dt.datetime:
    """A person's event happens now; a pushed event carries its own time, which must keep the timeline in order."""
    from api.settings import get_settings

    if occurred_at is None:
        return max(now, last.occurred_at) if last is not None else now
    if occurred_at.tzinfo is None:
        raise DomainError("EVENT_TIME_INVALID", "事件时间须带时区（如 2026-10-09T10:00:00+08:00）", "occurredAt")
    if occurred_at > now + dt.timedelta(seconds=get_settings().event_max_future_skew):
        raise DomainError("EVENT_TIME_INVALID", "事件时间晚于当前时间", "occurredAt")
    if last is not None and occurred_at < last.occurred_at:
        raise DomainError("EVENT_TIME_INVALID", "事件时间早于该办件的上一环节，时间线不能倒序", "occurredAt")
    return occurred_at


async def _attachments(actor: Actor, attachments: Sequence[Any]) -> list[dict[str, str]]:
    if len(attachments) > MAX_ATTACHMENTS:
        raise DomainError("INVALID_INPUT", f"附件不能超过{MAX_ATTACHMENTS}个", "attachments")
    if actor.viewer is None:
        # A department system refers to documents it keeps: {"name": ..., "ref": ...}.
        out = []
        for entry in attachments:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
                raise DomainError("INVALID_INPUT", "附件须包含名称（name）", "attachments")
            ref = entry.get("ref")
            if ref is not None and not isinstance(ref, str):
                raise DomainError("INVALID_INPUT", "附件引用（ref）须为字符串", "attachments")
            out.append({"name": entry["name"].strip()[:255], "ref": (ref or "")[:500]})
        return out
    return await resolve_uploads(actor.viewer, attachments, field="attachments")


async def resolve_uploads(viewer: Viewer, upload_ids: Sequence[Any], *, field: str) -> list[dict[str, str]]:
    """Upload ids → stored references; only one's own uploads may be attached."""
    ids = []
    for raw in upload_ids:
        try:
            ids.append(uuid.UUID(str(raw)))
        except ValueError:
            raise DomainError("UPLOAD_NOT_FOUND", f"上传文件 {str(raw)[:40]} 不存在", field) from None
    if not ids:
        return []
    found = {u.id: u for u in await Upload.filter(id__in=ids, owner_id=viewer.user_id)}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise DomainError("UPLOAD_NOT_FOUND", f"上传文件 {missing[0]} 不存在或不属于您", field)
    return [{"uploadId": str(i), "name": found[i].filename} for i in dict.fromkeys(ids)]


async def _check_predecessors(case: Case) -> None:
    """前后时序 [规程 7.8]: a case may be decided only after all its predecessors are decided."""
    codes = list(case.predecessor_codes or [])
    if not codes:
        return
    latest: dict[str, str] = {}
    for row in (
        await Case.filter(project_id=case.project_id, item__code__in=codes)
        .order_by("id")
        .values("item__code", "state")
    ):
        latest[row["item__code"]] = row["state"]
    blocking = [code for code in codes if code not in latest or latest[code] not in DECIDED_STATES]
    if blocking:
        names = [i.name for i in await ApprovalItem.filter(code__in=blocking).order_by("code")]
        raise DomainError(
            "PREDECESSOR_NOT_DECIDED",
            f"前置事项“{'、'.join(names or blocking)}”尚未办结，本事项暂不能办结",
            None,
        )
