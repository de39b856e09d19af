"""A client's mistakes get a clear 4xx or a coded error, never a 500 or the masked internal error, and are logged at
INFO without a traceback; a real bug is still masked and logged in full (issue #10 items 7–8)."""

from __future__ import annotations

import asyncio
import json
import logging

import jwt
import pytest
from tortoise import Tortoise

from api.domain.ids import to_global_id
from api.logs import JsonFormatter
from api.models import Complaint, Notice
from api.schema import MASKED_MESSAGE
from api.services.tokens import ALGORITHM, ISSUER

JSON = {"content-type": "application/json"}
# Keys no row can have: beyond int4 (PostgreSQL's INT), beyond bigint, and past Python's 4,300-digit conversion limit.
HUGE_KEYS = [2**31, 2**63, int("9" * 30), "9" * 5000, "²"]


def masked(response) -> bool:
    return any(e.get("message") == MASKED_MESSAGE for e in response.json().get("errors") or ())


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged():
    """What the GraphQL layer logs: the client's mistakes (jianshen.graphql) and Strawberry's error log."""
    handler = Records()
    loggers = [logging.getLogger("jianshen.graphql"), logging.getLogger("strawberry.execution")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


# -- item 7: the HTTP body ----------------------------------------------------------------------------------------------


@pytest.mark.quiet_app
async def test_a_body_that_is_no_json_object_is_a_400(client):
    deep = b'{"query": "{ viewer { id } }", "variables": {"a": ' + b"[" * 1000 + b"]" * 1000 + b"}}"
    moderately_deep = b'{"query": "{ viewer { id } }", "variables": {"a": ' + b"[" * 100 + b"]" * 100 + b"}}"
    bodies = [b"null", b"1", b'"x"', b"true", b"false", b"1e400", b"\xff\xfe{}", b'{"query": "\xed\xa0\x80"}', deep,
              moderately_deep, b'{"query": "{ viewer { id } }", "variables": {"a": NaN}}',
              b'{"query": "{ viewer { id } }", "variables": {"a": ' + b"9" * 5000 + b"}}",
              b'{"query": 1}', b'{"query": "{ viewer { id } }", "operationName": ["A"]}',
              b'{"query": "query A { viewer { id } }", "operationName": "\\ud800"}']
    responses = await asyncio.gather(*(client.post("/graphql", content=body, headers=JSON) for body in bodies))
    assert [r.status_code for r in responses] == [400] * len(bodies), [(r.status_code, r.text[:80]) for r in responses]
    assert "JSON" in responses[0].text  # says what is wrong, in Chinese


@pytest.mark.quiet_app
async def test_a_download_link_with_an_absurd_expiry_or_id_is_refused(client):
    responses = await asyncio.gather(
        client.get("/certificates/1/pdf", params={"expires": "9" * 5000, "sig": "x"}),
        client.get("/certificates/1/pdf", params={"expires": "１２３", "sig": "x"}),
        client.get(f"/certificates/{'9' * 5000}/pdf", params={"expires": "1", "sig": "x"}),
        client.get(f"/certificates/{2**40}/pdf", params={"expires": "1", "sig": "x"}),
    )
    assert [r.status_code for r in responses] == [403, 403, 404, 404]
    assert responses[0].json()["error"]["code"] == "LINK_INVALID"


@pytest.mark.quiet_app
async def test_a_signed_token_whose_subject_is_no_user_key_is_a_401(client, world, settings):
    session = world.sessions["applicant"]
    tokens = [
        jwt.encode({"iss": ISSUER, "sub": sub, "sid": session, "typ": "access", "iat": 1, "exp": 2**40},
                   settings.secret_key, algorithm=ALGORITHM)
        for sub in ["9" * 19, "9" * 5000, str(2**31), "²", "١٢٣"]
    ]
    responses = await asyncio.gather(*(
        client.post("/graphql", json={"query": "{ viewer { id } }"}, headers={"Authorization": f"Bearer {token}"})
        for token in tokens
    ))
    assert [r.status_code for r in responses] == [401] * len(tokens)
    assert responses[0].json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# -- item 8: keys beyond the database's range ---------------------------------------------------------------------------


@pytest.mark.quiet_app
async def test_ids_and_cursors_beyond_the_key_range_are_the_clients_mistake(gql, world, logged):
    queries = []
    for key in HUGE_KEYS:
        queries += [
            ("{ node(id: %s) { id } }" % json.dumps(to_global_id("Project", key)), None),
            ("{ ratings(after: %s) { totalCount } }" % json.dumps(to_global_id("o", key)), None),
            ("{ complaints(after: %s) { totalCount } }" % json.dumps(to_global_id("o", key)), "supervisor"),
            ("{ organizationAgents(organizationId: %s) { id } }" % json.dumps(to_global_id("Organization", key)),
             "applicant"),
            ('mutation { revokeAgent(input: {authorizationId: %s}) { errors { field code } } }'
             % json.dumps(to_global_id("AgentAuthorization", key)), "applicant"),
            ('mutation { assignComplaint(input: {complaintId: %s, departmentId: %s}) { errors { field code } } }'
             % (json.dumps(to_global_id("Complaint", key)), json.dumps(to_global_id("Department", key))), "supervisor"),
        ]
    responses = await asyncio.gather(*(gql.raw(query, as_user=user) for query, user in queries))
    for (query, user), response in zip(queries, responses):
        assert response.status_code == 200 and not masked(response), (query[:80], response.text[:200])
        body = response.json()
        if query.startswith("{ node"):
            assert body == {"data": {"node": None}}  # like any id that names nothing
        elif query.startswith("mutation"):
            (payload,) = body["data"].values()
            assert payload["errors"] and payload["errors"][0]["code"] == "INVALID_ID", body
        else:
            assert "errors" in body, (query[:90], body)
            error = body["errors"][0]["extensions"]
            assert error["code"] in ("INVALID_INPUT", "INVALID_ID") and error["field"], body
    assert not [r for r in logged if r.exc_info or r.levelno >= logging.ERROR]
    assert any(r.levelno == logging.INFO and r.name == "jianshen.graphql" for r in logged)
    # Notices have BIGINT keys: past int4 is still a cursor there, and beyond bigint is not.
    beyond_int4 = await gql("{ notices(after: %s) { totalCount } }" % json.dumps(to_global_id("o", 2**31)),
                            as_user="applicant")
    assert beyond_int4 == {"notices": {"totalCount": 0}}
    errors = await gql.errors("{ notices(after: %s) { totalCount } }" % json.dumps(to_global_id("o", 2**63)),
                              as_user="applicant")
    assert errors[0]["extensions"] == {"code": "INVALID_INPUT", "field": "after"}


# -- item 8: lone UTF-16 surrogates, and NUL, which PostgreSQL's text refuses ------------------------------------


@pytest.mark.quiet_app
async def test_a_lone_surrogate_or_nul_in_any_argument_is_invalid_input_with_its_field(client, world, logged):
    def post(query: str, variables: dict, user: str | None = None):
        headers = dict(JSON, **({"Authorization": f"Bearer {world.token(user)}"} if user else {}))
        # json.dumps writes a lone surrogate as the escape "\ud800", exactly as a hostile client sends it.
        return client.post("/graphql", content=json.dumps({"query": query, "variables": variables}), headers=headers)

    before = await Complaint.all().count()
    staff_login = "mutation($u: String!) { staffLogin(input: {username: $u, password: \"x\"}) { errors { field code } } }"
    complaint = ("mutation($t: String!) { fileComplaint(input: {kind: COMPLAINT, category: OTHER, text: $t}) "
                 "{ errors { field code } complaint { id } } }")
    search = "query($s: String) { projects(filter: {search: $s}) { totalCount } }"
    responses = await asyncio.gather(
        post(staff_login, {"u": "admin\ud800"}),
        *(post(complaint, {"t": text}, "citizen") for text in ["\udfff", "好\ud83d", "\udbff\ud800", "a\x00b"]),
        post(search, {"s": "\ud800"}, "supervisor"),
        post(search, {"s": "\ud800"}),
    )
    assert all(r.status_code == 200 and not masked(r) for r in responses), [r.text[:200] for r in responses]
    bodies = [r.json() for r in responses]
    assert bodies[0]["data"]["staffLogin"]["errors"] == [{"field": "username", "code": "INVALID_INPUT"}]
    for body in bodies[1:5]:
        assert body["data"]["fileComplaint"] == {"errors": [{"field": "text", "code": "INVALID_INPUT"}], "complaint": None}
    for body in bodies[5:]:
        assert body["errors"][0]["extensions"] == {"code": "INVALID_INPUT", "field": "filter.search"}
    assert await Complaint.all().count() == before  # nothing was written
    assert not [r for r in logged if r.exc_info or r.levelno >= logging.ERROR]
    # A pair written as two escapes is one valid character, and goes through.
    ok = await post(search, {"s": "\ud83d\ude00"}, "supervisor")
    assert ok.json() == {"data": {"projects": {"totalCount": 0}}}


@pytest.mark.quiet_app
async def test_a_subscription_sent_over_http_is_refused_with_a_code(gql, world, logged):
    query = "subscription { complaintMessages(complaintId: %s) { id } }" % json.dumps(to_global_id("Complaint", 1))
    responses = await asyncio.gather(gql.raw(query), gql.raw(query, as_user="citizen"))
    for response in responses:
        assert response.status_code == 200 and not masked(response), response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert not [r for r in logged if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.quiet_app
async def test_a_real_fault_is_still_masked_and_logged_with_its_traceback(gql, world, logged):
    # A real fault, not a patched one: the table the query reads is gone.
    await Tortoise.get_connection("default").execute_script(f'ALTER TABLE "{Notice._meta.db_table}" RENAME TO gone')
    response = await gql.raw("{ unreadNoticeCount }", as_user="applicant")
    assert response.status_code == 200 and masked(response)
    assert [r for r in logged if r.levelno >= logging.ERROR and r.exc_info]


def test_a_log_line_echoing_a_lone_surrogate_is_still_written():
    # graphql-core echoes a refused variable's value in its message, and the message is logged (at INFO).
    record = logging.LogRecord("jianshen.graphql", logging.INFO, "", 0, "client error", (), None)
    record.fields = {"error": "Variable '$x' got invalid value '\ud800'"}
    line = JsonFormatter().format(record)
    assert json.loads(line)["error"] == "Variable '$x' got invalid value '\ud800'"
