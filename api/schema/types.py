"""GraphQL types of approval progress. Roots are the Tortoise model instances; relations go through DataLoaders."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, TypeVar

from graphql import FieldNode

import strawberry

from api import models
from api.domain import accounts, catalog, lifecycle, timing
from api.domain.catalog import PROCESS_TYPE_NAMES, STAGE_NAMES, ProcessType
from api.domain.lifecycle import ACTION_LABELS, OPEN_CLOCK_STATES, SPECIAL_PROCEDURE_LABELS, STATE_LABELS
from api.domain.timing import worst
from api.schema.base import Node, PageInfo, to_global_id
from api.schema.context import MISSING, held, load_all, loaded
from api.schema.direct import context_only
from api.services.access import Viewer as AccessViewer

CaseState = strawberry.enum(timing.CaseState, description="办理状态 (BLZT); see `blzt` for the national code.")
Light = strawberry.enum(timing.Light, description="亮灯: GREEN 正常, YELLOW 预警, RED 逾期.")
LimitUnit = strawberry.enum(timing.LimitUnit, description="WD 工作日, ND 自然日.")
Role = strawberry.enum(accounts.Role)
ItemKind = strawberry.enum(catalog.ItemKind, description="事项类型.")
CaseAction = strawberry.enum(lifecycle.Action, name="CaseAction", description="What an event did (BLZT 1–15).")
Party = strawberry.enum(lifecycle.Party, description="Who acts in the lifecycle.")
SpecialProcedureKind = strawberry.enum(lifecycle.SpecialProcedureKind, description="特别程序种类.")


def _ctx(info: strawberry.Info):
    return info.context


def _backed_by(model: type) -> classmethod:
    """Roots are Tortoise model instances: tell GraphQL which type a model instance is (for Node and checks)."""
    return classmethod(lambda cls, obj, _info: isinstance(obj, model))


@strawberry.type(description="A company or body that builds (建设单位).")
class Organization(Node):
    is_type_of = _backed_by(models.Organization)
    name: str
    uscc: str = strawberry.field(description="统一社会信用代码")
    region_code: str


@strawberry.type(description="审批服务单位.")
class Department(Node):
    is_type_of = _backed_by(models.Department)
    code: str
    name: str
    uscc: str
    region_code: str


@strawberry.type(description="An entry of the item catalogue (事项清单).")
class ApprovalItem(Node):
    is_type_of = _backed_by(models.ApprovalItem)
    code: str
    name: str
    kind: ItemKind

    @strawberry.field
    @context_only
    async def department(self, info: strawberry.Info) -> Department:
        return await _ctx(info).loaders.department.load(self.department_id)

    @strawberry.field(description="办事指南: the latest version; null when none was loaded")
    async def guide(
        self, info: strawberry.Info
    ) -> Annotated["ServiceGuide", strawberry.lazy("api.schema.guides")] | None:
        from api.schema.guides import guide_of

        return await guide_of(info, self.id)


@strawberry.type
class ProcessTypeInfo:
    code: int = strawberry.field(description="SPLCLX")
    name: str


@strawberry.type
class Building:
    building_code: str = strawberry.field(description="单体房屋编码")
    name: str
    floors: int

    @strawberry.field(description="建筑面积, 平方米")
    def floor_area(self) -> float:
        return float(self.floor_area)


@strawberry.type
class StateCount:
    state: CaseState
    label: str
    count: int


@strawberry.type(description="One approval stage of a project: its lead department, light and cases.")
class ProjectStage:
    code: int = strawberry.field(description="DYBZSPJDXH 1–5")
    name: str
    lead_department: Department | None
    light: Light | None = strawberry.field(description="Worst light of the stage's running cases; null if none runs.")
    counts: list[StateCount] = strawberry.field(description="Number of cases in each state (only states present).")
    cases: list["Case"]


@strawberry.type(description="工程建设项目, identified for life by its 项目代码.")
class Project(Node):
    is_type_of = _backed_by(models.Project)
    code: str = strawberry.field(description="项目代码 (GB/T 40058)")
    name: str
    region_code: str
    address: str

    @strawberry.field(description="总投资, 万元")
    def investment(self) -> float:
        return float(self.investment)

    @strawberry.field
    def process_type(self) -> ProcessTypeInfo:
        return ProcessTypeInfo(code=self.process_type, name=PROCESS_TYPE_NAMES.get(ProcessType(self.process_type), ""))

    # Each of these resolves without awaiting when ``prefetch_progress`` has loaded what it reads (the progress query:
    # graphql-core then completes the whole project synchronously, with no task per field and no batch per loader;
    # issue #13), and loads it through the DataLoaders otherwise.
    @strawberry.field
    @context_only
    def organization(self, info: strawberry.Info) -> Organization:
        return loaded(_ctx(info).loaders.organization, self.organization_id)

    @strawberry.field
    @context_only
    def buildings(self, info: strawberry.Info) -> list[Building]:
        return loaded(_ctx(info).loaders.buildings_by_project, self.id)

    @strawberry.field(description="The latest stage with cases visible to you.")
    @context_only
    def current_stage(self, info: strawberry.Info) -> int | None:
        cases = held(_ctx(info).loaders.visible_cases_by_project, self.id)
        if cases is MISSING:
            return _current_stage(_ctx(info), self)
        return max((c.stage for c in cases), default=None)

    @strawberry.field(description="Worst light of the project's running cases visible to you; null if none runs.")
    @context_only
    def light(self, info: strawberry.Info) -> Light | None:
        ctx = _ctx(info)
        cases = held(ctx.loaders.visible_cases_by_project, self.id)
        timed = ctx._timed
        if cases is MISSING or any(c.id not in timed for c in cases):
            return _light(ctx, self)
        return worst(timed[c.id].light for c in cases if c.state in OPEN_CLOCK_STATES)

    @strawberry.field(description="The stages of the project's process template, each with its cases visible to you.")
    @context_only
    def stages(self, info: strawberry.Info) -> list[ProjectStage]:
        ctx = _ctx(info)
        loaders = ctx.loaders
        template_stages = held(loaders.stages_by_process_type, self.process_type)
        cases = held(loaders.visible_cases_by_project, self.id)
        if template_stages is MISSING or cases is MISSING or any(c.id not in ctx._timed for c in cases):
            return _stages(ctx, self)
        leads = {stage: held(loaders.department, lead_id) for _, stage, lead_id in template_stages}
        if MISSING in leads.values():
            return _stages(ctx, self)
        return _project_stages(template_stages, cases, leads, ctx._timed)


async def _current_stage(ctx: Any, project: Any) -> int | None:
    cases = await ctx.loaders.visible_cases_by_project.load(project.id)
    return max((c.stage for c in cases), default=None)


async def _light(ctx: Any, project: Any) -> Light | None:
    cases = await ctx.loaders.visible_cases_by_project.load(project.id)
    # All the cases' clocks, not only the running ones: `stages` asks for the same set, then reads no more rows.
    timings = await ctx.timings(cases)
    return worst(t.light for c, t in zip(cases, timings) if c.state in OPEN_CLOCK_STATES)


async def _load_stages(ctx: Any, project: Any, cases: list[Any]) -> tuple[list[tuple], dict[int, Any]]:
    """What a project's stages read besides its cases: the template's (process type, stage, lead department id) rows
    and the lead departments; with them the cases' departments and items (their fields then resolve without
    awaiting) and every case's clock, one statement each."""
    loaders = ctx.loaders
    (template_stages,) = await load_all(loaders.stages_by_process_type, [project.process_type])
    lead_ids = {stage: lead_id for _, stage, lead_id in template_stages}
    departments = await load_all(loaders.department, [*lead_ids.values(), *(c.department_id for c in cases)])
    await load_all(loaders.item, [c.item_id for c in cases])
    await ctx.timings(cases)
    return template_stages, dict(zip(lead_ids, departments))


async def _stages(ctx: Any, project: Any) -> list[ProjectStage]:
    cases = await ctx.loaders.visible_cases_by_project.load(project.id)
    template_stages, leads = await _load_stages(ctx, project, cases)
    return _project_stages(template_stages, cases, leads, ctx._timed)


_STATE_ORDER = {state: i for i, state in enumerate(timing.CaseState)}


def _project_stages(template_stages: list[tuple], cases: list[Any], leads: dict[int, Any],
                    timed: dict[int, Any]) -> list[ProjectStage]:
    """The stages of a project from its template's (process type, stage, lead department id) rows, its visible cases,
    the stages' lead departments and the cases' computed clocks."""
    codes = sorted({stage for _, stage, _ in template_stages} | {c.stage for c in cases})
    light_of = {c.id: timed[c.id].light for c in cases if c.state in OPEN_CLOCK_STATES}
    out = []
    for code in codes:
        stage_cases = [c for c in cases if c.stage == code]
        counts: dict[timing.CaseState, int] = {}
        for c in stage_cases:
            counts[c.state] = counts.get(c.state, 0) + 1
        out.append(
            ProjectStage(
                code=code,
                name=STAGE_NAMES.get(catalog.Stage(code), str(code)),
                lead_department=leads.get(code),
                light=worst(light_of[c.id] for c in stage_cases if c.id in light_of),
                counts=[
                    StateCount(state=s, label=STATE_LABELS[s], count=n)
                    for s, n in sorted(counts.items(), key=lambda kv: _STATE_ORDER[kv[0]])
                ],
                cases=stage_cases,
            )
        )
    return out


async def prefetch_progress(info: strawberry.Info, project: Any) -> None:
    """Load, in the root field's own coroutine, what the fields asked of ``project`` will read — the same statements
    the fields would send — so that they resolve without awaiting. Only fields named plainly in the selection count
    (a fragment or a directive leaves its fields to load themselves, as before)."""
    selections = info._raw_info.field_nodes[0].selection_set
    names = set()
    for selection in selections.selections if selections is not None else ():
        if isinstance(selection, FieldNode) and not selection.directives:
            names.add(selection.name.value)
    ctx = _ctx(info)
    loaders = ctx.loaders
    if names & {"light", "currentStage", "stages"}:
        (cases,) = await load_all(loaders.visible_cases_by_project, [project.id])
        if "stages" in names:
            await _load_stages(ctx, project, cases)
        elif "light" in names:
            await ctx.timings(cases)
    if "buildings" in names:
        await load_all(loaders.buildings_by_project, [project.id])
    if "organization" in names:
        await load_all(loaders.organization, [project.organization_id])


@strawberry.type(description="申报: one stage, one form, one set of materials, cases handled in parallel.")
class Application(Node):
    is_type_of = _backed_by(models.Application)
    stage: int
    parallel_instance_code: str = strawberry.field(description="并联审批实例编码")
    submitted_at: dt.datetime
    form: strawberry.scalars.JSON

    @strawberry.field
    def materials(self) -> strawberry.scalars.JSON:
        return self.materials

    @strawberry.field
    @context_only
    async def project(self, info: strawberry.Info) -> Project:
        return await _ctx(info).loaders.project.load(self.project_id)


@strawberry.type
class CorrectionEntry:
    material: str
    requirement: str


@strawberry.type
class SpecialProcedureInfo:
    kind: SpecialProcedureKind
    label: str
    reason: str
    expected_days: int


@strawberry.type(description="批复文件")
class ApprovalDocument:
    approval_date: dt.date
    document_number: str
    document_title: str
    valid_until: dt.date = strawberry.field(description="有效期限; 9999-01-01 = 长期有效")


@strawberry.type
class Attachment:
    name: str
    upload_id: str | None
    ref: str | None


@strawberry.type(description="One step of a case's timeline: append-only, never changed.")
class CaseEvent:
    seq: int
    blzt: int = strawberry.field(description="BLZT code of the event (10 = 特别程序结束)")
    action: CaseAction
    state_after: CaseState
    party: Party
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    external_id: str | None = strawberry.field(description="The department system's own event id, if pushed")

    @strawberry.field
    def action_label(self) -> str:
        return ACTION_LABELS[lifecycle.Action(self.action)]

    @strawberry.field(description="PERSON or DEPARTMENT_SYSTEM")
    def source(self) -> str:
        return "DEPARTMENT_SYSTEM" if self.department_id is not None else "PERSON"

    @strawberry.field
    @context_only
    async def actor_name(self, info: strawberry.Info) -> str | None:
        if self.actor_id is not None:
            user = await _ctx(info).loaders.user.load(self.actor_id)
            return user.display_name if user else None
        if self.department_id is not None:
            department = await _ctx(info).loaders.department.load(self.department_id)
            return f"{department.name}（业务系统）" if department else None
        return None

    @strawberry.field
    def opinion(self) -> str | None:
        return self.data.get("opinion")

    @strawberry.field
    def reason(self) -> str | None:
        return self.data.get("reason")

    @strawberry.field(description="补正清单: the complete list, in one go")
    def corrections(self) -> list[CorrectionEntry]:
        return [CorrectionEntry(**c) for c in self.data.get("corrections", [])]

    @strawberry.field
    def special_procedure(self) -> SpecialProcedureInfo | None:
        if "kind" not in self.data:
            return None
        kind = lifecycle.SpecialProcedureKind(self.data["kind"])
        return SpecialProcedureInfo(
            kind=kind,
            label=SPECIAL_PROCEDURE_LABELS[kind],
            reason=self.data.get("reason", ""),
            expected_days=self.data.get("expected_days", 0),
        )

    @strawberry.field(description="特别程序结果")
    def result(self) -> str | None:
        return self.data.get("result")

    @strawberry.field
    def document(self) -> ApprovalDocument | None:
        doc = self.data.get("document")
        if not doc:
            return None
        return ApprovalDocument(
            approval_date=dt.date.fromisoformat(doc["approval_date"]),
            document_number=doc["document_number"],
            document_title=doc["document_title"],
            valid_until=dt.date.fromisoformat(doc["valid_until"]),
        )

    @strawberry.field(description="容缺承诺事项")
    def committed_items(self) -> list[str]:
        return list(self.data.get("committed_items", []))

    @strawberry.field
    def attachments(self) -> list[Attachment]:
        return [
            Attachment(name=a.get("name", ""), upload_id=a.get("uploadId"), ref=a.get("ref") or None)
            for a in self.attachments
        ]


_IN_LIMIT_UNIT = "Use `{}`: the figure is in `limitUnit`, which may be natural days, not working days."


@strawberry.type(description="办件: one item handled for one application.")
class Case(Node):
    is_type_of = _backed_by(models.Case)
    code: str = strawberry.field(description="审批事项实例编码")
    stage: int
    blzt: int = strawberry.field(description="BLZT code of the current state")
    state: CaseState
    limit_unit: LimitUnit
    guide_version: int | None = strawberry.field(description="Version of the item's guide the case was received under")

    @strawberry.field
    def state_label(self) -> str:
        return STATE_LABELS[timing.CaseState(self.state)]

    limit_days: int = strawberry.field(description="承诺时限, in `limitUnit` (working days or natural days)")

    @strawberry.field(description="Days used so far, in `limitUnit`; null before acceptance.")
    @context_only
    def used_days(self, info: strawberry.Info) -> int | None:
        return _ctx(info).timing_field(self, "used")

    @strawberry.field(description="limitDays − usedDays, in `limitUnit`; negative when overdue; null before acceptance.")
    @context_only
    def remaining_days(self, info: strawberry.Info) -> int | None:
        return _ctx(info).timing_field(self, "remaining")

    # The first names said "working days" also for items whose limit is in natural days (issue #12).
    @strawberry.field(
        description="承诺时限 (in `limitUnit`)", deprecation_reason=_IN_LIMIT_UNIT.format("limitDays")
    )
    def limit_working_days(self) -> int:
        return self.limit_days

    @strawberry.field(description="Days used so far; null before acceptance.",
                      deprecation_reason=_IN_LIMIT_UNIT.format("usedDays"))
    @context_only
    def used_working_days(self, info: strawberry.Info) -> int | None:
        return _ctx(info).timing_field(self, "used")

    @strawberry.field(description="limit − used; negative when overdue; null before acceptance.",
                      deprecation_reason=_IN_LIMIT_UNIT.format("remainingDays"))
    @context_only
    def remaining_working_days(self, info: strawberry.Info) -> int | None:
        return _ctx(info).timing_field(self, "remaining")

    @strawberry.field(description="The day the limit runs out if nothing pauses the clock; null before acceptance.")
    @context_only
    def due_date(self, info: strawberry.Info) -> dt.date | None:
        return _ctx(info).timing_field(self, "due_date")

    @strawberry.field(description="A decided case keeps the light it ended with; null before acceptance.")
    @context_only
    def light(self, info: strawberry.Info) -> Light | None:
        return _ctx(info).timing_field(self, "light")

    @strawberry.field(description="True when a figure relies on a year with no holiday data (Monday–Friday assumed).")
    @context_only
    def provisional(self, info: strawberry.Info) -> bool:
        return _ctx(info).timing_field(self, "provisional")

    @strawberry.field(description="True while the clock is counting (not before acceptance, nor in a special procedure).")
    @context_only
    def clock_running(self, info: strawberry.Info) -> bool:
        return _ctx(info).timing_field(self, "running")

    @strawberry.field(description="受理日期 (day 0 of the clock)")
    @context_only
    def accepted_on(self, info: strawberry.Info) -> dt.date | None:
        return _ctx(info).timing_field(self, "started_on")

    @strawberry.field(description="Item codes that must be decided before this case may be decided (前后时序).")
    def predecessor_codes(self) -> list[str]:
        return list(self.predecessor_codes or [])

    # Without awaiting when the project's stages have loaded them already (api.schema.context.loaded).
    @strawberry.field
    @context_only
    def item(self, info: strawberry.Info) -> ApprovalItem:
        return loaded(_ctx(info).loaders.item, self.item_id)

    @strawberry.field
    @context_only
    def department(self, info: strawberry.Info) -> Department:
        return loaded(_ctx(info).loaders.department, self.department_id)

    @strawberry.field
    @context_only
    async def project(self, info: strawberry.Info) -> Project:
        return await _ctx(info).loaders.project.load(self.project_id)

    @strawberry.field
    @context_only
    async def application(self, info: strawberry.Info) -> Application:
        return await _ctx(info).loaders.application.load(self.application_id)

    @strawberry.field(description="The full timeline, oldest first.")
    @context_only
    async def timeline(self, info: strawberry.Info) -> list[CaseEvent]:
        return await _ctx(info).loaders.events_by_case.load(self.id)

    @strawberry.field(description="The electronic certificate this case's approval issued (电子证照), if any you may see.")
    async def certificate(
        self, info: strawberry.Info
    ) -> Annotated["Certificate", strawberry.lazy("api.schema.certificates")] | None:
        return await _ctx(info).loaders.certificate_by_case.load(self.id)


@strawberry.type(description="The person signed in; `node()` gives it to that person only.")
class Viewer(Node):
    display_name: str
    role: Role

    is_type_of = _backed_by(AccessViewer)

    @strawberry.field(description="Global id: the type name and the key, base64url-encoded.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(to_global_id("Viewer", self.user_id))

    @strawberry.field
    @context_only
    async def organization(self, info: strawberry.Info) -> Organization | None:
        if self.organization_id is None:
            return None
        return await _ctx(info).loaders.organization.load(self.organization_id)

    @strawberry.field
    @context_only
    async def department(self, info: strawberry.Info) -> Department | None:
        if self.department_id is None:
            return None
        return await _ctx(info).loaders.department.load(self.department_id)

    @strawberry.field(description="A window clerk's jurisdiction (管辖属地编码)")
    def region_code(self) -> str | None:
        return self.region_code

    @strawberry.field(description="Your phone number as WeChat verified it (in clear: you are its owner); null if none")
    def phone(self) -> str | None:
        return self.phone

    @strawberry.field(description="One-time subscribe-message consents you have left, per notice template")
    async def subscribe_consents(self, info: strawberry.Info) -> list[SubscribeConsent]:
        from api.services.consents import consents_of

        return await consents_of(self.user_id)


@strawberry.type(description="One-time consents left for one subscribe-message template.")
class SubscribeConsent:
    template_id: str
    remaining: int


N = TypeVar("N")


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[N]:
        return [edge.node for edge in self.edges]


def connection_of(page: Any) -> Any:
    edges = [Edge(cursor=page.cursor(item), node=item) for item in page.items]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=page.total_count,
    )
