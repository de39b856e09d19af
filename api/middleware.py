"""ASGI middleware: who is calling (bearer token → viewer), and one structured log line per request (DESIGN.md §6)."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api import ws_auth
from api.changes import ChangeMarker, NoMarker, dependencies, generation, notes_reads, recording_reads, still_valid
from api.logs import REQUEST_ID
from api.metrics import PATHS as METRICS_PATHS, Metrics
from api.services.access import Viewer
from api.services.agents import load_viewer
from api.services.tokens import InvalidToken, VerifiedTokens
from api.settings import Settings

log = logging.getLogger("jianshen.request")
VIEWERS_KEPT = 10_000  # viewers remembered; when full, forget them all


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
    the versions of the tables its query read (api/changes.py) and reused while they are the same, i.e. while no
    transaction, here or in any other process, has written to those tables since.
    """

    def __init__(self, app: ASGIApp, settings: Settings, changes: ChangeMarker | None = None) -> None:
        self.app = app
        self.settings = settings
        self.changes = changes or NoMarker()
        self.tokens = VerifiedTokens(settings)
        # Each with what it was read from (api/changes.py: the versions of the tables its query read).
        self._viewers: dict[tuple[int, str], tuple[Viewer | None, tuple]] = {}
        self._loading: dict[tuple, asyncio.Future] = {}  # loads in progress, by token and generation

    async def _viewer(self, scope: Scope, user_id: int, session_id: str) -> Viewer | None:
        current = await generation(self.changes, scope)
        key = (user_id, session_id)
        kept = self._viewers.get(key) if current is not None else None
        if kept is not None and still_valid(kept[1], current):
            return kept[0]
        if current is None:
            return await load_viewer(user_id, session_id)
        # Requests of one token that read the same generation share one load: after a commit to the users' tables
        # (a login anywhere), 32 connections of one person ask once, not 32 times.
        loading = self._loading.get((key, current))
        if loading is not None:
            await asyncio.wait([loading])
            if not loading.cancelled():
                return loading.result()
            return await load_viewer(user_id, session_id)  # the first asker failed: each on its own
        loading = self._loading[(key, current)] = asyncio.get_running_loop().create_future()
        try:
            # One query: the user if active, its session if live, its authorisation (经办人授权).
            with recording_reads() as reads:
                viewer = await load_viewer(user_id, session_id)
        except BaseException:
            loading.cancel()
            raise
        finally:
            self._loading.pop((key, current), None)
        loading.set_result(viewer)
        if len(self._viewers) >= VIEWERS_KEPT:
            self._viewers.clear()
        self._viewers[key] = (viewer, dependencies(current, reads if notes_reads() else None))
        return viewer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in METRICS_PATHS:
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
    phone number — and the same request counted in the Prometheus metrics. The request's id is bound
    (``api.logs.REQUEST_ID``) while it is served, so every line it causes names it; a WebSocket gets an id too, and a
    line when it is accepted and one when it closes (who closed it, the code, the user once known)."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        bound = REQUEST_ID.set(request_id)
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
            REQUEST_ID.reset(bound)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        bound = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        closed: dict[str, object] = {}

        def user_id() -> int | None:
            viewer = scope.get("state", {}).get("viewer")
            return viewer.user_id if viewer else None

        async def send_wrapper(message) -> None:
            if message["type"] == "websocket.accept":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
                log.info("websocket connected", extra={"fields": {
                    "request_id": request_id, "path": scope.get("path"), "user_id": user_id(),
                    "subprotocol": message.get("subprotocol"),
                }})
            elif message["type"] == "websocket.close" and not closed:
                closed.update(code=message.get("code", 1000), by="server")
            await send(message)

        async def receive_wrapper():
            message = await receive()
            if message["type"] == "websocket.disconnect" and not closed:
                closed.update(code=message.get("code", 1005), by="client")
            return message

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            log.info("websocket closed", extra={"fields": {
                "request_id": request_id, "path": scope.get("path"), "user_id": user_id(),
                "code": closed.get("code"), "closed_by": closed.get("by"),
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }})
            REQUEST_ID.reset(bound)


def _request_id(scope: Scope) -> str:
    """The client's ``X-Request-Id`` (64 characters at most), else a new random one."""
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            given = value.decode("latin-1")[:64]
            if given:
                return given
            break
    return secrets.token_hex(16)
