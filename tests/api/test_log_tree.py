"""Every logger of a process writes JSON through the handlers ``configure_logging`` sets (issue #12 item 11), with the
request id bound where a request caused the line (item 10), and nothing secret in clear (DESIGN.md §6). The served
processes are tested in tests/test_logs_served.py; this one covers the loggers a served test cannot easily provoke
(a bug's traceback through Strawberry, a third-party library's chatter)."""

from __future__ import annotations

import json
import logging

import pytest
from graphql import GraphQLError
from strawberry.utils.logging import StrawberryLogger

from api.logs import bound_request_id, configure_logging, mask_secrets
from api.settings import Settings


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "log" / "app.log"
    configure_logging(Settings(log_file=path, console_log_level="CRITICAL"))
    yield path
    configure_logging(Settings())  # back to the console only (the next app configures afresh anyway)


def read(path) -> list[dict]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_logger_writes_json_naming_the_request(log_file):
    with bound_request_id("req-tree-1"):
        try:
            raise RuntimeError("a bug while serving 13812345678")
        except RuntimeError as bug:
            StrawberryLogger.error(GraphQLError("a bug", original_error=bug))  # what log_errors does for a bug
        logging.getLogger("notifications.channels.console").info("sms (console, not sent) to 138****5678")
        logging.getLogger("arq.worker").info("  0.01s → deliver(5)")
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
        logging.getLogger("esign.verify").warning("a signature that does not verify")
        # A third-party library's INFO (httpx logs each URL, WeChat's carry access_token=…) stays out.
        logging.getLogger("httpx").info("HTTP Request: GET https://api.weixin.qq.com/x?access_token=SECRET123456")
    logging.getLogger("jianshen.notifications").info("outside any request")
    lines = read(log_file)
    by_logger = {line["logger"]: line for line in lines}
    assert set(by_logger) == {"strawberry.execution", "notifications.channels.console", "arq.worker", "uvicorn.error",
                              "esign.verify", "jianshen.notifications"}, lines
    for name, line in by_logger.items():
        assert line.get("request_id") == (None if name == "jianshen.notifications" else "req-tree-1"), line
    traceback = by_logger["strawberry.execution"]
    assert "RuntimeError" in traceback["exc"] and "138****5678" in traceback["exc"]
    assert "13812345678" not in log_file.read_text(encoding="utf-8")


@pytest.mark.parametrize(("text", "masked"), [
    ("to 13812345678.", "to 138****5678."),
    ("手机13812345678已绑定", "手机138****5678已绑定"),
    ("https://api.weixin.qq.com/cgi-bin/x?access_token=ACCESS123456&openid=o", "access_token=***&openid=o"),
    ('{"token": "abcdef123456"}', '{"token": "***"}'),
    ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "Bearer eyJ***"),
    ("request_id e2a3dad13812345678f0947cb54872584d", "request_id e2a3dad13812345678f0947cb54872584d"),  # not a phone
    ("design: 设计方案", "design: 设计方案"),
])
def test_secrets_are_masked_in_any_line(text, masked):
    assert masked in mask_secrets(text)
