"""PDFs are sealed in a child process of the API process (api/sealing.py, api/services/sealer.py; issue #13 item 5):
the API process never loads the sealing libraries, so it goes back to its memory at rest after a backlog.

The child is a real process, and the faults are real: it is stopped (SIGSTOP: hung) or killed (SIGKILL: crashed)
while it has a job. The API process kills a hung child after ``JIANSHEN_CERTIFICATE_SEAL_TIMEOUT_SECONDS``, reaps
every child, logs the failure, and a later sweep seals the certificate with a new child. A served process
(``python -m api serve``) stops its child on SIGTERM.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from api.models import Certificate
from api.services import certificates
from tests.certificates.conftest import approve_b, download, only_certificate
from tests.servers import free_port, port_is_open, stop_process

REPO = Path(__file__).resolve().parents[2]
in_process = pytest.mark.parametrize("db_backend", ["sqlite"])  # processes, not SQL: one backend is enough


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={
        "certificate_sweep_seconds": 0.2,  # the retry of a failed certificate comes with the next sweep
        "certificate_sealer_idle_seconds": 600,  # the child stays between jobs: the tests stop or kill it
        "certificate_seal_timeout_seconds": 10,  # a job takes ~0.05 s; the margin is for a loaded machine
    })


def sealing_children(parent: int) -> list[int]:
    """The live ``python -m api.sealing`` children of ``parent`` (zombies have no command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == parent and b"api.sealing" in cmdline:
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """Exited and reaped: not even a zombie is left."""
    return not Path(f"/proc/{pid}").exists()


async def until(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.05)


def bytes_waiting(pid: int) -> int:
    """Bytes written to ``pid``'s stdin pipe and not read yet (a job handed to a stopped child)."""
    with open(f"/proc/{pid}/fd/0", "rb", buffering=0) as pipe:  # the same pipe, opened anew: nothing is read
        return struct.unpack("i", fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


async def sealed(certificate_id: int) -> bool:
    return (await Certificate.get(id=certificate_id)).pdf_path is not None


async def first_certificate_sealed_by_a_child(gql, client) -> tuple[Certificate, int]:
    """B approved, its certificate sealed by the runner in a child: the certificate and the child."""
    await approve_b(gql, client)
    cert = await Certificate.get()
    await until(lambda: sealed(cert.id), "the first certificate sealed")
    children = sealing_children(os.getpid())
    assert len(children) == 1, children
    return cert, children[0]


async def backlog_of_one(like: Certificate) -> Certificate:
    """A certificate without its PDF (what a burst of approvals leaves), and the sealer woken."""
    (row,) = await Certificate.filter(id=like.id).values()
    row = {k: v for k, v in row.items()
           if k not in ("id", "pdf_path", "pdf_sha256", "signed_at", "seal_id", "pdf_pending_reason", "superseded_by_id")}
    created = await Certificate.create(**{**row, "identifier": row["identifier"] + ".B1", "number": row["number"] + "B1"})
    certificates.wake()
    return created


async def assert_downloads_a_sealed_pdf(client, app, cert: Certificate) -> None:
    """The certificate's download is a PDF whose seal verifies against the platform's CA."""
    from esign import VerificationStatus, async_verify_pdf

    response = await download(client, certificates.download_url(app.state.settings, cert, app.state.clock()))
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    platform = certificates.esign_platform(app.state.settings)
    assert (await async_verify_pdf(response.content, [platform.certificate])).status is VerificationStatus.VALID


def logged(caplog) -> str:
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''} {getattr(r, 'fields', '')}" for r in caplog.records)


@in_process
async def test_the_child_seals_without_loading_pyhankos_http_clients(gql, client, seal, app):
    """pyHanko imports aiohttp (its time stamper's and its validator's fetchers) at import time: ~11 MB the child,
    which fetches nothing, does without. Its C extensions stand for it; the PDF is a valid sealed certificate."""
    cert, child = await first_certificate_sealed_by_a_child(gql, client)
    maps = Path(f"/proc/{child}/maps").read_text()
    assert "PIL/_imaging" in maps  # the sealing libraries are loaded
    for extension in ("aiohttp/_http_parser", "multidict/_multidict", "yarl/_quoting"):
        assert extension not in maps, extension
    await assert_downloads_a_sealed_pdf(client, app, cert)


@in_process
async def test_a_child_killed_with_a_job_is_reaped_and_the_certificate_sealed_by_a_new_one(
    gql, client, seal, app, caplog
):
    caplog.set_level(logging.ERROR, logger="jianshen.certificates")
    first, child = await first_certificate_sealed_by_a_child(gql, client)
    os.kill(child, signal.SIGSTOP)  # holds the job in its pipe until it is killed
    try:
        waiting = await backlog_of_one(first)
        await until(lambda: asyncio.sleep(0, bytes_waiting(child) > 0), "the job handed to the child")
    finally:
        os.kill(child, signal.SIGKILL)
    await until(lambda: sealed(waiting.id), "the certificate sealed after the crash")
    assert gone(child)  # reaped, no zombie
    (replacement,) = sealing_children(os.getpid())
    assert replacement != child
    text = logged(caplog)
    assert "certificate PDF failed" in text and "the sealing child exited" in text, text
    # The PDF made after the crash is a certificate sealed like the first.
    await assert_downloads_a_sealed_pdf(client, app, waiting)


@in_process
async def test_a_hung_child_is_killed_after_the_timeout_and_the_certificate_sealed_by_a_new_one(
    gql, client, seal, app, caplog
):
    caplog.set_level(logging.ERROR, logger="jianshen.certificates")
    first, child = await first_certificate_sealed_by_a_child(gql, client)
    os.kill(child, signal.SIGSTOP)  # never answers
    waiting = await backlog_of_one(first)
    await until(lambda: sealed(waiting.id), "the certificate sealed after the hang")
    assert gone(child)  # killed by the API process and reaped
    (replacement,) = sealing_children(os.getpid())
    assert replacement != child
    text = logged(caplog)
    assert "sealing child killed: no answer within 10 s" in text, text
    assert "certificate PDF failed" in text and "did not answer within 10 s" in text, text


@in_process
@pytest.mark.no_pdf_runner
async def test_a_download_that_makes_the_pdf_is_answered_503_when_the_child_hangs_then_200(
    gql, client, seal, app, caplog
):
    """Make-on-first-download goes through the child too: a hung child costs that request the timeout and a 503
    with Retry-After (never a 500), and the next download gets the PDF from a new child."""
    caplog.set_level(logging.ERROR, logger="jianshen.certificates")
    await approve_b(gql, client)
    cert = await only_certificate(gql)
    assert cert["pdfReady"] is False
    assert sealing_children(os.getpid()) == []  # nothing to seal yet: no child
    other = await backlog_of_one(await Certificate.get())
    assert (await download(client, cert["downloadUrl"])).status_code == 200  # starts the child
    (child,) = sealing_children(os.getpid())
    os.kill(child, signal.SIGSTOP)
    response = await download(client, certificates.download_url(app.state.settings, other, app.state.clock()))
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "PDF_NOT_READY" and response.headers["retry-after"] == "5"
    assert gone(child)
    retried = await download(client, certificates.download_url(app.state.settings, other, app.state.clock()))
    assert retried.status_code == 200 and retried.content.startswith(b"%PDF-")
    assert "did not answer within 10 s" in logged(caplog)


@in_process
@pytest.mark.no_pdf_runner
async def test_simultaneous_first_downloads_share_one_child_and_one_recorded_pdf(gql, client, seal, app):
    """Twelve first downloads of certificates without their PDF at once (two certificates, six each): one sealing
    child serves them in turn, every answer is a sealed PDF, and each certificate keeps the PDF recorded first."""
    await approve_b(gql, client)
    first = await Certificate.get()
    other = await backlog_of_one(first)
    urls = [certificates.download_url(app.state.settings, c, app.state.clock()) for c in (first, other)]
    answers = await asyncio.gather(*(download(client, urls[i % 2]) for i in range(12)))
    assert [a.status_code for a in answers] == [200] * 12, [a.text[:200] for a in answers if a.status_code != 200]
    assert len(sealing_children(os.getpid())) == 1
    for i, url in enumerate(urls):
        kept = await download(client, url)
        assert all(a.content == kept.content for a in answers[i::2])  # the recorded PDF, not one per request
    await assert_downloads_a_sealed_pdf(client, app, other)


# -- a served process ---------------------------------------------------------------------------------------------------


def test_a_served_process_seals_its_backlog_in_a_child_without_loading_the_libraries_and_sigterm_stops_it(tmp_path):
    env = {
        **os.environ,
        "JIANSHEN_ENV": "development",
        "JIANSHEN_DATABASE_URL": f"sqlite://{tmp_path / 'demo.sqlite3'}",
        "JIANSHEN_UPLOAD_DIR": str(tmp_path / "uploads"),
        "JIANSHEN_ESIGN_DIR": str(tmp_path / "esign"),
        "JIANSHEN_CERTIFICATE_DIR": str(tmp_path / "certificates"),
        "JIANSHEN_LOG_FILE": str(tmp_path / "jianshen.log"),
        "JIANSHEN_CERTIFICATE_SWEEP_SECONDS": "0.5",
        "JIANSHEN_CERTIFICATE_SEALER_IDLE_SECONDS": "600",  # the child is still there when SIGTERM comes
    }
    env.pop("JIANSHEN_REDIS_URL", None)  # embedded mode: the process seals its certificates itself
    api = [sys.executable, "-m", "api"]
    subprocess.run([*api, "migrate"], cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    # The demo seals a few PDFs itself and leaves the rest to the server's sweep: the backlog.
    subprocess.run([*api, "load-demo", "--tokens", str(tmp_path / "tokens.json")], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)
    database = sqlite3.connect(tmp_path / "demo.sqlite3")

    def waiting() -> int:
        return database.execute(
            "SELECT count(*) FROM certificate WHERE pdf_path IS NULL AND status = 'VALID' "
            "AND issued_by_department_system = 0"
        ).fetchone()[0]

    assert waiting() > 0
    port = free_port()
    server = subprocess.Popen([*api, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "console.txt").open("wb"))
    try:
        deadline = time.monotonic() + 300
        while waiting():
            assert server.poll() is None, (tmp_path / "console.txt").read_text()[-3000:]
            assert time.monotonic() < deadline, f"{waiting()} certificates still without their PDF"
            time.sleep(0.1)
        assert port_is_open(port)
        (child,) = sealing_children(server.pid)
        # The server never loaded what sealing needs (Pillow's C library stands for them: esign's rendering and
        # signing import it); its child did.
        assert "PIL/_imaging" not in Path(f"/proc/{server.pid}/maps").read_text()
        assert "PIL/_imaging" in Path(f"/proc/{child}/maps").read_text()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its shutdown
        assert gone(child)  # stopped and reaped by the server before it exited
    finally:
        stop_process(server)
        database.close()
    lines = [json.loads(line) for line in (tmp_path / "jianshen.log").read_text("utf-8").splitlines()]
    messages = [line["message"] for line in lines if line["logger"] == "jianshen.certificates"]
    assert "sealing child started" in messages and "sealing child stopped" in messages, messages
    assert not [line for line in lines if line["level"] == "ERROR"], [l for l in lines if l["level"] == "ERROR"]
