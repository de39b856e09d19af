"""Events pushed by a department's own system (部门审批业务系统) [规程 7.12]; the wire format is in docs/INGEST.md.

The request is signed: ``X-Jianshen-Signature = hex(HMAC-SHA256(secret, "<timestamp>." + body))`` with the department's
secret, ``X-Jianshen-Timestamp`` in Unix seconds (stale ones are refused, so a captured request cannot be replayed
later), ``X-Jianshen-Department`` its code. Each event goes through ``apply_case_action`` exactly like a clerk's
mutation, in its own transaction; its own ``eventId`` makes a repeat change nothing. One event's refusal (or an
unexpected error) is that event's result only: the others of the batch still apply.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from api.busy import is_busy
from api.domain.errors import DomainError
from api.domain.lifecycle import BLZT_ACTION
from api.domain.timing import CaseState
from api.models import Department
from api.services.cases import Actor, _previous_result, apply_case_action
from api.services.certificates import parse_certificate_reference
from api.services.ingest_receive import receive_case

log = logging.getLogger("jianshen.ingest")

TIMESTAMP = re.compile(r"[0-9]{1,12}")
SIGNATURE = re.compile(r"[0-9a-f]{64}")
MAX_EVENT_ID = 128
MAX_CASE_CODE = 48

# Field names of the wire format (camelCase, like the GraphQL API) → the lifecycle's data keys.
_DATA_FIELDS = {
    "opinion": "opinion",
    "reason": "reason",
    "corrections": "corrections",
    "kind": "kind",
    "expectedDays": "expected_days",
    "result": "result",
    "committedItems": "committed_items",
}
_DOCUMENT_FIELDS = {
    "approvalDate": "approval_date",
    "documentNumber": "document_number",
    "documentTitle": "document_title",
    "validUntil": "valid_until",
}


class IngestRefused(Exception):
    """The whole request is refused (authentication or shape); ``status`` is the HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class EventResult:
    event_id: str | None
    status: str  # APPLIED | DUPLICATE | REJECTED
    code: str | None = None
    message: str | None = None
    field: str | None = None
    case_code: str | None = None
    state: str | None = None
    blzt: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in {
            "eventId": self.event_id,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "caseCode": self.case_code,
            "state": self.state,
            "blzt": self.blzt,
        }.items() if v is not None}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


async def authenticate(
    department_code: str | None, timestamp: str | None, signature: str | None, body: bytes, *, now: dt.datetime,
    max_skew: int,
) -> Department:
    """The department that signed this body, or ``IngestRefused`` (401). Headers are compared as ASCII only."""
    if not department_code or not timestamp or not signature:
        raise IngestRefused(401, "UNAUTHENTICATED", "缺少部门编码、时间戳或签名（X-Jianshen-Department/Timestamp/Signature）")
    timestamp = timestamp.strip()
    if not TIMESTAMP.fullmatch(timestamp) or abs(now.timestamp() - int(timestamp)) > max_skew:
        raise IngestRefused(401, "STALE_TIMESTAMP", f"时间戳无效或与服务器时间相差超过{max_skew}秒")
    department = None
    if len(department_code) <= 32 and department_code.isascii():
        department = await Department.get_or_none(code=department_code.strip())
    # An unknown department and a bad signature answer the same: nothing to learn by probing.
    # No secret (or a blank one) means no push at all: there is no fallback key.
    secret = department.ingest_secret if department is not None and (department.ingest_secret or "").strip() else None
    # After a rotation the previous key is accepted until its grace period ends (issue #12), then never again.
    previous = None
    if secret is not None and (department.previous_ingest_secret or "").strip():
        until = department.previous_ingest_secret_until
        previous = department.previous_ingest_secret if until is not None and now < until else None
    expected = sign(secret or "unknown-department", timestamp, body)  # same work either way
    expected_before = sign(previous or "no-previous-secret", timestamp, body)
    given = signature.strip().lower()
    # compare_digest takes ASCII only: a malformed signature is refused before it is compared.
    valid = SIGNATURE.fullmatch(given) is not None
    current_ok = valid and hmac.compare_digest(expected, given)
    previous_ok = valid and hmac.compare_digest(expected_before, given)
    if secret is None or not (current_ok or (previous is not None and previous_ok)):
        raise IngestRefused(401, "BAD_SIGNATURE", "签名无效")
    return department


async def rotate_ingest_secret(code: str, *, now: dt.datetime, grace_seconds: int) -> str | None:
    """A new random HMAC key for the department ``code`` (None: no such department). Its current key stays valid
    for ``grace_seconds`` while its system is reconfigured; a demo key (published in this repository) and a rotation
    with no grace stop at once."""
    from tortoise.transactions import in_transaction

    from api.settings import DEV_INGEST_SECRET_PREFIX

    new = secrets.token_urlsafe(48)  # 64 characters, within the column's 128
    async with in_transaction():
        department = await Department.select_for_update().get_or_none(code=code)
        if department is None:
            return None
        old = (department.ingest_secret or "").strip()
        keep = bool(old) and grace_seconds > 0 and not old.startswith(DEV_INGEST_SECRET_PREFIX)
        department.previous_ingest_secret = department.ingest_secret if keep else None
        department.previous_ingest_secret_until = now + dt.timedelta(seconds=grace_seconds) if keep else None
        department.ingest_secret = new
        await department.save(
            update_fields=["ingest_secret", "previous_ingest_secret", "previous_ingest_secret_until"]
        )
    return new


def parse_time(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise DomainError("EVENT_TIME_INVALID", "缺少事件时间 occurredAt（ISO 8601，带时区）", "occurredAt")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DomainError("EVENT_TIME_INVALID", "事件时间格式不正确（ISO 8601，带时区）", "occurredAt") from None
    if moment.tzinfo is None:
        raise DomainError("EVENT_TIME_INVALID", "事件时间须带时区（如 +08:00）", "occurredAt")
    return moment


def _event_data(event: dict[str, Any]) -> dict[str, Any]:
    data = {key: event[wire] for wire, key in _DATA_FIELDS.items() if wire in event}
    if "specialProcedure" in event and isinstance(event["specialProcedure"], dict):
        sp = event["specialProcedure"]
        data.update({_DATA_FIELDS[k]: v for k, v in sp.items() if k in ("kind", "reason", "expectedDays")})
    document = event.get("document")
    if isinstance(document, dict):
        data["document"] = {key: document.get(wire) for wire, key in _DOCUMENT_FIELDS.items()}
    elif document is not None:
        data["document"] = document
    return data


def _identifier(value: Any, max_length: int) -> str | None:
    """A department's id for something: a non-empty printable string (no control characters), at most ``max_length``."""
    if isinstance(value, str) and 0 < len(value) <= max_length and value.isprintable() and value.strip():
        return value
    return None


async def apply_event(department: Department, event: Any, *, now: dt.datetime) -> EventResult:
    """One event through the same path as a clerk's mutation; every refusal becomes this event's result."""
    if not isinstance(event, dict):
        return EventResult(None, "REJECTED", "INVALID_INPUT", "事件须为 JSON 对象")
    event_id = _identifier(event.get("eventId"), MAX_EVENT_ID)
    if event_id is None:
        return EventResult(
            None, "REJECTED", "INVALID_INPUT", f"缺少事件编号 eventId（不超过{MAX_EVENT_ID}个可见字符）", "eventId"
        )
    try:
        blzt = event.get("blzt")
        action = BLZT_ACTION.get(blzt) if isinstance(blzt, int) and not isinstance(blzt, bool) else None
        if action is None:
            raise DomainError("INVALID_INPUT", "办理状态代码 blzt 应为1至15的整数", "blzt")
        case_code = _identifier(event.get("caseCode"), MAX_CASE_CODE)
        if case_code is None:
            raise DomainError("INVALID_INPUT", "缺少办件编码 caseCode（审批事项实例编码）", "caseCode")
        attachments = event.get("attachments") or []
        if not isinstance(attachments, list):
            raise DomainError("INVALID_INPUT", "附件 attachments 须为数组", "attachments")
        if blzt == 1:  # 接件 at the department's own window: the case is created here (issue #15)
            result = await receive_case(
                department, event, case_code=case_code, event_id=event_id,
                occurred_at=parse_time(event.get("occurredAt")), now=now,
            )
        else:
            actor = Actor.department_system(department.id)
            try:
                reference = parse_certificate_reference(event.get("certificate"))
            except DomainError:
                # An event applied before answers DUPLICATE whatever it carries now (the first version wins).
                result = await _previous_result(actor.dedupe_key(event_id), action, None, case_code)
                if result is None:
                    raise
            else:
                result = await apply_case_action(
                    actor,
                    action,
                    case_code=case_code,
                    data=_event_data(event),
                    attachments=attachments,
                    occurred_at=parse_time(event.get("occurredAt")),
                    request_id=event_id,
                    now=now,
                    certificate=reference,
                )
    except DomainError as error:
        # The service names the mutations' field; on the wire the department's id for the event is ``eventId``.
        field = "eventId" if error.field == "requestId" else error.field
        return EventResult(event_id, "REJECTED", error.code, error.message, field)
    except Exception as error:  # noqa: BLE001 - one event's unexpected failure must not hide the results of the others
        if is_busy(error):
            raise  # the database cannot take a write now: the whole request answers 503, the retry is idempotent
        log.exception("ingest event failed", extra={"fields": {"department": department.code, "event_id": event_id}})
        return EventResult(event_id, "REJECTED", "INTERNAL_ERROR", "服务器处理该事件时出错，未做任何更改，请稍后重试")
    case = result.case
    return EventResult(
        event_id,
        "DUPLICATE" if result.duplicate else "APPLIED",
        case_code=case.code,
        state=CaseState(case.state).value,
        blzt=case.blzt,
    )
