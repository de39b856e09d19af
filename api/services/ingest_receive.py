"""``blzt: 1`` (接件) from a department's own system: its window received a case, which is created here (issue #15).

The case keeps the department's own 审批事项实例编码 (``caseCode``) and its own received time (``occurredAt``), so the
rest of its history (accept, corrections, special procedures, decision) can follow in the same batch with past times,
and its clock is counted from those times exactly as for a case received here. The department may create cases only
for its own items. An unknown project is refused unless the event carries its basic data (项目基本信息), which then
creates it under the applicant organisation (by 统一社会信用代码). Wire format: docs/INGEST.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain.accounts import Role
from api.domain.codes import is_valid_mobile, is_valid_region_code, is_valid_uscc
from api.domain.errors import DomainError
from api.domain.lifecycle import STATE_BLZT, Action, Party, plan_transition
from api.models import (
    Application,
    ApprovalItem,
    Case,
    CaseEvent,
    Department,
    ItemGuide,
    Organization,
    ProcessTemplate,
    Project,
    TemplateItem,
    TemplateStage,
    User,
)
from api.services import clocks
from api.services.applications import MAX_FORM_TEXT, _check_form, _check_open_cases, check_project_code, known_values
from api.services.cases import ActionResult, Actor, _event_time, _previous_result
from api.services.locks import lock_row
from notifications.channels.base import mask_phone

log = logging.getLogger("jianshen.ingest")

MAX_TEXT = 200
MAX_MATERIALS = 100


def _text(value: Any, field: str, label: str, max_length: int = MAX_TEXT, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length or not value.isprintable():
        raise DomainError("INVALID_INPUT" if value is not None else "REQUIRED",
                          f"{label}须为1至{max_length}个可见字符", field)
    return value.strip()


def _materials(value: Any) -> list[dict[str, Any]]:
    """Materials kept by the department: references only (``{"name", "ref", "code"?}``), no files here."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_MATERIALS:
        raise DomainError("INVALID_INPUT", f"材料 materials 须为数组，至多{MAX_MATERIALS}项", "materials")
    out = []
    for index, m in enumerate(value):
        if not isinstance(m, dict):
            raise DomainError("INVALID_INPUT", "每项材料须为对象 {name, ref}", f"materials.{index}")
        name = _text(m.get("name"), f"materials.{index}.name", "材料名称")
        ref = _text(m.get("ref"), f"materials.{index}.ref", "材料引用 ref", 128)
        code = _text(m.get("code"), f"materials.{index}.code", "材料编码", 64, required=False)
        out.append({"code": code or f"REF{index + 1:02d}", "name": name, "ref": ref, "uploads": [], "reusedFrom": None})
    return out


async def _organization(data: dict[str, Any], region_code: str) -> Organization:
    org = data.get("organization")
    if not isinstance(org, dict):
        raise DomainError("REQUIRED", "缺少建设单位 project.organization（名称、统一社会信用代码）", "project.organization")
    uscc = org.get("uscc")
    if not is_valid_uscc(uscc):
        raise DomainError("INVALID_USCC", "建设单位统一社会信用代码不正确（18位，含校验位）", "project.organization.uscc")
    name = _text(org.get("name"), "project.organization.name", "建设单位名称")
    existing = await Organization.get_or_none(uscc=uscc)
    if existing is not None:
        return existing
    return await Organization.create(name=name, uscc=uscc, region_code=region_code)


def _project_data(data: Any, code: str) -> dict[str, Any]:
    """The checked 项目基本信息 of an event that introduces its project."""
    if not isinstance(data, dict):
        raise DomainError("INVALID_INPUT", "项目基本信息 project 须为对象", "project")
    region = data.get("regionCode")
    if not is_valid_region_code(region):
        raise DomainError("INVALID_INPUT", "行政区划代码 project.regionCode 应为6位数字", "project.regionCode")
    process_type = data.get("processType")
    if not isinstance(process_type, int) or isinstance(process_type, bool):
        raise DomainError("INVALID_INPUT", "审批流程类型 project.processType 应为整数", "project.processType")
    investment = data.get("investment")
    try:
        amount = Decimal(str(investment)) if isinstance(investment, (int, float, str)) and not isinstance(
            investment, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise DomainError("INVALID_INPUT", "总投资 project.investment 应为非负数（万元）", "project.investment")
    return {
        "code": code,
        "name": _text(data.get("name"), "project.name", "项目名称"),
        "process_type": process_type,
        "region_code": region,
        "address": _text(data.get("address"), "project.address", "建设地点", 300),
        "investment": amount.quantize(Decimal("0.01")),
    }


async def _project(code: str, data: Any) -> Project:
    project = await Project.get_or_none(code=code)
    if project is not None:
        return project
    if data is None:
        raise DomainError(
            "PROJECT_UNKNOWN", "项目代码未登记；首次接件请附项目基本信息 project（名称、流程类型、行政区划、地址、总投资、建设单位）",
            "projectCode",
        )
    fields = _project_data(data, code)
    if not await ProcessTemplate.exists(process_type=fields["process_type"]):
        raise DomainError("INVALID_INPUT", "没有该审批流程类型", "project.processType")
    organization = await _organization(data, fields["region_code"])
    return await Project.create(organization_id=organization.id, **fields)


async def _template_entry(department: Department, project: Project, item_code: Any) -> TemplateItem:
    code = _text(item_code, "itemCode", "事项编码 itemCode", 64)
    item = await ApprovalItem.get_or_none(code=code, department_id=department.id)
    if item is None:  # unknown, or another department's item: the same answer
        raise DomainError("NOT_FOUND", "本部门没有该审批事项", "itemCode")
    entry = await TemplateItem.filter(
        item_id=item.id, template_stage__template__process_type=project.process_type
    ).select_related("template_stage", "item").first()
    if entry is None:
        raise DomainError("ITEM_NOT_IN_TEMPLATE", "该事项不在该项目的审批流程中", "itemCode")
    return entry


def _applicant_data(data: Any) -> tuple[str, str | None]:
    """The applicant's name and contact phone (a mainland mobile number, optional), checked."""
    if not isinstance(data, dict):
        raise DomainError("REQUIRED", "缺少申请人 applicant（姓名）", "applicant")
    name = _text(data.get("name"), "applicant.name", "申请人姓名", 100)
    phone = data.get("phone")
    if phone is not None and not is_valid_mobile(phone):
        raise DomainError("INVALID_INPUT", "申请人手机号 applicant.phone 应为11位手机号码", "applicant.phone")
    return name, phone


async def _applicant(name: str, phone: str | None, organization_id: int) -> User:
    """The person who applied at the department's window. With a phone: the organisation's own user who verified
    that number in the mini-program, if there is one (the case's notices then reach them as for an application made
    here); else a user of the organisation who cannot sign in, keeping the phone the notices are sent to by SMS."""
    if phone is not None:
        user = await User.filter(
            role=Role.APPLICANT, organization_id=organization_id, phone=phone, phone_verified_at__isnull=False
        ).order_by("id").first()
        if user is not None:
            return user
    user = await User.filter(
        role=Role.APPLICANT, organization_id=organization_id, display_name=name, openid=None, username=None,
        phone=phone,
    ).first()
    if user is None:
        user = await User.create(display_name=name, role=Role.APPLICANT, organization_id=organization_id, phone=phone)
    return user


MAX_FREE_FORM_FIELDS = 100


async def _form(data: Any, project: Project, stage: int) -> dict[str, Any]:
    """The application form the department sends (optional). Checked against the stage's one form (一张表单) exactly
    like an application made here when the stage has one; kept as given (flat, bounded) when it has none."""
    if data is None:
        return {}
    template_stage = await TemplateStage.get_or_none(template__process_type=project.process_type, stage=stage)
    specs = (template_stage.form_fields if template_stage else None) or []
    if specs:
        return _check_form(specs, data, await known_values(project, stage, specs))
    if not isinstance(data, dict) or len(data) > MAX_FREE_FORM_FIELDS:
        raise DomainError("FORM_INVALID", f"申报表单 form 须为对象，至多{MAX_FREE_FORM_FIELDS}项", "form")
    for key, value in data.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 64 or not key.isprintable():
            raise DomainError("FORM_INVALID", "表单项名称须为1至64个可见字符", "form")
        ok = value is None or isinstance(value, (bool, int, float)) or (
            isinstance(value, str) and len(value) <= MAX_FORM_TEXT and value.isprintable())
        if not ok:
            raise DomainError("FORM_INVALID", f"表单项“{key}”须为不超过{MAX_FORM_TEXT}字的文字、数字或布尔值", f"form.{key}")
    return dict(data)


async def receive_case(
    department: Department, event: dict[str, Any], *, case_code: str, event_id: str, occurred_at: dt.datetime,
    now: dt.datetime,
) -> ActionResult:
    """Create the case the department's window received; ``DomainError`` for every refusal (nothing changed)."""
    actor = Actor.department_system(department.id)
    dedupe_key = actor.dedupe_key(event_id)
    previous = await _previous_result(dedupe_key, Action.RECEIVE, None, case_code)
    if previous is not None:
        return previous
    project_code = check_project_code(event.get("projectCode") if isinstance(event.get("projectCode"), str) else "")
    moment = _event_time(occurred_at, None, now)
    materials = _materials(event.get("materials"))
    opinion = _text(event.get("opinion"), "opinion", "办理意见", 2000, required=False)
    applicant_name, applicant_phone = _applicant_data(event.get("applicant"))
    receive = plan_transition(None, Action.RECEIVE, Party.APPLICANT)
    try:
        async with in_transaction():
            previous = await _previous_result(dedupe_key, Action.RECEIVE, None, case_code)
            if previous is not None:
                return previous
            if await Case.exists(code=case_code):
                raise DomainError("CASE_CODE_TAKEN", "该审批事项实例编码已有办件，不能再次接件", "caseCode")
            project = await _project(project_code, event.get("project"))
            await lock_row(Project, project.id, "name")
            entry = await _template_entry(department, project, event.get("itemCode"))
            try:  # one open case per item and project, as for an application made here
                await _check_open_cases(project, [entry])
            except DomainError as error:
                raise DomainError(error.code, error.message, "itemCode") from None
            form = await _form(event.get("form"), project, entry.template_stage.stage)
            applicant = await _applicant(applicant_name, applicant_phone, project.organization_id)
            application = await Application.create(
                project_id=project.id,
                stage=entry.template_stage.stage,
                form=form,
                materials=materials,
                parallel_instance_code=f"tmp-{dedupe_key}"[:40],
                applicant_id=applicant.id,
                submitted_at=moment,
            )
            local_day = moment.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d")
            application.parallel_instance_code = f"BL{project.region_code}{local_day}{application.id:08d}"
            await application.save(update_fields=["parallel_instance_code"])
            guide = await ItemGuide.filter(item_id=entry.item.id).order_by("-version").first()
            case = await Case.create(
                code=case_code,
                application_id=application.id,
                project_id=project.id,
                item_id=entry.item.id,
                department_id=department.id,
                stage=entry.template_stage.stage,
                limit_days=entry.limit_days,
                limit_unit=entry.limit_unit,
                warning_days=entry.warning_days,
                predecessor_codes=list(entry.predecessor_codes or []),
                certificate_type=entry.certificate_type,
                guide_version=guide.version if guide is not None else None,
                state=receive.target,
                blzt=STATE_BLZT[receive.target],
                last_seq=1,
            )
            event_row = await CaseEvent.create(
                case_id=case.id,
                seq=1,
                action=Action.RECEIVE,
                blzt=receive.blzt,
                state_after=receive.target,
                party=Party.WINDOW,
                department_id=department.id,
                external_id=event_id,
                dedupe_key=dedupe_key,
                occurred_at=moment,
                data={"opinion": opinion} if opinion else {},
                attachments=[],
            )
            await clocks.refresh([case.id])  # the clock's read model, with its event
        log.info("case received from the department's system", extra={"fields": {
            "department": department.code, "case": case_code, "event_id": event_id,
            "applicant_phone": mask_phone(applicant_phone) if applicant_phone else None}})
    except IntegrityError:
        previous = await _previous_result(dedupe_key, Action.RECEIVE, None, case_code)
        if previous is not None:
            return previous
        raise DomainError("CONFLICT", "接件冲突（编码已被占用或同时提交），请稍后重试", None) from None
    return ActionResult(case=case, event=event_row, duplicate=False)
