"""ASGI middleware: who is calling (bearer token → viewer), and one structured log line per request (DESIGN.md §6)."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.services.agents import load_viewer
from api.services.tokens import InvalidToken, decode_access_token
from api.settings import Settings

log = logging.getLogger("jianshen.request")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    root = logging.getLogger("jianshen")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(settings.log_level.upper())


def _unauthenticated(message: str) -> JSONResponse:
    # Same shape as a GraphQL error response, so the mini-program handles one format.
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


class AuthMiddleware:
    """A present but bad token is refused outright (401); no token means an anonymous request.

    The user and its login session are re-read on every request, so deactivation, logout and a revoked session take
    effect at once; the token's role is not trusted. An applicant's authorisation (经办人授权) is checked here too.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["viewer"] = None
        header = dict(scope.get("headers") or {}).get(b"authorization", b"").decode("latin-1")
        if header:
            scheme, _, token = header.partition(" ")
            viewer = None
            if scheme.lower() == "bearer" and token:
                try:
                    claims = decode_access_token(self.settings, token.strip())
                    # One query: the user if active, its session if live, its authorisation (经办人授权).
                    viewer = await load_viewer(int(claims["sub"]), claims["sid"])
                except InvalidToken:
                    viewer = None
            if viewer is None:
                if scope["type"] == "http":
                    await _unauthenticated("登录已失效，请重新登录")(scope, receive, send)
                    return
            scope["state"]["viewer"] = viewer
        await self.app(scope, receive, send)


class RequestLogMiddleware:
    """One JSON line per request: id, method, path, status, duration, user. Never the token or a phone number."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = dict(scope.get("headers") or {}).get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = request_id or uuid.uuid4().hex
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
            viewer = scope.get("state", {}).get("viewer")
            log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "user_id": viewer.user_id if viewer else None,
                    }
                },
            )
