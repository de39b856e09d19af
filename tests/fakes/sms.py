"""Fake Aliyun and Tencent Cloud SMS servers: real HTTP servers on 127.0.0.1 that the official SDKs talk to.

Each speaks its provider's wire format as the SDK really sends it, and answers in the provider's real shapes:

- Aliyun ``SendSms`` (API 2017-05-25, RPC style, signature ``ACS3-HMAC-SHA256``; parameters in the query string):
  ``{"Code": "OK", "Message": "OK", "BizId": …, "RequestId": …}``; business errors come with HTTP 200 and their
  ``Code`` (``isv.BUSINESS_LIMIT_CONTROL``, ``isv.MOBILE_NUMBER_ILLEGAL``, …); gateway errors with HTTP 4xx/5xx
  (``SignatureDoesNotMatch`` 400, ``InvalidAccessKeyId.NotFound`` 404, ``InternalError`` 500).
- Tencent ``SendSms`` (API 2021-01-11, JSON POST with ``X-TC-Action: SendSms``, signature ``TC3-HMAC-SHA256``):
  ``{"Response": {"SendStatusSet": [{"Code": "Ok", "SerialNo": …, …}], "RequestId": …}}``; per-number errors
  (``LimitExceeded.PhoneNumber…``, ``InvalidParameterValue.IncorrectPhoneNumber``) in the status set; request errors
  as ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`` with HTTP 200.

Both verify the request's signature with the configured key, check the sign name, template and phone number like
the real services, de-duplicate nothing (neither provider does) and record every accepted message with its
``OutId`` / ``SessionContext`` in ``accepted``. Both answer the provider's query of what was sent to one number —
Aliyun ``QuerySendDetails`` (``SmsSendDetailDTOs`` with ``OutId``), Tencent ``PullSmsSendStatusByPhoneNumber``
(``PullSmsSendStatusSet`` with ``SessionContext``) — from ``accepted``, with the key as it was received; Tencent's
echo of ``SessionContext`` is an account option there (``pull_session_context``). ``delay`` slows every answer
(seconds), as a loaded provider would. Faults are scriptable: ``fail_next(code)``, ``http_error_next(500)``,
``hang_next()`` (the request gets no answer until the fake stops or ``release()``), each for the next N requests.
``limits`` turns on the per-number limits (Tencent's defaults: 1 per 30 s and 2 per calendar day; Aliyun's 50 per
24 h per sign + template + number for 通知), judged by the fake's ``clock`` (a ``Clock`` tests move by hand).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, quote, urlsplit
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
_MAINLAND = re.compile(r"(?:\+?86|0086)?(1\d{10})")


class Clock:
    """The fake providers' "now", moved by hand (no sleeps in tests)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class AcceptedSms:
    """A message the fake provider accepted (and would have delivered)."""

    phone: str  # 11-digit mainland number
    sign_name: str
    template: str
    params: Any  # Aliyun: dict; Tencent: list
    idempotency: str | None  # OutId / SessionContext as received
    message_id: str  # BizId / SerialNo
    at: datetime


@dataclass
class _Fault:
    kind: str  # "code", "http", "hang"
    code: str = ""
    message: str = ""
    status: int = 500


@dataclass
class _Reply:
    status: int
    body: Any
    content_type: str


class _FakeSmsServer:
    """What both fakes share: the server thread, the scripted faults, the record of accepted messages."""

    provider = ""

    def __init__(
        self,
        *,
        key_id: str,
        secret: str,
        sign_names: tuple[str, ...] = ("建审",),
        templates: tuple[str, ...] | None = None,
        limits: bool = False,
        clock: Callable[[], datetime] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.key_id = key_id
        self.delay = delay
        self.secret = secret
        self.sign_names = set(sign_names)
        self.templates = None if templates is None else set(templates)
        self.limits = limits
        self.clock = clock or Clock()
        self.accepted: list[AcceptedSms] = []
        self.requests: list[dict[str, Any]] = []
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    def start(self) -> "_FakeSmsServer":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                fake._handle(self)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "_FakeSmsServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def host(self) -> str:
        assert self._server, "start the fake first"
        return f"127.0.0.1:{self._server.server_address[1]}"

    # -- scripting ---------------------------------------------------------------------------------------------------

    def fail_next(self, code: str, message: str = "", times: int = 1) -> None:
        """The next ``times`` requests answer the provider error ``code`` (in the provider's own shape)."""
        with self._lock:
            self._faults.extend(_Fault("code", code, message or code) for _ in range(times))

    def http_error_next(self, status: int = 500, times: int = 1) -> None:
        with self._lock:
            self._faults.extend(_Fault("http", status=status) for _ in range(times))

    def hang_next(self, times: int = 1) -> None:
        """The next ``times`` requests get no answer until ``release()`` or ``stop()``: the client must time out."""
        with self._lock:
            self._faults.extend(_Fault("hang") for _ in range(times))

    def release(self) -> None:
        self._release.set()

    def accepted_for(self, idempotency: str) -> list[AcceptedSms]:
        with self._lock:
            return [sms for sms in self.accepted if sms.idempotency == idempotency]

    # -- request handling --------------------------------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        with self._lock:
            self.requests.append({"path": http.path, "headers": dict(http.headers), "body": body})
            fault = self._faults.popleft() if self._faults else None
        if self.delay:
            time.sleep(self.delay)  # this request's own server thread: other requests go on meanwhile
        if fault and fault.kind == "hang":
            self._release.wait(60)
            http.close_connection = True
            return
        if fault and fault.kind == "http":
            reply = self._http_error(fault.status)
        else:
            reply = self._answer(http, body, fault)
        payload = json.dumps(reply.body, ensure_ascii=False).encode() if not isinstance(reply.body, bytes) else reply.body
        http.send_response(reply.status)
        http.send_header("Content-Type", reply.content_type)
        http.send_header("Content-Length", str(len(payload)))
        http.end_headers()
        http.wfile.write(payload)

    def _answer(self, http: BaseHTTPRequestHandler, body: bytes, fault: _Fault | None) -> _Reply:
        raise NotImplementedError

    def _http_error(self, status: int) -> _Reply:
        raise NotImplementedError

    def _accept(self, phone: str, sign: str, template: str, params: Any, idem: str | None, message_id: str) -> None:
        self.accepted.append(AcceptedSms(phone, sign, template, params, idem, message_id, self.clock()))

    def _sent_records(self, phone: str, since: datetime, until: datetime | None = None) -> list[AcceptedSms]:
        """What was accepted for ``phone`` in [since, until], newest first (what the query actions answer from)."""
        with self._lock:
            found = [sms for sms in self.accepted if sms.phone == phone and sms.at >= since
                     and (until is None or sms.at <= until)]
        return sorted(found, key=lambda sms: sms.at, reverse=True)

    def _sent_to(self, phone: str, since: datetime, template: str | None = None, sign: str | None = None) -> int:
        return sum(
            1
            for sms in self.accepted
            if sms.phone == phone
            and sms.at > since
            and (template is None or sms.template == template)
            and (sign is None or sms.sign_name == sign)
        )


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- Aliyun ------------------------------------------------------------------------------------------------------------

ALIYUN_MESSAGES = {
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.SMS_SIGNATURE_ILLEGAL": "该账号下找不到对应签名",
    "isv.SMS_TEMPLATE_ILLEGAL": "该账号下找不到对应模板",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "isv.BUSINESS_LIMIT_CONTROL": "触发天级流控Permits:50",
}
# Gateway errors come with an HTTP status; business errors with 200.
ALIYUN_HTTP_STATUS = {"SignatureDoesNotMatch": 400, "InvalidAccessKeyId.NotFound": 404, "InternalError": 500}
ALIYUN_ACTIONS = ("SendSms", "QuerySendDetails")


class FakeAliyunSms(_FakeSmsServer):
    """Aliyun ``dysmsapi`` ``SendSms``. ``limits``: 50 per 24 h per sign + template + number (and ``per_minute`` /
    ``per_hour`` when set, as for verification codes), answered with ``isv.BUSINESS_LIMIT_CONTROL``."""

    provider = "aliyun"

    def __init__(self, *, per_minute: int | None = None, per_hour: int | None = None, per_day: int = 50, **kw: Any):
        super().__init__(**kw)
        self.per_minute, self.per_hour, self.per_day = per_minute, per_hour, per_day

    def _error(self, code: str, message: str = "") -> _Reply:
        body = {"RequestId": _request_id(), "Code": code, "Message": message or ALIYUN_MESSAGES.get(code, code)}
        status = ALIYUN_HTTP_STATUS.get(code, 400 if code.startswith(("Missing", "InvalidParameter")) else 200)
        if status != 200:
            body.update(HostId="dysmsapi.aliyuncs.com", Recommend="https://api.aliyun.com/troubleshoot")
        return _Reply(status, body, "application/json;charset=utf-8")

    def _http_error(self, status: int) -> _Reply:
        body = {
            "RequestId": _request_id(),
            "HostId": "dysmsapi.aliyuncs.com",
            "Code": "InternalError" if status == 500 else "ServiceUnavailable",
            "Message": "The request processing has failed due to some unknown error, exception or failure.",
        }
        return _Reply(status, body, "application/json;charset=utf-8")

    def _signature_error(self, http: BaseHTTPRequestHandler, query: dict[str, str], body: bytes) -> _Reply | None:
        """Check the ACS3-HMAC-SHA256 signature exactly as Aliyun's gateway does."""
        auth = http.headers.get("Authorization", "")
        match = re.fullmatch(r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)", auth)
        if not match:
            return self._error("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        key_id, signed, signature = match.groups()
        if key_id != self.key_id:
            return self._error("InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        payload_hash = http.headers.get("x-acs-content-sha256", "")
        if payload_hash != _sha256(body):
            return self._error("SignatureDoesNotMatch", "The payload hash does not match.")
        canonical_query = "&".join(f"{k}={quote(query[k], safe='~')}" for k in sorted(query))
        names = signed.split(";")
        canonical_headers = "".join(f"{name}:{(http.headers.get(name) or '').strip()}\n" for name in names)
        path = urlsplit(http.path).path or "/"
        canonical = f"{http.command}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed}\n{payload_hash}"
        to_sign = f"ACS3-HMAC-SHA256\n{_sha256(canonical.encode())}"
        expected = hmac.new(self.secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return self._error("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        return None

    def _answer(self, http: BaseHTTPRequestHandler, body: bytes, fault: _Fault | None) -> _Reply:
        query = dict(parse_qsl(urlsplit(http.path).query, keep_blank_values=True))
        action = http.headers.get("x-acs-action")
        if action not in ALIYUN_ACTIONS or http.headers.get("x-acs-version") != "2017-05-25":
            return self._error("InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
        error = self._signature_error(http, query, body)
        if error:
            return error
        if fault:
            return self._error(fault.code, fault.message if fault.message != fault.code else "")
        if action == "QuerySendDetails":
            return self._query_send_details(query)
        match = _MAINLAND.fullmatch(query.get("PhoneNumbers", ""))
        if not match:
            return self._error("isv.MOBILE_NUMBER_ILLEGAL")
        phone, sign, template = match.group(1), query.get("SignName", ""), query.get("TemplateCode", "")
        if sign not in self.sign_names:
            return self._error("isv.SMS_SIGNATURE_ILLEGAL")
        if self.templates is not None and template not in self.templates:
            return self._error("isv.SMS_TEMPLATE_ILLEGAL")
        try:
            params = json.loads(query.get("TemplateParam") or "{}")
            assert isinstance(params, dict) and all(isinstance(v, str) for v in params.values())
        except (ValueError, AssertionError):
            return self._error("isv.INVALID_JSON_PARAM")
        with self._lock:
            if self.limits:
                now = self.clock()
                for window, permits, label in (
                    (timedelta(minutes=1), self.per_minute, "分钟级"),
                    (timedelta(hours=1), self.per_hour, "小时级"),
                    (timedelta(days=1), self.per_day, "天级"),
                ):
                    if permits is not None and self._sent_to(phone, now - window, template, sign) >= permits:
                        return self._error("isv.BUSINESS_LIMIT_CONTROL", f"触发{label}流控Permits:{permits}")
            biz_id = f"{900000000000000 + next(self._ids)}^0"
            self._accept(phone, sign, template, params, query.get("OutId"), biz_id)
        return _Reply(200, {"RequestId": _request_id(), "Message": "OK", "BizId": biz_id, "Code": "OK"},
                      "application/json;charset=utf-8")

    def _query_send_details(self, query: dict[str, str]) -> _Reply:
        """``QuerySendDetails``: one number's records of one day (China's), paged, each with the OutId it was sent with."""
        for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            if not query.get(name):
                return self._error(f"Missing{name}", f"{name} is mandatory for this action.")
        if not re.fullmatch(r"1\d{10}", query["PhoneNumber"]):
            return self._error("isv.MOBILE_NUMBER_ILLEGAL")
        try:
            day = datetime.strptime(query["SendDate"], "%Y%m%d").replace(tzinfo=SHANGHAI)
            size, page = int(query["PageSize"]), int(query["CurrentPage"])
            assert 1 <= size <= 50 and page >= 1
        except (ValueError, AssertionError):
            return self._error("isv.INVALID_PARAMETERS", "参数异常")
        if day < self.clock().astimezone(SHANGHAI) - timedelta(days=31):
            return self._error("isv.INVALID_PARAMETERS", "只支持查询最近30天的记录")
        records = self._sent_records(query["PhoneNumber"], day, day + timedelta(days=1) - timedelta(microseconds=1))
        biz_id = query.get("BizId")
        if biz_id:
            records = [sms for sms in records if sms.message_id == biz_id]
        shown = records[(page - 1) * size : page * size]

        def dto(sms: AcceptedSms) -> dict[str, Any]:
            at = sms.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
            text = "".join(str(value) for value in sms.params.values())
            detail = {"PhoneNum": sms.phone, "SendStatus": 3, "ErrCode": "DELIVERED", "TemplateCode": sms.template,
                      "Content": f"【{sms.sign_name}】{text}", "SendDate": at, "ReceiveDate": at}
            if sms.idempotency is not None:
                detail["OutId"] = sms.idempotency
            return detail

        body = {"RequestId": _request_id(), "Code": "OK", "Message": "OK", "TotalCount": len(records),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": [dto(sms) for sms in shown]}}
        return _Reply(200, body, "application/json;charset=utf-8")


# -- Tencent -----------------------------------------------------------------------------------------------------------

TENCENT_MESSAGES = {
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. Please check your signature is correct.",
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your SecretId is correct.",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": "SmsSdkAppId verify fail.",
    "FailedOperation.SignatureIncorrectOrUnapproved": "signature format error or signature not approved",
    "FailedOperation.TemplateIncorrectOrUnapproved": "template format error or template not approved",
    "InvalidParameterValue.IncorrectPhoneNumber": "incorrect phone number",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "the number of SMS messages sent from a single mobile number within 30 seconds exceeds the upper limit",
    "LimitExceeded.PhoneNumberOneHourLimit": "the number of SMS messages sent from a single mobile number within 1 hour exceeds the upper limit",
    "LimitExceeded.PhoneNumberDailyLimit": "the number of SMS messages sent from a single mobile number every day exceeds the upper limit",
    "LimitExceeded.PhoneNumberSameContentDailyLimit": "the number of SMS messages with the same content sent to a single mobile number every day exceeds the upper limit",
    "InternalError.Timeout": "request timeout",
}
TENCENT_ACTIONS = ("SendSms", "PullSmsSendStatusByPhoneNumber")
# Codes about one number of the batch: they come in that number's SendStatus, not as a request error.
_PER_NUMBER = ("LimitExceeded.PhoneNumber", "InvalidParameterValue.IncorrectPhoneNumber", "FailedOperation.PhoneNumberInBlacklist")


class FakeTencentSms(_FakeSmsServer):
    """Tencent Cloud ``sms`` ``SendSms``. ``limits``: per number, ``per_30s`` (1) and ``per_day`` (2, calendar day in
    China), and ``per_hour`` when set, answered with ``LimitExceeded.PhoneNumber…`` in the number's status."""

    provider = "tencent"

    def __init__(
        self,
        *,
        sdk_app_id: str = "1400000001",
        per_30s: int = 1,
        per_hour: int | None = None,
        per_day: int = 2,
        pull_session_context: bool = True,
        **kw: Any,
    ):
        super().__init__(**kw)
        self.sdk_app_id = sdk_app_id
        self.pull_session_context = pull_session_context  # Tencent enables the echo per account, on request
        self.per_30s, self.per_hour, self.per_day = per_30s, per_hour, per_day

    def _error(self, code: str, message: str = "") -> _Reply:
        error = {"Code": code, "Message": message or TENCENT_MESSAGES.get(code, code)}
        return _Reply(200, {"Response": {"Error": error, "RequestId": str(uuid.uuid4())}}, "application/json")

    def _status(self, phone: str, code: str, message: str = "", session: str = "", serial: str = "") -> _Reply:
        status = {
            "SerialNo": serial,
            "PhoneNumber": phone,
            "Fee": 1 if code == "Ok" else 0,
            "SessionContext": session,
            "Code": code,
            "Message": message or ("send success" if code == "Ok" else TENCENT_MESSAGES.get(code, code)),
            "IsoCode": "CN",
        }
        return _Reply(200, {"Response": {"SendStatusSet": [status], "RequestId": str(uuid.uuid4())}}, "application/json")

    def _http_error(self, status: int) -> _Reply:
        return _Reply(status, b"<html><body>502 Bad Gateway</body></html>" if status != 500 else b"Internal Server Error",
                      "text/html")

    def _signature_error(self, http: BaseHTTPRequestHandler, body: bytes) -> _Reply | None:
        """Check the TC3-HMAC-SHA256 signature exactly as Tencent Cloud's API gateway does."""
        auth = http.headers.get("Authorization", "")
        match = re.fullmatch(
            r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/(\w+)/tc3_request, "
            r"SignedHeaders=([a-z;-]+), Signature=([0-9a-f]{64})",
            auth,
        )
        if not match:
            return self._error("AuthFailure.InvalidAuthorization", "Authorization header is invalid.")
        key_id, day, service, signed, signature = match.groups()
        if key_id != self.key_id:
            return self._error("AuthFailure.SecretIdNotFound")
        timestamp = http.headers.get("X-TC-Timestamp", "")
        if not timestamp.isdigit() or datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%d") != day:
            return self._error("AuthFailure.SignatureFailure")
        canonical_headers = "".join(f"{name}:{(http.headers.get(name) or '').strip()}\n" for name in signed.split(";"))
        query = urlsplit(http.path).query
        canonical = f"{http.command}\n{urlsplit(http.path).path}\n{query}\n{canonical_headers}\n{signed}\n{_sha256(body)}"
        to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{day}/{service}/tc3_request\n{_sha256(canonical.encode())}"
        key = ("TC3" + self.secret).encode()
        for part in (day, service, "tc3_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return self._error("AuthFailure.SignatureFailure")
        return None

    def _answer(self, http: BaseHTTPRequestHandler, body: bytes, fault: _Fault | None) -> _Reply:
        action = http.headers.get("X-TC-Action")
        if action not in TENCENT_ACTIONS or http.headers.get("X-TC-Version") != "2021-01-11":
            return self._error("InvalidAction", "The action requested is invalid.")
        error = self._signature_error(http, body)
        if error:
            return error
        try:
            request = json.loads(body)
        except ValueError:
            return self._error("FailedOperation.JsonParseFail", "json parse fail")
        if action == "PullSmsSendStatusByPhoneNumber":
            if fault:
                return self._error(fault.code, fault.message if fault.message != fault.code else "")
            return self._pull_status(request)
        numbers = request.get("PhoneNumberSet") or []
        if len(numbers) != 1:
            return self._error("MissingParameter.EmptyPhoneNumberSet" if not numbers else "UnsupportedOperation",
                               "the fake sends to one number per request")
        sent_as = numbers[0]
        session = request.get("SessionContext", "")
        if fault:
            message = fault.message if fault.message != fault.code else ""
            if fault.code.startswith(_PER_NUMBER):
                return self._status(sent_as, fault.code, message, session)
            return self._error(fault.code, message)
        if request.get("SmsSdkAppId") != self.sdk_app_id:
            return self._error("UnauthorizedOperation.SmsSdkAppIdVerifyFail")
        sign, template = request.get("SignName", ""), request.get("TemplateId", "")
        if sign not in self.sign_names:
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved")
        if self.templates is not None and template not in self.templates:
            return self._error("FailedOperation.TemplateIncorrectOrUnapproved")
        match = _MAINLAND.fullmatch(sent_as)
        if not match:
            return self._status(sent_as, "InvalidParameterValue.IncorrectPhoneNumber", session=session)
        phone = match.group(1)
        with self._lock:
            if self.limits:
                now = self.clock()
                local = now.astimezone(SHANGHAI)
                midnight = datetime(local.year, local.month, local.day, tzinfo=SHANGHAI) - timedelta(microseconds=1)
                for since, permits, code in (
                    (now - timedelta(seconds=30), self.per_30s, "LimitExceeded.PhoneNumberThirtySecondLimit"),
                    (now - timedelta(hours=1), self.per_hour, "LimitExceeded.PhoneNumberOneHourLimit"),
                    (midnight, self.per_day, "LimitExceeded.PhoneNumberDailyLimit"),
                ):
                    if permits is not None and self._sent_to(phone, since) >= permits:
                        return self._status(sent_as, code, session=session)
            serial = f"2645:{100000000000000000 + next(self._ids)}"
            self._accept(phone, sign, template, request.get("TemplateParamSet", []), session or None, serial)
        return self._status(f"+86{phone}", "Ok", session=session, serial=serial)

    def _pull_status(self, request: dict[str, Any]) -> _Reply:
        """``PullSmsSendStatusByPhoneNumber``: one number's sending statuses in [BeginTime, EndTime], at most Limit."""
        for name in ("BeginTime", "Offset", "Limit", "PhoneNumber", "SmsSdkAppId"):
            if request.get(name) is None:
                return self._error("MissingParameter", f"The request is missing a required parameter `{name}`.")
        if request["SmsSdkAppId"] != self.sdk_app_id:
            return self._error("UnauthorizedOperation.SmsSdkAppIdVerifyFail")
        match = re.fullmatch(r"\+86(1\d{10})", str(request["PhoneNumber"]))
        if not match:
            return self._error("InvalidParameterValue.IncorrectPhoneNumber")
        limit, begin, end = request["Limit"], request["BeginTime"], request.get("EndTime")
        if not (isinstance(limit, int) and 1 <= limit <= 100) or request["Offset"] != 0:
            return self._error("InvalidParameterValue", "Limit is 1..100 and Offset is 0.")
        if not isinstance(begin, int) or begin < (self.clock() - timedelta(days=7)).timestamp() - 60:
            return self._error("InvalidParameterValue", "BeginTime must be within the last 7 days.")
        until = datetime.fromtimestamp(end, timezone.utc) if isinstance(end, int) else None
        records = self._sent_records(match.group(1), datetime.fromtimestamp(begin, timezone.utc), until)[:limit]
        statuses = [
            {
                "UserReceiveTime": int(sms.at.timestamp()),
                "CountryCode": "86",
                "SubscriberNumber": sms.phone,
                "PhoneNumber": f"+86{sms.phone}",
                "SerialNo": sms.message_id,
                "ReportStatus": "SUCCESS",
                "Description": "DELIVRD",
                "SessionContext": (sms.idempotency or "") if self.pull_session_context else "",
            }
            for sms in records
        ]
        return _Reply(200, {"Response": {"PullSmsSendStatusSet": statuses, "RequestId": str(uuid.uuid4())}},
                      "application/json")
