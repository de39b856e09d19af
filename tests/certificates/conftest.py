"""Certificates through the public interface: seals made by an admin with ``createSeal``, cases approved with the
mini-program's and the staff side's operations, PDFs fetched by their signed download links.

Tests marked ``no_pdf_runner`` run an app that does not seal PDFs by itself: the state a process leaves when it dies
between the approval's commit and the PDF (the crash-before-PDF recovery).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from api.app import create_app
from api.domain.accounts import Role
from api.domain.ids import to_global_id
from api.services.calendar import invalidate_calendar_cache
from api.domain.timing import SHANGHAI
from tests.api.flows import APPROVAL_DOCUMENT, act_ok, approve, run_to_in_progress, submit_ok
from tests.servers import require


@pytest.fixture
async def app(settings, clock, request):
    EXECUTOR_CACHE.clear()
    invalidate_calendar_cache()
    runner = request.node.get_closest_marker("no_pdf_runner") is None
    quiet = request.node.get_closest_marker("quiet_app") is not None  # no notice dispatcher either (tests/conftest.py)
    application = create_app(settings, clock=clock, produce_certificates=runner and not quiet, run_dispatcher=not quiet)
    async with application.router.lifespan_context(application):
        yield application
    invalidate_calendar_cache()


@pytest.fixture
async def admin(world) -> str:
    await world.add_user("admin", "钱管理", Role.ADMIN)
    return "admin"


async def create_seal(gql, world, department: str = "planning", user: str = "admin") -> dict:
    data = await gql.op(
        "CreateSeal", {"input": {"departmentId": to_global_id("Department", world.departments[department].id)}},
        as_user=user,
    )
    return data["createSeal"]


@pytest.fixture
async def seal(gql, world, admin) -> dict:
    payload = await create_seal(gql, world)
    assert payload["errors"] == [], payload["errors"]
    return payload["seal"]


async def approve_b(gql, client, *, valid_until: dt.date | None = None) -> dict[str, dict]:
    """Items A and B of stage 1 (B yields a 建设用地规划许可证, A is its predecessor), both approved by planning;
    ``valid_until``: B's approval is valid until then (from today), else 长期有效."""
    cases = await submit_ok(gql, client, ["A", "B"])
    for code in ("A", "B"):
        await run_to_in_progress(gql, cases[code]["id"])
    await approve(gql, cases["A"]["id"])
    if valid_until is None:
        await approve(gql, cases["B"]["id"])
    else:
        today = dt.datetime.now(SHANGHAI).date()
        document = APPROVAL_DOCUMENT | {"approvalDate": min(today, valid_until).isoformat(), "validUntil": valid_until.isoformat()}
        await act_ok(gql, "DecideCase", "planner", caseId=cases["B"]["id"], decision="APPROVED", document=document)
    return cases


async def only_certificate(gql, user: str = "applicant") -> dict:
    nodes = (await gql.op("Certificates", {}, as_user=user))["certificates"]["nodes"]
    assert len(nodes) == 1, nodes
    return (await gql.op("CertificateDetail", {"id": nodes[0]["id"]}, as_user=user))["certificate"]


def local_path(url: str) -> str:
    """The download link is absolute (JIANSHEN_PUBLIC_BASE_URL); the test client speaks to the app directly."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def download(client, url: str):
    return await client.get(local_path(url))


@pytest.fixture
def nss_db(tmp_path, settings) -> str:
    """An NSS database trusting only this app's platform CA, for pdfsig's trust answer."""
    require(shutil.which("certutil") is not None, "certutil (libnss3-tools)")
    db = tmp_path / "nssdb"
    db.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
    ca = Path(settings.esign_dir) / "platform-ca.pem"
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{db}", "-n", "jianshen", "-t", "C,C,C", "-i", str(ca)],
        check=True,
        capture_output=True,
    )
    return f"sql:{db}"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "no_pdf_runner: the app does not seal certificate PDFs by itself")
