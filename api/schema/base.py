"""Shared GraphQL pieces: global ids, the Node interface, page info, errors-as-data (DESIGN.md §3)."""

from __future__ import annotations

from enum import Enum
from typing import Awaitable, Callable, TypeVar

import strawberry
from graphql import GraphQLError

from api import busy
from api.db import key_max
from api.domain.errors import DomainError
from api.domain.ids import INT_MAX, key_of, to_global_id
from api.schema.direct import context_only


# Node types whose ids were first issued under another name (the model's): those ids are still accepted (issue #12).
FORMER_NAMES: dict[str, tuple[str, ...]] = {"NoticeDelivery": ("Delivery",), "Viewer": ("User",)}
CURRENT_NAME = {old: new for new, olds in FORMER_NAMES.items() for old in olds}
_MODEL_OF = {"NoticeDelivery": "Delivery", "Viewer": "User"}  # node types not named like their model


def model_key_max(type_name: str) -> int:
    """The key range of the table behind the node type ``type_name`` (most bear their model's class name)."""
    from api import models

    model = getattr(models, _MODEL_OF.get(type_name, type_name), None)
    return key_max(model) if model is not None else INT_MAX


def node_key(global_id: object, type_name: str) -> int | None:
    """The key of a global id of the node type ``type_name``, or of one issued under its former name; None for a
    malformed id, another type's, or a key no row of that table can have."""
    for name in (type_name, *FORMER_NAMES.get(type_name, ())):
        pk = key_of(global_id, name, model_key_max(type_name))
        if pk is not None:
            return pk
    return None


def pk_of(global_id: str, type_name: str, field: str = "id") -> int:
    """The integer key behind a global id of ``type_name``; a malformed id, or one whose key no row of that table
    can have, is a field-level error."""
    pk = node_key(global_id, type_name)
    if pk is None:
        raise DomainError("INVALID_ID", "编号格式不正确", field)
    return pk


@strawberry.interface(description="An object with a global id (Relay): `node(id:)` fetches it again.")
class Node:
    @strawberry.field(description="Global id: the type name and the key, base64url-encoded.")
    @context_only
    def id(self, info: strawberry.Info) -> strawberry.ID:
        # ``self`` is the Tortoise model instance; the id names the GraphQL type it is resolved as (``node()`` reads it).
        return strawberry.ID(to_global_id(info.path.typename, self.pk))


@strawberry.type(description="Where a page of a connection lies in the list (Relay).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(description="Whether the list has items before this page's first")
    start_cursor: str | None = strawberry.field(description="The cursor of this page's first item; null when empty")
    end_cursor: str | None = strawberry.field(description="The cursor of this page's last item; null when empty")


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
    PROJECT_UNKNOWN = "PROJECT_UNKNOWN"
    CASE_CODE_TAKEN = "CASE_CODE_TAKEN"
    CERTIFICATE_NUMBER_TAKEN = "CERTIFICATE_NUMBER_TAKEN"
    CSRF_FAILED = "CSRF_FAILED"  # the dashboard's pages: a POST without the page's own token (403)


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
