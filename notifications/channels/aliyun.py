"""SMS through Aliyun (阿里云短信服务), with the official SDK ``alibabacloud-dysmsapi20170525`` (DOMAIN.md §10).

``SendSms`` takes PhoneNumbers, SignName, TemplateCode, TemplateParam (a JSON object of strings) and OutId, which
carries the idempotency key: Aliyun does not de-duplicate, but OutId comes back in delivery receipts and in
QuerySendDetails, so a send can be traced to its notice. The SDK's async call is used (aiohttp), bounded by a timeout.

Answers: ``{"Code": "OK", "BizId": …}`` is delivered. Business errors come with HTTP 200 and a ``Code``; gateway
errors (credentials, signature) as HTTP 4xx, which the SDK raises as ``ClientException``; 5xx as ``ServerException``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_dysmsapi20170525.models import QuerySendDetailsRequest, SendSmsRequest
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ServerException, ThrottlingException
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.runtime import RuntimeOptions

from notifications.channels.base import IdempotencyKey, Outcome, mainland_number, mask_phone
from notifications.rules import SHANGHAI
from notifications.templates import SmsContent

log = logging.getLogger(__name__)

OUT_ID_MAX = 64  # OutId is a short "外部流水扩展字段"; longer keys are hashed to this length
QUERY_PAGE = 50  # QuerySendDetails: PageSize 1..50
QUERY_DAYS = 30  # QuerySendDetails: records of the last 30 days

# Permanent errors, with what staff should read (and do).
PERMANENT = {
    "isv.MOBILE_NUMBER_ILLEGAL": "手机号码格式错误",
    "isv.SMS_TEMPLATE_ILLEGAL": "短信模板不存在或未通过审核，请检查模板配置",
    "isv.SMS_SIGNATURE_ILLEGAL": "短信签名不存在或未通过审核，请检查签名配置",
    "isv.SMS_SIGN_ILLEGAL": "短信签名不合法，请检查签名配置",
    "isv.TEMPLATE_MISSING_PARAMETERS": "短信模板变量缺少参数，请检查模板配置",
    "isv.INVALID_JSON_PARAM": "短信模板参数不是合法的 JSON 字符串对象",
    "isv.INVALID_PARAMETERS": "短信参数异常",
    "isv.PARAM_LENGTH_LIMIT": "短信模板变量超出长度限制",
    "isv.PARAM_NOT_SUPPORT_URL": "短信模板变量不支持网址",
    "isv.BLACK_KEY_CONTROL_LIMIT": "短信模板变量含有禁用关键字",
    "isv.AMOUNT_NOT_ENOUGH": "短信账户余额不足，请充值后重发",
    "isv.OUT_OF_SERVICE": "短信业务已停机，请充值后重发",
    "isv.PRODUCT_UN_SUBSCRIPT": "未开通短信服务",
    "isv.ACCOUNT_NOT_EXISTS": "短信账户不存在",
    "isv.ACCOUNT_ABNORMAL": "短信账户异常",
    "isv.DENY_IP_RANGE": "源 IP 不在短信服务的白名单中",
    "SignatureDoesNotMatch": "阿里云 AccessKey Secret 错误（签名不匹配），请检查配置",
    "InvalidAccessKeyId.NotFound": "阿里云 AccessKey ID 不存在，请检查配置",
    "InvalidAccessKeyId.Inactive": "阿里云 AccessKey ID 已停用，请检查配置",
    "Forbidden.RAM": "阿里云 RAM 用户无权发送短信，请检查授权",
    "isp.RAM_PERMISSION_DENY": "阿里云 RAM 用户无权发送短信，请检查授权",
}
# isv.BUSINESS_LIMIT_CONTROL says which limit in its message: "触发分钟级流控Permits:1", "…小时级…", "…天级…".
# Aliyun's day is the last 24 hours, not the calendar day.
LIMIT_WINDOWS = {"分钟级": 60.0, "小时级": 3600.0, "天级": 86400.0}
RATE_LIMITS = ("isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL")


def classify(code: str, message: str) -> Outcome:
    """An Aliyun error code (from the body, or raised by the SDK) → the outcome of the attempt."""
    reason = f"{PERMANENT.get(code) or message or code} ({code})"
    if code in RATE_LIMITS:
        window = next((seconds for label, seconds in LIMIT_WINDOWS.items() if label in message), 86400.0)
        return Outcome.rate_limit(f"短信发送频率超限：{message} ({code})", code, window)
    if code in PERMANENT:
        return Outcome.permanent(reason, code)
    if code.startswith("Throttling") or code.startswith("isp.") or code in ("InternalError", "ServiceUnavailable"):
        return Outcome.retry(f"短信服务暂时不可用：{message or code} ({code})", code)
    # An unknown code: retried with back-off up to the limit, then dead with this reason in front of staff.
    return Outcome.retry(f"短信服务返回未知错误：{message or code} ({code})", code)


class AliyunSmsChannel:
    name = "sms"
    provider = "aliyun"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        endpoint: str = "dysmsapi.aliyuncs.com",
        protocol: str = "https",
        timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.sign_name = sign_name
        self.timeout = timeout
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        millis = int(timeout * 1000)
        self._client = Client(
            Config(
                access_key_id=access_key_id,
                access_key_secret=access_key_secret,
                endpoint=endpoint,
                protocol=protocol,
                connect_timeout=millis,
                read_timeout=millis,
            )
        )
        self._runtime = RuntimeOptions(connect_timeout=millis, read_timeout=millis, autoretry=False)

    async def send(self, address: str, message: SmsContent, key: IdempotencyKey) -> Outcome:
        number = mainland_number(address)
        if number is None:
            return Outcome.permanent("手机号码格式错误 (isv.MOBILE_NUMBER_ILLEGAL)", "isv.MOBILE_NUMBER_ILLEGAL")
        request = SendSmsRequest(
            phone_numbers=number,
            sign_name=self.sign_name,
            template_code=message.template_id,
            template_param=message.as_json_object() if message.params else None,
            out_id=key.fitted(OUT_ID_MAX),
        )
        response = await self._call(self._client.send_sms_with_options_async(request, self._runtime))
        if isinstance(response, Outcome):
            return response
        body = response.body
        if body.code == "OK":
            log.info("sms sent", extra={"provider": "aliyun", "phone": mask_phone(number), "biz_id": body.biz_id})
            return Outcome.delivered(str(body.biz_id))
        outcome = classify(str(body.code), str(body.message or ""))
        log.warning("sms refused", extra={"provider": "aliyun", "phone": mask_phone(number), "code": body.code})
        return outcome

    async def lookup(self, address: str, key: IdempotencyKey, since: datetime) -> Outcome | None:
        """Whether Aliyun holds a message with our ``OutId`` to ``address`` sent since ``since`` (``QuerySendDetails``).

        The query is per number and per day (``SendDate`` yyyyMMdd, China's calendar day, the last 30 days), 50 records
        a page. A record means Aliyun accepted the message (``SendStatus`` 1 waiting for the receipt, 2 failed at the
        carrier, 3 received): it counts as delivered, as ``SendSms``'s ``OK`` does. The records carry no ``BizId``,
        so the outcome has no message id.
        """
        number = mainland_number(address)
        if number is None:
            return None  # SendSms refuses such a number before sending anything
        wanted = key.fitted(OUT_ID_MAX)
        since = max(since, self.clock() - timedelta(days=QUERY_DAYS))
        for day in china_days(since, self.clock()):
            page = 1
            while True:
                request = QuerySendDetailsRequest(
                    phone_number=number, send_date=day, page_size=QUERY_PAGE, current_page=page
                )
                response = await self._call(self._client.query_send_details_with_options_async(request, self._runtime))
                if isinstance(response, Outcome):
                    return Outcome.retry(f"无法查询短信发送记录：{response.reason}", response.error_code)
                body = response.body
                if body.code != "OK":
                    return Outcome.retry(f"无法查询短信发送记录：{body.message or body.code} ({body.code})", body.code)
                records = body.sms_send_detail_dtos.sms_send_detail_dto if body.sms_send_detail_dtos else []
                for record in records or []:
                    if record.out_id == wanted and _sent_at(record.send_date) >= since.replace(microsecond=0):
                        log.info("sms found in send records", extra={"provider": "aliyun", "phone": mask_phone(number)})
                        return Outcome.delivered(None, f"阿里云发送记录中已有此短信（{record.send_date}）")
                if not records or page * QUERY_PAGE >= int(body.total_count or 0):
                    break
                page += 1
        return None

    async def _call(self, call: Awaitable[Any]) -> Any:
        """The SDK's answer, or the ``Outcome`` of its failure (the SDK raises for HTTP errors and network faults)."""
        try:
            # The SDK's own timeouts bound each socket operation; this bounds the whole call.
            return await asyncio.wait_for(call, self.timeout + 1)
        except asyncio.TimeoutError:
            return Outcome.retry("短信服务响应超时", "Timeout")
        except ThrottlingException as exc:
            return Outcome.retry(f"短信服务限流 ({exc.code})", exc.code, after=float(exc.retry_after or 0) or None)
        except ServerException as exc:
            return Outcome.retry(f"短信服务暂时不可用：HTTP {exc.status_code} ({exc.code})", exc.code)
        except AlibabaCloudException as exc:  # HTTP 4xx: credentials, signature, permissions
            data = exc.data if isinstance(getattr(exc, "data", None), dict) else {}
            return classify(str(exc.code), str(data.get("Message") or exc.message))
        except Exception as exc:  # network errors, wrapped by the SDK in UnretryableException
            inner = getattr(exc, "inner_exception", None) or exc
            detail = getattr(inner, "message", None) or str(inner)
            if isinstance(inner, asyncio.TimeoutError) or "timeout" in str(detail).lower():
                return Outcome.retry("短信服务响应超时", "Timeout")
            return Outcome.retry(f"无法连接短信服务：{detail}", "NetworkError")


def china_days(since: datetime, now: datetime) -> list[str]:
    """The calendar days in China (``yyyyMMdd``) from ``since`` to ``now``: QuerySendDetails asks one day at a time."""
    first, last = since.astimezone(SHANGHAI).date(), now.astimezone(SHANGHAI).date()
    return [(first + timedelta(days=n)).strftime("%Y%m%d") for n in range((last - first).days + 1)]


def _sent_at(text: str | None) -> datetime:
    """``SendDate`` of a record, ``2026-11-24 10:00:00`` in China's time."""
    try:
        return datetime.strptime(text or "", "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        return datetime.max.replace(tzinfo=timezone.utc)  # an unreadable date does not hide a message with our key
