"""The service's log lines (DESIGN.md §6, issue #12 items 10–11): one JSON object a line, every line, and every line a
request causes names that request.

- ``REQUEST_ID``: the id of the request being served (``X-Request-Id``, else a random one), a context variable set by
  ``RequestLogMiddleware`` for an HTTP request or a WebSocket. Tasks started while serving inherit it; work that a
  request only *causes* — a notice delivered later by the dispatcher or an arq worker, a certificate's PDF sealed by
  the sweep — carries the id in its row (``notice_delivery.request_id``, ``certificate.request_id``) and binds it
  again (``bound_request_id``) while the work runs, so the worker's lines name the request too.
- ``JsonFormatter`` writes ``request_id`` on every line made while one is bound, and masks what must never be in a log
  in clear — mainland mobile numbers (``138****5678``), JSON web tokens and ``token=`` / ``secret=`` values — in
  whatever a line carries, third-party messages and tracebacks included: a safety net behind the code's own masking.
- ``configure_logging`` puts the handlers on the root logger, so every logger of the process — ours, the notification
  channels', Strawberry's, uvicorn's, arq's — writes JSON; third-party loggers speak from WARNING up (httpx's INFO
  lines carry URLs with access tokens), ours from ``JIANSHEN_LOG_LEVEL``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from typing import Iterator

import orjson

from api.settings import Settings

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("jianshen_request_id", default=None)
# The loggers that speak at JIANSHEN_LOG_LEVEL; every other one (httpx, tortoise, asyncio, …) from WARNING up.
OUR_LOGGERS = ("jianshen", "notifications", "esign", "miniapp", "arq", "strawberry")
# Libraries that may have been given handlers of their own (arq's CLI, uvicorn's default dictConfig): their lines go
# through ours instead, so that they are JSON too.
OWN_HANDLERS_DROPPED = ("arq", "uvicorn", "uvicorn.error", "uvicorn.access")

_PHONE_HINT = re.compile(r"1[3-9]\d{9}")  # cheap: most lines have none, and skip the exact pattern
_PHONE = re.compile(r"(?<![0-9A-Za-z])(1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")  # a mainland mobile number
_JWT = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]+")  # a JSON web token (ours are HS256 JWTs)
_CREDENTIAL_NAMES = ("token", "secret", "password", "sign")
_CREDENTIAL = re.compile(  # a credential in a URL's query or a key=value / "key": "value" text
    r"(?<![A-Za-z])((?:access_token|refresh_token|token|secret|password|signature|sign)[\"']?\s*[=:]\s*[\"']?)"
    r"([^&\s\"',}]{6,})",
    re.IGNORECASE,
)


def mask_secrets(text: str) -> str:
    """Phone numbers, JWTs and ``token=…`` values in ``text``, masked (DESIGN.md §6). A few µs for a line that has
    none (a request line): each pattern runs only where a cheap test says it may match."""
    if _PHONE_HINT.search(text):
        text = _PHONE.sub(r"\1****\2", text)
    if "eyJ" in text:
        text = _JWT.sub("eyJ***", text)
    lowered = text.lower()
    if any(name in lowered for name in _CREDENTIAL_NAMES):
        text = _CREDENTIAL.sub(r"\1***", text)
    return text


def current_request_id() -> str | None:
    return REQUEST_ID.get()


@contextlib.contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    """Lines logged inside name ``request_id`` (a worker doing what a request caused); None leaves things as they are."""
    if not request_id:
        yield
        return
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


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
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        try:
            line = orjson.dumps(entry, default=str).decode()
        except TypeError:  # a client's lone UTF-16 surrogate, echoed in a message: orjson refuses it, json escapes it
            line = json.dumps(entry, default=str)
        return mask_secrets(line)


def configure_logging(settings: Settings) -> None:
    """JSON lines to the console (stderr) at ``JIANSHEN_CONSOLE_LOG_LEVEL``, and, with ``JIANSHEN_LOG_FILE``, to that
    file at ``JIANSHEN_LOG_LEVEL``: ``make demo`` keeps its console for the banner (issue #12). The handlers sit on the
    root logger: every logger of the process writes through them."""
    root = logging.getLogger()
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
    ours = level if settings.log_file is not None else max(level, console)
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(ours)
        logger.propagate = True
    for name in OWN_HANDLERS_DROPPED:
        logger = logging.getLogger(name)
        for own in [h for h in logger.handlers if not isinstance(h.formatter, JsonFormatter)]:
            logger.removeHandler(own)
        logger.propagate = True
    root.setLevel(max(ours, logging.WARNING))
