"""SMS through Tencent Cloud (腾讯云短信), with the official SDK ``tencentcloud-sdk-python-sms`` (DOMAIN.md §10).

``SendSms`` (API 2021-01-11) takes PhoneNumberSet (``+86…``), SmsSdkAppId, SignName, TemplateId, TemplateParamSet
(positional) and SessionContext, which carries the idempotency key (Tencent echoes it and does not de-duplicate). The
SDK's async client (httpx) is used, bounded by a timeout; endpoint and scheme come from its ``HttpProfile``.

Answers: request errors come as ``Response.Error`` (the SDK raises ``TencentCloudSDKException``), per-number results
in ``Response.SendStatusSet[i].Code`` (``Ok`` or an error code such as ``LimitExceeded.PhoneNumberDailyLimit``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import httpx
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111.models import PullSmsSendStatusByPhoneNumberRequest, SendSmsRequest
from tencentcloud.sms.v20210111.sms_client_async import SmsClient

from notifications.channels.base import IdempotencyKey, Outcome, mainland_number, mask_phone
from notifications.rules import next_local_midnight
from notifications.templates import SmsContent

log = logging.getLogger(__name__)

SESSION_CONTEXT_MAX = 500  # "长度需小于512字节"
PULL_LIMIT = 100  # PullSmsSendStatusByPhoneNumber: "最多 100"
PULL_DAYS = 7  # "最大可拉取当前时期前7天的数据"

# Rate limits per number and when they start over: a number of seconds, or "midnight" (calendar day in China).
RATE_LIMITS: dict[str, float | str] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": "midnight",
    "LimitExceeded.PhoneNumberSameContentDailyLimit": "midnight",
    "LimitExceeded.DeliveryFrequencyLimit": 30.0,  # the account's own frequency policy
    "LimitExceeded.DailyLimit": "midnight",
    "LimitExceeded.AppDailyLimit": "midnight",
    "LimitExceeded.AppMainlandChinaDailyLimit": "midnight",
}
REASONS = {
    "InvalidParameterValue.IncorrectPhoneNumber": "手机号码格式错误",
    "FailedOperation.PhoneNumberInBlacklist": "手机号码在免打扰名单中（用户退订或运营商黑名单）",
    "FailedOperation.SignatureIncorrectOrUnapproved": "短信签名未通过审核或格式错误，请检查签名配置",
    "FailedOperation.TemplateIncorrectOrUnapproved": "短信模板未通过审核或内容不匹配，请检查模板配置",
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": "短信模板参数个数与模板不符，请检查模板配置",
    "FailedOperation.InsufficientBalanceInSmsPackage": "短信套餐包余量不足，请购买后重发",
    "FailedOperation.ContainSensitiveWord": "短信内容含有敏感词",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": "短信 SdkAppId 校验失败，请检查配置",
    "UnauthorizedOperation.ServiceSuspendDueToArrears": "腾讯云账户欠费，短信服务已暂停",
    "AuthFailure.SignatureFailure": "腾讯云 SecretKey 错误（签名不匹配），请检查配置",
    "AuthFailure.SecretIdNotFound": "腾讯云 SecretId 不存在，请检查配置",
}
# Families that will not succeed by trying again: configuration, account or recipient problems.
PERMANENT_PREFIXES = (
    "FailedOperation",
    "InvalidParameter",
    "MissingParameter",
    "UnauthorizedOperation",
    "AuthFailure",
    "UnsupportedOperation",
    "InvalidAction",
)


def midnight_seconds(now: datetime) -> float:
    """Seconds until the next calendar day in China, when Tencent's per-day limits start over."""
    return (next_local_midnight(now) - now).total_seconds()


def classify(code: str, message: str, now: datetime) -> Outcome:
    """A Tencent error code (request error or per-number status) → the outcome of the attempt."""
    reason = f"{REASONS.get(code) or message or code} ({code})"
    if code in RATE_LIMITS or code.startswith("LimitExceeded.PhoneNumber"):
        window = RATE_LIMITS.get(code, 3600.0)
        seconds = midnight_seconds(now) if window == "midnight" else float(window)
        return Outcome.rate_limit(f"短信发送频率超限：{message} ({code})", code, seconds)
    if code.startswith(("InternalError", "RequestLimitExceeded", "ResourceUnavailable")) or code == "ServerNetworkError":
        return Outcome.retry(f"短信服务暂时不可用：{message or code} ({code})", code)
    if code.startswith(PERMANENT_PREFIXES):
        return Outcome.permanent(reason, code)
    return Outcome.retry(f"短信服务返回未知错误：{message or code} ({code})", code)


class TencentSmsChannel:
    name = "sms"
    provider = "tencent"

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        region: str = "ap-guangzhou",
        endpoint: str = "sms.tencentcloudapi.com",
        scheme: str = "https",
        timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.timeout = timeout
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        http = HttpProfile(protocol=scheme, endpoint=endpoint, reqTimeout=timeout)
        self._credential = Credential(secret_id, secret_key)
        self._profile = ClientProfile(httpProfile=http)
        self._region = region

    async def send(self, address: str, message: SmsContent, key: IdempotencyKey) -> Outcome:
        number = mainland_number(address)
        if number is None:
            code = "InvalidParameterValue.IncorrectPhoneNumber"
            return Outcome.permanent(f"{REASONS[code]} ({code})", code)
        request = SendSmsRequest()
        request.PhoneNumberSet = [f"+86{number}"]
        request.SmsSdkAppId = self.sdk_app_id
        request.SignName = self.sign_name
        request.TemplateId = message.template_id
        request.TemplateParamSet = message.as_list()
        request.SessionContext = key.fitted(SESSION_CONTEXT_MAX)
        response = await self._call("SendSms", request)
        if isinstance(response, Outcome):
            return response
        status = response.SendStatusSet[0] if response.SendStatusSet else None
        if status is None:
            return Outcome.retry("短信服务未返回发送状态", "EmptySendStatusSet")
        if status.Code == "Ok":
            log.info("sms sent", extra={"provider": "tencent", "phone": mask_phone(number), "serial": status.SerialNo})
            return Outcome.delivered(str(status.SerialNo))
        log.warning("sms refused", extra={"provider": "tencent", "phone": mask_phone(number), "code": status.Code})
        return classify(str(status.Code), str(status.Message or ""), self.clock())

    async def lookup(self, address: str, key: IdempotencyKey, since: datetime) -> Outcome | None:
        """Whether Tencent holds a message with our ``SessionContext`` to ``address`` since ``since``
        (``PullSmsSendStatusByPhoneNumber``: one number, a time range within the last 7 days, at most 100 records).

        What this can and cannot know, from Tencent's own documentation: the records are delivery *statuses*, and
        "仅当运营商有返回短信接收状态时回包中才会有状态数据" (a message whose carrier receipt has not come back yet may
        not be listed); ``SessionContext`` is echoed in them only when Tencent has enabled that for the account
        ("默认为空，如需开通请联系腾讯云短信小助手评估"). Without both, an accepted message is not found and ``None``
        leads to a second send: the at-least-once floor. Offset is fixed at 0, so only the first 100 records are seen;
        Tencent's own per-number limits (DOMAIN.md §10) keep a number far below that in any lease's time.
        """
        number = mainland_number(address)
        if number is None:
            return None
        now = self.clock()
        request = PullSmsSendStatusByPhoneNumberRequest()
        request.BeginTime = int(max(since, now - timedelta(days=PULL_DAYS)).timestamp())
        request.EndTime = int(now.timestamp()) + 60  # our clock may lag Tencent's a little
        request.Offset = 0  # "目前固定设置为0"
        request.Limit = PULL_LIMIT
        request.PhoneNumber = f"+86{number}"
        request.SmsSdkAppId = self.sdk_app_id
        response = await self._call("PullSmsSendStatusByPhoneNumber", request)
        if isinstance(response, Outcome):
            return Outcome.retry(f"无法查询短信发送状态：{response.reason}", response.error_code)
        wanted = key.fitted(SESSION_CONTEXT_MAX)
        for status in response.PullSmsSendStatusSet or []:
            if status.SessionContext == wanted:
                log.info("sms found in send status", extra={"provider": "tencent", "phone": mask_phone(number)})
                return Outcome.delivered(str(status.SerialNo), f"腾讯云下发状态中已有此短信（{status.ReportStatus}）")
        return None

    async def _call(self, action: str, request: Any) -> Any:
        """The SDK's answer to ``action``, or the ``Outcome`` of its failure."""
        # One client per call: the SDK's client owns an httpx.AsyncClient bound to the running loop.
        client = SmsClient(self._credential, self._region, self._profile)
        try:
            return await asyncio.wait_for(getattr(client, action)(request), self.timeout + 1)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            return Outcome.retry("短信服务响应超时", "Timeout")
        except httpx.HTTPError as exc:
            return Outcome.retry(f"无法连接短信服务：{type(exc).__name__}", "NetworkError")
        except TencentCloudSDKException as exc:
            message_text = exc.get_message()
            if isinstance(message_text, bytes):
                message_text = f"HTTP 错误：{message_text[:80].decode(errors='replace')}"
            return classify(str(exc.get_code()), str(message_text), self.clock())
        finally:
            await client.close()
