"""The item catalogue and its service guides (办事指南), and the stage form an applicant fills (一张表单).

- ``approvalItems(first, after, filter)``: the catalogue, filtered by stage, department, process type, and searched in
  Chinese (ordered by relevance then); public, like a 政务服务网 guide page.
- ``ApprovalItem.guide``: the item's latest guide, typed by section.
- ``stageForm(projectCode, stage)``: what ``submitApplication`` will check for that stage of a project the viewer may
  see, with the values and materials already on file.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry

from api.domain.catalog import STAGE_NAMES, Stage
from api.domain.errors import DomainError
from api.schema.base import PageInfo, graphql_error
from api.schema.types import ApprovalItem, Connection, Department, Edge, Project

MAX_SEARCH = 100  # characters of a search text


@strawberry.type(description="A time limit: days in a unit, and the same in words.")
class TimeLimit:
    days: int
    unit: str = strawberry.field(description="WD 工作日, ND 自然日")
    text: str = strawberry.field(description="e.g. 5个工作日")


@strawberry.type(description="申请材料: one entry of a guide's or a stage's material list.")
class GuideMaterial:
    code: str
    name: str
    source: str = strawberry.field(description="来源: 申请人自备 / 政府部门核发")
    form: str = strawberry.field(description="形式: 原件 / 复印件 / 电子材料")
    copies: int = strawberry.field(description="份数")
    required: bool = strawberry.field(description="必要性: true 必要; false 视情况 (see `when`)")
    when: str | None = strawberry.field(description="When a material that is not always required is needed")
    notes: str | None = strawberry.field(description="填报须知")
    blank_form: str | None = strawberry.field(description="空白表格 (file name), where a form exists")
    sample: str | None = strawberry.field(description="示例样表 (file name), where one exists")


@strawberry.type(description="办理流程: one step.")
class GuideStep:
    name: str
    text: str


@strawberry.type(description="收费: one fee, its amount and basis.")
class GuideFee:
    name: str
    amount: str
    basis: str


@strawberry.type(description="设定依据: a law or regulation and the articles cited.")
class LegalBasis:
    law: str
    articles: list[str]

    @strawberry.field(description="The citation in one line, e.g. 《中华人民共和国建筑法》第七条、第八条")
    def text(self) -> str:
        return self.law + "、".join(self.articles)


@strawberry.type(description="常见问题: a question and its answer.")
class GuideQuestion:
    question: str
    answer: str


def _limit(value: dict[str, Any] | None) -> TimeLimit | None:
    if not value:
        return None
    words = "个工作日" if value["unit"] == "WD" else "个自然日"
    return TimeLimit(days=value["days"], unit=value["unit"], text=f"{value['days']}{words}")


def _material(m: dict[str, Any]) -> GuideMaterial:
    return GuideMaterial(
        code=m["code"], name=m["name"], source=m.get("source") or "申请人自备", form=m.get("form") or "电子材料",
        copies=m.get("copies") or 1, required=bool(m.get("required")), when=m.get("when"), notes=m.get("notes"),
        blank_form=m.get("blank_form"), sample=m.get("sample"),
    )


@strawberry.type(description="办事指南 of an item (DOMAIN.md §12). Demo content says so in `demo` and `notice`.")
class ServiceGuide:
    version: int = strawberry.field(description="Guide version; a case keeps the version it was received under")
    demo: bool = strawberry.field(description="True when this is demo content, not an official guide")
    notice: str = strawberry.field(description="说明, e.g. that the guide is demo content")
    implementing_body: str = strawberry.field(description="实施主体")
    service_objects: list[str] = strawberry.field(description="服务对象")
    case_type: str = strawberry.field(description="办件类型: 即办件 / 承诺件")
    conditions: list[str] = strawberry.field(description="申请条件")
    materials: list[GuideMaterial] = strawberry.field(description="申请材料")
    steps: list[GuideStep] = strawberry.field(description="办理流程")
    legal_limit: TimeLimit | None = strawberry.field(description="法定时限; null when the law sets none")
    legal_limit_text: str = strawberry.field(description="法定时限 in words (or why there is none)")
    promised_limit: TimeLimit = strawberry.field(description="承诺时限: the limit the case clock uses")
    charged: bool = strawberry.field(description="Whether any fee may be due (see `fees`)")
    fee_note: str = strawberry.field(description="收费 in words, e.g. 不收费")
    fees: list[GuideFee]
    basis: list[LegalBasis] = strawberry.field(description="设定依据")
    location: str = strawberry.field(description="办理地点")
    hours: str = strawberry.field(description="办理时间")
    phone: str = strawberry.field(description="咨询电话")
    complaint_phone: str = strawberry.field(description="监督投诉电话")
    result_name: str = strawberry.field(description="结果名称: the certificate or reply")
    visits: int = strawberry.field(description="到办事现场次数 (0 = 全程网办)")
    online_depth: str = strawberry.field(description="网办深度")
    faq: list[GuideQuestion] = strawberry.field(description="常见问题")


def guide_from(version: int, g: dict[str, Any]) -> ServiceGuide:
    return ServiceGuide(
        version=version, demo=bool(g.get("demo")), notice=g.get("notice", ""),
        implementing_body=g["department"], service_objects=list(g.get("service_object", [])),
        case_type=g.get("case_type") or "", conditions=list(g["conditions"]),
        materials=[_material(m) for m in g["materials"]],
        steps=[GuideStep(name=s["name"], text=s["text"]) for s in g.get("steps", [])],
        legal_limit=_limit(g.get("legal_limit")), legal_limit_text=g.get("legal_limit_text") or "",
        promised_limit=_limit(g["promised_limit"]), charged=bool(g.get("fees")), fee_note=g["fee_note"],
        fees=[GuideFee(name=f["name"], amount=f["amount"], basis=f["basis"]) for f in g.get("fees", [])],
        basis=[LegalBasis(law=b["law"], articles=list(b.get("articles", []))) for b in g["basis"]],
        location=g.get("location") or "", hours=g.get("hours") or "", phone=g.get("phone") or "",
        complaint_phone=g.get("complaint_phone") or "", result_name=g["result"], visits=int(g.get("visits") or 0),
        online_depth=g.get("online_depth") or "", faq=[GuideQuestion(question=f["q"], answer=f["a"]) for f in g["faq"]],
    )


@strawberry.input
class ApprovalItemFilter:
    stage: int | None = strawberry.field(default=None, description="Items of this stage (1–5) in some template")
    department: str | None = strawberry.field(default=None, description="Items of this department (its code)")
    process_type: int | None = strawberry.field(default=None, description="Items of this process type's template")
    search: str | None = strawberry.field(
        default=None, description="Words in Chinese (供水报装, 施工证, 环评要多久): items ordered by relevance"
    )


@strawberry.enum(description="Type of a form field.")
class FormFieldType(Enum):
    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"


@strawberry.type(description="One field of a stage's one form (一张表单).")
class FormField:
    name: str = strawberry.field(description="The key of `form` in submitApplication")
    label: str
    type: FormFieldType
    required: bool
    choices: list[str] = strawberry.field(description="The allowed values of a CHOICE field; empty otherwise")
    known_value: strawberry.scalars.JSON | None = strawberry.field(
        description="The value already known from the project or an earlier application (最多填一次): "
        "submitApplication uses it when the field is left out"
    )


@strawberry.type(description="One material of a stage, and whether it is already on file (不重复提交).")
class StageMaterial:
    material: GuideMaterial
    on_file: bool = strawberry.field(
        description="Already satisfied, by an earlier application's upload or a certificate the project holds: "
        "may be left out of submitApplication (不重复提交)"
    )
    reused_from: str | None = strawberry.field(description="并联审批实例编码 of the application that holds it")
    certificate_names: list[str] = strawberry.field(description="The certificates that satisfy it (电子证照复用)")


@strawberry.type(description="What submitApplication checks for one stage of one project, before applying.")
class StageForm:
    stage: int
    stage_name: str
    project: Project
    lead_department: Department
    items: list[ApprovalItem] = strawberry.field(description="The stage's items in the project's template")
    fields: list[FormField]
    materials: list[StageMaterial]


@strawberry.type
class GuideQuery:
    @strawberry.field(
        description="The item catalogue (事项清单) with each item's guide, filtered; with `search`, ordered by relevance."
    )
    async def approval_items(
        self,
        info: strawberry.Info,
        first: int = 20,
        after: str | None = None,
        filter: ApprovalItemFilter | None = None,
    ) -> Connection[ApprovalItem]:
        from api.services import progress
        from api.services.guides import list_items

        f = filter or ApprovalItemFilter()
        try:
            first = progress.check_first(first, info.context.settings.page_max)
            offset = progress.decode_cursor(after) or 0
            if f.search is not None and len(f.search) > MAX_SEARCH:
                raise DomainError("INVALID_INPUT", f"搜索内容不能超过{MAX_SEARCH}个字", "filter.search")
            if f.stage is not None and f.stage not in {s.value for s in Stage}:
                raise DomainError("INVALID_INPUT", "审批阶段应为1至5", "filter.stage")
            items = await list_items(
                stage=f.stage, department=f.department, process_type=f.process_type, search=f.search
            )
        except DomainError as error:
            raise graphql_error(error) from None
        page = items[offset : offset + first]
        edges = [Edge(cursor=progress.encode_cursor(offset + i + 1), node=item) for i, item in enumerate(page)]
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=offset + first < len(items),
                end_cursor=edges[-1].cursor if edges else None,
                has_previous_page=offset > 0,
                start_cursor=edges[0].cursor if edges else None,
            ),
            total_count=len(items),
        )

    @strawberry.field(description="An item of the catalogue by its code, with its guide; null when there is none.")
    async def approval_item(self, code: str) -> ApprovalItem | None:
        from api.models import ApprovalItem as ItemModel

        if len(code) > 64:
            return None
        return await ItemModel.get_or_none(code=code.strip())

    @strawberry.field(
        description="The one form and the materials of a stage of a project you may see, with what is already known "
        "or on file; submitApplication checks exactly this. Null when the project does not exist or you may not see it."
    )
    async def stage_form(self, info: strawberry.Info, project_code: str, stage: int) -> StageForm | None:
        from api.models import ApprovalItem as ItemModel
        from api.models import TemplateItem
        from api.services.applications import stage_form

        try:
            form = await stage_form(info.context.viewer, project_code=project_code, stage=stage)
        except DomainError as error:
            raise graphql_error(error) from None
        if form is None:
            return None
        entries = await TemplateItem.filter(template_stage_id=form.template_stage.id).order_by("sort").values("item_id")
        by_id = {i.id: i for i in await ItemModel.filter(id__in=[e["item_id"] for e in entries])}
        return StageForm(
            stage=form.stage.value,
            stage_name=STAGE_NAMES[form.stage],
            project=form.project,
            lead_department=await info.context.loaders.department.load(form.template_stage.lead_department_id),
            items=[by_id[e["item_id"]] for e in entries],
            fields=[
                FormField(
                    name=f["name"], label=f.get("label", f["name"]), type=FormFieldType(f.get("type", "string")),
                    required=bool(f.get("required")), choices=list(f.get("choices", [])), known_value=f["known"],
                )
                for f in form.fields
            ],
            materials=[
                StageMaterial(
                    material=_material(m), on_file=m["reused_from"] is not None or bool(m["certificates"]),
                    reused_from=m["reused_from"],
                    certificate_names=[c.get("name", "") for c in m["certificates"]],
                )
                for m in form.materials
            ],
        )


async def guide_of(info: strawberry.Info, item_id: int) -> ServiceGuide | None:
    row = await info.context.loaders.guide_by_item.load(item_id)
    return guide_from(row.version, row.content) if row else None

