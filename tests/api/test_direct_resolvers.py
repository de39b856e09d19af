"""Fields resolve without Strawberry's per-field wrapper where it adds nothing (issue #13, api/schema/direct.py).

That the answers stay the same is tests/api/test_answers_unchanged.py; this checks the mechanism is in place, so a
later change (an extension with a ``resolve`` hook, a field given a permission class) cannot silently bring the cost
back or lose a check.
"""

from __future__ import annotations

import enum

import strawberry
from graphql import FieldNode, GraphQLList, GraphQLNonNull, InlineFragmentNode, parse

from api.schema import build_schema
from api.schema.direct import context_only
from api.settings import Settings
from tests.conftest import operation


def _unwrap(graphql_type):
    while isinstance(graphql_type, (GraphQLNonNull, GraphQLList)):
        graphql_type = graphql_type.of_type
    return graphql_type


def _fields(schema, parent, selection_set):
    """(type name, field) of every field a document's selection set asks for, nested ones included."""
    for selection in selection_set.selections:
        if isinstance(selection, InlineFragmentNode):
            yield from _fields(schema, schema.get_type(selection.type_condition.name.value), selection.selection_set)
        elif isinstance(selection, FieldNode) and not selection.name.value.startswith("__"):
            field = parent.fields[selection.name.value]
            yield parent.name, selection.name.value, field
            if selection.selection_set:
                yield from _fields(schema, _unwrap(field.type), selection.selection_set)


def test_no_schema_extension_wraps_every_field():
    """An extension's ``resolve`` hook makes graphql-core run a middleware around every field of every answer."""
    schema = build_schema(Settings())
    for make in schema.extensions:
        extension = make() if callable(make) and not hasattr(make, "_implements_resolve") else make
        extension = extension() if isinstance(extension, type) else extension
        assert not extension._implements_resolve(), type(extension).__name__


def test_every_field_of_the_progress_query_below_the_root_resolves_directly():
    schema = build_schema(Settings())
    graphql_schema = schema._schema
    document = parse(operation("ProjectProgress"))
    fields = list(_fields(graphql_schema, graphql_schema.query_type, document.definitions[0].selection_set))
    assert len(fields) > 40
    for type_name, name, field in fields:
        if type_name == "Query":
            continue  # project(code:) takes an argument: Strawberry converts it and it is checked
        # A direct resolver, or the field's own (self, info) function marked `context_only`, which graphql-core calls
        # with its own resolve info.
        direct = field.resolve.__module__ == "api.schema.direct" or getattr(field.resolve, "_context_only", False)
        assert direct, (type_name, name)


def test_fields_with_arguments_or_extensions_keep_strawberrys_wrapper():
    from api.schema.direct import direct_resolvers

    schema = build_schema(Settings())
    graphql_schema = schema._schema
    project = graphql_schema.query_type.fields["project"]
    assert project.args and project.resolve.__module__ != "api.schema.direct"
    for graphql_type in (graphql_schema.mutation_type, graphql_schema.subscription_type):
        for name, field in graphql_type.fields.items():
            assert field.resolve is None or field.resolve.__module__ != "api.schema.direct", name
    assert direct_resolvers(schema) > 100  # idempotent: a second pass finds the same fields


async def _tasks_for_progress(gql) -> tuple[int, int]:
    """asyncio tasks created while the progress query is asked, and the number of cases it answered."""
    import asyncio

    from tests.factories import PROJECT_CODE

    loop = asyncio.get_running_loop()
    created = 0

    def counting(loop, coro, **kwargs):
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    previous = loop.get_task_factory()
    loop.set_task_factory(counting)
    try:
        data = await gql(operation("ProjectProgress"), {"code": PROJECT_CODE}, as_user="applicant")
    finally:
        loop.set_task_factory(previous)
    return created, sum(len(s["cases"]) for s in data["project"]["stages"])


async def test_progress_creates_no_task_per_case(gql, world, clock):
    """A Tortoise model instance is awaitable (it gives itself back): graphql-core gathered a task per case, item and
    department. The model instances are plain values to the executor, so the tasks do not grow with the cases."""
    from tests.api.test_query_count import add_cases
    from tests.factories import shanghai

    clock.set(shanghai(2026, 11, 20))
    await add_cases(world, 4)
    small, n_small = await _tasks_for_progress(gql)
    await add_cases(world, 36)
    large, n_large = await _tasks_for_progress(gql)
    assert (n_small, n_large) == (4, 40)
    # Not growing with the cases. The first request may spend a few more (loading who asks, which the second reuses:
    # the cases written in between do not touch the tables it was read from).
    assert large <= small < n_large, (small, large)


def test_a_context_only_resolver_is_given_graphql_cores_info_and_others_strawberrys():
    """`context_only` is honoured only for a (self, info) function; a resolver that reads more of its info than the
    context (here `guide`, which hands it on) still gets Strawberry's `Info`."""
    import inspect

    schema = build_schema(Settings())
    types = schema._schema.type_map
    light = types["Case"].fields["light"].resolve
    assert getattr(light, "_context_only", False)
    assert list(inspect.signature(light).parameters) == ["self", "info"]
    guide = types["ApprovalItem"].fields["guide"].resolve
    assert not getattr(guide, "_context_only", False) and guide.__module__ == "api.schema.direct"



def test_fast_enum_serialization_answers_what_strawberrys_does():
    """Every member of every enum of the schema serializes to the same name as through Strawberry's own enum type, and
    a value that is not a member is left to it (a plain string of a member's value, an unknown value)."""
    from graphql import GraphQLEnumType
    from strawberry.schema.schema_converter import CustomGraphQLEnumType

    schema = build_schema(Settings())
    enums = [t for t in schema._schema.type_map.values()
             if isinstance(t, CustomGraphQLEnumType) and getattr(t, "wrapped_cls", None) is not None]
    assert len(enums) > 5
    for enum_type in enums:
        # served by the lookup, under both names (graphql-core 3.3's executor calls coerce_output_value)
        assert "serialize" in enum_type.__dict__ and "coerce_output_value" in enum_type.__dict__, enum_type.name
        for name in ("serialize", "coerce_output_value"):
            for member in enum_type.wrapped_cls:
                assert getattr(enum_type, name)(member) == CustomGraphQLEnumType.serialize(enum_type, member)
            for other in ("NOT_A_VALUE", 123456):
                try:
                    expected = GraphQLEnumType.coerce_output_value(enum_type, other)
                except Exception as error:  # noqa: BLE001 - the same refusal either way
                    expected = type(error)
                try:
                    got = getattr(enum_type, name)(other)
                except Exception as error:  # noqa: BLE001
                    got = type(error)
                assert got == expected, (enum_type.name, name, other)


def test_awaitable_is_told_by_type_and_generators_each_by_their_code():
    import asyncio
    import types

    from api.models import Case
    from api.schema.direct import _is_awaitable

    class Awaits:
        def __await__(self):
            yield

    @types.coroutine
    def old_style():
        yield

    def plain_generator():
        yield

    async def native():
        return 1

    loop = asyncio.new_event_loop()
    try:
        for _ in range(2):  # learnt, then known
            coroutine = native()
            assert _is_awaitable(coroutine)
            coroutine.close()
            assert _is_awaitable(loop.create_future())
            assert _is_awaitable(Awaits())
            assert not _is_awaitable(Case())  # its __await__ only gives it back: a value
            assert not _is_awaitable("x") and not _is_awaitable(3) and not _is_awaitable([]) and not _is_awaitable(object())
            assert _is_awaitable(old_style()) and not _is_awaitable(plain_generator())  # same type, different code
    finally:
        loop.close()


@strawberry.enum
class LightColour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class LightThing:
    name: str
    maybe: str | None
    colour: LightColour

    @strawberry.field
    def boom(self) -> str:
        raise ValueError("boom")

    @strawberry.field
    @context_only
    def from_context(self, info: strawberry.Info) -> int:
        return info.context["n"]

    @strawberry.field
    def missing(self) -> str:
        return None  # type: ignore[return-value]

    @strawberry.field
    def exception_value(self) -> str | None:
        return ValueError("returned, not raised")  # type: ignore[return-value]

    @strawberry.field
    def bad_int(self) -> int:
        return "x"  # type: ignore[return-value]

    @strawberry.field
    async def later(self) -> str:
        return f"later {self.name}"


@strawberry.type
class LightQuery:
    @strawberry.field
    def things(self) -> list[LightThing | None]:
        return [LightThing(name="a", maybe=None, colour=LightColour.RED), LightThing(name="b", maybe="m", colour=LightColour.BLUE)]

    @strawberry.field
    def safe(self) -> list[LightThing]:
        return [LightThing(name="c", maybe="x", colour=LightColour.BLUE)]


async def test_light_fields_answer_and_fail_as_graphql_core_does():
    """Scalar and enum fields whose resolver reads only the context skip graphql-core's resolve info and completion
    chain (ExecutionContext.execute_field): their values, their nulls and their errors — a resolver that raises, a null
    for a non-null field, an exception returned as the value, a value the type refuses, an awaitable — are what
    Strawberry's own execution gives, path and message alike."""
    from graphql import GraphQLObjectType

    from api.schema.direct import ExecutionContext, direct_resolvers, fast_enums

    plain = strawberry.Schema(query=LightQuery)
    light = strawberry.Schema(query=LightQuery, execution_context_class=ExecutionContext)
    direct_resolvers(light)
    fast_enums(light)
    thing = light._schema.type_map["LightThing"]
    assert isinstance(thing, GraphQLObjectType)
    assert {name for name, field in thing.fields.items() if getattr(field, "_light", None)} == {
        "name", "maybe", "colour", "boom", "fromContext", "missing", "exceptionValue", "badInt", "later"}
    documents = [
        "{ things { name maybe colour fromContext later } safe { name colour } }",
        "{ things { name boom } }",
        "{ things { name missing } }",
        "{ things { name exceptionValue } }",
        "{ things { badInt name } }",
        "{ safe { name missing } }",
    ]
    for document in documents:
        want = await plain.execute(document, context_value={"n": 7})
        got = await light.execute(document, context_value={"n": 7})
        assert got.data == want.data, document
        assert [e.formatted for e in got.errors or []] == [e.formatted for e in want.errors or []], document
    assert (await light.execute(documents[0], context_value={"n": 7})).data["things"][1]["later"] == "later b"
