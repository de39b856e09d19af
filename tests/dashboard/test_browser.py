"""The dashboard in a real browser (issue #14 "Done when"): Playwright drives Debian's chromium (executable_path: its
own browser download is unavailable) against a real ``python -m api serve`` with the demo data, loaded by the
commands of ``make demo``. Signing in, every chart drawn (its canvas has pixels), a filter that changes the figures,
the overdue list sorted and linked to a case's timeline, a department's page, an export downloaded, a non-staff
account refused, signing out; at 1280 px and at a tablet's 768 px, with every request outside this service blocked.
Screenshots of each page are written under the test's tmp dir.

One server and one browser for the module; the tests run in order on them."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from urllib.parse import urlsplit

import pytest

from api.domain.accounts import DEMO_STAFF_PASSWORD
from tests.servers import free_port, port_is_open, stop_process
from tests.test_demo_served import BANNER_END, REPO, make_demo_commands

# One server and one browser: under `make test` (xdist --dist loadgroup) the module's tests share a worker.
pytestmark = pytest.mark.xdist_group("dashboard-browser")
CHROMIUM = "/usr/bin/chromium"
SUPERVISOR = "demo.supervisor"
PIXELS = """(el) => {
  const canvas = el.querySelector('canvas');
  if (!canvas) return 0;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) drawn++;
  return drawn;
}"""


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """``make demo``'s migrate, load-demo and serve, on a free port and this module's directory."""
    tmp = tmp_path_factory.mktemp("dashboard-demo")
    port = free_port()
    env, (migrate, load, serve) = make_demo_commands(tmp, port)
    subprocess.run(migrate, cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    loaded = subprocess.run(load, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    console = (tmp / "console.txt").open("w+", encoding="utf-8")
    server = subprocess.Popen(serve, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=console, text=True)
    try:
        banner = []
        while BANNER_END not in "".join(banner):  # printed once the server listens
            line = server.stdout.readline()
            assert line, f"the server stopped: {(tmp / 'console.txt').read_text(encoding='utf-8')[-3000:]}"
            banner.append(line)
        assert port_is_open(port)
        yield {"host": f"127.0.0.1:{port}", "database": tmp / "demo.sqlite3", "banner": "".join(banner)}
    finally:
        stop_process(server)
        console.close()


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        # No name resolves but our loopback address (a government intranet has no CDN).
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--no-sandbox"],
        )
        try:
            yield chromium
        finally:
            await chromium.close()


class Watch:
    """Requests to anywhere but the service (aborted), failed requests, page errors and CSP violations."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.problems: list[str] = []

    async def open(self, browser, width: int = 1280, height: int = 900):
        context = await browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)

        async def guard(route):
            url = route.request.url
            if urlsplit(url).netloc == self.host or url.startswith("data:"):
                await route.continue_()
            else:
                self.problems.append(f"outside: {url}")
                await route.abort()

        await context.route("**/*", guard)
        page = await context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))
        page.on("console", lambda message: self.problems.append(f"console: {message.text}")
                if message.type == "error" else None)
        return context, page


@contextlib.asynccontextmanager
async def browsing(browser, host: str, width: int = 1280, height: int = 900, expected: tuple[str, ...] = ()):
    """A page in a fresh context; at the end, nothing went outside or wrong (but the ``expected`` console lines)."""
    watch = Watch(host)
    context, page = await watch.open(browser, width, height)
    try:
        yield page
    finally:
        await context.close()
    problems = [p for p in watch.problems if not any(e in p for e in expected)]
    assert problems == [], watch.problems


async def sign_in(page, base: str, username: str, password: str = DEMO_STAFF_PASSWORD):
    await page.goto(f"{base}/dashboard")
    assert page.url == f"{base}/dashboard/login"  # not signed in: sent to the sign-in page
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    async with page.expect_navigation():
        await page.click("#login-form button[type=submit]")


async def charts_drawn(page) -> dict[str, int]:
    """Every chart's pixels once ECharts says it finished."""
    charts = page.locator("[data-chart]")
    count = await charts.count()
    assert count > 0
    out = {}
    for i in range(count):
        chart = charts.nth(i)
        await chart.and_(page.locator("[data-drawn=true]")).wait_for(timeout=30_000)
        out[await chart.get_attribute("data-chart")] = await chart.evaluate(PIXELS)
    return out


async def kpi(page, field: str) -> str:
    return await page.locator(f"#kpis [data-field={field}]").get_attribute("data-value")


async def test_a_supervisor_signs_in_reads_filters_exports_and_signs_out(demo_server, browser, tmp_path):
    base = f"http://{demo_server['host']}"
    # make demo's banner says where the dashboard is and whom to sign in as.
    assert f"{base}/dashboard" in demo_server["banner"] and SUPERVISOR in demo_server["banner"], demo_server["banner"]
    async with browsing(browser, demo_server["host"]) as page:
        await page.goto(f"{base}/dashboard")
        await page.screenshot(path=tmp_path / "login.png", full_page=True)
        await sign_in(page, base, SUPERVISOR)
        assert urlsplit(page.url).path == "/dashboard"

        # Every chart is drawn: its canvas is not blank.
        drawn = await charts_drawn(page)
        assert set(drawn) == {"lights", "trend", "departments", "stages", "durations"}
        assert all(pixels > 500 for pixels in drawn.values()), drawn
        # Each chart has its table, and the questions of the issue are answered on the page.
        for table in ("lights-table", "trend-table", "departments-table", "stages-table", "durations-table"):
            assert await page.locator(f"#{table} tbody tr").count() > 0, table
        assert await page.get_by_text("部门对比（按平均用时从慢到快）").count() == 1
        assert await page.get_by_text("全流程审批用时（按审批流程类型）").count() == 1
        await page.screenshot(path=tmp_path / "overview-1280.png", full_page=True)

        # 上月: which departments were slowest last month — the slowest first.
        async with page.expect_navigation():
            await page.get_by_role("link", name="上月", exact=True).click()
        assert "from=" in page.url and "to=" in page.url
        await charts_drawn(page)
        used = [float(v) for v in await page.locator("#departments-table tbody tr:not(.total) "
                                                      "[data-field=average_used_days]").evaluate_all(
            "cells => cells.map(c => c.dataset.value).filter(v => v !== '')")]
        assert used == sorted(used, reverse=True), used

        # A filter changes the figures, and is kept in the URL.
        async with page.expect_navigation():
            await page.get_by_role("link", name="近一年", exact=True).click()
        year_accepted = int(await kpi(page, "accepted"))
        department = await page.locator("#departments-table tbody tr:not(.total)").evaluate_all(
            """rows => rows.map(r => [r.querySelector('a').href, +r.querySelector('[data-field=accepted]').dataset.value])
                       .filter(([, n]) => n > 0)[0][0]""")
        department_id = department.split("/departments/")[1].split("?")[0]
        await page.select_option("#filter-department", department_id)
        async with page.expect_navigation():
            await page.click("#apply-filter")
        assert f"departmentId={department_id}" in page.url
        filtered = int(await kpi(page, "accepted"))
        assert 0 < filtered < year_accepted, (filtered, year_accepted)
        await charts_drawn(page)
        assert await page.locator("#filter-department").input_value() == department_id

        # Exports of the same filter, downloaded.
        async with page.expect_download() as download_info:
            await page.click("#export-csv")
        download = await download_info.value
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        text = saved.read_text(encoding="utf-8-sig")
        assert text.startswith("报表,工程建设项目审批效能统计") and "部门," in text
        assert download.suggested_filename.endswith(".csv")
        async with page.expect_download() as download_info:
            await page.click("#export-xlsx")
        xlsx = await download_info.value
        await xlsx.save_as(tmp_path / "export.xlsx")
        assert (tmp_path / "export.xlsx").read_bytes()[:2] == b"PK"

        # The department's own page: its items, overdue cases, ratings and complaints.
        await page.goto(f"{base}/dashboard/departments/{department_id}?"
                        + urlsplit(page.url).query)
        assert await page.locator("h1").inner_text()
        drawn = await charts_drawn(page)
        assert drawn["items"] > 500
        assert await page.locator("#kpis [data-field=good_rate]").count() == 1
        assert await page.locator("#complaints-table").count() == 1
        await page.screenshot(path=tmp_path / "department.png", full_page=True)

        # Overdue now, by how much: most days over first, the other order on request, each linked to its timeline.
        await page.goto(f"{base}/dashboard")
        async with page.expect_navigation():
            await page.get_by_role("link", name="逾期办件", exact=True).click()
        days = [int(v) for v in await page.locator("#cases-table [data-field=days]").evaluate_all(
            "cells => cells.map(c => c.dataset.value)")]
        assert days and all(d > 0 for d in days) and days == sorted(days, reverse=True), days
        await page.screenshot(path=tmp_path / "overdue.png", full_page=True)
        async with page.expect_navigation():
            await page.click("#sort-least")
        least = [int(v) for v in await page.locator("#cases-table [data-field=days]").evaluate_all(
            "cells => cells.map(c => c.dataset.value)")]
        assert least == sorted(days), least
        async with page.expect_navigation():
            await page.locator("#cases-table tbody a").first.click()
        assert "/dashboard/cases/" in page.url
        assert await page.locator("#case-light").inner_text() == "逾期"
        assert await page.locator("#timeline tbody tr").count() >= 2
        await page.screenshot(path=tmp_path / "case.png", full_page=True)
        async with page.expect_navigation():
            await page.get_by_role("link", name="预警办件", exact=True).click()
        left = [int(v) for v in await page.locator("#cases-table [data-field=days]").evaluate_all(
            "cells => cells.map(c => c.dataset.value)")]
        assert left and all(d >= 0 for d in left) and left == sorted(left), left  # fewest days left first
        await page.screenshot(path=tmp_path / "warning.png", full_page=True)

        # Sign out: every page sends to the sign-in page again.
        async with page.expect_navigation():
            await page.click("#logout")
        assert urlsplit(page.url).path == "/dashboard/login"
        for path in ("/dashboard", "/dashboard/overdue", "/dashboard/export.csv"):
            await page.goto(f"{base}{path}")
            assert urlsplit(page.url).path == "/dashboard/login", path


async def test_at_tablet_width_the_page_fits_and_the_charts_are_drawn(demo_server, browser, tmp_path):
    base = f"http://{demo_server['host']}"
    async with browsing(browser, demo_server["host"], width=768, height=1024) as page:
        await sign_in(page, base, SUPERVISOR)
        drawn = await charts_drawn(page)
        assert all(pixels > 500 for pixels in drawn.values()), drawn
        # No sideways scrolling of the page (wide tables scroll inside their own box).
        assert await page.evaluate("document.documentElement.scrollWidth") <= 768
        width = await page.locator("[data-chart=departments]").evaluate("el => el.getBoundingClientRect().width")
        assert 600 < width <= 768, width  # one column: the chart takes the page's width
        await page.screenshot(path=tmp_path / "overview-768.png", full_page=True)


async def test_a_non_staff_account_is_refused_with_a_page(demo_server, browser, tmp_path):
    base = f"http://{demo_server['host']}"
    # The browser reports the 401 and 403 answers on its console: expected here.
    async with browsing(browser, demo_server["host"], expected=("status of 401", "status of 403")) as page:
        # A citizen has no staff password: the sign-in is refused, on the page.
        await sign_in(page, base, "demo.citizen")
        assert urlsplit(page.url).path == "/dashboard/login"
        assert "用户名或密码错误" in await page.locator("#login-message").inner_text()
        await page.screenshot(path=tmp_path / "refused-sign-in.png", full_page=True)
        # An approver signed in, whose account becomes a citizen's: the next page refuses it and says why.
        await sign_in(page, base, "demo.approver.ma")
        assert urlsplit(page.url).path == "/dashboard"
        with sqlite3.connect(demo_server["database"]) as db:
            db.execute("UPDATE app_user SET role = 'CITIZEN', department_id = NULL WHERE username = 'demo.approver.ma'")
        response = await page.goto(f"{base}/dashboard")
        assert response.status == 403
        assert "督察看板仅供工作人员使用" in await page.locator("#error-message").inner_text()
        await page.screenshot(path=tmp_path / "refused.png", full_page=True)
