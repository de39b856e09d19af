"""Logs and metrics of a real scaled deployment (issue #12 items 10–12): one ``python -m api serve`` and one
``python -m notifications.worker`` on the test's SQLite file and a Redis database of their own, each writing its
JSON log file (``JIANSHEN_LOG_FILE``), started once for the module.

- item 10: the request that approves a case names, by its ``X-Request-Id``, the lines it causes in the API process
  (the certificate issued) and in the worker (the notices' attempts, the console SMS, the sealed PDF); a WebSocket
  has a line when it is accepted and one when it closes (request id, user, code);
- item 11: every line of both files is JSON — the startup line, uvicorn's own (a malformed request), arq's own,
  the console SMS channel's (``notifications.*``) — and no phone number or token is in either file in clear;
- item 12: ``/metrics`` (this process, with prometheus_client's process / platform / gc collectors) and
  ``/metrics/cluster`` (the shared figures: deliveries by channel and status, the arq queue, the workers' jobs from
  their health records) both parse with prometheus_client's own text parser.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from api.domain.accounts import Role
from api.domain.ids import to_global_id
from api.settings import Settings
from tests.api.flows import APPROVAL_DOCUMENT, approve, run_to_in_progress, submit_ok
from tests.conftest import GraphQLClient, operation, run_sync
from tests.factories import APPLICANT_PHONE, build_world
from tests.servers import free_port, port_is_open, stop_process

ROOT = Path(__file__).resolve().parent.parent
SECRET = "obs-test-secret-key-0123456789-abcdefghij"
REDIS_DB = 11  # a database of the session's Redis that no other test uses: the queue and health keys are this module's
DECIDE_ID = "obs-decide-b-0001"
WS_ID = "obs-websocket-0001"


def wait_until(check, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log.exists() else "(no log)"
            pytest.fail(f"{what} within {timeout} s; {log.name}:\n{tail}")
        time.sleep(0.1)


def lines(path: Path) -> list[dict]:
    """Every line of a log file, each parsed as JSON (a line that is not JSON fails the test, naming it)."""
    out = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            out.append(json.loads(text))
        except ValueError:
            pytest.fail(f"{path.name} line {number} is not JSON: {text[:300]}")
    return out


class Deployment:
    def __init__(self, host: str, tmp: Path, world) -> None:
        self.host, self.tmp, self.world = host, tmp, world
        self.api_log, self.worker_log = tmp / "log" / "api.log", tmp / "log" / "worker.log"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, sqlite_template, redis_server):
    from tortoise import Tortoise
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    from api.db import config_from_settings

    tmp = tmp_path_factory.mktemp("obs")
    database = tmp / "db.sqlite3"
    shutil.copy(sqlite_template, database)
    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("JIANSHEN_")} | {
        "JIANSHEN_DATABASE_URL": f"sqlite://{database}",
        "JIANSHEN_REDIS_URL": redis_url,
        "JIANSHEN_SECRET_KEY": SECRET,
        "JIANSHEN_UPLOAD_DIR": str(tmp / "uploads"),
        "JIANSHEN_ESIGN_DIR": str(tmp / "esign"),
        "JIANSHEN_CERTIFICATE_DIR": str(tmp / "certificates"),
        "JIANSHEN_LOG_LEVEL": "INFO",
        "JIANSHEN_CONSOLE_LOG_LEVEL": "ERROR",
        "JIANSHEN_SMS_PROVIDER": "console",
        "JIANSHEN_SMS_QUIET_HOURS": "",  # the console SMS is sent now, whatever the hour the test runs at
        "JIANSHEN_NOTICE_SWEEP_SECONDS": "1",
        "JIANSHEN_CERTIFICATE_SWEEP_SECONDS": "1",
        "JIANSHEN_WORKER_HEALTH_SECONDS": "1",
        "JIANSHEN_WORKER_NAME": "obs-worker",
    }
    settings = Settings(
        database_url=env["JIANSHEN_DATABASE_URL"], secret_key=SECRET, upload_dir=tmp / "uploads",
        esign_dir=tmp / "esign", certificate_dir=tmp / "certificates",
    )

    async def build():
        EXECUTOR_CACHE.clear()  # another test's PostgreSQL executors must not serve this SQLite file
        await Tortoise.init(config=config_from_settings(settings))
        try:
            world = await build_world(settings)
            await world.add_user("admin", "钱管理", Role.ADMIN)
            return world
        finally:
            await Tortoise.close_connections()
            EXECUTOR_CACHE.clear()

    world = run_sync(build)
    port = free_port()
    deployment = Deployment(f"127.0.0.1:{port}", tmp, world)
    api = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
        env=env | {"JIANSHEN_LOG_FILE": str(deployment.api_log)},
        stdin=subprocess.DEVNULL, stdout=(tmp / "api.out").open("wb"), stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "notifications.worker"], cwd=ROOT,
        env=env | {"JIANSHEN_LOG_FILE": str(deployment.worker_log)},
        stdin=subprocess.DEVNULL, stdout=(tmp / "worker.out").open("wb"), stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: port_is_open(port) or api.poll() is not None, "the API did not listen", tmp / "api.out")
        assert api.poll() is None, (tmp / "api.out").read_text()
        yield deployment
    finally:
        for process in (api, worker):  # both asked at once: their graceful stops overlap
            if process.poll() is None:
                process.terminate()
        stop_process(api)
        # The worker logs its shutdown at once, but its process does not end after SIGTERM (on main too: reported);
        # its lines are all written by then: killed after 2 s.
        stop_process(worker, timeout=2)


@pytest.fixture(scope="module")
def approved(deployment):
    """Case B approved by a request named ``DECIDE_ID``: its certificate and notices, sealed and sent by the worker."""

    async def run():
        async with httpx.AsyncClient(base_url=f"http://{deployment.host}", timeout=30) as http:
            gql = GraphQLClient(http, deployment.world)
            seal = await gql.op("CreateSeal", {"input": {
                "departmentId": to_global_id("Department", deployment.world.departments["planning"].id)}}, as_user="admin")
            assert seal["createSeal"]["errors"] == [], seal
            cases = await submit_ok(gql, http, ["A", "B"])  # A is B's predecessor: approved first
            for code in ("A", "B"):
                await run_to_in_progress(gql, cases[code]["id"])
            await approve(gql, cases["A"]["id"])
            answer = await http.post("/graphql", json={"query": operation("DecideCase"), "variables": {"input": {
                "caseId": cases["B"]["id"], "decision": "APPROVED", "document": APPROVAL_DOCUMENT}}},
                headers={"Authorization": f"Bearer {deployment.world.token('planner')}", "X-Request-Id": DECIDE_ID})
            assert answer.status_code == 200 and answer.headers["x-request-id"] == DECIDE_ID, answer.text
            assert answer.json()["data"]["decideCase"]["errors"] == [], answer.text

    run_sync(run)

    def caused(message: str):
        return [line for line in lines(deployment.worker_log)
                if line["message"].startswith(message) and line.get("request_id") == DECIDE_ID]

    wait_until(lambda: deployment.worker_log.exists() and caused("certificate PDF sealed") and caused("notice attempt"),
               "the worker did not seal the PDF and send the notice", deployment.worker_log)
    return deployment


# -- item 10 ----------------------------------------------------------------------------------------------------------


def test_the_request_names_the_lines_it_causes_in_the_api_and_the_worker(approved):
    api, worker = lines(approved.api_log), lines(approved.worker_log)
    assert any(line["message"] == "certificate issued" and line.get("request_id") == DECIDE_ID for line in api), api
    request = [line for line in api if line["message"] == "request" and line["request_id"] == DECIDE_ID]
    assert len(request) == 1 and request[0]["operation"] == "DecideCase"
    caused = [line for line in worker if line.get("request_id") == DECIDE_ID]
    messages = {line["message"].split(" to ")[0] for line in caused}
    assert {"certificate PDF sealed", "notice attempt", "sms (console, not sent)"} <= messages, caused
    # Every notice was caused by some request (acceptance, start, decision): none of its lines is anonymous.
    attempts = [line for line in worker if line["message"] == "notice attempt"]
    assert attempts and all(line.get("request_id") for line in attempts), attempts


def test_a_websocket_has_a_line_when_it_opens_and_when_it_closes(deployment):
    applicant = deployment.world.users["applicant"].id

    async def run():
        async with websockets.connect(
            f"ws://{deployment.host}/graphql", subprotocols=["graphql-transport-ws"], open_timeout=10,
            additional_headers={"X-Request-Id": WS_ID},
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init",
                                      "payload": {"token": deployment.world.token("applicant")}}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
            assert ws.response.headers["x-request-id"] == WS_ID
            await ws.close(code=1000)

    run_sync(run)

    def closed():
        return [line for line in lines(deployment.api_log)
                if line["message"] == "websocket closed" and line.get("request_id") == WS_ID]

    wait_until(closed, "no line for the closed WebSocket", deployment.api_log)
    opened = [line for line in lines(deployment.api_log)
              if line["message"] == "websocket connected" and line.get("request_id") == WS_ID]
    assert len(opened) == 1 and opened[0]["path"] == "/graphql", opened
    (close,) = closed()
    assert close["code"] == 1000 and close["closed_by"] == "client" and close["user_id"] == applicant, close


# -- item 11 ----------------------------------------------------------------------------------------------------------


def test_every_line_of_both_processes_is_json_and_masked(approved):
    port = int(approved.host.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:  # uvicorn answers 400 and logs a warning
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        raw.recv(1024)
    wait_until(lambda: any(line["logger"].startswith("uvicorn") for line in lines(approved.api_log)),
               "uvicorn logged nothing about the malformed request", approved.api_log)
    api, worker = lines(approved.api_log), lines(approved.worker_log)  # each line parses, or the test fails here
    assert any(line["message"] == "serving" and line["port"] == port for line in api), "no JSON startup line"
    # A served process builds the conversation's understanding at start, not at someone's first question.
    assert any(line["message"] == "assistant ready" for line in api), "the assistant was not warmed up at start"
    assert any(line["logger"].startswith("arq") for line in worker), "arq's own lines are missing"
    sms = [line for line in worker if line["logger"] == "notifications.channels.console"]
    assert sms and all("138****1111" in line["message"] for line in sms), sms
    for path in (approved.api_log, approved.worker_log, approved.tmp / "api.out", approved.tmp / "worker.out"):
        text = path.read_text(encoding="utf-8")
        assert APPLICANT_PHONE not in text and "eyJ" not in text and SECRET not in text, path.name


# -- item 12 ----------------------------------------------------------------------------------------------------------


def scrape(host: str, path: str) -> dict[str, list]:
    """The families of one scrape, parsed by prometheus_client's own parser: name → samples."""
    text = httpx.get(f"http://{host}{path}", timeout=10).text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_metrics_parse_with_the_default_collectors_and_the_workers_figures(approved):
    own = scrape(approved.host, "/metrics")
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info", "python_gc_objects_collected",
            "jianshen_http_requests"} <= set(own), sorted(own)
    assert "jianshen_notice_deliveries" not in own  # shared figures are not repeated by each replica

    def workers_reported():
        return any(s.labels == {"worker": "obs-worker", "result": "complete"} and s.value > 0
                   for s in scrape(approved.host, "/metrics/cluster").get("jianshen_arq_jobs", []))

    wait_until(workers_reported, "the worker's health record did not count its jobs", approved.worker_log)
    cluster = scrape(approved.host, "/metrics/cluster")
    assert cluster["jianshen_arq_workers"][0].value == 1 and cluster["jianshen_redis_up"][0].value == 1
    assert {s.labels["state"] for s in cluster["jianshen_arq_jobs_queued"]} == {"due", "deferred"}
    assert {s.labels["worker"] for s in cluster["jianshen_arq_jobs_in_progress"]} == {"obs-worker"}
    delivered = [s for s in cluster["jianshen_notice_deliveries"] if s.labels["status"] == "DELIVERED" and s.value]
    assert delivered and all(s.labels["channel"] in ("sms", "wechat") for s in delivered), delivered
    assert any(s.labels["outcome"] == "DELIVERED" for s in cluster["jianshen_notice_attempts"])
