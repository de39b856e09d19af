"""A fake WeChat API server: a real HTTP server on 127.0.0.1 speaking WeChat's wire formats and error codes.

Point the service at it with ``JIANSHEN_WECHAT_API_BASE_URL=fake.url`` (``fake.settings_overrides()`` gives the three
settings). What it does, as the real platform does (DOMAIN.md §11):

- ``GET /sns/jscode2session``: login codes from ``issue_login_code`` are single-use (a second use answers 40029);
- ``POST /wxa/business/getuserphonenumber``: phone codes from ``issue_phone_code`` are single-use and live 5 minutes
  by the fake's own clock (``advance(seconds)``);
- ``POST /cgi-bin/stable_token``: a token living 7200 s; normal mode returns the current one, ``force_refresh`` makes a
  new one; ``expire_tokens()`` makes every token issued so far answer 40001;
- ``POST /wxa/msg_sec_check`` (version 2): ``risky`` when the content contains ``RISKY_MARKER``, ``review`` with
  ``REVIEW_MARKER``, else ``pass``;
- ``POST /cgi-bin/message/subscribe/send``: 40003 for an openid it never issued, 47003 for malformed data, 43101 unless
  ``grant_consent(openid, template_id)`` was called (each consent is used by one message); sent messages are in ``sent``.

``fail_next(path, errcode)`` makes the next call(s) of a path answer that error (45011, 40226, -1, …). ``calls`` counts
the calls per path; ``requests`` keeps every request (path, query, JSON body) for exact assertions.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

RISKY_MARKER = "【违规】"
REVIEW_MARKER = "【待审】"

LOGIN = "/sns/jscode2session"
PHONE = "/wxa/business/getuserphonenumber"
STABLE_TOKEN = "/cgi-bin/stable_token"
MSG_SEC_CHECK = "/wxa/msg_sec_check"
SUBSCRIBE_SEND = "/cgi-bin/message/subscribe/send"

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret",
    40226: "high risk user",
    41001: "access_token missing",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    47003: "argument invalid! data.thing1.value exceeds limit",
}
TOKEN_LIFE = 7200
PHONE_CODE_LIFE = 300
THING_MAX = 20  # ``thing`` keywords take at most 20 characters


@dataclass
class SentMessage:
    openid: str
    template_id: str
    data: dict[str, str]
    page: str | None
    state: str | None


@dataclass
class _Login:
    openid: str
    unionid: str | None
    session_key: str


@dataclass
class _State:
    now: float = 1_800_000_000.0
    logins: dict[str, _Login] = field(default_factory=dict)
    phones: dict[str, tuple[str, float]] = field(default_factory=dict)  # code → (phone, issued at)
    token: str | None = None
    token_expires_at: float = 0.0
    dead_tokens: set[str] = field(default_factory=set)
    openids: set[str] = field(default_factory=set)
    consents: Counter = field(default_factory=Counter)  # (openid, template) → one-time consents
    failures: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))


class FakeWeChat:
    """Start with ``FakeWeChat.start()``; stop with ``stop()`` (or use it as a context manager)."""

    def __init__(self, app_id: str = "wx0123456789abcdef", app_secret: str = "fake-app-secret-0123456789abcdef"):
        self.app_id = app_id
        self.app_secret = app_secret
        self.lock = threading.Lock()
        self.state = _State()
        self.calls: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.sent: list[SentMessage] = []
        self._numbers = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------

    @classmethod
    def start(cls, **kwargs: Any) -> "FakeWeChat":
        fake = cls(**kwargs)
        handler = type("Handler", (_Handler,), {"fake": fake})
        fake._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        fake._server.daemon_threads = True
        fake._thread = threading.Thread(target=fake._server.serve_forever, name="fake-wechat", daemon=True)
        fake._thread.start()
        return fake

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeWeChat":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def settings_overrides(self) -> dict[str, str]:
        return {"wechat_app_id": self.app_id, "wechat_app_secret": self.app_secret, "wechat_api_base_url": self.url}

    # -- what tests arrange ---------------------------------------------------------------------------------------

    def issue_login_code(self, openid: str | None = None, *, unionid: str | None = None) -> str:
        """A ``wx.login()`` code for ``openid`` (a new one when not given), valid once."""
        n = next(self._numbers)
        openid = openid or f"o{n:03d}{secrets.token_hex(12)}"
        code = f"login-{n}-{secrets.token_hex(8)}"
        with self.lock:
            self.state.logins[code] = _Login(openid, unionid, secrets.token_urlsafe(18))
            self.state.openids.add(openid)
        return code

    def session_key_of(self, code: str) -> str:
        """The session_key the fake gave (or will give) for a login code — so a test can look for it in the database."""
        return self.state.logins[code].session_key

    def issue_phone_code(self, phone: str) -> str:
        """A ``getPhoneNumber`` code for a mainland number: single use, 5 minutes."""
        code = f"phone-{next(self._numbers)}-{secrets.token_hex(8)}"
        with self.lock:
            self.state.phones[code] = (phone, self.state.now)
        return code

    def add_openid(self, openid: str) -> None:
        with self.lock:
            self.state.openids.add(openid)

    def grant_consent(self, openid: str, template_id: str, count: int = 1) -> None:
        """As if the user accepted ``wx.requestSubscribeMessage`` for the template ``count`` times."""
        with self.lock:
            self.state.openids.add(openid)
            self.state.consents[(openid, template_id)] += count

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """The next ``times`` calls of ``path`` answer ``errcode`` (45011, 40226, -1, …)."""
        with self.lock:
            self.state.failures[path].extend([errcode] * times)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (phone codes and tokens age by it)."""
        with self.lock:
            self.state.now += seconds

    def expire_tokens(self) -> None:
        """Every access token issued so far is refused with 40001 from now on (as after a refresh elsewhere)."""
        with self.lock:
            if self.state.token:
                self.state.dead_tokens.add(self.state.token)
            self.state.token = None

    @property
    def current_token(self) -> str | None:
        return self.state.token

    # -- answering ------------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> dict[str, Any]:
        with self.lock:
            self.calls[path] += 1
            self.requests.append((path, query, body))
            queued = self.state.failures.get(path)
            if queued:
                return _error(queued.popleft())
            route = {
                ("GET", LOGIN): self._login,
                ("POST", STABLE_TOKEN): self._stable_token,
                ("POST", PHONE): self._phone,
                ("POST", MSG_SEC_CHECK): self._msg_sec_check,
                ("POST", SUBSCRIBE_SEND): self._subscribe_send,
            }.get((method, path))
            if route is None:
                return {"errcode": 404, "errmsg": f"no such api {path}"}
            if path not in (LOGIN, STABLE_TOKEN):
                refused = self._check_token(query.get("access_token"))
                if refused:
                    return refused
            return route(query, body if isinstance(body, dict) else {})

    def _check_token(self, token: str | None) -> dict | None:
        if not token:
            return _error(41001)
        if token in self.state.dead_tokens or token != self.state.token:
            return _error(40001)
        if self.state.now >= self.state.token_expires_at:
            return _error(42001)
        return None

    def _login(self, query: dict[str, str], _body: dict) -> dict:
        if query.get("appid") != self.app_id:
            return _error(40013)
        if query.get("secret") != self.app_secret:
            return _error(40125)
        if query.get("grant_type") != "authorization_code":
            return _error(47001)
        login = self.state.logins.pop(query.get("js_code", ""), None)  # single use
        if login is None:
            return _error(40029)
        answer = {"openid": login.openid, "session_key": login.session_key}
        if login.unionid:
            answer["unionid"] = login.unionid
        return answer

    def _stable_token(self, _query: dict[str, str], body: dict) -> dict:
        if body.get("grant_type") != "client_credential":
            return _error(47001)
        if body.get("appid") != self.app_id:
            return _error(40013)
        if body.get("secret") != self.app_secret:
            return _error(40125)
        s = self.state
        if body.get("force_refresh") or s.token is None or s.now >= s.token_expires_at:
            if s.token:
                s.dead_tokens.add(s.token)
            s.token = f"ACCESS_TOKEN_{next(self._numbers)}_{secrets.token_hex(8)}"
            s.token_expires_at = s.now + TOKEN_LIFE
        return {"access_token": s.token, "expires_in": int(s.token_expires_at - s.now)}

    def _phone(self, _query: dict[str, str], body: dict) -> dict:
        entry = self.state.phones.pop(body.get("code", ""), None)  # single use
        if entry is None or self.state.now - entry[1] > PHONE_CODE_LIFE:
            return _error(40029)
        phone = entry[0]
        return {
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": phone,
                "purePhoneNumber": phone,
                "countryCode": "86",
                "watermark": {"timestamp": int(self.state.now), "appid": self.app_id},
            },
        }

    def _msg_sec_check(self, _query: dict[str, str], body: dict) -> dict:
        content = body.get("content")
        if body.get("version") != 2 or not isinstance(content, str) or body.get("scene") not in (1, 2, 3, 4):
            return _error(47001)
        if not body.get("openid") or body["openid"] not in self.state.openids:
            return _error(40003)
        if RISKY_MARKER in content:
            suggest, label = "risky", 20001
        elif REVIEW_MARKER in content:
            suggest, label = "review", 21000
        else:
            suggest, label = "pass", 100
        trace = secrets.token_hex(12)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "trace_id": trace,
            "result": {"suggest": suggest, "label": label},
            "detail": [{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90}],
        }

    def _subscribe_send(self, _query: dict[str, str], body: dict) -> dict:
        openid, template = body.get("touser"), body.get("template_id")
        if not openid or openid not in self.state.openids:
            return _error(40003)
        data = body.get("data")
        if not template or not isinstance(data, dict) or not data:
            return _error(47003)
        values: dict[str, str] = {}
        for key, entry in data.items():
            value = entry.get("value") if isinstance(entry, dict) else None
            if not isinstance(value, str) or not value or (key.startswith("thing") and len(value) > THING_MAX):
                return _error(47003)
            values[key] = value
        if self.state.consents[(openid, template)] <= 0:
            return _error(43101)
        self.state.consents[(openid, template)] -= 1
        self.sent.append(SentMessage(openid, template, values, body.get("page"), body.get("miniprogram_state")))
        return {"errcode": 0, "errmsg": "ok", "msgid": next(self._numbers)}


def _error(errcode: int) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": f"{ERRMSG.get(errcode, 'error')} rid: {secrets.token_hex(4)}"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeWeChat
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._answer("POST")

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer = _error(47001)
        else:
            answer = self.fake.handle(method, parts.path, query, body)
        payload = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        # WeChat answers errors with HTTP 200 and an ``errcode`` in the body.
        self.send_response(200)
        self.send_header("Content-Type", "application/json; encoding=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass
