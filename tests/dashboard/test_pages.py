"""The dashboard's pages without a browser (issue #14 §2): the figures on the page are caseStats' for the same filter,
CSRF refusals change nothing, the lock-out holds under simultaneous sign-ins, the cookie's flags, the role's scope,
and every bad input is a Chinese page with a 4xx (never a 500). The browser tests are in test_browser.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import httpx
import pytest
from tortoise.expressions import Q

from api.domain.ids import to_global_id
from api.models import LoginSession, StaffLoginThrottle, User
from api.settings import Environment
from api.services.accounts import set_password
from tests.api.test_supervision import TODAY, data, stats_of  # noqa: F401 (data: a fixture)
from tests.dashboard.pages import csrf_of, figures, sign_in

PASSWORD = "Supervise-2026"


async def staff(world, key: str, username: str) -> User:
    user = world.users[key]
    user.username = username
    await user.save(update_fields=["username"])
    await set_password(user, PASSWORD)
    return user


@pytest.fixture
async def supervisor(world):
    return await staff(world, "supervisor", "zheng.supervisor")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def same(page_value: str, graphql_value) -> bool:
    if graphql_value is None:
        return page_value == ""
    return float(page_value) == float(graphql_value)


async def test_the_figures_on_the_page_are_those_of_case_stats_for_the_same_filter(client, gql, data, world,
                                                                                    supervisor):
    assert (await sign_in(client, "zheng.supervisor", PASSWORD)).status_code == 303
    housing = to_global_id("Department", world.departments["housing"].id)
    for query, f in [
        ({"from": (TODAY - dt.timedelta(days=200)).isoformat(), "to": TODAY.isoformat()},
         {"from": TODAY - dt.timedelta(days=200), "to": TODAY}),
        ({"from": (TODAY - dt.timedelta(days=120)).isoformat(), "to": (TODAY - dt.timedelta(days=10)).isoformat(),
          "stage": "1", "processType": "3"},
         {"from": TODAY - dt.timedelta(days=120), "to": TODAY - dt.timedelta(days=10), "stage": 1, "processType": 3}),
        ({"from": (TODAY - dt.timedelta(days=150)).isoformat(), "to": TODAY.isoformat(), "departmentId": housing},
         {"from": TODAY - dt.timedelta(days=150), "to": TODAY, "department": world.departments["housing"].id}),
    ]:
        page = await client.get("/dashboard", params=query)
        assert page.status_code == 200, page.text
        compared = 0
        for table, group_by in [("departments-table", "DEPARTMENT"), ("stages-table", "STAGE"),
                                ("trend-table", "WEEK")]:
            result = await stats_of(gql, f, group_by)
            expected = {g["key"]: g for g in result["groups"]}
            shown = figures(page.text, table)
            total = shown.pop("TOTAL", None)
            if group_by != "WEEK":
                assert set(shown) == set(expected), (table, query)
            else:
                assert set(shown) <= set(expected) and len(shown) == len(expected), (table, query)
            for key, row in [*shown.items(), *([("TOTAL", total)] if total else [])]:
                want = result["total"] if key == "TOTAL" else expected[key]
                for field, value in row.items():
                    assert same(value, want[camel(field)]), (table, key, field, value, want[camel(field)])
                    compared += 1
        kpis = figures(page.text.replace('<section class="kpis" id="kpis"', '<table id="kpis"><tr data-key="k"')
                       .replace("</section>", "</tr></table>", 1), "kpis")["k"]
        totals = (await stats_of(gql, f, "DEPARTMENT"))["total"]
        for field, value in kpis.items():
            assert same(value, totals[camel(field)]), (field, value, totals[camel(field)])
        assert compared > 50 and totals["decided"] > 0, query


async def test_a_departments_page_shows_its_items_overdue_cases_and_complaints(client, gql, data, world, supervisor):
    from api.models import Complaint

    assert (await sign_in(client, "zheng.supervisor", PASSWORD)).status_code == 303
    housing = world.departments["housing"]
    f = {"from": TODAY - dt.timedelta(days=200), "to": TODAY, "department": housing.id}
    page = await client.get(f"/dashboard/departments/{to_global_id('Department', housing.id)}",
                            params={"from": f["from"].isoformat()})
    assert page.status_code == 200 and housing.name in page.text
    result = await stats_of(gql, f, "ITEM")
    shown = figures(page.text, "items-table")
    assert set(shown) == {g["key"] for g in result["groups"]} | {"TOTAL"}
    for group in [*result["groups"], {**result["total"], "key": "TOTAL"}]:
        for field, value in shown[group["key"]].items():
            assert same(value, group[camel(field)]), (group["key"], field)
    overdue = (await gql("query($f: SupervisionScope) { overdueCases(filter: $f, first: 100) { totalCount } }",
                         {"f": {"departmentId": to_global_id("Department", housing.id)}}, as_user="supervisor"))
    assert f"本部门逾期办件（{overdue['overdueCases']['totalCount']} 件）" in page.text
    complaints = page.text.split('id="complaints-table"', 1)[1].split("</table>", 1)[0]
    since = dt.datetime.combine(f["from"], dt.time(), tzinfo=dt.timezone(dt.timedelta(hours=8)))
    expected = await Complaint.filter(
        Q(created_at__gte=since) | Q(state__in=["SUBMITTED", "ASSIGNED", "REOPENED"]), department_id=housing.id,
    ).count()
    assert expected and complaints.count("<tr><td>") == min(expected, 20)


async def test_csrf_missing_or_wrong_is_refused_and_changes_nothing(client, supervisor):
    form = {"username": "zheng.supervisor", "password": "Wrong-pass-1"}
    page = await client.get("/dashboard/login")
    token = csrf_of(page.text)
    for data_ in (form, {**form, "csrf": "forged"}, {**form, "csrf": token + "x"}):
        refused = await client.post("/dashboard/login", data=data_)
        assert refused.status_code == 403 and "页面已过期" in refused.text
    # No guess was counted: the refusal came before the password.
    assert not await StaffLoginThrottle.filter(username="zheng.supervisor").exists()
    # A token of another browser (its own login cookie) does not fit this one's.
    own = client.cookies.get("jianshen_login")
    client.cookies.set("jianshen_login", "another-nonce", path="/dashboard")
    other = csrf_of((await client.get("/dashboard/login")).text)
    client.cookies.set("jianshen_login", own, path="/dashboard")
    refused = await client.post("/dashboard/login", data={**form, "csrf": other})
    assert refused.status_code == 403

    assert (await sign_in(client, "zheng.supervisor", PASSWORD)).status_code == 303
    overview = await client.get("/dashboard")
    token = csrf_of(overview.text)
    for data_ in ({}, {"csrf": "forged"}, {"csrf": token[:-1]}):
        refused = await client.post("/dashboard/logout", data=data_)
        assert refused.status_code == 403, refused.text
        assert (await client.get("/dashboard")).status_code == 200  # still signed in
    assert await LoginSession.filter(user_id=supervisor.id, kind="STAFF", revoked_at__isnull=True).count() == 1
    signed_out = await client.post("/dashboard/logout", data={"csrf": token})
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/dashboard/login"
    assert await LoginSession.filter(user_id=supervisor.id, kind="STAFF", revoked_at__isnull=True).count() == 0
    assert (await client.get("/dashboard")).headers["location"] == "/dashboard/login"


async def test_the_session_cookie_is_http_only_same_site_and_expires(client, supervisor, settings, clock):
    signed_in = await sign_in(client, "zheng.supervisor", PASSWORD)
    cookie = next(v for k, v in signed_in.headers.multi_items()
                  if k == "set-cookie" and v.startswith("jianshen_dashboard="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age", "samesite"} <= flags and "secure" not in flags  # development: http
    assert "samesite=lax" in cookie.lower() and "path=/dashboard" in cookie.lower()
    assert f"max-age={settings.dashboard_session_seconds}" in cookie.lower()
    value = cookie.split(";")[0].split("=", 1)[1]
    page = await client.get("/dashboard")
    assert "Content-Security-Policy" in page.headers and "script-src 'self'" in page.headers["content-security-policy"]
    assert "https://" not in page.text and "http://" not in page.text  # no CDN, no remote URL
    # A cookie that was altered, or that outlived its session, opens nothing.
    user_id, session_id, mac = value.split(".")
    for forged in (f"{user_id}.{session_id}.{mac[:-2]}AA", f"{int(user_id) + 1}.{session_id}.{mac}", "junk"):
        client.cookies.set("jianshen_dashboard", forged, path="/dashboard")
        assert (await client.get("/dashboard")).status_code == 303
    client.cookies.set("jianshen_dashboard", value, path="/dashboard")
    assert (await client.get("/dashboard")).status_code == 200
    clock.set(clock.now + dt.timedelta(seconds=settings.dashboard_session_seconds - 1))
    assert (await client.get("/dashboard")).status_code == 200
    clock.set(clock.now + dt.timedelta(seconds=2))  # the browser may keep the cookie; the server does not
    assert (await client.get("/dashboard")).status_code == 303


async def test_secure_cookie_in_production(supervisor, app):
    app.state.settings = app.state.settings.model_copy(update={"env": Environment.PRODUCTION})
    assert app.state.settings.is_production
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
        signed_in = await sign_in(client, "zheng.supervisor", PASSWORD)
    cookies = [v.lower() for k, v in signed_in.headers.multi_items() if k == "set-cookie"]
    assert any(c.startswith("jianshen_dashboard=") and "; secure" in c for c in cookies), cookies


async def test_simultaneous_wrong_passwords_lock_the_username_out(client, supervisor, settings):
    page = await client.get("/dashboard/login")
    form = {"csrf": csrf_of(page.text), "username": "zheng.supervisor", "password": "Wrong-pass-1"}
    answers = await asyncio.gather(*(client.post("/dashboard/login", data=form) for _ in range(20)))
    statuses = sorted(a.status_code for a in answers)
    limit = settings.staff_login_max_failures
    assert statuses == [401] * (limit - 1) + [429] * (20 - limit + 1), statuses
    assert all("用户名或密码错误" in a.text for a in answers if a.status_code == 401)
    assert all("登录失败次数过多" in a.text for a in answers if a.status_code == 429)
    # The right password is refused too while the lock lasts.
    right = await client.post("/dashboard/login", data={**form, "password": PASSWORD})
    assert right.status_code == 429 and "jianshen_dashboard=" not in right.headers.get("set-cookie", "")


async def test_non_staff_accounts_are_refused_with_a_page(client, world):
    citizen = await staff(world, "citizen", "sun.citizen")  # a password on a citizen's account: still not staff
    refused = await sign_in(client, "sun.citizen", PASSWORD)
    assert refused.status_code == 401 and "用户名或密码错误" in refused.text
    # A staff member whose account is turned into a citizen's while signed in.
    await staff(world, "housing", "wu.housing")
    assert (await sign_in(client, "wu.housing", PASSWORD)).status_code == 303
    assert (await client.get("/dashboard")).status_code == 200
    await User.filter(id=world.users["housing"].id).update(role="CITIZEN", department_id=None)
    for path in ("/dashboard", "/dashboard/overdue", "/dashboard/export.csv"):
        page = await client.get(path)
        assert page.status_code == 403 and "督察看板仅供工作人员使用" in page.text, path
    assert citizen.role.value == "CITIZEN"


async def test_an_approver_sees_its_own_department_only(client, world, data):
    await staff(world, "planner", "chen.planner")
    assert (await sign_in(client, "chen.planner", PASSWORD)).status_code == 303
    page = await client.get("/dashboard", params={"from": (TODAY - dt.timedelta(days=200)).isoformat()})
    assert page.status_code == 200
    planning = str(world.departments["planning"].id)
    assert set(figures(page.text, "departments-table")) <= {planning, "TOTAL"}
    water = to_global_id("Department", world.departments["water"].id)
    for path in (f"/dashboard?departmentId={water}", f"/dashboard/departments/{water}",
                 f"/dashboard/overdue?departmentId={water}", f"/dashboard/export.xlsx?departmentId={water}"):
        refused = await client.get(path)
        assert refused.status_code == 403 and "只能查看本部门的统计" in refused.text, path


BAD_INPUTS = [
    ("/dashboard?from=2026-13-01", 400, "日期格式应为"),
    ("/dashboard?to=yesterday", 400, "日期格式应为"),
    ("/dashboard?from=2026-05-01&to=2026-04-01", 400, "开始日期不能晚于结束日期"),
    ("/dashboard?from=2020-01-01&to=2026-01-01", 400, "统计期间不能超过"),
    ("/dashboard?from=1999-01-01&to=1999-02-01", 400, "2000年至2099年"),
    ("/dashboard?stage=9", 400, "审批阶段应为"),
    ("/dashboard?stage=-1", 400, "审批阶段应为"),
    ("/dashboard?processType=abc", 400, "审批流程类型应为"),
    ("/dashboard?departmentId=xyz", 400, "编号格式不正确"),
    (f"/dashboard?departmentId={to_global_id('Department', 99999)}", 404, "部门不存在"),
    (f"/dashboard?departmentId={to_global_id('Case', 1)}", 400, "编号格式不正确"),
    (f"/dashboard/departments/{to_global_id('Department', 99999)}", 404, "部门不存在"),
    ("/dashboard/departments/%00", 400, "编号格式不正确"),
    ("/dashboard/overdue?sort=fastest", 400, "排序方式"),
    ("/dashboard/warning?after=%%%", 400, "分页游标无效"),
    (f"/dashboard/cases/{to_global_id('Case', 99999)}", 404, "办件不存在"),
    ("/dashboard/cases/nothing", 400, "编号格式不正确"),
    ("/dashboard/export.csv?groupBy=YEAR", 400, "分组方式"),
    ("/dashboard/export.xlsx?from=2026-02-30", 400, "日期格式应为"),

]


async def test_bad_inputs_are_chinese_pages_with_a_4xx(client, supervisor):
    assert (await sign_in(client, "zheng.supervisor", PASSWORD)).status_code == 303
    for path, status, message in BAD_INPUTS:
        page = await client.get(path)
        assert page.status_code == status, (path, page.status_code, page.text[-800:])
        assert message in page.text and re.search(r'<p class="message" id="error-message">', page.text), path
        assert page.headers["content-type"].startswith("text/html")


async def test_a_bad_sign_in_form_is_a_page_not_a_500(client, supervisor):
    page = await client.get("/dashboard/login")
    token = csrf_of(page.text)
    for body, status in [(b"\xff\xfe", 400), (b"a=" + b"x" * 5000, 400), (f"csrf={token}&username=&password=".encode(), 401)]:
        answer = await client.post("/dashboard/login", content=body,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code == status and answer.headers["content-type"].startswith("text/html"), body[:20]


async def test_project_durations_by_process_type_are_those_of_project_duration(client, gql, data, world, supervisor):
    """全流程审批用时 per process type: the mean of projectDuration's totals, finished and running apart."""
    assert (await sign_in(client, "zheng.supervisor", PASSWORD)).status_code == 303
    page = await client.get("/dashboard", params={"from": (TODAY - dt.timedelta(days=365)).isoformat()})
    finished: dict[int, list[int]] = {}
    running: dict[int, list[int]] = {}
    for project in world.projects.values():
        total = (await gql.op("ProjectDuration", {"code": project.code}, as_user="supervisor"))["projectDuration"]["total"]
        if total["days"] is not None:
            (finished if total["finished"] else running).setdefault(project.process_type, []).append(total["days"])
    assert finished or running
    shown = figures(page.text, "durations-table")
    assert set(shown) == {str(k) for k in {*finished, *running}}
    for kind, row in shown.items():
        done = finished.get(int(kind), [])
        assert int(row["finished"]) == len(done)
        assert row["average_days"] == (str(round(sum(done) / len(done), 1)) if done else "")
    rows = page.text.split('id="durations-table"', 1)[1].split("</table>", 1)[0]
    for kind, days in running.items():
        assert f"<td>{len(days)}</td><td>{round(sum(days) / len(days), 1)}</td>" in rows, (kind, days)


async def test_a_case_page_outside_the_viewers_scope_is_not_found(client, world, data):
    from api.models import Case

    await staff(world, "planner", "chen.planner")
    assert (await sign_in(client, "chen.planner", PASSWORD)).status_code == 303
    own = await Case.filter(department_id=world.departments["planning"].id).first()
    other = await Case.exclude(department_id=world.departments["planning"].id).first()
    page = await client.get(f"/dashboard/cases/{to_global_id('Case', own.id)}")
    assert page.status_code == 200 and own.code in page.text and 'id="timeline"' in page.text
    page = await client.get(f"/dashboard/cases/{to_global_id('Case', other.id)}")
    assert page.status_code == 404 and "办件不存在或您无权查看" in page.text and other.code not in page.text
