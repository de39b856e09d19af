"""``GET /exports/case-stats.csv`` and ``GET /exports/case-stats.xlsx``: the caseStats figures of a period and scope as
a file (issue #14), for the staff who may see them (the bearer token of ``staffLogin``; the same scopes and checks as
the GraphQL query, api/services/supervision.py).

Query parameters: ``from``, ``to`` (YYYY-MM-DD, required), ``groupBy`` (DEPARTMENT by default), and the scope's
``departmentId`` (global id), ``itemCode``, ``stage``, ``processType``, ``regionCode``. The file starts with the
filter (header rows), then a blank row, the headings, one row per group and the total. A refusal is JSON
``{"error": {"code", "message", "field"}}`` with the message in Chinese.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.domain.errors import DomainError
from api.domain.timing import local_date
from api.models import Department
from api.schema.base import pk_of
from api.services import supervision as service
from api.services.calendar import get_calendar

STATUS = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TITLE = "工程建设项目审批效能统计"


def _error(error: DomainError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message, "field": error.field}},
        status_code=STATUS.get(error.code, 400),
    )


def _date(request: Request, name: str) -> dt.date:
    value = request.query_params.get(name)
    if not value:
        raise DomainError("REQUIRED", "请填写统计期间", f"filter.{name}")
    try:
        if len(value) > 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise DomainError("INVALID_INPUT", "日期格式应为 YYYY-MM-DD", f"filter.{name}") from None


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if len(value) > 4 or not value.isdigit():
        raise DomainError("INVALID_INPUT", "应为数字", f"filter.{name}")
    return int(value)


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value else None


def _parse(request: Request) -> tuple[service.StatsFilter, service.GroupBy]:
    group = request.query_params.get("groupBy") or service.GroupBy.DEPARTMENT.value
    try:
        group_by = service.GroupBy(group)
    except ValueError:
        raise DomainError("INVALID_INPUT", "分组方式应为 DEPARTMENT、ITEM、STAGE、WEEK 或 MONTH", "groupBy") from None
    department = _text(request, "departmentId")
    scope = service.Scope(
        department_id=pk_of(department, "Department", "filter.departmentId") if department else None,
        item_code=_text(request, "itemCode"),
        stage=_int(request, "stage"),
        process_type=_int(request, "processType"),
        region_code=_text(request, "regionCode"),
    )
    return service.StatsFilter(start=_date(request, "from"), end=_date(request, "to"), scope=scope), group_by


async def _stats(request: Request) -> service.CaseStats:
    settings = request.app.state.settings
    viewer = request.scope.get("state", {}).get("viewer")
    if viewer is None:
        raise DomainError("UNAUTHENTICATED", "请先登录", None)
    stats_filter, group_by = _parse(request)
    now = request.app.state.clock()
    today = service.day_start(local_date(now))  # the figures depend on the date alone, as in GraphQL
    return await service.case_stats(
        viewer, stats_filter, group_by, calendar=await get_calendar(settings.calendar_cache_seconds), now=today,
        max_days=settings.stats_max_days, complaint_reply_days=settings.complaint_reply_days,
        complaint_warning_days=settings.complaint_warning_days,
    )


async def _header(stats: service.CaseStats) -> list[tuple[str, str]]:
    names = {}
    if stats.filter.scope.department_id is not None:
        department = await Department.get(id=stats.filter.scope.department_id)
        names["department"] = department.name
    return [("报表", TITLE), *service.filter_rows(stats, names)]


def _filename(stats: service.CaseStats, suffix: str) -> str:
    name = f"效能统计-{stats.filter.start.isoformat()}-{stats.filter.end.isoformat()}.{suffix}"
    return f"attachment; filename=\"case-stats.{suffix}\"; filename*=UTF-8''{quote(name)}"


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value  # a name is never a formula in the reader's spreadsheet
    return value


async def case_stats_csv(request: Request) -> Response:
    try:
        stats = await _stats(request)
    except DomainError as error:
        return _error(error)
    out = io.StringIO()
    writer = csv.writer(out)
    for label, value in await _header(stats):
        writer.writerow([label, value])
    writer.writerow([])
    headings, rows = service.table(stats)
    writer.writerow(headings)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    # With a BOM, so that Excel opens the UTF-8 file as UTF-8.
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=_headers(stats, "csv"))


async def case_stats_xlsx(request: Request) -> Response:
    from openpyxl import Workbook

    try:
        stats = await _stats(request)
    except DomainError as error:
        return _error(error)
    book = Workbook()
    sheet = book.active
    sheet.title = "效能统计"
    for label, value in await _header(stats):
        sheet.append([label, value])
    sheet.append([])
    headings, rows = service.table(stats)
    sheet.append(headings)
    for row in rows:
        sheet.append([_cell(v) for v in row])
    data = io.BytesIO()
    book.save(data)
    return Response(data.getvalue(), media_type=XLSX, headers=_headers(stats, "xlsx"))


def _headers(stats: service.CaseStats, suffix: str) -> dict[str, str]:
    return {"Content-Disposition": _filename(stats, suffix), "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff"}
