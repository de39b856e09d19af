"""A database that cannot take a write now is the client's cue to retry, not an internal error (issue #10, item 9).

Another process holding SQLite's write lock, a PostgreSQL row or table lock past ``lock_timeout``, a serialization
failure or a deadlock: the request changed nothing and the same request will most likely succeed in a moment. Every
answer says so the same way: ``SERVICE_BUSY`` — in a mutation's payload ``errors``, as a GraphQL error's
``extensions.code`` for queries, and HTTP 503 with ``Retry-After`` on the REST routes. This module is the one place that
recognises such failures, whatever layer wrapped them (Tortoise wraps the driver's exception in its own).
"""

from __future__ import annotations

import logging
import sqlite3

from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger("jianshen.busy")

CODE = "SERVICE_BUSY"
MESSAGE = "系统繁忙，请稍后重试"
RETRY_AFTER_SECONDS = 2

# SQLITE_BUSY (another connection holds the lock; extended codes such as BUSY_SNAPSHOT share the low byte) and
# SQLITE_LOCKED (a conflict inside a shared cache). https://sqlite.org/rescode.html
_SQLITE_BUSY_CODES = {5, 6}
_SQLITE_BUSY_TEXT = ("database is locked", "database table is locked", "database schema is locked")
# PostgreSQL SQLSTATEs: lock_not_available (lock_timeout, NOWAIT), query_canceled (statement_timeout),
# serialization_failure, deadlock_detected. https://www.postgresql.org/docs/current/errcodes-appendix.html
_POSTGRES_BUSY_STATES = {"55P03", "57014", "40001", "40P01"}


class DatabaseBusy(Exception):
    """Raised by our own code when it gave up waiting for the database (e.g. this process's write connection)."""


def is_busy(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it wraps, means "the database is busy: retry soon"."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, DatabaseBusy):
            return True
        if isinstance(error, sqlite3.OperationalError):
            code = getattr(error, "sqlite_errorcode", None)
            if (code is not None and code & 0xFF in _SQLITE_BUSY_CODES) or str(error).startswith(_SQLITE_BUSY_TEXT):
                return True
        if getattr(error, "sqlstate", None) in _POSTGRES_BUSY_STATES:  # asyncpg's PostgresError
            return True
        pending.extend(arg for arg in getattr(error, "args", ()) if isinstance(arg, BaseException))
        pending.extend((error.__cause__, error.__context__))
        original = getattr(error, "original_error", None)  # a GraphQLError around a resolver's exception
        if isinstance(original, BaseException):
            pending.append(original)
    return False


def note(exc: BaseException, where: str) -> None:
    """One line, no traceback: a busy database is an expected condition, and a flood of tracebacks helps nobody."""
    log.warning("database busy in %s: %s: %s", where, type(exc).__name__, exc)


def busy_response() -> JSONResponse:
    """The REST routes' answer: the same ``{"error": {...}}`` shape as their other refusals."""
    return JSONResponse(
        {"error": {"code": CODE, "message": MESSAGE, "field": None}},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def answer_busy(request: Request, exc: Exception) -> JSONResponse:
    """Starlette exception handler for the database layer's exceptions: busy → 503; anything else stays a bug."""
    if not is_busy(exc) or request.scope["type"] != "http":
        raise exc
    note(exc, request.url.path)
    return busy_response()


def handlers() -> dict:
    """Starlette ``exception_handlers`` for the exceptions a busy database raises, whichever layer they come from."""
    import asyncpg
    from tortoise.exceptions import BaseORMException

    return {kind: answer_busy for kind in (BaseORMException, sqlite3.Error, asyncpg.PostgresError, DatabaseBusy)}
