"""Shared GraphQL pieces: global ids, the Node interface, page info, errors-as-data (DESIGN.md §3)."""

from __future__ import annotations

from enum import Enum
from typing import Any, Awaitable, Callable, TypeVar

import strawberry
from graphql import GraphQLError

from api import busy
from api.db import key_max
from api.domain.errors import DomainError
from api.domain.ids import INT_MAX, from_global_id, key_of, to_global_id


def model_key_max(type_name: str) -> int:
    """The key range of the table behind the node type ``type_name`` (each bears its model's class name)."""
    from api import models

    model = getattr(models, type_name, None)
    return key_max(model) if model is not None else INT_MAX


def pk_of(global_id: str, type_name: str, field: str = "id") -> int:
    """The integer key behind a global id of ``type_name``; a malformed id, or one whose key no row of that table
    can have, is a field-level error."""
    pk = key_of(global_id, type_name, model_key_max(type_name))
    if pk is None:
        raise DomainError("INVALID_ID", "编号格式不正确", field)
    return pk


@strawberry.interface(description="An object with a global id (Relay).")
class Node:
    @strawberry.field(description="Global id: the type name and the key, base64url-encoded.")
    def id(self) -> strawberry.ID:
        # ``self`` is the Tortoise model instance; each GraphQL node type bears its model's class name.
        return strawberry.ID(to_global_id(type(self).__name__, self.pk))


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.enum(description="Stable codes of expected failures; the message says it in Chinese for the user.")
class ErrorCode(Enum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    INVALID_ID = "INVALID_ID"
    INVALID_INPUT = "INVALID_INPUT"
    REQUIRED = "REQUIRED"
    CONFLICT = "CONFLICT"
    DUPLICATE_REQUEST_ID = "DUPLICATE_REQUEST_ID"
    INVALID_PROJECT_CODE = "INVALID_PROJECT_CODE"
    INVALID_USCC = "INVALID_USCC"
    STAGE_NOT_IN_TEMPLATE = "STAGE_NOT_IN_TEMPLATE"
    ITEM_NOT_IN_TEMPLATE = "ITEM_NOT_IN_TEMPLATE"
    ITEM_ALREADY_HANDLED = "ITEM_ALREADY_HANDLED"
    PREDECESSOR_MISSING = "PREDECESSOR_MISSING"
    PREDECESSOR_NOT_DECIDED = "PREDECESSOR_NOT_DECIDED"
    FORM_INVALID = "FORM_INVALID"
    MATERIAL_MISSING = "MATERIAL_MISSING"
    UPLOAD_NOT_FOUND = "UPLOAD_NOT_FOUND"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    WRONG_PARTY = "WRONG_PARTY"
    REASON_REQUIRED = "REASON_REQUIRED"
    CORRECTION_LIST_REQUIRED = "CORRECTION_LIST_REQUIRED"
    CORRECTION_ALREADY_REQUESTED = "CORRECTION_ALREADY_REQUESTED"
    APPROVAL_DOCUMENT_REQUIRED = "APPROVAL_DOCUMENT_REQUIRED"
    EVENT_TIME_INVALID = "EVENT_TIME_INVALID"
    SESSION_EXPIRED = "SESSION_EXPIRED"
    ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    LOGIN_LOCKED = "LOGIN_LOCKED"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    INVALID_PHONE = "INVALID_PHONE"
    WECHAT_CODE_INVALID = "WECHAT_CODE_INVALID"
    WECHAT_RATE_LIMITED = "WECHAT_RATE_LIMITED"
    WECHAT_RISKY_USER = "WECHAT_RISKY_USER"
    WECHAT_UNAVAILABLE = "WECHAT_UNAVAILABLE"
    WECHAT_NOT_CONFIGURED = "WECHAT_NOT_CONFIGURED"
    CONTENT_RISKY = "CONTENT_RISKY"
    RATE_LIMITED = "RATE_LIMITED"
    NOT_RATABLE_YET = "NOT_RATABLE_YET"
    RATING_WINDOW_CLOSED = "RATING_WINDOW_CLOSED"
    ALREADY_RATED = "ALREADY_RATED"
    CERTIFICATE_NOT_VALID = "CERTIFICATE_NOT_VALID"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"
    SERVICE_BUSY = "SERVICE_BUSY"


@strawberry.type(description="An expected failure, returned as data: nothing was changed.")
class UserError:
    field: str | None = strawberry.field(description="The input field at fault (camelCase path), if any.")
    code: ErrorCode
    message: str = strawberry.field(description="What went wrong, in Chinese, for the user.")

    @classmethod
    def of(cls, error: DomainError) -> "UserError":
        try:
            code = ErrorCode(error.code)
        except ValueError:
            code = ErrorCode.INVALID_INPUT
        return cls(field=error.field, code=code, message=error.message)


P = TypeVar("P")


async def payload_or_errors(make: Callable[..., P], action: Callable[[], Awaitable[dict]]) -> P:
    """Run a mutation's service call; an expected refusal becomes ``errors`` in the payload (errors-as-data)."""
    try:
        values = await action()
    except DomainError as error:
        return make(errors=[UserError.of(error)])
    except Exception as error:
        if not busy.is_busy(error):
            raise
        # The database could not take the write now (api/busy.py): nothing changed, the same input may be sent again.
        busy.note(error, "mutation")
        return make(errors=[UserError(field=None, code=ErrorCode.SERVICE_BUSY, message=busy.MESSAGE)])
    return make(errors=[], **values)


def graphql_error(error: DomainError) -> GraphQLError:
    """For queries, which have no payload: the same code and Chinese message in ``extensions``."""
    return GraphQLError(error.message, extensions={"code": error.code, "field": error.field})
