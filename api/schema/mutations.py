"""Mutations of approval progress. Each takes one ``input`` and returns a payload with ``errors`` (errors-as-data).

Every transition accepts an optional ``requestId``: sending the same request again (a retry after a lost answer)
returns the first result with ``duplicate: true`` and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry

from api.domain.lifecycle import Action
from api.services.access import require_viewer
from api.services.applications import MaterialInput, submit_application
from api.services.cases import Actor, apply_case_action
from api.schema.base import UserError, pk_of, payload_or_errors
from api.schema.types import Application, Case, SpecialProcedureKind

RequestId = strawberry.field(
    default=None, description="Your own id for this request: a retry with the same id changes nothing."
)


@strawberry.type
class CasePayload:
    case: Case | None = None
    duplicate: bool = strawberry.field(default=False, description="True when this requestId was applied before.")
    errors: list[UserError]


@strawberry.type
class SubmitApplicationPayload:
    application: Application | None = None
    cases: list[Case] = strawberry.field(default_factory=list)
    duplicate: bool = False
    errors: list[UserError]


@strawberry.input
class MaterialSubmission:
    code: str = strawberry.field(description="Material code from the stage's material list")
    upload_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Ids returned by POST /uploads"
    )
    certificate_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list,
        description="Valid certificates held by your organisation, cited instead of uploads (复用, 规程 6.6)",
    )


@strawberry.input
class SubmitApplicationInput:
    project_code: str
    stage: int
    item_codes: list[str]
    form: strawberry.scalars.JSON = strawberry.field(description="The stage's one form, field name → value")
    materials: list[MaterialSubmission] = strawberry.field(default_factory=list)
    idempotency_key: str | None = strawberry.field(
        default=None, description="A retry with the same key returns the first application."
    )


@strawberry.input
class CaseActionInput:
    case_id: strawberry.ID
    opinion: str | None = None
    request_id: str | None = RequestId


@strawberry.enum
class Rejection(Enum):
    NOT_ACCEPTED = "NOT_ACCEPTED"  # 不受理
    REFUSED = "REFUSED"  # 不予受理


@strawberry.input
class RejectCaseInput:
    case_id: strawberry.ID
    kind: Rejection
    reason: str
    request_id: str | None = RequestId


@strawberry.input
class CorrectionItem:
    material: str
    requirement: str


@strawberry.input
class RequestCorrectionInput:
    case_id: strawberry.ID
    corrections: list[CorrectionItem] = strawberry.field(description="The complete list, in one go (一次性告知)")
    opinion: str | None = None
    request_id: str | None = RequestId


@strawberry.input
class SubmitCorrectionInput:
    case_id: strawberry.ID
    upload_ids: list[strawberry.ID]
    opinion: str | None = None
    request_id: str | None = RequestId


@strawberry.input
class ReasonedCaseInput:
    case_id: strawberry.ID
    reason: str | None = None
    request_id: str | None = RequestId


@strawberry.input
class BeginSpecialProcedureInput:
    case_id: strawberry.ID
    kind: SpecialProcedureKind
    reason: str
    expected_days: int
    request_id: str | None = RequestId


@strawberry.input
class EndSpecialProcedureInput:
    case_id: strawberry.ID
    result: str
    attachment_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    request_id: str | None = RequestId


@strawberry.enum
class Decision(Enum):
    APPROVED = "APPROVED"  # 办结(通过)
    APPROVED_DEFICIENT = "APPROVED_DEFICIENT"  # 办结(容缺通过)
    DISAPPROVED = "DISAPPROVED"  # 办结(不通过)


@strawberry.input(description="批复文件: required for an approval")
class ApprovalDocumentInput:
    approval_date: dt.date
    document_number: str
    document_title: str
    valid_until: dt.date = strawberry.field(description="9999-01-01 = 长期有效")


@strawberry.input
class DecideCaseInput:
    case_id: strawberry.ID
    decision: Decision
    opinion: str | None = None
    reason: str | None = strawberry.field(default=None, description="Required when disapproved")
    document: ApprovalDocumentInput | None = None
    committed_items: list[str] = strawberry.field(default_factory=list, description="容缺: what was committed")
    attachment_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    request_id: str | None = RequestId


_DECISION_ACTION = {
    Decision.APPROVED: Action.APPROVE,
    Decision.APPROVED_DEFICIENT: Action.APPROVE_DEFICIENT,
    Decision.DISAPPROVED: Action.DISAPPROVE,
}


async def _transition(
    info: strawberry.Info,
    action: Action,
    case_id: str,
    request_id: str | None,
    data: dict | None = None,
    attachments: list[str] | None = None,
) -> CasePayload:
    async def run() -> dict:
        viewer = require_viewer(info.context.viewer)
        result = await apply_case_action(
            Actor.person(viewer),
            action,
            case_id=pk_of(case_id, "Case", "caseId"),
            data=data,
            attachments=list(attachments or []),
            request_id=request_id,
            now=info.context.now,
        )
        return {"case": result.case, "duplicate": result.duplicate}

    return await payload_or_errors(CasePayload, run)


@strawberry.type
class ProgressMutation:
    @strawberry.mutation(description="申报: the window receives (接件) every chosen item as a case, in parallel.")
    async def submit_application(self, info: strawberry.Info, input: SubmitApplicationInput) -> SubmitApplicationPayload:
        async def run() -> dict:
            viewer = require_viewer(info.context.viewer)
            submitted = await submit_application(
                viewer,
                project_code=input.project_code,
                stage=input.stage,
                item_codes=input.item_codes,
                form=input.form if input.form is not None else {},
                materials=[
                    MaterialInput(m.code, [str(u) for u in m.upload_ids], [str(c) for c in m.certificate_ids])
                    for m in input.materials
                ],
                idempotency_key=input.idempotency_key,
                now=info.context.now,
            )
            return {
                "application": submitted.application,
                "cases": submitted.cases,
                "duplicate": submitted.duplicate,
            }

        return await payload_or_errors(SubmitApplicationPayload, run)

    @strawberry.mutation(description="受理 (window). Starts the clock; day 1 is the next working day.")
    async def accept_case(self, info: strawberry.Info, input: CaseActionInput) -> CasePayload:
        return await _transition(info, Action.ACCEPT, input.case_id, input.request_id, {"opinion": input.opinion})

    @strawberry.mutation(description="不受理 / 不予受理 (window), with the reason.")
    async def reject_case(self, info: strawberry.Info, input: RejectCaseInput) -> CasePayload:
        action = Action.NOT_ACCEPT if input.kind is Rejection.NOT_ACCEPTED else Action.REFUSE
        return await _transition(info, action, input.case_id, input.request_id, {"reason": input.reason})

    @strawberry.mutation(description="补正 (window): the complete list of what to correct, once.")
    async def request_correction(self, info: strawberry.Info, input: RequestCorrectionInput) -> CasePayload:
        corrections = [{"material": c.material, "requirement": c.requirement} for c in input.corrections]
        return await _transition(
            info,
            Action.REQUEST_CORRECTION,
            input.case_id,
            input.request_id,
            {"corrections": corrections, "opinion": input.opinion},
        )

    @strawberry.mutation(description="补正材料 (applicant): resubmit what the window asked for.")
    async def submit_correction(self, info: strawberry.Info, input: SubmitCorrectionInput) -> CasePayload:
        return await _transition(
            info,
            Action.SUBMIT_CORRECTION,
            input.case_id,
            input.request_id,
            {"opinion": input.opinion},
            [str(u) for u in input.upload_ids],
        )

    @strawberry.mutation(description="撤件 (applicant), before acceptance.")
    async def withdraw_case(self, info: strawberry.Info, input: ReasonedCaseInput) -> CasePayload:
        return await _transition(info, Action.WITHDRAW, input.case_id, input.request_id, {"reason": input.reason})

    @strawberry.mutation(description="撤回 (applicant), after acceptance.")
    async def retract_case(self, info: strawberry.Info, input: ReasonedCaseInput) -> CasePayload:
        return await _transition(info, Action.RETRACT, input.case_id, input.request_id, {"reason": input.reason})

    @strawberry.mutation(description="部门开始办理 (approver).")
    async def start_case(self, info: strawberry.Info, input: CaseActionInput) -> CasePayload:
        return await _transition(info, Action.START, input.case_id, input.request_id, {"opinion": input.opinion})

    @strawberry.mutation(description="特别程序开始 (approver): the clock stops.")
    async def begin_special_procedure(self, info: strawberry.Info, input: BeginSpecialProcedureInput) -> CasePayload:
        data = {"kind": input.kind.value, "reason": input.reason, "expected_days": input.expected_days}
        return await _transition(info, Action.BEGIN_SPECIAL_PROCEDURE, input.case_id, input.request_id, data)

    @strawberry.mutation(description="特别程序结束 (approver), with its result: the clock runs again.")
    async def end_special_procedure(self, info: strawberry.Info, input: EndSpecialProcedureInput) -> CasePayload:
        return await _transition(
            info,
            Action.END_SPECIAL_PROCEDURE,
            input.case_id,
            input.request_id,
            {"result": input.result},
            [str(a) for a in input.attachment_ids],
        )

    @strawberry.mutation(description="办结 (approver): approved (批复文件 required), with deficiency, or disapproved.")
    async def decide_case(self, info: strawberry.Info, input: DecideCaseInput) -> CasePayload:
        data: dict = {"opinion": input.opinion, "reason": input.reason, "committed_items": input.committed_items}
        if input.document is not None:
            data["document"] = {
                "approval_date": input.document.approval_date,
                "document_number": input.document.document_number,
                "document_title": input.document.document_title,
                "valid_until": input.document.valid_until,
            }
        return await _transition(
            info,
            _DECISION_ACTION[input.decision],
            input.case_id,
            input.request_id,
            data,
            [str(a) for a in input.attachment_ids],
        )

    @strawberry.mutation(description="撤销 (approver): revokes an approval, with the reason.")
    async def revoke_case(self, info: strawberry.Info, input: ReasonedCaseInput) -> CasePayload:
        return await _transition(info, Action.REVOKE, input.case_id, input.request_id, {"reason": input.reason})



