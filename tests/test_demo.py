"""The demo data of ``make demo`` (api/demo.py): idempotent, complete, valid, with working tokens.

These tests load the demo into the fresh database of the ``app`` fixture; they do not use the ``world`` fixture (and so
not ``gql``), whose test catalogue would clash with the demo's process templates.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

import api.models as models
from api.app import create_app
from api.models import Certificate, Seal
from esign import async_verify_pdf
from esign.ca import load_certificates
from api.demo import DEMO_PDFS_AT_LOAD, PROJECTS, TOKEN_USERS, load_demo
from tests.test_exchange import exchange_url  # noqa: F401  (a database of its own on the session's PostgreSQL)
from api.domain.codes import is_valid_project_code, is_valid_uscc
from api.domain.timing import CaseState, Light
from api.models import Case, Department, Organization, ProcessTemplate, Project, TemplateItem, TemplateStage
from api.services.calendar import get_calendar
from api.services.progress import case_timing, events_by_case

ROLES = {"APPLICANT", "CITIZEN", "WINDOW_CLERK", "APPROVER", "SUPERVISOR", "ADMIN"}
REPO = Path(__file__).resolve().parent.parent


async def _snapshot() -> dict:
    counts = {name: await getattr(models, name).all().count() for name in models.__all__}
    return {
        "counts": counts,
        "projects": await Project.all().order_by("code").values_list("code", flat=True),
        "cases": await Case.all().order_by("code").values_list("code", "state"),
    }


@pytest.fixture
async def app(settings):
    """The app without its certificate sweep nor its notice dispatcher: the snapshots must see only what the demo wrote."""
    EXECUTOR_CACHE.clear()
    application = create_app(settings, produce_certificates=False, run_dispatcher=False)
    async with application.router.lifespan_context(application):
        yield application


async def test_loading_twice_gives_the_same_data(app, settings):
    first_tokens = await load_demo(settings, pdf_limit=0)
    first = await _snapshot()
    second_tokens = await load_demo(settings, pdf_limit=0)
    assert await _snapshot() == first
    assert set(first_tokens) == set(second_tokens) == ROLES
    assert first["counts"]["Project"] == len(PROJECTS) == 20
    assert first["counts"]["Case"] > 100
    assert first["counts"]["CalendarYear"] >= 3
    # Complaints in every state of their flow with a thread, and ratings including a 差评 being followed up.
    assert first["counts"]["Complaint"] == 4 and first["counts"]["ComplaintMessage"] >= 3
    assert first["counts"]["Rating"] >= 3
    from api.models import Complaint, Rating

    assert {c.state.value for c in await Complaint.all()} == {"SUBMITTED", "ASSIGNED", "REPLIED", "CLOSED"}
    assert await Rating.filter(level__lte=2, contacted_at__isnull=False).exists()


async def test_demo_content_is_complete_and_valid(app, settings, client):
    tokens = await load_demo(settings, pdf_limit=2)

    # Every state of the lifecycle appears at least once.
    cases = await Case.all().order_by("id")
    assert {c.state for c in cases} == set(CaseState)

    # Red, yellow and green cases among those whose clock runs, computed with the real calendar.
    calendar = await get_calendar()
    now = dt.datetime.now(dt.timezone.utc)
    events = await events_by_case([c.id for c in cases])
    running_lights = {
        case_timing(c, events[c.id], calendar, now).light
        for c in cases
        if c.state in (CaseState.ACCEPTED, CaseState.IN_PROGRESS)
    }
    assert {Light.RED, Light.YELLOW, Light.GREEN} <= running_lights

    # Projects are spread over the four stages; a project in stage n has its earlier stages' cases approved.
    current_stage = {}
    for c in cases:
        current_stage[c.project_id] = max(current_stage.get(c.project_id, 0), c.stage)
    assert set(current_stage.values()) == {1, 2, 3, 4}
    approved_states = (CaseState.APPROVED, CaseState.APPROVED_DEFICIENT)
    approved = {(c.project_id, c.item_id) for c in cases if c.state in approved_states}
    for project in await Project.all():
        earlier_items = await TemplateItem.filter(
            template_stage__template__process_type=project.process_type,
            template_stage__stage__lt=current_stage[project.id],
        ).values_list("item_id", flat=True)
        missing = [item for item in earlier_items if (project.id, item) not in approved]
        assert not missing, f"{project.name}: earlier stages not approved"

    # Five process types with their four stages each.
    assert sorted(await ProcessTemplate.all().values_list("process_type", flat=True)) == [1, 2, 3, 4, 5]
    assert await TemplateStage.all().count() == 20

    # Codes are valid.
    for row in await Department.all() + await Organization.all():
        assert is_valid_uscc(row.uscc), row.name
    for project in await Project.all():
        assert is_valid_project_code(project.code), project.code
        assert project.region_code in {"440402", "440403", "440404"}
        assert project.code.split("-")[1] == project.region_code

    # Every role's token works through the real /graphql.
    for role, token in tokens.items():
        response = await client.post(
            "/graphql",
            json={"query": "{ viewer { role } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"data": {"viewer": {"role": role}}}, role
    assert set(tokens) == set(TOKEN_USERS) == ROLES

    # Every approved case of an item with a certificate type has its certificate; the departments have seals; the
    # PDFs made at load verify against the platform CA.
    with_type = [c for c in cases if c.state in {*approved_states, CaseState.REVOKED} and c.certificate_type]
    certificates = await Certificate.all()
    assert len(with_type) > 10 and {c.case_id for c in certificates} == {c.id for c in with_type}
    revoked = {c.id for c in with_type if c.state is CaseState.REVOKED}
    assert revoked and {c.case_id for c in certificates if c.status.value == "REVOKED"} == revoked
    assert {c.department_id for c in certificates} <= set(await Seal.all().values_list("department_id", flat=True))
    sealed = [c for c in certificates if c.pdf_path]
    assert len(sealed) == 2
    roots = load_certificates((settings.esign_dir / "platform-ca.pem").read_bytes())
    for certificate in sealed:
        result = await async_verify_pdf((settings.certificate_dir / certificate.pdf_path).read_bytes(), roots)
        assert result.valid and result.identifier == certificate.identifier, result.message


def test_the_cli_loads_the_demo_once_and_writes_the_tokens(tmp_path):
    database = tmp_path / "demo.sqlite3"
    env = {
        **os.environ,
        "JIANSHEN_ENV": "development",
        "JIANSHEN_DATABASE_URL": f"sqlite://{database}",
        "JIANSHEN_UPLOAD_DIR": str(tmp_path / "uploads"),
        "JIANSHEN_ESIGN_DIR": str(tmp_path / "esign"),
        "JIANSHEN_CERTIFICATE_DIR": str(tmp_path / "certificates"),
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "api", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr
        return result

    def case_count() -> int:
        with sqlite3.connect(database) as db:
            return db.execute("SELECT COUNT(*) FROM case_instance").fetchone()[0]

    run("migrate")
    tokens_file = tmp_path / "t.json"
    output = run("load-demo", "--tokens", str(tokens_file)).stdout
    tokens = json.loads(tokens_file.read_text(encoding="utf-8"))
    assert set(tokens) == ROLES
    assert all(token in output for token in tokens.values())
    cases = case_count()
    assert cases > 100
    assert any((tmp_path / "uploads").iterdir())
    with sqlite3.connect(database) as db:  # the first certificates sealed at load, the others by the server's sweep
        sealed = "SELECT COUNT(*) FROM certificate WHERE pdf_path IS NOT NULL"
        assert db.execute(sealed).fetchone()[0] == DEMO_PDFS_AT_LOAD
        assert db.execute("SELECT COUNT(*) FROM certificate").fetchone()[0] > DEMO_PDFS_AT_LOAD

    run("load-demo", "--tokens", str(tokens_file))
    assert case_count() == cases
    assert set(json.loads(tokens_file.read_text(encoding="utf-8"))) == ROLES


async def test_demo_people_sign_in_as_in_the_readme(app, settings, client):
    """WeChat users with ``dev:<username>`` (console mode), staff with the demo password; the applicant is authorised."""
    from api.demo import DEMO_STAFF_PASSWORD

    await load_demo(settings)

    async def post(query: str, variables: dict, token: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    login = await post(
        "mutation($code: String!) { loginWithWechat(input: {code: $code}) { accessToken isNewUser errors { code } "
        "viewer { role phone organization { name } } } }",
        {"code": "dev:demo.applicant"},
    )
    payload = login["loginWithWechat"]
    assert payload["errors"] == [] and payload["isNewUser"] is False
    assert payload["viewer"]["role"] == "APPLICANT" and payload["viewer"]["organization"]["name"]
    projects = await post("{ projects { totalCount } }", {}, payload["accessToken"])
    assert projects["projects"]["totalCount"] > 0

    staff = await post(
        "mutation($u: String!, $p: String!) { staffLogin(input: {username: $u, password: $p}) "
        "{ accessToken errors { code } viewer { role } } }",
        {"u": "demo.clerk", "p": DEMO_STAFF_PASSWORD},
    )
    assert staff["staffLogin"]["errors"] == [] and staff["staffLogin"]["viewer"]["role"] == "WINDOW_CLERK"

    # Issue #12: the README lists every demo account, and the cases it names to try are those `make demo` prints
    # (the printed ones are run through a real server in tests/test_demo_served.py).
    from api.demo import demo_accounts, demo_accounts_text

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    accounts = await demo_accounts()
    for account in accounts:
        short = account.username.removeprefix("demo.approver")
        assert f"`{account.username}`" in readme or (short and f"`{short}`" in readme), account.username
        for action, case_id, project, item in account.try_cases:
            row = next((line for line in readme.splitlines() if f"`{case_id}`" in line), "")
            assert f"| {account.role.value} | `{action}`" in row and project in row and item in row, (action, case_id)
    printed = demo_accounts_text(accounts)
    assert all(f" {account.username} " in printed for account in accounts)
    assert sum(len(account.try_cases) for account in accounts) >= 5


async def test_the_whole_demo_pushes_to_the_exchange(app, settings, sqlite_only, exchange_url):  # noqa: F811
    """Issue #15 §2: a full push of the demo into a real PostgreSQL 前置库 refuses no row, rebuilds every case's BLZT
    sequence, and a second push writes nothing. (Our side on SQLite: the exchange tests run both databases.)"""
    from api.services.exchange import TABLES, push
    from tests.test_exchange import check_consistency

    await load_demo(settings, pdf_limit=0)
    first = await push(exchange_url)
    assert not first.failures, first.failures
    assert all(first.written(table) for table in ("SPGL_XMJBXXB", "SPGL_XMDWXXB", "SPGL_XMSPSXBLXXB",
                                                    "SPGL_XMSPSXBLXXXXB", "SPGL_XMSPSXPFWJXXB"))
    await check_consistency(exchange_url)
    again = await push(exchange_url)
    assert not again.failures and not any(again.written(table) for table in TABLES)
