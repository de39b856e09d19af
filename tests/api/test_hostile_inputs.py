"""Property test: malformed and hostile values for every argument of every query and mutation of the committed SDL
(graphql/schema.graphql) never get a 5xx, the masked internal error or a logged traceback (issue #10 item 10,
DESIGN.md §7).

Our own generator, seeded (``JIANSHEN_FUZZ_SEED`` replays a run) and bounded (``EXAMPLES_PER_FIELD`` requests per
field): mostly values of the right GraphQL type with hostile content — lone UTF-16 surrogates, keys beyond int4 and
bigint or of 5,000 digits, non-ASCII digits, real ids of other types, impossible dates, deep JSON — so they pass
validation and reach the resolvers; sometimes null or a value of the wrong kind. Each field is tried anonymously and as
signed-in users of every role, the requests of a batch sent at once, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    build_schema,
    get_named_type,
)

from api.domain.ids import to_global_id
from api.schema import MASKED_MESSAGE

SDL = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"
SEED = int(os.environ.get("JIANSHEN_FUZZ_SEED", "20261201"))
EXAMPLES_PER_FIELD = 8
BATCH = 8  # requests sent at once
VIEWERS = ["applicant", "supervisor", "planner", "citizen", "clerk", "other_applicant"]
ANONYMOUS_ONLY = {"logout"}  # signed in, it would end the session the later requests of that user need

KEYS: list[Any] = [0, 1, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**30, "9" * 5000, "²", "١٢٣", "１", " 1", "1 ",
                   "1e3", "0x1F", "", "1:2", "007"]
STRINGS = [
    "", " ", "\ud800", "a\udfffb", "\udbff\ud800", "\x00", "\x00abc", "%", "_", "%_\\", "'; DROP TABLE users; --",
    "<script>alert(1)</script>", "../../../etc/passwd", "\u202e\u202d", "\ufeff", "😀" * 50, "中" * 5000, "a" * 10_000,
    "9" * 5000, "-1", "1e309", "NaN", "null", "true", "{}", "[]", "２０２６-440402-47-01-000001", "2026-440402-47-01-000001",
    "91440400MA4UUUUUUU", "13800001111", "+86 138 0000 1111", "\r\n\t", "Ⅻ", "e\u0301" * 100, "\U0010ffff",
    "2026-02-30", "9999-12-31T23:59:59-23:59",
]
DATES = ["2026-12-01", "2026-02-30", "0001-01-01", "9999-12-31", "", "20261201", "2026-1-1", "２０２６-01-01", "\ud800",
         20261201, "2026-12-01T10:00:00Z", "-0001-01-01"]
DATETIMES = ["2026-12-01T00:00:00Z", "2026-12-01T00:00:00+08:00", "2026-12-01T00:00:00", "0001-01-01T00:00:00+14:00",
             "9999-12-31T23:59:59-23:59", "2026-13-01T00:00:00Z", "2026-12-01T24:00:00Z", "", "1e10", 1764547200,
             "2026-12-01T00:00:00+99:00", "\ud800"]
INTS = [0, 1, -1, 2**31 - 1, -(2**31), 2**31, 2**53, 10**30, 1.5, "1", True, 100, 5]
TYPED_INTS = [0, 1, -1, 2**31 - 1, -(2**31), 100, 5, 20]
FLOATS = [0.0, -0.0, 1e308, -1e308, 5e-324, 1.5, 2**63, 10**30, "1.5"]


class Hostile:
    """A seeded source of hostile values for the input types of a GraphQL schema."""

    def __init__(self, rng: random.Random, real_ids: list[str], node_types: list[str]) -> None:
        self.rng = rng
        self.real_ids = real_ids
        self.node_types = node_types
        self.typed = True  # values of the declared types (hostile content), so that they reach the resolvers

    def string(self) -> str:
        rng = self.rng
        if rng.random() < 0.7:
            return rng.choice(STRINGS)
        # Random code points, surrogates and controls included.
        alphabet = [lambda: chr(rng.randrange(0x20, 0x7F)), lambda: chr(rng.randrange(0xD800, 0xE000)),
                    lambda: chr(rng.randrange(0, 0x20)), lambda: chr(rng.randrange(0x4E00, 0x9FFF)),
                    lambda: chr(rng.randrange(0x10000, 0x110000))]
        return "".join(rng.choice(alphabet)() for _ in range(rng.randrange(1, 40)))

    def identifier(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.3 and self.real_ids:
            return rng.choice(self.real_ids)  # a real object, maybe of another type or another owner
        if roll < 0.7:
            return to_global_id(rng.choice(self.node_types), rng.choice(KEYS))
        if roll < 0.8:
            return to_global_id("o", rng.choice(KEYS))  # a cursor
        return self.string()

    def json_value(self, depth: int = 0) -> Any:
        rng = self.rng
        roll = rng.random()
        if depth < 40 and roll < 0.3:
            return {self.string()[:20] or "k": self.json_value(depth + 1) for _ in range(rng.randrange(0, 3))}
        if depth < 40 and roll < 0.5:
            return [self.json_value(depth + 1) for _ in range(rng.randrange(0, 3))]
        return rng.choice([None, True, 0, -1, 2**64, 10**30, 1.5, 1e308, self.string(), self.identifier()])

    def wrong_kind(self) -> Any:
        return self.rng.choice([None, 1, -1, 1.5, True, "x", [], {}, [None], {"a": "\ud800"}, "\ud800"])

    def value(self, type_: Any, depth: int = 0) -> Any:
        rng = self.rng
        roll = rng.random()
        if not self.typed and roll < 0.05:
            return None  # also where the type says non-null
        if not self.typed and roll < 0.09:
            return self.wrong_kind()
        if self.typed and roll < 0.1 and not isinstance(type_, GraphQLNonNull):
            return None
        if isinstance(type_, GraphQLNonNull):
            return self.value(type_.of_type, depth)
        if isinstance(type_, GraphQLList):
            if not self.typed and rng.random() < 0.1:
                return self.value(type_.of_type, depth + 1)  # a single value where a list goes
            size = rng.choice([0, 1, 1, 2, 3, 60])
            return [self.value(type_.of_type, depth + 1) for _ in range(size)]
        if isinstance(type_, GraphQLInputObjectType):
            out = {}
            for name, field in type_.fields.items():
                if isinstance(field.type, GraphQLNonNull) or rng.random() < 0.6:
                    out[name] = self.value(field.type, depth + 1) if depth < 6 else None
            if not self.typed and rng.random() < 0.05:
                out[self.string()[:30] or "x"] = 1  # a field the type does not have
            return out
        if isinstance(type_, GraphQLEnumType):
            return rng.choice(list(type_.values)) if self.typed or rng.random() < 0.85 else self.string()
        assert isinstance(type_, GraphQLScalarType), type_
        name = type_.name
        if name == "ID":
            return self.identifier()
        if name == "String":
            return self.identifier() if rng.random() < 0.15 else self.string()
        if name == "Int":
            return rng.choice(TYPED_INTS if self.typed else INTS)
        if name == "Float":
            return rng.choice(FLOATS[:6] if self.typed else FLOATS)
        if name == "Boolean":
            return rng.choice([True, False] if self.typed else [True, False, "true", 1])
        if name == "Date":
            return rng.choice(DATES)
        if name == "DateTime":
            return rng.choice(DATETIMES)
        return self.json_value()  # JSON and any scalar added later


class Operation:
    """One request's document and variables: each argument bound to a variable, or written inline as a literal."""

    def __init__(self, hostile: Hostile, *, literal: bool) -> None:
        self.hostile = hostile
        self.literal = literal
        self.definitions: list[str] = []
        self.variables: dict[str, Any] = {}

    def bind(self, arguments: dict[str, Any]) -> str:
        if not arguments:
            return ""
        parts = []
        for name, spec in arguments.items():
            value = self.hostile.value(spec.type)
            if self.literal:
                parts.append(f"{name}: {literal(value, spec.type)}")
            else:
                variable = f"v{len(self.variables)}"
                self.definitions.append(f"${variable}: {spec.type}")
                self.variables[variable] = value
                parts.append(f"{name}: ${variable}")
        return "(" + ", ".join(parts) + ")"

    def selection(self, type_: Any, depth: int = 0) -> str:
        """The fields of the answer two levels down, with arguments of their own: their resolvers run too."""
        named = get_named_type(type_)
        if isinstance(named, (GraphQLScalarType, GraphQLEnumType)):
            return ""
        if isinstance(named, (GraphQLInterfaceType, GraphQLUnionType)) or depth >= 2:
            return "{ __typename }"
        assert isinstance(named, GraphQLObjectType)
        parts = ["__typename"]
        for name, field in named.fields.items():
            inner = get_named_type(field.type)
            if isinstance(inner, (GraphQLScalarType, GraphQLEnumType)):
                parts.append(name + self.bind(field.args))
            elif isinstance(inner, GraphQLObjectType) and depth < 1:
                parts.append(name + self.bind(field.args) + " " + self.selection(inner, depth + 1))
        return "{ " + " ".join(parts) + " }"

    def document(self, keyword: str, name: str, field: Any) -> str:
        call = name + self.bind(field.args)
        body = self.selection(field.type)
        head = f"{keyword} Fuzz({', '.join(self.definitions)})" if self.definitions else f"{keyword} Fuzz"
        return f"{head} {{ {call} {body} }}"


NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def literal(value: Any, type_: Any) -> str:
    """``value`` written as a GraphQL literal (a JSON string's escapes are GraphQL's: "\\ud800" stays an escape)."""
    named = get_named_type(type_) if type_ is not None else None
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, str):
        if isinstance(named, GraphQLEnumType) and value in named.values:
            return value
        return json.dumps(value)
    inner = type_
    while isinstance(inner, GraphQLNonNull):
        inner = inner.of_type
    if isinstance(value, list):
        item_type = inner.of_type if isinstance(inner, GraphQLList) else None
        return "[" + ", ".join(literal(item, item_type) for item in value) + "]"
    fields = named.fields if isinstance(named, GraphQLInputObjectType) else {}
    items = []
    for index, (key, item) in enumerate(value.items()):
        key = key if NAME.fullmatch(key) else f"k{index}"
        items.append(f"{key}: {literal(item, fields[key].type if key in fields else None)}")
    return "{" + ", ".join(items) + "}"


def root_fields() -> list[tuple[str, str, Any]]:
    """(root keyword, field name, field) for every query and mutation field of the committed SDL."""
    schema = build_schema(SDL.read_text(encoding="utf-8"))
    return [(keyword, name, field) for keyword, root in (("query", schema.query_type), ("mutation", schema.mutation_type))
            for name, field in root.fields.items()]


def node_types() -> list[str]:
    schema = build_schema(SDL.read_text(encoding="utf-8"))
    names = [t.name for t in schema.type_map.values() if isinstance(t, GraphQLObjectType)
             and any(i.name == "Node" for i in t.interfaces)]
    return names + ["Delivery", "User", "Upload"]  # the models behind NoticeDelivery, and keys never exposed


async def real_ids(world) -> list[str]:
    from api.models import Case, Complaint, Rating

    ids = [to_global_id(type(obj).__name__, obj.pk) for group in (world.departments, world.items, world.users,
           world.organizations, world.projects, world.authorizations) for obj in group.values()]
    for model in (Case, Complaint, Rating):
        ids += [to_global_id(model.__name__, pk) for pk in await model.all().limit(5).values_list("id", flat=True)]
    return ids


@pytest.mark.quiet_app
async def test_no_input_gets_a_5xx_or_the_masked_error(client, world, caplog):
    rng = random.Random(SEED)
    hostile = Hostile(rng, await real_ids(world), node_types())
    requests: list[tuple[str, str | None, str, dict]] = []
    for keyword, name, field in root_fields():
        for example in range(EXAMPLES_PER_FIELD):
            viewer = None if example % 3 == 0 or name in ANONYMOUS_ONLY else rng.choice(VIEWERS)
            hostile.typed = example % 4 != 3  # one in four also breaks the types: nulls, wrong kinds, extra fields
            operation = Operation(hostile, literal=example % 5 == 4)  # one in five writes the values inline
            document = operation.document(keyword, name, field)
            requests.append((name, viewer, document, operation.variables))

    async def send(name: str, viewer: str | None, document: str, variables: dict) -> str | None:
        headers = {"content-type": "application/json"}
        if viewer:
            headers["Authorization"] = f"Bearer {world.token(viewer)}"
        body = json.dumps({"query": document, "variables": variables})  # lone surrogates as "\ud800" escapes
        response = await client.post("/graphql", content=body, headers=headers)
        masked = False
        if response.headers.get("content-type", "").startswith("application/json"):
            answer = response.json()
            masked = any(error.get("message") == MASKED_MESSAGE for error in answer.get("errors") or ())
        if response.status_code >= 500 or masked:
            sent = document if not variables else json.dumps(variables)
            return f"{name} as {viewer or 'anonymous'}: {response.status_code} {response.text[:200]} <- {sent[:700]}"
        return None

    failures: list[str] = []
    with caplog.at_level(logging.INFO):
        for start in range(0, len(requests), BATCH):
            results = await asyncio.gather(*(send(*request) for request in requests[start : start + BATCH]))
            failures += [failure for failure in results if failure]
    tracebacks = [r.getMessage()[:200] for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert not failures, f"seed {SEED}: {len(failures)} of {len(requests)} failed:\n" + "\n".join(failures[:30])
    assert not tracebacks, f"seed {SEED}: a client's input logged a traceback: {tracebacks[:10]}"
