"""``/dashboard``: the supervisors' web pages (督察看板, issue #14 §2; DESIGN.md §3b).

Server-rendered Chinese pages (Jinja2, api/templates/dashboard/) for staff signed in with their username and password
(api/services/web_sessions.py: ``staff_login``, a cookie backed by a revocable ``LoginSession``, CSRF tokens on every
POST). Every figure comes from api/services/supervision.py with the viewer's scope (``check_scope``: an approver its
department, a window clerk its region), so the pages show what ``caseStats`` answers for the same filter; the exports
are those of api/routes/exports.py, authenticated by the cookie instead of a bearer token.

Filters are query parameters, the same as the exports': ``from``, ``to`` (YYYY-MM-DD), ``departmentId`` (global id),
``stage``, ``processType``. A bad one answers a page with a Chinese message and a 4xx, never a 500.

Charts are drawn by the vendored ECharts (api/static/echarts/, never a CDN) from data in a JSON block that
api/static/dashboard/dashboard.js reads: the Content-Security-Policy allows this service's scripts only. Each chart
has a table with the same figures beside it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from tortoise.expressions import Q

from api.domain.catalog import PROCESS_TYPE_NAMES, STAGE_NAMES, ProcessType, Stage
from api.domain.errors import DomainError
from api.domain.feedback import CATEGORY_LABELS, COMPLAINT_STATE_LABELS, ComplaintState
from api.domain.ids import to_global_id
from api.domain.lifecycle import ACTION_LABELS, Action
from api.domain.timing import STATE_LABELS, CaseState, Light, local_date
from api.models import Case, Department
from api.models.feedback import Complaint
from api.routes import exports
from api.schema.base import pk_of
from api.services import supervision, web_sessions
from api.services.access import Viewer, case_scope
from api.services.calendar import get_calendar
from api.services.complaints import complaint_scope, complaint_timing
from api.services.process_durations import durations_by_process_type
from api.services.progress import case_timing, events_by_case

PREFIX = "/dashboard"
API_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = Jinja2Templates(directory=str(API_DIR / "templates"))
STATIC = {"/static/echarts": API_DIR / "static" / "echarts", "/static/dashboard": API_DIR / "static" / "dashboard"}
# This service's own scripts and styles only: no CDN, no inline script (the charts' data is a JSON block).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
STATUS = {"UNAUTHENTICATED": 401, "INVALID_CREDENTIALS": 401, "PERMISSION_DENIED": 403, "CSRF_FAILED": 403, "NOT_FOUND": 404,
          "LOGIN_LOCKED": 429}
FORM_MAX_BYTES = 4096
LIST_PAGE = 50  # cases per page of the overdue / warning lists
DEFAULT_DAYS = 90
FILTER_KEYS = ("from", "to", "departmentId", "stage", "processType")
SORTS = {"most": supervision.DaysOrder.MOST_URGENT_FIRST, "least": supervision.DaysOrder.LEAST_URGENT_FIRST}


def routes() -> list[Route | Mount]:
    return [
        Route(PREFIX, overview, methods=["GET"]),
        Route(f"{PREFIX}/login", login_page, methods=["GET"]),
        Route(f"{PREFIX}/login", login, methods=["POST"]),
        Route(f"{PREFIX}/logout", logout, methods=["POST"]),
        Route(f"{PREFIX}/departments/{{department_id}}", department_page, methods=["GET"]),
        Route(f"{PREFIX}/overdue", overdue_page, methods=["GET"]),
        Route(f"{PREFIX}/warning", warning_page, methods=["GET"]),
        Route(f"{PREFIX}/cases/{{case_id}}", case_page, methods=["GET"]),
        Route(f"{PREFIX}/export.csv", export_csv, methods=["GET"]),
        Route(f"{PREFIX}/export.xlsx", export_xlsx, methods=["GET"]),
        *(Mount(path, StaticFiles(directory=directory)) for path, directory in STATIC.items()),
    ]


# -- rendering ---------------------------------------------------------------------------------------------------------


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    return _secure(TEMPLATES.TemplateResponse(request, f"dashboard/{template}", context, status_code=status))


def error_page(request: Request, error: DomainError, viewer: Viewer | None = None, csrf: str | None = None) -> Response:
    status = STATUS.get(error.code, 400)
    return render(request, "error.html", status, message=error.message, code=error.code, field=error.field,
                  viewer=viewer, csrf=csrf)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _number(value: Any) -> str:
    return "—" if value is None else str(value)


TEMPLATES.env.filters["percent"] = _percent
TEMPLATES.env.filters["number"] = _number


# -- who is asking -----------------------------------------------------------------------------------------------------


@dataclass
class Visit:
    """One signed-in request: who, the settings and the clock's reading, the CSRF token of its forms."""

    request: Request
    viewer: Viewer
    cookie: str
    csrf: str
    now: dt.datetime

    @property
    def settings(self):
        return self.request.app.state.settings

    @property
    def today(self) -> dt.datetime:
        # The figures depend on the date alone, as in GraphQL (ctx.today_start) and the exports.
        return supervision.day_start(local_date(self.now))

    async def calendar(self):
        return await get_calendar(self.settings.calendar_cache_seconds)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return render(self.request, template, status, viewer=self.viewer, csrf=self.csrf, **context)


def signed_in(handler: Callable[[Visit], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in staff: anybody else is sent to the sign-in page, or refused with a page saying why."""

    async def endpoint(request: Request) -> Response:
        settings = request.app.state.settings
        now = request.app.state.clock()
        cookie = request.cookies.get(web_sessions.SESSION_COOKIE)
        viewer = await web_sessions.viewer_of(settings, cookie, now=now)
        if viewer is None:
            return _secure(RedirectResponse(f"{PREFIX}/login", status_code=303))
        request.scope.setdefault("state", {})["viewer"] = viewer  # the request log names the user
        csrf = web_sessions.session_csrf_token(settings, cookie)
        if not viewer.role.is_staff:
            return error_page(request, DomainError("PERMISSION_DENIED", "督察看板仅供工作人员使用，您的账号无权查看", None),
                              viewer, csrf)
        try:
            supervision.supervisor_scope(viewer, supervision.Scope())  # who may see figures at all
            return await handler(Visit(request, viewer, cookie, csrf, now))
        except DomainError as error:
            return error_page(request, error, viewer, csrf)

    return endpoint


# -- filters -----------------------------------------------------------------------------------------------------------


def _date(request: Request, name: str, default: dt.date) -> dt.date:
    return exports._date(request, name) if request.query_params.get(name) else default  # the exports' checks


def _choice(params, name: str, allowed: set[int], message: str) -> int | None:
    value = params.get(name)
    if not value:
        return None
    if len(value) > 4 or not value.isdigit() or int(value) not in allowed:
        raise DomainError("INVALID_INPUT", message, f"filter.{name}")
    return int(value)


@dataclass(frozen=True)
class Filter:
    stats: supervision.StatsFilter
    params: dict[str, str]  # the filter as query parameters, defaults filled in

    @property
    def query(self) -> str:
        return urlencode(self.params)

    def with_(self, **changes: str | None) -> str:
        params = {**self.params, **changes}
        return urlencode({k: v for k, v in params.items() if v})


def parse_filter(visit: Visit, department_id: int | None = None) -> Filter:
    """The period and scope of the query string; the last ``DEFAULT_DAYS`` days to today by default."""
    params = visit.request.query_params
    today = local_date(visit.now)
    end = _date(visit.request, "to", today)
    start = _date(visit.request, "from", end - dt.timedelta(days=DEFAULT_DAYS - 1))
    department = params.get("departmentId") or None
    if department_id is None and department is not None:
        department_id = pk_of(department, "Department", "filter.departmentId")
    scope = supervision.Scope(
        department_id=department_id,
        stage=_choice(params, "stage", {s.value for s in Stage}, "审批阶段应为 1 至 5"),
        process_type=_choice(params, "processType", {p.value for p in ProcessType}, "审批流程类型应为 1 至 10"),
    )
    supervision.check_period(start, end, visit.settings.stats_max_days)
    values = {"from": start.isoformat(), "to": end.isoformat(),
              "departmentId": to_global_id("Department", department_id) if department_id else "",
              "stage": str(scope.stage or ""), "processType": str(scope.process_type or "")}
    return Filter(supervision.StatsFilter(start=start, end=end, scope=scope), {k: v for k, v in values.items() if v})


def presets(today: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    """Periods offered as one click: 上月 answers "which departments were slowest last month"."""
    month = today.replace(day=1)
    last_month_end = month - dt.timedelta(days=1)
    return [
        ("近30天", today - dt.timedelta(days=29), today),
        ("本月", month, today),
        ("上月", last_month_end.replace(day=1), last_month_end),
        ("近90天", today - dt.timedelta(days=89), today),
        ("近一年", today - dt.timedelta(days=364), today),
    ]


async def filter_context(visit: Visit, flt: Filter) -> dict[str, Any]:
    departments = Department.all().order_by("id")
    if visit.viewer.department_id and visit.viewer.role.value == "APPROVER":
        departments = departments.filter(id=visit.viewer.department_id)
    return {
        "filter": flt,
        "departments": [(to_global_id("Department", d.id), d.name) for d in await departments],
        "stages": [(s.value, STAGE_NAMES[s]) for s in Stage],
        "process_types": [(p.value, PROCESS_TYPE_NAMES[p]) for p in ProcessType],
        "presets": [(label, flt.with_(**{"from": a.isoformat(), "to": b.isoformat()}))
                    for label, a, b in presets(local_date(visit.now))],
    }


async def stats_of(visit: Visit, flt: Filter, group_by: supervision.GroupBy) -> supervision.CaseStats:
    settings = visit.settings
    return await supervision.case_stats(
        visit.viewer, flt.stats, group_by, calendar=await visit.calendar(), now=visit.today,
        max_days=settings.stats_max_days, complaint_reply_days=settings.complaint_reply_days,
        complaint_warning_days=settings.complaint_warning_days,
    )


def _chart(kind: str, categories: list[str], series: list[tuple[str, list]], unit: str = "") -> dict[str, Any]:
    return {"type": kind, "categories": categories, "unit": unit,
            "series": [{"name": name, "values": values} for name, values in series]}


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


# -- pages -------------------------------------------------------------------------------------------------------------


@signed_in
async def overview(visit: Visit) -> Response:
    flt = parse_filter(visit)
    by_department = await stats_of(visit, flt, supervision.GroupBy.DEPARTMENT)
    by_week = await stats_of(visit, flt, supervision.GroupBy.WEEK)
    by_stage = await stats_of(visit, flt, supervision.GroupBy.STAGE)
    durations = await durations_by_process_type(
        visit.viewer, flt.stats, calendar=await visit.calendar(), now=visit.today,
        max_days=visit.settings.stats_max_days,
    )
    total = by_department.total
    # Slowest first: the department whose decided cases took longest on average (then the lowest on-time rate).
    departments = sorted(by_department.groups, key=lambda g: (-(g.average_used_days or 0), g.on_time_rate or 0))
    lights = [("正常", total.running_green), ("预警", total.running_yellow), ("逾期", total.running_red)]
    charts = {
        "lights": _chart("pie", [name for name, _ in lights], [("在办件", [n or 0 for _, n in lights])], "件"),
        "trend": _chart("line", [f"{g.key[5:7]}月{g.key[8:]}日起" for g in by_week.groups],
                        [("按时办结率", [_pct(g.on_time_rate) for g in by_week.groups])], "%"),
        "departments": _chart("bar", [g.label for g in departments],
                              [("平均用时", [g.average_used_days for g in departments]),
                               ("平均承诺时限", [g.average_limit_days for g in departments])], "天"),
        "stages": _chart("bar", [g.label for g in by_stage.groups],
                         [("平均用时", [g.average_used_days for g in by_stage.groups])], "天"),
        "durations": _chart("bar", [d.name for d in durations],
                            [("已办结项目平均用时", [d.average_days for d in durations]),
                             ("在办项目已用时", [d.running_average_days for d in durations])], "工作日"),
    }
    return visit.render(
        "overview.html", page="overview", total=total, department_rows=departments, weeks=by_week.groups,
        stage_rows=by_stage.groups, durations=durations, charts=charts, lights=lights,
        department_link=lambda g: f"{PREFIX}/departments/{to_global_id('Department', int(g.key))}?"
        + flt.with_(departmentId=None),
        **await filter_context(visit, flt),
    )


@signed_in
async def department_page(visit: Visit) -> Response:
    department_id = pk_of(visit.request.path_params["department_id"], "Department", "departmentId")
    flt = parse_filter(visit, department_id)
    scope = await supervision.check_scope(visit.viewer, flt.stats.scope)  # refused / not found before any figure
    department = await Department.get(id=scope.department_id)
    by_item = await stats_of(visit, flt, supervision.GroupBy.ITEM)
    overdue = await light_list(visit, scope, Light.RED, supervision.DaysOrder.MOST_URGENT_FIRST, None)
    complaints = await department_complaints(visit, flt, department.id)
    items = sorted(by_item.groups, key=lambda g: -(g.average_used_days or 0))
    charts = {"items": _chart("bar", [g.label for g in items],
                              [("平均用时", [g.average_used_days for g in items]),
                               ("平均承诺时限", [g.average_limit_days for g in items])], "天")}
    return visit.render(
        "department.html", page="department", department=department, total=by_item.total, items=items,
        overdue=overdue, complaints=complaints, reply_days=visit.settings.complaint_reply_days, charts=charts, **await filter_context(visit, flt),
    )


COMPLAINTS_SHOWN = 20


async def department_complaints(visit: Visit, flt: Filter, department_id: int) -> list[dict[str, Any]]:
    """The department's complaints filed in the period or still open, newest first, with the reply clock
    (their text is the filer's: read in the complaint itself, not here)."""
    start = supervision.day_start(flt.stats.start)
    end = supervision.day_start(flt.stats.end + dt.timedelta(days=1))
    open_states = [ComplaintState.SUBMITTED, ComplaintState.ASSIGNED, ComplaintState.REOPENED]
    rows = await Complaint.filter(
        complaint_scope(visit.viewer), Q(created_at__gte=start, created_at__lt=end) | Q(state__in=open_states),
        department_id=department_id,
    ).order_by("-created_at", "-id").limit(COMPLAINTS_SHOWN)
    calendar = await visit.calendar()
    out = []
    for complaint in rows:
        timing = complaint_timing(complaint, visit.settings, calendar, visit.today)
        if complaint.replied_at is not None or complaint.state not in open_states:
            reply = "已答复" if complaint.replied_at is not None else "—"
        elif timing.remaining is not None and timing.remaining < 0:
            reply = f"逾期 {-timing.remaining} 个工作日"
        else:
            reply = f"剩余 {timing.remaining} 个工作日"
        out.append({"filed": local_date(complaint.created_at).isoformat(),
                    "category": CATEGORY_LABELS.get(complaint.category, str(complaint.category)),
                    "state": COMPLAINT_STATE_LABELS.get(complaint.state, str(complaint.state)), "reply": reply})
    return out


@dataclass(frozen=True)
class Row:
    id: str
    code: str
    project: str
    item: str
    department: str
    stage: str
    state: str
    days: int  # days over (overdue) or left (warning)
    limit: str


async def light_list(visit: Visit, scope: supervision.Scope, light: Light, order: supervision.DaysOrder,
                     after: str | None) -> tuple[list[Row], str | None, int]:
    """A page of the running cases of ``light`` now, with their days over / left."""
    page = await supervision.light_cases(
        visit.viewer, scope, light, first=LIST_PAGE, after=after, order=order, page_max=visit.settings.page_max,
        calendar=await visit.calendar(), now=visit.today,
    )
    ids = [c.id for c in page.items]
    cases = {c.id: c for c in await Case.filter(id__in=ids).select_related("project", "item", "department")}
    events = await events_by_case(ids)
    calendar = await visit.calendar()
    rows = []
    for pk in ids:
        case = cases[pk]
        timing = case_timing(case, events.get(pk, []), calendar, visit.today)
        remaining = timing.remaining or 0
        rows.append(Row(
            id=to_global_id("Case", pk), code=case.code, project=case.project.name, item=case.item.name,
            department=case.department.name, stage=STAGE_NAMES.get(Stage(case.stage), str(case.stage))
            if case.stage in Stage._value2member_map_ else str(case.stage),
            state=STATE_LABELS.get(case.state, case.state.value), days=-remaining if light is Light.RED else remaining,
            limit=f"{case.limit_days}{'个工作日' if case.limit_unit.value == 'WD' else '天'}",
        ))
    cursor = page.cursor(page.items[-1]) if page.has_next_page and page.items else None
    return rows, cursor, page.total_count


async def _light_page(visit: Visit, light: Light) -> Response:
    flt = parse_filter(visit)
    sort = visit.request.query_params.get("sort") or "most"
    if sort not in SORTS:
        raise DomainError("INVALID_INPUT", "排序方式应为 most（最紧急在前）或 least", "sort")
    after = visit.request.query_params.get("after") or None
    rows, cursor, total = await light_list(visit, flt.stats.scope, light, SORTS[sort], after)
    overdue = light is Light.RED
    return visit.render(
        "cases.html", page="overdue" if overdue else "warning", overdue=overdue, rows=rows, total=total, sort=sort,
        next_query=flt.with_(sort=sort, after=cursor) if cursor else None,
        sort_queries={s: flt.with_(sort=s) for s in SORTS}, **await filter_context(visit, flt),
    )


overdue_page = signed_in(functools.partial(_light_page, light=Light.RED))
warning_page = signed_in(functools.partial(_light_page, light=Light.YELLOW))


@signed_in
async def case_page(visit: Visit) -> Response:
    """A case's timeline: every event with its time, and the clock now. Outside the viewer's scope: not found."""
    pk = pk_of(visit.request.path_params["case_id"], "Case", "caseId")
    case = await Case.filter(case_scope(visit.viewer), id=pk).select_related("project", "item", "department").first()
    if case is None:
        raise DomainError("NOT_FOUND", "办件不存在或您无权查看", "caseId")
    events = (await events_by_case([pk])).get(pk, [])
    timing = case_timing(case, events, await visit.calendar(), visit.today)
    timeline = [(e.occurred_at.astimezone(supervision.CHINA).strftime("%Y-%m-%d %H:%M"),
                 ACTION_LABELS.get(Action(e.action), str(e.action)),
                 STATE_LABELS.get(CaseState(e.state_after), str(e.state_after))) for e in events]
    light = {Light.GREEN: "正常", Light.YELLOW: "预警", Light.RED: "逾期"}.get(timing.light, "—")
    return visit.render(
        "case.html", page="case", case=case, timeline=timeline, timing=timing, light=light,
        state=STATE_LABELS.get(case.state, case.state.value),
        stage=STAGE_NAMES.get(Stage(case.stage)) if case.stage in Stage._value2member_map_ else str(case.stage),
        back=visit.request.query_params.get("back") or "",
    )


# -- exports: the files of api/routes/exports.py, for the cookie's viewer ---------------------------------------------


async def _export(visit: Visit, produce: Callable[[Request], Awaitable[Response]]) -> Response:
    flt = parse_filter(visit)  # the page's own checks and messages first, and its default period
    group_by = visit.request.query_params.get("groupBy") or supervision.GroupBy.DEPARTMENT.value
    scope = {**visit.request.scope, "query_string": flt.with_(groupBy=group_by).encode()}
    scope["state"] = {**visit.request.scope.get("state", {}), "viewer": visit.viewer}
    response = await produce(Request(scope, visit.request.receive))
    if response.status_code >= 400:  # a refusal of the export code, as a page
        error = json.loads(response.body)["error"]
        raise DomainError(error["code"], error["message"], error["field"])
    return response


export_csv = signed_in(functools.partial(_export, produce=exports.case_stats_csv))
export_xlsx = signed_in(functools.partial(_export, produce=exports.case_stats_xlsx))


# -- signing in and out ------------------------------------------------------------------------------------------------


def _cookie_options(request: Request, max_age: int) -> dict[str, Any]:
    settings = request.app.state.settings
    return {"max_age": max_age, "path": PREFIX, "httponly": True, "samesite": "lax", "secure": settings.is_production}


async def _form(request: Request) -> dict[str, str]:
    """A small url-encoded form (bounded: a sign-in form is a few hundred bytes)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX_BYTES:
            raise DomainError("INVALID_INPUT", "提交的内容过长", None)
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise DomainError("INVALID_INPUT", "提交的内容格式不正确", None) from None
    return {k: v[0] for k, v in parsed.items()}


def _login_form(request: Request, status: int = 200, message: str | None = None, username: str = "") -> Response:
    settings = request.app.state.settings
    nonce = request.cookies.get(web_sessions.LOGIN_COOKIE)
    fresh = not nonce or len(nonce) > 100
    if fresh:
        nonce = web_sessions.new_login_nonce()
    response = render(request, "login.html", status, csrf=web_sessions.login_csrf_token(settings, nonce),
                      message=message, username=username, viewer=None)
    if fresh:
        response.set_cookie(web_sessions.LOGIN_COOKIE, nonce, **_cookie_options(request, 3600))
    return response


async def login_page(request: Request) -> Response:
    settings = request.app.state.settings
    viewer = await web_sessions.viewer_of(settings, request.cookies.get(web_sessions.SESSION_COOKIE),
                                          now=request.app.state.clock())
    if viewer is not None and viewer.role.is_staff:
        return _secure(RedirectResponse(PREFIX, status_code=303))
    return _login_form(request)


def _csrf_refused(request: Request) -> Response:
    return error_page(request, DomainError("CSRF_FAILED", "页面已过期或来源不明，请刷新页面后重试", None))


async def login(request: Request) -> Response:
    settings = request.app.state.settings
    try:
        form = await _form(request)
    except DomainError as error:
        return error_page(request, error)
    if not web_sessions.login_csrf_ok(settings, request.cookies.get(web_sessions.LOGIN_COOKIE), form.get("csrf")):
        return _csrf_refused(request)  # before any password is checked or counted
    username = form.get("username", "")[:64]
    try:
        cookie = await web_sessions.sign_in(settings, username, form.get("password", ""),
                                            now=request.app.state.clock())
    except DomainError as error:
        return _login_form(request, STATUS.get(error.code, 400), error.message, username)
    response = _secure(RedirectResponse(PREFIX, status_code=303))
    response.set_cookie(web_sessions.SESSION_COOKIE, cookie, **_cookie_options(request, settings.dashboard_session_seconds))
    response.delete_cookie(web_sessions.LOGIN_COOKIE, path=PREFIX)
    return response


async def logout(request: Request) -> Response:
    settings = request.app.state.settings
    cookie = request.cookies.get(web_sessions.SESSION_COOKIE)
    try:
        form = await _form(request)
    except DomainError as error:
        return error_page(request, error)
    if not web_sessions.session_csrf_ok(settings, cookie, form.get("csrf")):
        return _csrf_refused(request)  # the session stays open
    await web_sessions.sign_out(settings, cookie, now=request.app.state.clock())
    response = _secure(RedirectResponse(f"{PREFIX}/login", status_code=303))
    response.delete_cookie(web_sessions.SESSION_COOKIE, path=PREFIX, httponly=True, samesite="lax",
                           secure=settings.is_production)
    return response
