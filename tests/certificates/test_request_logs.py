"""Embedded mode (no Redis: the dispatcher and the PDF runner are tasks of the API process, started before any
request): the lines of the notices and of the sealed PDF a request caused name that request (issue #12 item 10).
The runners' tasks never see the request's context; the id comes from the delivery's and the certificate's rows."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from api.settings import Settings
from tests.api.flows import APPROVAL_DOCUMENT, approve, run_to_in_progress, submit_ok
from tests.conftest import operation

DECIDE_ID = "embedded-decide-0001"


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(
        database_url=database_url, upload_dir=tmp_path / "uploads", esign_dir=tmp_path / "esign",
        certificate_dir=tmp_path / "certificates", log_file=tmp_path / "log" / "api.log", console_log_level="ERROR",
        sms_quiet_hours="",  # the console SMS goes now, whatever the hour
    )


def logged(settings: Settings) -> list[dict]:
    return [json.loads(line) for line in settings.log_file.read_text(encoding="utf-8").splitlines()]


async def test_the_in_process_runners_name_the_request_that_caused_their_work(gql, client, world, seal, settings):
    cases = await submit_ok(gql, client, ["A", "B"])
    for code in ("A", "B"):
        await run_to_in_progress(gql, cases[code]["id"])
    await approve(gql, cases["A"]["id"])
    answer = await client.post(
        "/graphql",
        json={"query": operation("DecideCase"), "variables": {"input": {
            "caseId": cases["B"]["id"], "decision": "APPROVED", "document": APPROVAL_DOCUMENT}}},
        headers={"Authorization": f"Bearer {world.token('planner')}", "X-Request-Id": DECIDE_ID},
    )
    assert answer.json()["data"]["decideCase"]["errors"] == [], answer.text

    def caused() -> set[str]:
        return {line["message"].split(" to ")[0] for line in logged(settings) if line.get("request_id") == DECIDE_ID}

    deadline = time.monotonic() + 60
    while not {"certificate PDF sealed", "notice attempt", "sms (console, not sent)"} <= caused():
        assert time.monotonic() < deadline, caused()
        await asyncio.sleep(0.05)  # the runners are tasks of this event loop
    assert "certificate issued" in caused()
    attempts = [line for line in logged(settings) if line["message"] == "notice attempt"]
    assert all(line.get("request_id") for line in attempts), attempts
