"""Production exposes only the mini-program's operations (issue #10, items 11–12): trusted documents addressed by their
sha256 (Apollo's persisted-query extension or a plain ``id``), no introspection unless a setting re-enables it, no
"Did you mean" suggestions; development keeps free-form queries. The manifest the mini-program's build reads is
generated from graphql/operations/ and checked here."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from api.settings import Settings
from tests.api.test_metrics import world_free_app as serve  # noqa: F401 - the fixture: an app without a world

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "graphql" / "operations"
VIEWER = (OPERATIONS / "Viewer.graphql").read_text(encoding="utf-8")
VIEWER_ID = hashlib.sha256(VIEWER.encode()).hexdigest()
FREE_FORM = "query { viewer { id role } }"
INTROSPECTION = "query { __schema { queryType { name } } }"
TYPO = "query Typo { viewr { id } }"

sqlite_only = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


@pytest.fixture
def make_settings(database_url, tmp_path):
    def make(env: str = "production", **overrides) -> Settings:
        secrets = dict(secret_key="s" * 40, esign_kek="k" * 40, certificate_check_secret="c" * 40,
                       public_base_url="https://js.example")
        return Settings(
            env=env, database_url=database_url, upload_dir=tmp_path / "u", esign_dir=tmp_path / "e",
            certificate_dir=tmp_path / "c", **(secrets if env == "production" else {}), **overrides,
        )

    return make


def apq(sha: str, query: str | None = None) -> dict:
    body = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}}}
    if query is not None:
        body["query"] = query
    return body


async def answer(http, body: dict) -> dict:
    response = await http.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def code_of(body: dict) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"].get("code") if errors else None


@sqlite_only
async def test_production_runs_only_the_mini_programs_documents(make_settings, serve):
    async with serve(make_settings()) as http:
        known = [apq(VIEWER_ID), {"id": VIEWER_ID}, {"query": VIEWER}, apq(VIEWER_ID, VIEWER), apq(VIEWER_ID.upper())]
        refused = [
            ({"query": FREE_FORM}, "PERSISTED_QUERY_NOT_FOUND"),
            ({"query": VIEWER + " "}, "PERSISTED_QUERY_NOT_FOUND"),  # not the same bytes: not the same document
            (apq("0" * 64), "PERSISTED_QUERY_NOT_FOUND"),
            ({"id": "0" * 64}, "PERSISTED_QUERY_NOT_FOUND"),
            (apq(VIEWER_ID, FREE_FORM), "PERSISTED_QUERY_HASH_MISMATCH"),
            (apq(hashlib.sha256(FREE_FORM.encode()).hexdigest(), FREE_FORM), "PERSISTED_QUERY_NOT_FOUND"),
            ({"query": INTROSPECTION}, "PERSISTED_QUERY_NOT_FOUND"),
        ]
        answers = await asyncio.gather(*(answer(http, body) for body in known * 3 + [b for b, _ in refused] * 3))
        for body in answers[: len(known) * 3]:
            assert body == {"data": {"viewer": None}}, body
        for body, (_, code) in zip(answers[len(known) * 3:], refused * 3):
            assert code_of(body) == code and body.get("data") is None, body
            assert "viewer" not in body["errors"][0]["message"]


@sqlite_only
async def test_development_keeps_free_form_queries_and_knows_the_ids(make_settings, serve):
    async with serve(make_settings("development")) as http:
        assert (await answer(http, {"query": FREE_FORM}))["data"] == {"viewer": None}
        assert (await answer(http, {"id": VIEWER_ID}))["data"] == {"viewer": None}
        assert (await answer(http, apq(VIEWER_ID)))["data"] == {"viewer": None}
        assert code_of(await answer(http, apq("f" * 64))) == "PERSISTED_QUERY_NOT_FOUND"
        assert code_of(await answer(http, apq(VIEWER_ID, FREE_FORM))) == "PERSISTED_QUERY_HASH_MISMATCH"
        # Development answers introspection and suggests names.
        assert (await answer(http, {"query": INTROSPECTION}))["data"]["__schema"]["queryType"]["name"] == "Query"
        assert "Did you mean" in (await answer(http, {"query": TYPO}))["errors"][0]["message"]


@sqlite_only
async def test_staff_documents_listed_by_the_setting_run_in_production(make_settings, serve, tmp_path):
    staff = tmp_path / "staff"
    staff.mkdir()
    (staff / "Free.graphql").write_text(FREE_FORM, encoding="utf-8")
    (staff / "Introspect.graphql").write_text(INTROSPECTION, encoding="utf-8")
    (staff / "Typo.graphql").write_text(TYPO, encoding="utf-8")
    async with serve(make_settings(graphql_extra_documents=staff)) as http:
        assert (await answer(http, {"query": FREE_FORM}))["data"] == {"viewer": None}
        assert (await answer(http, {"id": hashlib.sha256(FREE_FORM.encode()).hexdigest()}))["data"] == {"viewer": None}
        # Listed, yet introspection stays off in production, and a mistake names no field of the schema.
        introspection = await answer(http, {"query": INTROSPECTION})
        assert introspection.get("data") is None and "__schema" in introspection["errors"][0]["message"]
        assert introspection["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
        typo = (await answer(http, {"query": TYPO}))["errors"][0]["message"]
        assert "viewr" in typo and "Did you mean" not in typo and "'viewer'" not in typo
        assert (await answer(http, {"query": "query { viewer { id } }"}))["errors"][0]["extensions"]["code"] == (
            "PERSISTED_QUERY_NOT_FOUND"
        )


@sqlite_only
async def test_production_hides_suggestions_in_execution_errors_too(make_settings, serve):
    """A variable's wrong enum value is found while executing a trusted document: no suggestion either."""
    projects = (OPERATIONS / "Projects.graphql").read_text(encoding="utf-8")
    bad = {"query": projects, "variables": {"filter": {"light": "GREE"}}}
    async with serve(make_settings("development")) as http:
        assert "Did you mean" in (await answer(http, bad))["errors"][0]["message"]
    async with serve(make_settings()) as http:
        message = (await answer(http, bad))["errors"][0]["message"]
        assert "GREE" in message and "Did you mean" not in message and "GREEN" not in message


@sqlite_only
async def test_the_introspection_setting_reenables_it_for_staff_tools(make_settings, serve):
    from graphql import get_introspection_query

    async with serve(make_settings(graphql_introspection=True)) as http:
        body = await answer(http, {"query": INTROSPECTION})
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"
        # The whole introspection query GraphiQL sends fits the document bounds (its depth is not counted).
        full = await answer(http, {"query": get_introspection_query(descriptions=True)})
        assert "errors" not in full and full["data"]["__schema"]["types"]
        # Only introspection rides on the setting: other free-form documents stay refused.
        assert code_of(await answer(http, {"query": FREE_FORM + " " + "query B { __typename }"})) == (
            "PERSISTED_QUERY_NOT_FOUND"
        )


def test_the_manifest_is_generated_from_the_operations():
    from api.schema.trusted import manifest_text

    committed = (OPERATIONS / "manifest.json").read_text(encoding="utf-8")
    assert committed == manifest_text(), "graphql/operations/manifest.json is stale: run `make schema`"
    import json

    entries = json.loads(committed)["operations"]
    assert len(entries) == len(list(OPERATIONS.glob("*.graphql")))
    assert {e["name"]: e["id"] for e in entries}["Viewer"] == VIEWER_ID


@sqlite_only
async def test_production_refuses_other_documents_over_the_websocket_too(settings, tmp_path, monkeypatch):
    """A real production server: a subscription's document is held to the same list as a POST's."""
    import json

    import websockets

    from tests.api.test_subscriptions import api_process

    for name, value in dict(ENV="production", SECRET_KEY="s" * 40, ESIGN_KEK="k" * 40,
                            CERTIFICATE_CHECK_SECRET="c" * 40, PUBLIC_BASE_URL="https://js.example", ESIGN_DIR=str(tmp_path / "e"),
                            CERTIFICATE_DIR=str(tmp_path / "c")).items():
        monkeypatch.setenv(f"JIANSHEN_{name}", value)
    with api_process(settings) as host:
        async with websockets.connect(
            f"ws://{host}/graphql", subprotocols=["graphql-transport-ws"], open_timeout=10
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
            # (Strawberry's graphql-transport-ws handler passes no `extensions`: over the socket the text is sent.)
            free = "subscription { complaintMessages(complaintId: \"x\") { text } }"
            known = (OPERATIONS / "ComplaintMessages.graphql").read_text(encoding="utf-8")
            codes = []
            for n, query in enumerate([free, known]):
                await ws.send(json.dumps({"id": str(n), "type": "subscribe",
                                          "payload": {"query": query, "variables": {"complaintId": "x"}}}))
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert frame["id"] == str(n), frame
                codes.append(frame["payload"][0].get("extensions", {}).get("code") if frame["type"] == "error" else
                             (frame["payload"].get("errors") or [{}])[0].get("extensions", {}).get("code"))
            assert codes[0] == "PERSISTED_QUERY_NOT_FOUND" and codes[1] != "PERSISTED_QUERY_NOT_FOUND", codes
