"""Supervision (效能督察, DOMAIN.md §14, issue #14): case statistics, overdue and warning lists, a project's
全流程审批用时. The figures come from api/services/supervision.py, which the exports and the dashboard share."""

from __future__ import annotations

import datetime as dt

import strawberry

from api.domain.catalog import STAGE_NAMES, Stage
from api.domain.errors import DomainError
from api.domain.timing import Light as LightValue
from api.services import supervision as service
from api.services.applications import check_project_code
from api.services.progress import get_project
from api.schema.base import graphql_error, pk_of
from api.schema.types import Case, Connection, connection_of

StatsGroupBy = strawberry.enum(service.GroupBy, name="StatsGroupBy", description="How caseStats groups its figures.")
DaysOrder = strawberry.enum(
    service.DaysOrder, description="MOST_URGENT_FIRST: most days over (overdueCases) / fewest days left (warningCases)."
)


@strawberry.input(description="Which cases: every field narrows the scope; none = all you may see.")
class SupervisionScope:
    department_id: strawberry.ID | None = None
    item_code: str | None = strawberry.field(default=None, description="事项编码")
    stage: int | None = strawberry.field(default=None, description="审批阶段 1–5")
    process_type: int | None = strawberry.field(default=None, description="审批流程类型 SPLCLX 1–10")
    region_code: str | None = strawberry.field(default=None, description="行政区划代码: this region and its sub-regions")


@strawberry.input(description="A period (dates in Asia/Shanghai, both included) and a scope of cases.")
class CaseStatsFilter:
    from_: dt.date = strawberry.field(name="from")
    to: dt.date
    department_id: strawberry.ID | None = None
    item_code: str | None = strawberry.field(default=None, description="事项编码")
    stage: int | None = strawberry.field(default=None, description="审批阶段 1–5")
    process_type: int | None = strawberry.field(default=None, description="审批流程类型 SPLCLX 1–10")
    region_code: str | None = strawberry.field(default=None, description="行政区划代码: this region and its sub-regions")


@strawberry.type(description="The figures of one group, or of the whole scope (DOMAIN.md §14). Rates are 0–1, null "
                 "when there is nothing to divide; day figures are in each case's unit (working days for most items).")
class CaseFigures:
    key: str = strawberry.field(description="Department id (not global), item code, stage, week's Monday or YYYY-MM")
    label: str
    received: int = strawberry.field(description="接件 in the period")
    accepted: int = strawberry.field(description="受理 in the period")
    decided: int = strawberry.field(description="办结 (BLZT 11–13) in the period")
    decided_on_time: int
    decided_overdue: int = strawberry.field(description="超期办结")
    on_time_rate: float | None = strawberry.field(description="按时办结率")
    running: int | None = strawberry.field(description="Running now (null in WEEK / MONTH groups: see the total)")
    running_green: int | None
    running_yellow: int | None = strawberry.field(description="预警 now")
    running_red: int | None = strawberry.field(description="逾期 now")
    average_used_days: float | None = strawberry.field(description="平均用时 of the cases decided in the period")
    average_limit_days: float | None = strawberry.field(description="平均承诺时限 of the same cases")
    speedup_rate: float | None = strawberry.field(description="提速率: mean of 1 − used/limit")
    corrected: int = strawberry.field(description="Accepted in the period after a 补正")
    correction_rate: float | None = strawberry.field(description="补正率")
    special_procedures: int = strawberry.field(description="特别程序 begun in the period")
    special_procedure_days: int = strawberry.field(description="Days they stopped the clock")
    not_accepted: int = strawberry.field(description="不受理")
    refused: int = strawberry.field(description="不予受理")
    rejection_rate: float | None = strawberry.field(description="(不受理 + 不予受理) / the window's verdicts")
    withdrawn: int = strawberry.field(description="撤件")
    retracted: int = strawberry.field(description="撤回")
    revoked: int = strawberry.field(description="撤销")
    ratings: int = strawberry.field(description="Ratings made in the period (upheld appeals excluded)")
    good_rate: float | None = strawberry.field(description="好评率")
    bad_ratings: int
    rectified_rate: float | None = strawberry.field(description="差评整改率")
    complaint_replies: int | None = strawberry.field(description="Complaint replies in the period; null: n/a")
    complaint_replies_on_time: int | None
    complaint_on_time_rate: float | None = strawberry.field(description="投诉按时答复率")
    provisional: bool = strawberry.field(description="Some clock relies on a year without holiday data")

    @classmethod
    def of(cls, figures: service.Figures) -> "CaseFigures":
        return cls(**{name: getattr(figures, name) for name in cls.__annotations__})


@strawberry.type
class CaseStats:
    group_by: StatsGroupBy
    groups: list[CaseFigures]
    total: CaseFigures


@strawberry.type(description="全流程审批用时: working days from the first acceptance to the last decision, special "
                 "procedures excluded.")
class Duration:
    days: int | None = strawberry.field(description="Null before the first acceptance")
    started_on: dt.date | None
    finished: bool = strawberry.field(description="Every case is closed: the figure is final")
    provisional: bool


@strawberry.type
class StageDuration:
    stage: int
    name: str
    duration: Duration


@strawberry.type
class ProjectDuration:
    project_code: str
    total: Duration
    stages: list[StageDuration]


def _duration(d: service.Duration) -> Duration:
    return Duration(days=d.days, started_on=d.started_on, finished=d.finished, provisional=d.provisional)


def scope_of(value: SupervisionScope | CaseStatsFilter | None) -> service.Scope:
    if value is None:
        return service.Scope()
    department = pk_of(value.department_id, "Department", "filter.departmentId") if value.department_id else None
    return service.Scope(
        department_id=department, item_code=value.item_code, stage=value.stage, process_type=value.process_type,
        region_code=value.region_code,
    )


@strawberry.type
class SupervisionQuery:
    @strawberry.field(description="效能统计 of a period and scope, per group (supervisors, admins; an approver its "
                      "department, a window clerk its region).")
    async def case_stats(self, info: strawberry.Info, filter: CaseStatsFilter, group_by: StatsGroupBy) -> CaseStats:
        ctx = info.context
        try:
            stats = await service.case_stats(
                ctx.viewer, service.StatsFilter(start=filter.from_, end=filter.to, scope=scope_of(filter)),
                service.GroupBy(group_by.value), calendar=await ctx.calendar(), now=ctx.today_start,
                max_days=ctx.settings.stats_max_days, complaint_reply_days=ctx.settings.complaint_reply_days,
                complaint_warning_days=ctx.settings.complaint_warning_days,
            )
        except DomainError as error:
            raise graphql_error(error) from None
        return CaseStats(group_by=stats.group_by, groups=[CaseFigures.of(g) for g in stats.groups],
                         total=CaseFigures.of(stats.total))

    @strawberry.field(description="逾期: running cases past their limit now, most days over first by default.")
    async def overdue_cases(
        self, info: strawberry.Info, first: int = 20, after: str | None = None,
        filter: SupervisionScope | None = None, order: DaysOrder = DaysOrder.MOST_URGENT_FIRST,
    ) -> Connection[Case]:
        return await _light_cases(info, LightValue.RED, first, after, filter, order)

    @strawberry.field(description="预警: running cases near their limit now, fewest days left first by default.")
    async def warning_cases(
        self, info: strawberry.Info, first: int = 20, after: str | None = None,
        filter: SupervisionScope | None = None, order: DaysOrder = DaysOrder.MOST_URGENT_FIRST,
    ) -> Connection[Case]:
        return await _light_cases(info, LightValue.YELLOW, first, after, filter, order)

    @strawberry.field(description="全流程审批用时 of a project you may see, in total and per stage; null when the "
                      "project does not exist or you may not see it.")
    async def project_duration(self, info: strawberry.Info, code: str) -> ProjectDuration | None:
        ctx = info.context
        try:
            code = check_project_code(code, field="code")
        except DomainError as error:
            raise graphql_error(error) from None
        project = await get_project(ctx.viewer, code)
        if project is None:
            return None
        result = await service.project_duration(project, await ctx.calendar(), ctx.today_start)
        return ProjectDuration(
            project_code=project.code,
            total=_duration(result.total),
            stages=[StageDuration(stage=s, name=STAGE_NAMES.get(Stage(s), str(s)) if s in Stage._value2member_map_
                                  else str(s), duration=_duration(d)) for s, d in result.stages],
        )


async def _light_cases(info, light, first, after, filter, order) -> Connection[Case]:
    ctx = info.context
    try:
        page = await service.light_cases(
            ctx.viewer, scope_of(filter), light, first=first, after=after, order=service.DaysOrder(order.value),
            page_max=ctx.settings.page_max, calendar=await ctx.calendar(), now=ctx.today_start,
        )
    except DomainError as error:
        raise graphql_error(error) from None
    return connection_of(page)
