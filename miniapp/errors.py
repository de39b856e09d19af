"""WeChat platform failures as typed exceptions with a Chinese message for the user (DOMAIN.md §11).

Every error code the service meets becomes one of these; nothing from WeChat (or from the network) escapes as a bare
exception, so the API answers a clear error, never a 500. ``code`` is a stable identifier the API maps to its own error
codes; ``errcode`` is WeChat's number, kept for logs.
"""

from __future__ import annotations


class WeChatError(Exception):
    """Base class. ``retryable``: the same call may succeed later (rate limit, system busy, network)."""

    code = "WECHAT_UNAVAILABLE"
    message = "微信服务暂时不可用，请稍后重试"
    retryable = True

    def __init__(self, errcode: int | None = None, errmsg: str | None = None, message: str | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        if message:
            self.message = message
        super().__init__(f"{self.code} errcode={errcode} errmsg={errmsg!r}")


class WeChatUnavailable(WeChatError):
    """-1 系统繁忙, an HTTP error, a timeout, an answer that is not JSON."""


class InvalidCode(WeChatError):
    """40029 (or 40163 code been used): the login or phone code is unknown, used already or expired."""

    code = "WECHAT_CODE_INVALID"
    message = "微信授权码无效或已使用，请重新授权"
    retryable = False


class RateLimited(WeChatError):
    """45011 (API minute-quota reached) and 45009 (daily quota)."""

    code = "WECHAT_RATE_LIMITED"
    message = "操作太频繁，请稍后再试"


class RiskyUser(WeChatError):
    """40226: WeChat marks the account as high-risk and refuses the login."""

    code = "WECHAT_RISKY_USER"
    message = "您的微信账号存在风险，暂时无法登录，请在微信中完成安全验证后重试"
    retryable = False


class AccessTokenInvalid(WeChatError):
    """40001 / 42001 / 40014: the access token was refreshed elsewhere or expired. The client refreshes it once."""

    code = "WECHAT_UNAVAILABLE"


class NoSubscribeConsent(WeChatError):
    """43101: the user has not accepted (or has used up) this subscribe-message template."""

    code = "WECHAT_NO_CONSENT"
    message = "用户未订阅该消息"
    retryable = False


class InvalidMessageData(WeChatError):
    """47003: the template data does not fit the template (a missing keyword, a value too long or of the wrong kind)."""

    code = "WECHAT_BAD_MESSAGE_DATA"
    message = "消息内容不符合模板要求"
    retryable = False


class InvalidOpenid(WeChatError):
    """40003: the openid does not belong to this mini-program."""

    code = "WECHAT_BAD_OPENID"
    message = "微信用户标识无效"
    retryable = False


class NotConfigured(WeChatError):
    """No app id in production mode, or a development login code in production mode."""

    code = "WECHAT_NOT_CONFIGURED"
    message = "微信登录未开通，请联系管理员"
    retryable = False


ERRORS_BY_CODE: dict[int, type[WeChatError]] = {
    -1: WeChatUnavailable,
    40029: InvalidCode,
    40163: InvalidCode,
    45011: RateLimited,
    45009: RateLimited,
    40226: RiskyUser,
    40001: AccessTokenInvalid,
    40014: AccessTokenInvalid,
    42001: AccessTokenInvalid,
    43101: NoSubscribeConsent,
    47003: InvalidMessageData,
    40003: InvalidOpenid,
}


def error_for(errcode: int | None, errmsg: str | None = None) -> WeChatError:
    """The typed exception of a WeChat ``errcode``; an unknown one is "unavailable" (logged with its number)."""
    return ERRORS_BY_CODE.get(errcode if errcode is not None else -1, WeChatUnavailable)(errcode, errmsg)
