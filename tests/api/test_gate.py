"""What one anonymous request may cost (issue #10, items 1–3): documents are measured in linear time and refused
before graphql-core's rules run; bodies over the cap are refused before they are read; the mini-program's own
operations stay far under every bound.

"Bounded work" is checked by counting, never by timing: Strawberry's shared validation cache counts every call of the
standard validation (a refused document must not add one), and the measurement's own walk is counted per call."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from graphql import parse
from strawberry.extensions.validation_cache import _get_validate_cache

from api.schema import build_schema
from api.schema.gate import Limits, _Measure, measure
from api.settings import Settings
from tests.api.test_metrics import world_free_app  # noqa: F401 - the fixture: an app without a world

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = sorted((ROOT / "graphql" / "operations").glob("*.graphql"))
sqlite_only = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


def doubling(n: int) -> str:
    """The issue's 793-byte document: F0 spreads F1 twice, …, F(n-1) spreads Fn twice; 2^n fields expanded."""
    fragments = " ".join(f"fragment F{i} on Viewer {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
    return f"query {{ viewer {{ ...F0 }} }} {fragments} fragment F{n} on Viewer {{ id }}"


def copies(n: int) -> str:
    return "query { " + " ".join(["viewer { id }"] * n) + " }"


COSTLY = "query { " + " ".join(
    f"p{i}: projects(first: 100) {{ edges {{ node {{ code stages {{ cases {{ code timeline {{ seq }} }} }} }} }} }}"
    for i in range(30)
) + " }"


def validations() -> int:
    info = _get_validate_cache(256).cache_info()
    return info.hits + info.misses


async def refusal(client, document: str, variables: dict | None = None, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": document, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("data") is None and len(body["errors"]) == 1, body
    return body["errors"][0]


@sqlite_only
@pytest.mark.parametrize(
    "document, setting",
    [
        (doubling(20), "JIANSHEN_GRAPHQL_MAX_FIELDS"),
        (doubling(24), "JIANSHEN_GRAPHQL_MAX_FIELDS"),
        (copies(700), "JIANSHEN_GRAPHQL_MAX_FIELDS"),
        (copies(300), "JIANSHEN_GRAPHQL_MAX_FIELD_PAIRS"),  # within the field count: the merging rule's pairs
        ("query { viewer { ...A ...B ...C } } fragment A on Viewer { " + "id " * 120 + "} "
         "fragment B on Viewer { " + "id " * 120 + "} fragment C on Viewer { " + "id " * 120 + "}",
         "JIANSHEN_GRAPHQL_MAX_FIELD_PAIRS"),
        ("query { projects { edges { node { ...P } } } } fragment P on Project { stages { cases { project { ...Q } } } }"
         " fragment Q on Project { " + "stages { cases { project { " * 3 + "code" + " } } }" * 3 + " }",
         "JIANSHEN_GRAPHQL_MAX_DEPTH"),
        ("query { viewer { ...A } } fragment A on Viewer { ...B ...B } fragment B on Viewer { "
         + " ".join(f"a{i}: id" for i in range(20)) + " }", "JIANSHEN_GRAPHQL_MAX_ALIASES"),
    ],
    ids=["doubling-20", "doubling-24", "viewer-x700", "viewer-x300", "same-field-through-fragments",
         "depth-through-fragments", "aliases-through-fragments"],
)
async def test_hostile_documents_are_refused_before_the_standard_validation(client, document, setting):
    """Concurrent, anonymous: every answer is the coded refusal naming the setting, and graphql-core's rules (whose
    depth, alias and merging walks were the stall) never ran for them."""
    before = validations()
    errors = await asyncio.gather(*(refusal(client, document) for _ in range(8)))
    assert validations() == before
    for error in errors:
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert error["extensions"]["limit"] == setting
        assert setting in error["message"]


@pytest.mark.parametrize("n", [20, 24, 60])
def test_measuring_is_linear_in_the_document_even_when_the_bounds_are_not_reached(n):
    """With every bound out of reach the whole document is measured: each selection set is walked once, however many
    times its fragment is spread (2^n expanded fields)."""
    calls = 0

    class Counting(_Measure):
        def size(self, selection_set):
            nonlocal calls
            calls += 1
            return super().size(selection_set)

    document = parse(doubling(n))
    measured = Counting(document, Limits(10**60, 10**6, 10**6, 10**60, 10**60, 100))
    measured.check_sizes()
    assert measured.size(document.definitions[0].selection_set)[0] == 2**n + 1
    spreads = 2 * n + 1
    assert calls <= 3 * (len(document.definitions) + spreads)
    assert measured.field_pairs() > 0
    assert measured.cost(build_schema(Settings())._schema, {}) == 2**n + 1


@sqlite_only
async def test_a_costly_query_is_refused_naming_the_cost_limit(client, world, settings):
    token = world.token("applicant")
    before = validations()
    errors = await asyncio.gather(*(refusal(client, COSTLY, token=token) for _ in range(8)))
    assert validations() == before
    for error in errors:
        assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
        assert error["extensions"]["limit"] == "JIANSHEN_GRAPHQL_MAX_COST"
        assert error["extensions"]["max"] == settings.graphql_max_cost < error["extensions"]["actual"]
        assert "JIANSHEN_GRAPHQL_MAX_COST" in error["message"]
    # The cost follows `first`, also through a variable: the same shape with small pages runs.
    small = "query($n: Int) { " + " ".join(
        f"p{i}: projects(first: $n) {{ edges {{ node {{ code stages {{ cases {{ code timeline {{ seq }} }} }} }} }} }}"
        for i in range(3)
    ) + " }"
    assert (await refusal(client, small, {"n": 100}, token))["extensions"]["code"] == "QUERY_TOO_COSTLY"
    response = await client.post(
        "/graphql", json={"query": small, "variables": {"n": 2}}, headers={"Authorization": f"Bearer {token}"}
    )
    assert "errors" not in response.json(), response.text


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.stem)
def test_the_mini_programs_operations_stay_far_under_every_bound(path):
    """Each operation at its largest (every Int variable at the page maximum) costs under a tenth of the limits."""
    settings = Settings()
    schema = build_schema(settings)._schema
    document = parse(path.read_text(encoding="utf-8"))
    variables = {
        definition.variable.name.value: settings.page_max
        for op in document.definitions
        for definition in getattr(op, "variable_definitions", None) or ()
        if getattr(getattr(definition.type, "type", definition.type), "name", None)
        and getattr(definition.type, "type", definition.type).name.value == "Int"
    }
    tenth = Limits(
        max_fields=settings.graphql_max_fields // 10,
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases // 10,
        max_field_pairs=settings.graphql_max_field_pairs // 10,
        max_cost=settings.graphql_max_cost // 10,
        page_max=settings.page_max,
    )
    assert measure(document, schema, variables, tenth) <= settings.graphql_max_cost // 10


# -- the body cap ----------------------------------------------------------------------------------------------------

CHUNK = b" " * 65536  # one 64 KiB chunk, sent over and over: 200 MB are streamed, never allocated
TOTAL = 200 * 1024 * 1024


@sqlite_only
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_200_mb_body_is_refused_with_413_before_the_rest_is_read(client, settings, declared):
    sent = []

    def stream(index: int):
        async def chunks():
            yield b'{"query": "{ viewer { id } }", "variables": {"pad": "'
            for _ in range(TOTAL // len(CHUNK)):
                sent[index] += 1
                yield CHUNK
            yield b'"}}'

        return chunks()

    async def post(index: int):
        headers = {"Content-Type": "application/json"}
        if declared:
            headers["Content-Length"] = str(TOTAL + 100)
        return await client.post("/graphql", content=stream(index), headers=headers)

    sent.extend([0] * 6)
    responses = await asyncio.gather(*(post(i) for i in range(6)))
    for index, response in enumerate(responses):
        assert response.status_code == 413
        error = response.json()["errors"][0]
        assert error["extensions"] == {
            "code": "REQUEST_TOO_LARGE", "limit": "JIANSHEN_GRAPHQL_MAX_BODY_BYTES", "max": settings.graphql_max_body_bytes
        }
        # Declared: refused before a byte of the body; chunked: at most one chunk past the cap.
        assert sent[index] <= (0 if declared else settings.graphql_max_body_bytes // len(CHUNK) + 1)


@sqlite_only
async def test_the_cap_holds_without_the_response_cache(settings, world_free_app):
    """With the response cache off, Strawberry reads the body itself: the same cap applies."""
    async def chunks():
        for _ in range(TOTAL // len(CHUNK)):
            yield CHUNK

    async with world_free_app(settings.model_copy(update={"response_cache_mb": 0})) as http:
        responses = await asyncio.gather(*(
            http.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"}) for _ in range(4)
        ))
    assert [r.status_code for r in responses] == [413] * 4
    assert {r.json()["errors"][0]["extensions"]["code"] for r in responses} == {"REQUEST_TOO_LARGE"}


@sqlite_only
async def test_a_body_under_the_cap_is_answered(client, settings):
    pad = "x" * (settings.graphql_max_body_bytes - 200)
    response = await client.post("/graphql", json={"query": "{ __typename }", "variables": {"pad": pad}})
    assert response.status_code == 200 and response.json()["data"] == {"__typename": "Query"}


@sqlite_only
async def test_a_websocket_frame_over_the_cap_closes_the_connection(settings):
    """A real server (uvicorn's ws_max_size): the oversized frame closes the connection with 1009 (message too big)."""
    import websockets

    from tests.api.test_subscriptions import api_process

    with api_process(settings) as host:
        async with websockets.connect(
            f"ws://{host}/graphql", subprotocols=["graphql-transport-ws"], open_timeout=10, max_size=None
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
            # Over the WebSocket too, a hostile document is refused by the measurement, as a coded error.
            await ws.send(json.dumps({"id": "0", "type": "subscribe", "payload": {"query": doubling(24)}}))
            refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert refused["type"] == "error" and refused["id"] == "0", refused
            assert refused["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription { __typename }", "variables": {"pad": "x" * (settings.graphql_max_body_bytes + 1)}
            }}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_a_remembered_measure_follows_the_variables_that_set_a_cost():
    """The measure of a document is kept (the parser cache hands each request the same document), per the values of
    the variables its cost reads: another `first` gives another cost, one over the limit is refused after a kept
    one under it, and a variable the cost does not read (the search text) shares the kept figure."""
    from api.schema.gate import _MEASURED, Refused

    settings = Settings()
    schema = build_schema(settings)._schema
    document = parse(
        "query P($first: Int, $search: String) { projects(first: $first, search: $search) "
        "{ edges { node { code stages { cases { code } } } } } }"
    )
    limits = Limits(max_fields=1000, max_depth=20, max_aliases=100, max_field_pairs=10_000, max_cost=5_000,
                    page_max=50)
    fresh = lambda variables: _Measure(document, limits).cost(schema, variables)  # noqa: E731
    small = measure(document, schema, {"first": 2, "search": "a"}, limits)
    assert small == fresh({"first": 2})
    assert measure(document, schema, {"first": 2, "search": "b"}, limits) == small
    assert _MEASURED[id(document)][4] == {(("first", "int", 2),): small}  # kept once, by the variable it read
    larger = measure(document, schema, {"first": 20}, limits)
    assert larger == fresh({"first": 20}) > small
    assert measure(document, schema, {"first": 2}, limits) == small
    assert fresh({"first": 50}) > limits.max_cost
    with pytest.raises(Refused):
        measure(document, schema, {"first": 50}, limits)
    with pytest.raises(Refused):  # refused again, not remembered as allowed
        measure(document, schema, {"first": 50}, limits)
    tighter = Limits(**{**limits.__dict__, "max_cost": small - 1})
    with pytest.raises(Refused):  # other limits: measured again
        measure(document, schema, {"first": 2, "search": "a"}, tighter)
