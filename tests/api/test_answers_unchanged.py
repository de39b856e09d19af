"""The answers of the mini-program's read operations stay byte for byte what they were (issue #13).

Executing faster (resolvers that skip Strawberry's wrapper, fewer and wider SQL statements, rows instead of model
instances) must not change a single byte an app receives. This test loads the demo at a fixed moment, asks each read
operation as each demo viewer with the response cache off, and compares every answer's bytes with those recorded in
``tests/data/answers_demo_{sqlite,postgres}.json`` (their SHA-256) before the change, on SQLite and PostgreSQL.

Re-record (only when an answer is *meant* to change, and say why in the commit):
    JIANSHEN_RECORD_ANSWERS=1 .venv/bin/python -m pytest -q tests/api/test_answers_unchanged.py
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.demo import TOKEN_USERS, load_demo
from api.domain.timing import SHANGHAI
from api.services.calendar import invalidate_calendar_cache
from tests.conftest import FrozenClock, operation

RECORD = Path(__file__).resolve().parent.parent / "data" / "answers_demo.json"  # _sqlite / _postgres
LOADED_AT = dt.datetime(2026, 11, 16, 9, 30, tzinfo=SHANGHAI)  # the demo's "now" when it is built
ASKED_AT = dt.datetime(2026, 11, 19, 15, 0, tzinfo=SHANGHAI)  # the app's clock when the answers are asked
LISTS = ["Viewer", "Projects", "CaseQueue", "ApprovalItems", "Certificates", "Notices", "Complaints", "Ratings"]
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PER_VIEWER_CASES = 6  # CaseDetail of the first cases each viewer sees (the timeline, the certificate)


@pytest.fixture
async def demo_app(settings):
    invalidate_calendar_cache()
    clock = FrozenClock(ASKED_AT)
    application = create_app(
        settings.model_copy(update={"response_cache_mb": 0}), clock=clock, run_dispatcher=False,
        produce_certificates=False,
    )
    async with application.router.lifespan_context(application):
        tokens = await load_demo(settings, now=LOADED_AT, pdf_limit=0)
        yield application, tokens
    invalidate_calendar_cache()


async def _answers(application, tokens: dict[str, str]) -> dict[str, str]:
    """Every answer's bytes by "ROLE Operation variables"."""
    answers: dict[str, str] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as http:

        async def ask(role: str, name: str, variables: dict) -> dict:
            response = await http.post(
                "/graphql",
                json={"query": operation(name), "variables": variables, "operationName": name},
                headers={"Authorization": f"Bearer {tokens[role]}"},
            )
            # The demo names its uploads with random UUIDs: the only bytes that differ from one load to the next.
            body = _UUID.sub("UUID", response.content.decode())
            answers[f"{role} {name} {json.dumps(variables, sort_keys=True)}"] = f"{response.status_code} {body}"
            return response.json()

        all_codes: set[str] = set()
        for role in TOKEN_USERS:
            for name in LISTS:
                answer = await ask(role, name, {"first": 50} if name != "Viewer" else {})
                if name == "Projects":
                    edges = ((answer.get("data") or {}).get("projects") or {}).get("edges") or []
                    all_codes |= {edge["node"]["code"] for edge in edges}
        for role in TOKEN_USERS:
            case_ids: list[str] = []
            for code in sorted(all_codes):
                progress = (await ask(role, "ProjectProgress", {"code": code})).get("data") or {}
                await ask(role, "ProjectDuration", {"code": code})
                for stage in ((progress.get("project") or {}).get("stages") or []):
                    case_ids += [case["id"] for case in stage["cases"]]
            for case_id in case_ids[:PER_VIEWER_CASES]:
                await ask(role, "CaseDetail", {"id": case_id})
    return answers


async def test_demo_answers_are_byte_for_byte_unchanged(demo_app, db_backend):
    application, tokens = demo_app
    answers = await _answers(application, tokens)
    assert sum('"project":{"id"' in a for a in answers.values()) >= 10  # the progress query answered, many times
    digests = {key: hashlib.sha256(answer.encode()).hexdigest() for key, answer in answers.items()}
    # One record per database: PostgreSQL's jsonb answers a JSON field's keys in its own order (it always has).
    record = RECORD.with_name(f"answers_demo_{db_backend}.json")
    if os.environ.get("JIANSHEN_RECORD_ANSWERS"):
        record.write_text(json.dumps(digests, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    recorded = json.loads(record.read_text(encoding="utf-8"))
    assert sorted(digests) == sorted(recorded)
    changed = [key for key in sorted(recorded) if digests[key] != recorded[key]]
    assert not changed, (len(changed), [(key, answers[key][:400]) for key in changed[:3]])
