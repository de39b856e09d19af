"""Resolvers graphql-core calls directly, without Strawberry's per-field wrapper (issue #13).

Strawberry gives graphql-core, for every field with a resolver, a wrapper that on each call builds the ``Info``,
converts the arguments, runs the field extensions and finally calls the resolver: 5–10 µs a field, ~600 fields in a
23-case progress answer. A field with no arguments and no field extension (no permission classes) needs none of it
but the ``Info``. ``direct_resolvers`` replaces, once when the schema is built, the resolver of every such field of
the query-side types by a plain function that does exactly the rest of what Strawberry's wrapper does for it: pass
the source as ``self`` and a Strawberry ``Info`` if the resolver asks for one; a field with no resolver reads the
attribute like Strawberry's default resolver. Mutations and subscriptions keep Strawberry's wrapper (they are few),
and so does any field Strawberry would treat specially (arguments, extensions, ``root``/``Parent`` parameters,
exception handlers).

A Tortoise model instance is awaitable (awaiting it gives it back): every project, case, item or department a resolver
returned made graphql-core take its asynchronous path — a coroutine per object and a gathering of tasks per list, the
23 cases of a project included. ``ExecutionContext`` tells graphql-core they are plain values, which they are.

The answers are the same functions' results: ``tests/api/test_answers_unchanged.py`` compares them byte for byte.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import GeneratorType
from typing import Any, Callable

import strawberry
from graphql import GraphQLEnumType, GraphQLField, GraphQLNonNull, GraphQLObjectType, GraphQLScalarType, Undefined
from graphql.execution.executor import to_nodes
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField
from tortoise.models import Model

DEFINITION = "strawberry-definition"


def _direct(field: StrawberryField, info_class: type) -> Callable[..., Any] | None:
    """graphql-core's resolver for ``field`` doing what Strawberry's wrapper does for it; None if it must keep it."""
    resolver = field.base_resolver
    if resolver is None:
        name, read = field.python_name, field.default_resolver

        def attribute(source: Any, _info: Any) -> Any:
            return read(source, name)

        attribute._is_default = True  # type: ignore[attr-defined]  # as Strawberry marks it (tracing skips it)
        return attribute
    if resolver.root_parameter is not None or resolver.parent_parameter is not None or resolver.arguments:
        return None
    function = resolver.wrapped_func
    if not callable(function):
        return None
    info_parameter = resolver.info_parameter
    takes_self = resolver.self_parameter is not None
    if info_parameter is None:
        if takes_self:
            plain = lambda source, _info: function(source)  # noqa: E731
        else:
            plain = lambda _source, _info: function()  # noqa: E731
        plain._context_only = True  # type: ignore[attr-defined]  # reads nothing of the info at all
        return plain
    info_name = info_parameter.name
    code = getattr(function, "__code__", None)
    if (getattr(function, "_context_only", False) and takes_self and code is not None
            and code.co_argcount == 2 and code.co_varnames[1] == info_name):
        return function  # (self, info): graphql-core's own info has the same `context`

    if takes_self:

        def with_info(source: Any, info: Any) -> Any:
            return function(source, **{info_name: info_class(_raw_info=info, _field=field)})

    else:

        def with_info(_source: Any, info: Any) -> Any:
            return function(**{info_name: info_class(_raw_info=info, _field=field)})

    return with_info


def context_only(resolver: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a ``(self, info)`` resolver that reads nothing of ``info`` but ``info.context`` and ``info.path``:
    graphql-core calls it with its own resolve info (whose ``context`` and ``path`` are the same objects), not a
    Strawberry ``Info`` made for each call — or, for a scalar or enum field, with just those two (light fields)."""
    resolver._context_only = True  # type: ignore[attr-defined]
    return resolver


def direct_resolvers(schema: strawberry.Schema) -> int:
    """Give graphql-core a direct resolver for every field that needs nothing of Strawberry's wrapper but the
    ``Info``; return how many fields got one."""
    converter = schema.schema_converter
    if getattr(converter, "_exception_handler_specs", None):
        return 0  # exception handlers may turn a field's error into a result: leave every field to Strawberry
    graphql_schema = schema._schema
    info_class = schema.config.info_class
    operations = {graphql_schema.mutation_type, graphql_schema.subscription_type} - {None}
    count = 0
    for graphql_type in graphql_schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type in operations:
            continue
        if graphql_type.name.startswith("__"):
            continue
        for graphql_field in graphql_type.fields.values():
            field = graphql_field.extensions.get(DEFINITION) if graphql_field.extensions else None
            if not isinstance(field, StrawberryField) or graphql_field.args or field.extensions:
                continue
            if field.is_subscription or graphql_field.subscribe is not None:
                continue
            resolve = _direct(field, info_class)
            if resolve is not None:
                graphql_field.resolve = resolve
                _mark_light(graphql_field, resolve)
                count += 1
    return count


def _mark_light(graphql_field: GraphQLField, resolve: Callable[..., Any]) -> None:
    """A field whose resolver reads nothing of the resolve info but ``context`` (an attribute read, a
    ``@context_only`` resolver) and whose type is a scalar or an enum: ``ExecutionContext.execute_field`` resolves and
    completes it without building the info."""
    if not (getattr(resolve, "_is_default", False) or getattr(resolve, "_context_only", False)):
        return
    leaf = graphql_field.type
    if isinstance(leaf, GraphQLNonNull):
        leaf = leaf.of_type
    if isinstance(leaf, (GraphQLScalarType, GraphQLEnumType)):
        graphql_field._light = (resolve, leaf)  # type: ignore[attr-defined]


# What resolvers return most — a field's str, int, date, list — is never awaitable: answered by its type alone
# (graphql-core asks ~3 times a field, ~1,700 times for a 23-case progress answer).
_NEVER_AWAITABLE = frozenset({str, int, float, bool, type(None), list, tuple, dict, dt.date, dt.datetime, Decimal})


def fast_enums(schema: strawberry.Schema) -> int:
    """Serialize each enum value by one dict lookup. Strawberry's enum type compares the value with each of the enum's
    values in turn, through ``Enum.value`` (a descriptor): ~3 µs a field, ~100 enum fields in a progress answer. Only a
    member of the enum itself is looked up (its type is the enum class); anything else goes to Strawberry's own
    ``serialize`` as before. Returns the number of enum types so served."""
    count = 0
    for graphql_type in schema._schema.type_map.values():
        wrapped = getattr(graphql_type, "wrapped_cls", None)
        if not isinstance(graphql_type, GraphQLEnumType) or wrapped is None:
            continue
        names = {}
        for member in wrapped:
            for name, value in graphql_type.values.items():
                if member.value == value.value:  # the name Strawberry's loop would find first
                    names[member] = name
                    break
        slow = type(graphql_type).coerce_output_value.__get__(graphql_type)

        def serialize(output_value: Any, names: dict = names, wrapped: type = wrapped, slow: Any = slow) -> Any:
            if type(output_value) is wrapped:
                name = names.get(output_value)
                if name is not None:
                    return name
            return slow(output_value)

        # graphql-core 3.3 completes a leaf with ``coerce_output_value`` (``serialize`` is its older name, which
        # Strawberry's type maps onto it): both are served by the lookup.
        graphql_type.serialize = serialize  # type: ignore[method-assign]
        graphql_type.coerce_output_value = serialize  # type: ignore[method-assign]
        count += 1
    return count


# Whether a value is awaitable is a matter of its type (its class has ``__await__``, or is a coroutine's) — but for a
# generator, whose code's flags tell: known per type after the first value of it, by one dict lookup.
_AWAITABLE_BY_TYPE: dict[type, bool] = dict.fromkeys(_NEVER_AWAITABLE, False)
_TYPES_KEPT = 4096


def _is_awaitable(value: Any) -> bool:
    kind = type(value)
    known = _AWAITABLE_BY_TYPE.get(kind)
    if known is not None:
        return known
    # Model.__await__ only returns the instance itself: treat it as the value it is.
    answer = not isinstance(value, Model) and optimized_is_awaitable(value)
    if kind is not GeneratorType and len(_AWAITABLE_BY_TYPE) < _TYPES_KEPT:
        _AWAITABLE_BY_TYPE[kind] = answer
    return answer


class _ContextInfo:
    """What a light field's resolver is given for its info: the context and the field's path, all it reads of it
    (``path`` is the current field's during the call only: one object serves the whole execution)."""

    __slots__ = ("context", "path")

    def __init__(self, context: Any) -> None:
        self.context = context
        self.path: Any = None


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, for which a Tortoise model instance is a value, not an awaitable, and which
    executes a light field (``_mark_light``) without graphql-core's resolve info and value completion chain.

    graphql-core builds, for every field, a resolve info of twelve attributes, then completes the value through
    ``complete_value``'s type tests; a scalar or enum field whose resolver reads only ``info.context`` needs neither —
    ~400 of a 23-case progress answer's ~530 fields. Anything out of the ordinary takes graphql-core's own way from
    where it stands, with the info built then: an awaitable result, a null (graphql-core raises the non-null error), an
    exception returned as the value, a value the type refuses to serialize. A resolver's or the type's exception is
    handled by graphql-core's ``handle_field_error``, as in ``execute_field``. Middleware, arguments and a resolver
    replaced since it was marked take the normal way altogether. ``tests/api/test_answers_unchanged.py`` compares the answers byte for byte; test_direct_resolvers
    the errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_awaitable = _is_awaitable  # type: ignore[assignment]
        self._context_info = _ContextInfo(self.context_value)
        manager = self.middleware_manager  # Strawberry passes one with no middleware: it changes no resolver
        self._wrapped = manager is not None and manager._middleware_resolvers is not None

    def execute_field(self, parent_type: Any, source: Any, field_details_list: Any, path: Any,
                      position_context: Any) -> Any:
        node = field_details_list[0].node
        field_def = parent_type.fields.get(node.name.value)
        light = getattr(field_def, "_light", None)
        if light is None or node.arguments or self._wrapped or field_def.resolve is not light[0]:
            return super().execute_field(parent_type, source, field_details_list, path, position_context)
        resolve, leaf = light
        info = self._context_info
        info.path = path
        try:
            result = resolve(source, info)
            if result is not None and not self.is_awaitable(result) and not isinstance(result, Exception):
                coerced = leaf.coerce_output_value(result)
                if coerced is not None and coerced is not Undefined:
                    return coerced
        except Exception as raw_error:
            self.handle_field_error(raw_error, field_def.type, field_details_list, path)
            return None
        return self._complete(field_def, parent_type, field_details_list, path, position_context, result)

    def _complete(self, field_def: Any, parent_type: Any, field_details_list: Any, path: Any, position_context: Any,
                  result: Any) -> Any:
        """The rest of graphql-core's ``execute_field`` for a result already resolved."""
        return_type = field_def.type
        info = self.build_resolve_info(field_def, to_nodes(field_details_list), parent_type, path)
        try:
            if self.is_awaitable(result):
                return self.complete_awaitable_value(return_type, field_details_list, info, path, result,
                                                     position_context)
            return self.complete_value(return_type, field_details_list, info, path, result, position_context)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
