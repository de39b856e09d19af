"""Submitting an application (申报): one stage, one form, one set of materials, several items handled in parallel.

The window receives (接件) every chosen item at once as a case under one parallel instance code [规程 7.8]. Materials
already submitted for the project are not asked for again [规程 6.6, 济宁 §16].
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain.accounts import Role
from api.domain.catalog import Stage
from api.domain.codes import is_valid_project_code
from api.domain.ids import to_global_id
from api.domain.errors import DomainError
from api.domain.lifecycle import APPROVED_STATES, CLOSED_STATES, STATE_BLZT, Action, Party, plan_transition
from api.models import Application, Case, CaseEvent, ItemGuide, ProcessTemplate, Project, TemplateItem, TemplateStage
from api.services import clocks
from api.services.access import Viewer, client_key, project_scope
from api.services.cases import resolve_uploads
from api.services.certificates import cite_certificates
from api.services.locks import lock_row

MAX_ITEMS = 50
MAX_FORM_TEXT = 2000
# Cases of an item that failed for good: a new application for the item is welcome.
_ENDED_WITHOUT_APPROVAL = CLOSED_STATES - APPROVED_STATES


@dataclass(frozen=True)
class MaterialInput:
    code: str
    upload_ids: Sequence[str]
    certificate_ids: Sequence[str] = ()  # global ids of held certificates cited instead of uploads (复用)


@dataclass(frozen=True)
class SubmittedApplication:
    application: Application
    cases: list[Case]
    duplicate: bool


def check_project_code(code: str, field: str = "projectCode") -> str:
    code = (code or "").strip()
    if not is_valid_project_code(code):
        raise DomainError(
            "INVALID_PROJECT_CODE",
            "项目代码格式不正确，应为24位，如 2304-441900-04-01-135254",
            field,
        )
    return code


async def submit_application(
    viewer: Viewer,
    *,
    project_code: str,
    stage: int,
    item_codes: Sequence[str],
    form: Mapping[str, Any] | None,
    materials: Sequence[MaterialInput],
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> SubmittedApplication:
    now = now or dt.datetime.now(dt.timezone.utc)
    if viewer.role is not Role.APPLICANT or viewer.organization_id is None:
        raise DomainError("PERMISSION_DENIED", "只有代表建设单位的申请人可以申报", None)
    key = client_key(viewer, idempotency_key)
    if key and (previous := await _previous(key)) is not None:
        return previous

    code = check_project_code(project_code)
    project = await Project.filter(project_scope(viewer), code=code).first()
    if project is None or project.organization_id != viewer.organization_id:
        raise DomainError("NOT_FOUND", "项目不存在或您无权申报", "projectCode")
    stage_enum, template_stage = await _template_stage(project, stage)

    entries = await _chosen_items(template_stage, item_codes)
    try:
        await _check_open_cases(project, entries)
    except DomainError:
        # A retry racing its own first attempt: the first may have committed its cases since the key was looked up
        # (reads do not wait for writes), and then the retry is answered with it, not refused for the cases it made.
        if key is not None and (previous := await _previous(key)) is not None:
            return previous
        raise
    await _check_predecessors_present(project, entries)
    known = await known_values(project, stage_enum.value, template_stage.form_fields or [])
    clean_form = _check_form(template_stage.form_fields or [], form or {}, known)
    clean_materials = await _check_materials(viewer, project, template_stage.materials or [], materials, now)

    try:
        async with in_transaction():
            # The project's row is the lock of "one open case per item": two submissions at once (or a retry with
            # its idempotency key) check and create one after the other (issue #10, api/services/locks.py).
            await lock_row(Project, project.id, "name")
            if key is not None and (previous := await _previous(key)) is not None:
                return previous
            await _check_open_cases(project, entries)
            return await _create(viewer, project, stage_enum, entries, clean_form, clean_materials, key, now)
    except IntegrityError:
        if key is not None and (previous := await _previous(key)) is not None:
            return previous
        raise DomainError("CONFLICT", "申报提交冲突，请稍后重试", None) from None


async def _template_stage(project: Project, stage: int) -> tuple[Stage, TemplateStage]:
    try:
        stage_enum = Stage(stage)
    except ValueError:
        raise DomainError("STAGE_NOT_IN_TEMPLATE", "审批阶段应为1至5", "stage") from None
    template_stage = await TemplateStage.filter(
        template__process_type=project.process_type, stage=stage_enum.value
    ).first()
    if template_stage is None:
        template = await ProcessTemplate.get_or_none(process_type=project.process_type)
        name = template.name if template else "该项目的审批流程"
        raise DomainError("STAGE_NOT_IN_TEMPLATE", f"{name}没有“{stage_enum.label}”阶段", "stage")
    return stage_enum, template_stage


@dataclass(frozen=True)
class StageForm:
    """What ``submit_application`` checks for one stage of one project, as the applicant sees it beforehand."""

    project: Project
    stage: Stage
    template_stage: TemplateStage
    fields: list[dict[str, Any]]  # the field spec plus "known": the value already known (or None)
    materials: list[dict[str, Any]]  # the material spec plus "reused_from" / "certificates" when already on file


async def stage_form(viewer: Viewer, *, project_code: str, stage: int) -> StageForm | None:
    """The stage's one form and materials for a project the viewer may see (None when it may not): each field with
    the value already known (最多填一次), each material with the earlier application that already holds it, by upload
    or by a cited certificate (不重复提交). ``submit_application`` validates against exactly this."""
    code = check_project_code(project_code)
    if viewer is None:
        return None
    project = await Project.filter(project_scope(viewer), code=code).first()
    if project is None:
        return None
    stage_enum, template_stage = await _template_stage(project, stage)
    specs = template_stage.form_fields or []
    known = await known_values(project, stage_enum.value, specs)
    on_file = await _materials_on_file(project, with_entries=True)
    materials = []
    for m in template_stage.materials or []:
        held = on_file.get(m["code"])
        if held:
            entry = dict(m, reused_from=held[0], certificates=list(held[1].get("certificates") or []))
        else:
            certificates = await _held_certificates(project, m.get("certificate_types") or [])
            entry = dict(m, reused_from=None, certificates=[{"certificateId": to_global_id("Certificate", c.id),
                                                              "name": c.name, "number": c.number} for c in certificates])
        materials.append(entry)
    return StageForm(project, stage_enum, template_stage, [dict(f, known=known.get(f["name"])) for f in specs], materials)


async def _previous(key: str) -> SubmittedApplication | None:
    application = await Application.get_or_none(idempotency_key=key)
    if application is None:
        return None
    cases = await Case.filter(application_id=application.id).order_by("id")
    return SubmittedApplication(application, cases, duplicate=True)


async def _chosen_items(template_stage: TemplateStage, item_codes: Sequence[str]) -> list[TemplateItem]:
    codes = [c.strip() for c in item_codes if isinstance(c, str) and c.strip()]
    if not codes:
        raise DomainError("REQUIRED", "请至少选择一个审批事项", "itemCodes")
    if len(codes) > MAX_ITEMS:
        raise DomainError("INVALID_INPUT", f"一次申报的事项不能超过{MAX_ITEMS}个", "itemCodes")
    if len(set(codes)) != len(codes):
        raise DomainError("INVALID_INPUT", "事项重复选择", "itemCodes")
    entries = await TemplateItem.filter(template_stage_id=template_stage.id).select_related("item").order_by("sort")
    by_code = {e.item.code: e for e in entries}
    unknown = [c for c in codes if c not in by_code]
    if unknown:
        raise DomainError(
            "ITEM_NOT_IN_TEMPLATE", f"事项 {unknown[0]} 不在该项目本阶段的事项清单中", "itemCodes"
        )
    chosen = set(codes)
    return [e for e in entries if e.item.code in chosen]


async def _check_open_cases(project: Project, entries: list[TemplateItem]) -> None:
    item_ids = [e.item.id for e in entries]
    for row in await Case.filter(project_id=project.id, item_id__in=item_ids).values("item__name", "state"):
        if row["state"] not in _ENDED_WITHOUT_APPROVAL:
            verb = "已办结通过" if row["state"] in APPROVED_STATES else "正在办理"
            raise DomainError("ITEM_ALREADY_HANDLED", f"事项“{row['item__name']}”{verb}，不能重复申报", "itemCodes")


async def _check_predecessors_present(project: Project, entries: list[TemplateItem]) -> None:
    """Every predecessor of a chosen item is chosen too, or already under way / decided for the project."""
    chosen = {e.item.code for e in entries}
    wanted = {p for e in entries for p in (e.predecessor_codes or []) if p not in chosen}
    if not wanted:
        return
    present = {
        row["item__code"]
        for row in await Case.filter(project_id=project.id, item__code__in=sorted(wanted)).values(
            "item__code", "state"
        )
        if row["state"] not in _ENDED_WITHOUT_APPROVAL
    }
    missing = sorted(wanted - present)
    if missing:
        raise DomainError(
            "PREDECESSOR_MISSING", f"须同时申报前置事项 {'、'.join(missing)}（或其已在办理中）", "itemCodes"
        )


async def known_values(project: Project, stage: int, fields_spec: list[dict]) -> dict[str, Any]:
    """The form values already known for the project (最多填一次): a field's ``known_from`` (``project.<attr>`` or
    ``stage<N>.<name>``, the latest application of that stage), else the field's value in the project's latest
    application of this stage (a new application after a failed one)."""
    forms: dict[int, dict[str, Any]] = {}
    for app in await Application.filter(project_id=project.id).order_by("id").only("stage", "form"):
        forms[app.stage] = app.form or {}  # the latest application of each stage wins
    known: dict[str, Any] = {}
    for spec in fields_spec:
        name, source = spec["name"], spec.get("known_from") or ""
        value = None
        if source.startswith("project."):
            value = getattr(project, source.removeprefix("project."), None)
            if value is not None and spec.get("type") == "number":
                value = float(value)
            elif value is not None:
                value = str(value)
        elif source.startswith("stage"):
            stage_text, _, field_name = source.removeprefix("stage").partition(".")
            value = forms.get(int(stage_text), {}).get(field_name)
        if value is None:
            value = forms.get(stage, {}).get(name)
        if value is not None and value != "":
            known[name] = value
    return known


def _check_form(fields_spec: list[dict], form: Mapping[str, Any], known: Mapping[str, Any] = {}) -> dict[str, Any]:
    """The stage's one form (一张表单): required fields present, types right, nothing unknown. A field left empty
    whose value is already known (``known_values``) takes that value: the applicant fills it at most once."""
    if not isinstance(form, Mapping):
        raise DomainError("FORM_INVALID", "申报表单格式不正确", "form")
    specs = {f["name"]: f for f in fields_spec}
    unknown = [k for k in form if k not in specs]
    if unknown:
        raise DomainError("FORM_INVALID", f"申报表单中没有“{unknown[0]}”这一项", f"form.{unknown[0]}")
    out: dict[str, Any] = {}
    for spec in fields_spec:
        name, label, kind = spec["name"], spec.get("label", spec["name"]), spec.get("type", "string")
        value = form.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            value = known.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if spec.get("required"):
                raise DomainError("FORM_INVALID", f"请填写“{label}”", f"form.{name}")
            continue
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise DomainError("FORM_INVALID", f"“{label}”应为非负数", f"form.{name}")
        elif kind == "date":
            try:
                dt.date.fromisoformat(str(value))
            except ValueError:
                raise DomainError("FORM_INVALID", f"“{label}”应为日期（YYYY-MM-DD）", f"form.{name}") from None
        elif kind == "choice":
            if value not in spec.get("choices", []):
                raise DomainError("FORM_INVALID", f"“{label}”的取值不在可选范围内", f"form.{name}")
        else:
            if not isinstance(value, str) or len(value) > MAX_FORM_TEXT:
                raise DomainError("FORM_INVALID", f"“{label}”应为不超过{MAX_FORM_TEXT}字的文字", f"form.{name}")
            value = value.strip()
        out[name] = value
    return out


async def _check_materials(
    viewer: Viewer, project: Project, spec: list[dict], given: Sequence[MaterialInput], now: dt.datetime
) -> list[dict[str, Any]]:
    known = {m["code"]: m for m in spec}
    by_code: dict[str, MaterialInput] = {}
    for entry in given:
        if entry.code not in known:
            raise DomainError("INVALID_INPUT", f"本阶段材料清单中没有 {entry.code}", "materials")
        if entry.code in by_code:
            raise DomainError("INVALID_INPUT", f"材料 {entry.code} 重复提交", "materials")
        by_code[entry.code] = entry
    already = await _materials_on_file(project)
    out: list[dict[str, Any]] = []
    for m in spec:
        entry = by_code.get(m["code"])
        uploads = await resolve_uploads(viewer, entry.upload_ids, field="materials") if entry else []
        cited = await cite_certificates(viewer, entry.certificate_ids, now) if entry and entry.certificate_ids else []
        if uploads or cited:
            out.append(
                {"code": m["code"], "name": m["name"], "uploads": uploads, "certificates": cited, "reusedFrom": None}
            )
        elif m["code"] in already:
            # 不重复提交: the material is on file from an earlier application of the project.
            out.append({"code": m["code"], "name": m["name"], "uploads": [], "reusedFrom": already[m["code"]]})
        elif held := await _held_certificates(project, m.get("certificate_types") or [], now):
            # A certificate the project holds satisfies it (电子证照复用): cited as if the applicant had.
            cited = await cite_certificates(viewer, [to_global_id("Certificate", c.id) for c in held], now)
            out.append({"code": m["code"], "name": m["name"], "uploads": [], "certificates": cited, "reusedFrom": None})
        elif m.get("required"):
            raise DomainError("MATERIAL_MISSING", f"缺少申报材料“{m['name']}”", "materials")
    return out


async def _held_certificates(project: Project, types: Sequence[str], now: dt.datetime | None = None) -> list[Any]:
    """The project's valid certificates of these types, held by its organisation (newest of each type)."""
    if not types:
        return []
    from api.domain.certificates import CertificateStatus
    from api.models import Certificate
    from api.services.certificates import status_of

    now = now or dt.datetime.now(dt.timezone.utc)
    newest: dict[str, Any] = {}
    for c in await Certificate.filter(
        organization_id=project.organization_id, case__project_id=project.id, type_code__in=list(types)
    ).order_by("id"):
        if status_of(c, now) is CertificateStatus.VALID:
            newest[c.type_code] = c
    return list(newest.values())


async def _materials_on_file(project: Project, *, with_entries: bool = False) -> dict[str, Any]:
    """Material code → the parallel instance code of the latest application holding it (with its stored entry)."""
    found: dict[str, Any] = {}
    for app in await Application.filter(project_id=project.id).order_by("id").only("parallel_instance_code", "materials"):
        for m in app.materials or []:
            if m.get("uploads") or m.get("certificates"):
                found[m["code"]] = (app.parallel_instance_code, m) if with_entries else app.parallel_instance_code
    return found


async def _create(
    viewer: Viewer,
    project: Project,
    stage: Stage,
    entries: list[TemplateItem],
    form: dict[str, Any],
    materials: list[dict[str, Any]],
    key: str | None,
    now: dt.datetime,
) -> SubmittedApplication:
    receive = plan_transition(None, Action.RECEIVE, Party.APPLICANT)
    application = await Application.create(
        project_id=project.id,
        stage=stage.value,
        form=form,
        materials=materials,
        parallel_instance_code=f"tmp-{key or now.timestamp()}-{viewer.user_id}"[:40],
        applicant_id=viewer.user_id,
        idempotency_key=key,
        submitted_at=now,
    )
    local_day = now.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d")
    guide_versions: dict[int, int] = {}
    for row in await ItemGuide.filter(item_id__in=[e.item.id for e in entries]).values("item_id", "version"):
        guide_versions[row["item_id"]] = max(row["version"], guide_versions.get(row["item_id"], 0))
    application.parallel_instance_code = f"BL{project.region_code}{local_day}{application.id:08d}"
    await application.save(update_fields=["parallel_instance_code"])
    cases = []
    for index, entry in enumerate(entries, start=1):
        case = await Case.create(
            code=f"SP{project.region_code}{local_day}{application.id:08d}{index:02d}",
            application_id=application.id,
            project_id=project.id,
            item_id=entry.item.id,
            department_id=entry.item.department_id,
            stage=stage.value,
            limit_days=entry.limit_days,
            limit_unit=entry.limit_unit,
            warning_days=entry.warning_days,
            predecessor_codes=list(entry.predecessor_codes or []),
            certificate_type=entry.certificate_type,
            guide_version=guide_versions.get(entry.item.id),
            state=receive.target,
            blzt=STATE_BLZT[receive.target],
            last_seq=1,
        )
        await CaseEvent.create(
            case_id=case.id,
            seq=1,
            action=Action.RECEIVE,
            blzt=receive.blzt,
            state_after=receive.target,
            party=Party.APPLICANT,
            actor_id=viewer.user_id,
            occurred_at=now,
            data={},
            attachments=[],
        )
        cases.append(case)
    await clocks.refresh([c.id for c in cases])  # the clocks' read model, with their events
    return SubmittedApplication(application, cases, duplicate=False)
