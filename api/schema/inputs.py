"""What a client sends is checked before it can reach the database or a log line (issue #10 items 7–8).

- ``decode_request_json``: the body of ``POST /graphql`` (and GET's ``variables``) must be UTF-8 JSON, an object,
  nested at most ``MAX_JSON_DEPTH`` deep; anything else is a 400 with a Chinese reason, not an exception.
- ``CheckedArguments``: every argument of every field, literal or from variables, present and future, is searched for
  a lone UTF-16 surrogate ("\\ud800" in JSON), which no UTF-8 encoder writes, and for NUL, which PostgreSQL's text
  refuses. A mutation answers it in its payload's ``errors`` (``INVALID_INPUT`` with the field), any other field with a GraphQL error of that code.
- ``SCALAR_OVERRIDES``: a ``Date`` lies in 1900-01-01…9999-01-01 (长期有效), a ``DateTime`` in 1900…2199: 9999-12-31
  at −23:59 or 0001-01-01 at +14:00 overflow the moment they are converted to UTC or moved by a day.
- ``log_errors``: the client's mistakes (every error we raised on purpose, syntax and validation errors) are logged at
  INFO without a traceback; only an unexpected exception — a real bug, masked for the client — keeps its traceback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

from cross_web import HTTPException
from graphql import ExecutionResult, GraphQLError, GraphQLNonNull, GraphQLObjectType, default_field_resolver
from starlette.requests import Request
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import SchemaExtension
from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition
from strawberry.types.graphql import OperationType
from strawberry.utils.logging import StrawberryLogger

from api import busy
from api.db import DB_TIMEZONE

log = logging.getLogger("jianshen.graphql")

MAX_JSON_DEPTH = 32  # the deepest input of the schema is ~5 levels; json.loads itself fails near 1,000
UNSTORABLE_MESSAGE = "输入含有无法识别的字符，请检查后重试"
SUBSCRIPTION_OVER_HTTP_MESSAGE = "订阅须通过 WebSocket（graphql-transport-ws 协议）发起，不能用 HTTP 请求"


def unstorable(text: str) -> bool:
    """Whether ``text`` holds a character no database takes: a lone UTF-16 surrogate (Python keeps an unpaired
    "\\ud800" from JSON as a code point in the surrogate range; a valid pair is joined into one character already),
    which no UTF-8 encoder writes, or NUL, which PostgreSQL's text refuses. ASCII text is answered without a scan."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # NaN and ±Infinity: Python's json accepts them, RFC 8259 does not


def bad_request(reason: str) -> HTTPException:
    return HTTPException(400, reason)


def decode_request_json(data: str | bytes) -> dict[str, Any]:
    """A GraphQL request's JSON, or HTTPException(400) saying what is wrong with it."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("请求体不是有效的 UTF-8 文本") from None
    try:
        value = json.loads(data, parse_constant=_not_json)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; ~1,000 levels exhaust the parser
        raise bad_request("请求体不是有效的 JSON") from None
    if not isinstance(value, dict):
        # A list would be a batch (not enabled); null, numbers, strings and booleans are no request at all.
        if isinstance(value, list):
            return value  # type: ignore[return-value]  # Strawberry answers "Batching is not enabled" (400)
        raise bad_request("请求体应为 JSON 对象：{\"query\": …, \"variables\": {…}}")
    if _too_deep(value, MAX_JSON_DEPTH):
        raise bad_request(f"请求体嵌套超过{MAX_JSON_DEPTH}层")
    for key in ("query", "operationName"):
        text = value.get(key)
        if text is not None and not isinstance(text, str):
            raise bad_request(f"“{key}”应为字符串")
        if text and unstorable(text):  # it would be echoed in an error message no encoder can write
            raise bad_request(f"“{key}”含有无法识别的字符")
    return value


# -- dates --------------------------------------------------------------------------------------------------------------

FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(9999, 1, 1)  # the domain's own 长期有效 (NO_EXPIRY), the latest date that means anything
LAST_MOMENT_YEAR = 2199  # a moment (DateTime) is a filter bound or an event time: far beyond is a mistake


def _within(parse: Callable[[object], Any], type_name: str, last: dt.date) -> Callable[[object], Any]:
    def parse_value(value: object) -> Any:
        parsed = parse(value)
        day = parsed.date() if isinstance(parsed, dt.datetime) else parsed
        if not FIRST_DAY <= day <= last:
            raise StrawberryInputCoercionError(f"{type_name} 应在 {FIRST_DAY} 至 {last} 之间：{value}")
        if isinstance(parsed, dt.datetime) and parsed.tzinfo is None:
            # Without an offset, Beijing time — as the database reads it — and never naive: a naive moment compared
            # with an aware one raises TypeError.
            parsed = parsed.replace(tzinfo=ZoneInfo(DB_TIMEZONE))
        return parsed

    return parse_value


# Same names and descriptions as Strawberry's: the SDL does not change, only what a value may be.
SCALAR_OVERRIDES = {
    dt.date: dataclasses.replace(DateDefinition, parse_value=_within(DateDefinition.parse_value, "Date", LAST_DAY)),
    dt.datetime: dataclasses.replace(
        DateTimeDefinition,
        parse_value=_within(DateTimeDefinition.parse_value, "DateTime", dt.date(LAST_MOMENT_YEAR, 12, 31)),
    ),
}


# -- arguments ----------------------------------------------------------------------------------------------------------


def unstorable_at(arguments: dict[str, Any]) -> str | None:
    """The path of GraphQL names ("input.title", "ids.2") of the first string ``unstorable`` refuses, or None."""
    stack: list[tuple[str, Any]] = [(name, value) for name, value in arguments.items()]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if unstorable(value):
                return path
        elif isinstance(value, dict):
            stack.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}.{index}", item) for index, item in enumerate(value))
    return None


def _field_name(path: str) -> str:
    """The field as the payload's ``errors`` name it: a mutation's one ``input`` is implied ("input.title" → "title")."""
    head, _, rest = path.partition(".")
    return rest if head == "input" and rest else path


def _payload_type(info: Any) -> type | None:
    """The Strawberry payload class of a mutation field that answers with ``errors``, else None."""
    if info.parent_type is not info.schema.mutation_type:
        return None
    return_type = info.return_type.of_type if isinstance(info.return_type, GraphQLNonNull) else info.return_type
    if not isinstance(return_type, GraphQLObjectType) or "errors" not in return_type.fields:
        return None
    definition = info.parent_type.fields[info.field_name].extensions.get("strawberry-definition")
    payload = getattr(definition, "type", None)
    return payload if isinstance(payload, type) else None


class CheckedArguments(SchemaExtension):
    """Refuses an argument holding a lone surrogate or NUL before the resolver runs (so before any query or write),
    and a subscription sent as an HTTP request (subscriptions run over the WebSocket: graphql-transport-ws)."""

    def on_execute(self):
        execution_context = self.execution_context
        if execution_context.operation_type is OperationType.SUBSCRIPTION and isinstance(
            getattr(execution_context.context, "request", None), Request
        ):
            execution_context.result = ExecutionResult(
                data=None,
                errors=[GraphQLError(SUBSCRIPTION_OVER_HTTP_MESSAGE, extensions={"code": "INVALID_INPUT", "field": None})],
            )
        yield



def _refusing_unstorable(resolve: Callable[..., Any]) -> Callable[..., Any]:
    """``resolve`` behind the check of its arguments: a lone surrogate or NUL anywhere in them is refused before the
    resolver runs — in a mutation's payload ``errors`` when it has some, else as a GraphQL error."""

    def checked(root: Any, info: Any, **kwargs: Any) -> Any:
        if kwargs:
            path = unstorable_at(kwargs)
            if path is not None:
                from api.schema.base import ErrorCode, UserError

                field = _field_name(path)
                payload = _payload_type(info)
                if payload is not None:
                    return payload(
                        errors=[UserError(field=field, code=ErrorCode.INVALID_INPUT, message=UNSTORABLE_MESSAGE)]
                    )
                raise GraphQLError(UNSTORABLE_MESSAGE, extensions={"code": "INVALID_INPUT", "field": field})
        return resolve(root, info, **kwargs)

    return checked


def check_arguments(schema: Any) -> None:
    """Every field that takes arguments checks them (``_refusing_unstorable``). Done per field, once when the schema is
    built, not as a schema extension's ``resolve`` hook: that made graphql-core run a middleware around *every* field
    of every answer, ~600 in a progress answer, though only fields with arguments can hold a bad one (issue #13).
    graphql-core's own introspection fields (``__type(name:)``, ``includeDeprecated``) are shared by every schema and
    take no free text that is stored: they are left alone."""
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        for graphql_field in graphql_type.fields.values():
            if graphql_field.args:
                graphql_field.resolve = _refusing_unstorable(graphql_field.resolve or default_field_resolver)


# -- logging ------------------------------------------------------------------------------------------------------------


def is_unexpected(error: GraphQLError) -> bool:
    """An exception that is not a GraphQLError we raised on purpose: a bug (masked for the client, logged in full)."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def log_errors(errors: list[GraphQLError], execution_context: Any = None) -> None:
    for error in errors:
        if busy.is_busy(error.original_error):
            log.warning("database busy", extra={"fields": {"error": str(error.original_error)[:300], "code": busy.CODE}})
        elif is_unexpected(error):
            StrawberryLogger.error(error, execution_context)  # with its traceback
        elif log.isEnabledFor(logging.INFO):
            code = (error.extensions or {}).get("code")
            log.info("client error", extra={"fields": {"error": error.message[:300], "code": code}})
