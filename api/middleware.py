"""ASGI middleware: who is calling (bearer token → viewer), and one structured log line per request (DESIGN.md §6)."""

from __future__ import annotations

import json
import functools
import logging
import secrets
import sys
import time
from typing import Hashable

import orjson
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api import ws_auth
from api.changes import ChangeMarker, NoMarker, generation
from api.metrics import PATH as METRICS_PATH, Metrics
from api.services.access import Viewer
from api.services.agents import load_viewer
from api.services.tokens import InvalidToken, VerifiedTokens
from api.settings import Settings

log = logging.getLogger("jianshen.request")
VIEWERS_KEPT = 10_000  # viewers remembered for the current generation; when full, forget them all


class JsonFormatter(logging.Formatter):
    """One JSON object per line. The time text is made once per second (a request line is written per request)."""

    _second: int | None = None
    _second_text = ""

    def _time(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second_text = self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z")
            self._second = second
        return self._second_text

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self._time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # a client's lone UTF-16 surrogate, echoed in a message: orjson refuses it, json escapes it
            return json.dumps(entry, default=str)


def configure_logging(settings: Settings) -> None:
    """JSON lines to the console (stderr) at ``JIANSHEN_CONSOLE_LOG_LEVEL``, and, with ``JIANSHEN_LOG_FILE``, to that
    file at ``JIANSHEN_LOG_LEVEL``: ``make demo`` keeps its console for the banner (issue #12)."""
    root = logging.getLogger("jianshen")
    level = logging.getLevelName(settings.log_level.upper())
    console = logging.getLevelName((settings.console_log_level or settings.log_level).upper())
    for handler in [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]:
        root.removeHandler(handler)  # a second app in the same process (tests) configures afresh
        if isinstance(handler, logging.FileHandler):
            handler.close()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(console)
    root.addHandler(handler)
    if settings.log_file is not None:
        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(settings.log_file, encoding="utf-8")
        to_file.setFormatter(JsonFormatter())
        to_file.setLevel(level)
        root.addHandler(to_file)
    root.propagate = False
    root.setLevel(level if settings.log_file is not None else max(level, console))


def _unauthenticated(message: str) -> JSONResponse:
    # Same shape as a GraphQL error response, so the mini-program handles one format.
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


class AuthMiddleware:
    """A present but bad token is refused outright (401; a WebSocket is closed with 4401, api/ws_auth.py); no token
    means an anonymous request.

    The user and its login session are read with the request, so deactivation, logout and a revoked session take
    effect at once; the token's role is not trusted. An applicant's authorisation (经办人授权) is checked here too.
    "Read with the request" costs a query only when the database changed: the viewer found for a token is kept with
    the database generation it was read at (api/changes.py) and reused while the generation is the same, i.e. while
    no transaction, here or in any other process, has committed since.
    """

    def __init__(self, app: ASGIApp, settings: Settings, changes: ChangeMarker | None = None) -> None:
        self.app = app
        self.settings = settings
        self.changes = changes or NoMarker()
        self.tokens = VerifiedTokens(settings)
        self._viewers: dict[tuple[int, str], Viewer | None] = {}
        self._viewers_generation: Hashable | None = None

    async def _viewer(self, scope: Scope, user_id: int, session_id: str) -> Viewer | None:
        current = await generation(self.changes, scope)
        if current is not None and current == self._viewers_generation:
            key = (user_id, session_id)
            if key in self._viewers:
                return self._viewers[key]
        # One query: the user if active, its session if live, its authorisation (经办人授权).
        viewer = await load_viewer(user_id, session_id)
        if current is not None:
            if current != self._viewers_generation:
                self._viewers, self._viewers_generation = {}, current
            if len(self._viewers) >= VIEWERS_KEPT:
                self._viewers.clear()
            self._viewers[(user_id, session_id)] = viewer
        return viewer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") == METRICS_PATH:
            await self.app(scope, receive, send)  # /metrics has its own token (api/metrics.py), not a person's
            return
        scope.setdefault("state", {})["viewer"] = None
        header = b""
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                header = value
                break
        viewer = await self._viewer_for(scope, header.decode("latin-1")) if header else None
        if scope["type"] == "websocket":  # refused with 4401; the token may also come in connection_init
            resolve = functools.partial(self._viewer_for, scope)
            scope["state"]["viewer"] = viewer
            await ws_auth.serve(
                self.app, scope, receive, send, resolve, refused=bool(header) and viewer is None,
                init_timeout=self.settings.ws_init_timeout_seconds,
            )
            return
        if header and viewer is None:
            await _unauthenticated("登录已失效，请重新登录")(scope, receive, send)
            return
        scope["state"]["viewer"] = viewer
        await self.app(scope, receive, send)

    async def _viewer_for(self, scope: Scope, authorization: str) -> Viewer | None:
        """The viewer of an ``Authorization`` value (``Bearer <token>``), or None when it is refused."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = self.tokens.decode(token.strip())
            return await self._viewer(scope, int(claims["sub"]), claims["sid"])
        except InvalidToken:
            return None


class RequestLogMiddleware:
    """One JSON line per request: id, method, path, GraphQL operation, status, duration, user — never the token or a
    phone number — and the same request counted in the Prometheus metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or secrets.token_hex(16)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.observe(scope, status, elapsed)
            if log.isEnabledFor(logging.INFO):
                state = scope.get("state", {})
                viewer = state.get("viewer")
                fields = {
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "user_id": viewer.user_id if viewer else None,
                }
                if state.get("operation"):
                    fields["operation"] = state["operation"]
                if state.get("cache"):
                    fields["cache"] = state["cache"]
                # makeRecord + handle = log.info without looking up the caller's frame (the line has no source).
                log.handle(log.makeRecord(log.name, logging.INFO, "", 0, "request", (), None, extra={"fields": fields}))
