"""The one WeChat platform client of the service (DOMAIN.md §11, DESIGN.md §2).

``MiniProgram`` speaks to the WeChat API through wechatpy 1.8.18, which is synchronous: every call runs in a worker
thread (``asyncio.to_thread``) so the event loop never waits on the network. wechatpy has ``code_to_session``; the
phone number, stable token, content check v2 and subscribe send go through its generic ``post``. The access token is
ours to manage (wechatpy's own token handling calls the old ``/cgi-bin/token``, which invalidates other holders).

Console mode: without an app id, nothing is sent. In development a login code ``dev:<name>`` logs in as the openid
``dev_<name>`` and a phone code ``dev:<11 digits>`` binds that number; in production mode these are refused.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from miniapp.errors import (
    AccessTokenInvalid,
    InvalidCode,
    NotConfigured,
    WeChatError,
    WeChatUnavailable,
    error_for,
)
from miniapp.tokens import CachedToken, MemoryTokenCache, RedisTokenCache, TokenCache

log = logging.getLogger("jianshen.wechat")

DEFAULT_API_BASE_URL = "https://api.weixin.qq.com"
DEV_PREFIX = "dev:"
DEV_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
DEV_PHONE = re.compile(r"^1[3-9]\d{9}$")
MAX_CHECKED_TEXT = 2500  # msg_sec_check v2 accepts at most 2500 characters


@dataclass(frozen=True)
class WeChatConfig:
    app_id: str | None = None
    app_secret: str | None = None
    api_base_url: str = DEFAULT_API_BASE_URL
    timeout: float = 10.0
    token_refresh_margin: float = 300.0  # refresh this long before the token dies
    production: bool = False

    @property
    def console(self) -> bool:
        return not self.app_id

    @classmethod
    def from_settings(cls, settings: Any) -> "WeChatConfig":
        return cls(
            app_id=settings.wechat_app_id or None,
            app_secret=settings.wechat_app_secret or None,
            api_base_url=settings.wechat_api_base_url,
            timeout=settings.wechat_timeout,
            token_refresh_margin=settings.wechat_token_refresh_margin,
            production=settings.is_production,
        )


@dataclass(frozen=True)
class WeChatSession:
    """What code2Session answers. ``session_key`` is secret: store it only encrypted and never send it anywhere."""

    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None


@dataclass(frozen=True)
class PhoneInfo:
    phone: str  # with the country code when not mainland (``phoneNumber``)
    pure_phone: str  # without it (``purePhoneNumber``)
    country_code: str


class Suggest(str, enum.Enum):
    PASS = "pass"
    REVIEW = "review"
    RISKY = "risky"


@dataclass(frozen=True)
class ContentVerdict:
    suggest: Suggest
    label: int  # 100 normal, 10001 advertising, 20001 politics, 20002 porn, 20003 abuse, 20006 crime, …
    trace_id: str | None = None


class Scene(enum.IntEnum):
    """msg_sec_check v2 scenes."""

    PROFILE = 1
    COMMENT = 2
    FORUM = 3
    SOCIAL_LOG = 4


class _WechatpyClient(WeChatClient):
    """wechatpy pointed at our base URL, with its own access-token handling switched off (we pass the token)."""

    def __init__(self, config: WeChatConfig) -> None:
        super().__init__(config.app_id or "", config.app_secret or "", timeout=config.timeout, auto_retry=False)
        base = config.api_base_url.rstrip("/")
        self.API_BASE_URL = f"{base}/cgi-bin/"
        self.wxa.API_BASE_URL = f"{base}/"
        self.root_url = f"{base}/"

    @property
    def access_token(self) -> None:  # type: ignore[override]
        # requests drops a None parameter: calls that need a token pass it themselves.
        return None

    def fetch_access_token(self):  # pragma: no cover - never called: auto_retry is off and access_token is ours
        raise RuntimeError("the stable access token is managed by miniapp.MiniProgram")


class MiniProgram:
    """Async facade over the WeChat mini-program API. One instance per process; safe to share between requests."""

    def __init__(
        self,
        config: WeChatConfig,
        *,
        token_cache: TokenCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.token_cache = token_cache or MemoryTokenCache()
        self._client = _WechatpyClient(config)

    @classmethod
    def from_settings(cls, settings: Any, *, redis=None, clock: Callable[[], float] = time.time) -> "MiniProgram":
        """The service's client: the token cached in Redis when a Redis client is given, in memory otherwise."""
        config = WeChatConfig.from_settings(settings)
        cache = RedisTokenCache(redis, config.app_id or "console") if redis is not None else MemoryTokenCache()
        return cls(config, token_cache=cache, clock=clock)

    @property
    def console(self) -> bool:
        return self.config.console

    # -- the calls -----------------------------------------------------------------------------------------------

    async def code_to_session(self, code: str) -> WeChatSession:
        """``GET /sns/jscode2session``: the login code from ``wx.login()`` → openid (and unionid, session_key)."""
        code = (code or "").strip()
        if not code:
            raise InvalidCode(message="缺少微信登录凭证")
        if self.console:
            return WeChatSession(openid="dev_" + self._dev_value(code, DEV_NAME), session_key="dev-session-key")
        result = await self._call(lambda: self._client.wxa.code_to_session(code))
        if not result.get("openid") or not result.get("session_key"):
            raise WeChatUnavailable(None, "code2Session answered without openid")
        return WeChatSession(openid=result["openid"], session_key=result["session_key"], unionid=result.get("unionid"))

    async def phone_number(self, code: str) -> PhoneInfo:
        """``POST /wxa/business/getuserphonenumber``: the code from ``getPhoneNumber`` (single use, 5 minutes)."""
        code = (code or "").strip()
        if not code:
            raise InvalidCode(message="缺少手机号授权码")
        if self.console:
            phone = self._dev_value(code, DEV_PHONE)
            return PhoneInfo(phone=phone, pure_phone=phone, country_code="86")
        result = await self._with_token(
            lambda token: self._client.post(
                "wxa/business/getuserphonenumber",
                api_base_url=self._client.root_url,
                params={"access_token": token},
                data={"code": code},
            )
        )
        info = result.get("phone_info") or {}
        if not info.get("purePhoneNumber"):
            raise WeChatUnavailable(None, "getuserphonenumber answered without phone_info")
        return PhoneInfo(
            phone=info.get("phoneNumber") or info["purePhoneNumber"],
            pure_phone=info["purePhoneNumber"],
            country_code=str(info.get("countryCode") or "86"),
        )

    async def check_text(self, content: str, *, openid: str, scene: Scene = Scene.COMMENT) -> ContentVerdict:
        """``POST /wxa/msg_sec_check`` version 2. Console mode passes everything (and logs that it did)."""
        if len(content) > MAX_CHECKED_TEXT:
            raise ValueError(f"msg_sec_check accepts at most {MAX_CHECKED_TEXT} characters")
        if self.console:
            log.info("wechat console: msg_sec_check skipped", extra={"fields": {"length": len(content)}})
            return ContentVerdict(Suggest.PASS, 100)
        result = await self._with_token(
            lambda token: self._client.post(
                "wxa/msg_sec_check",
                api_base_url=self._client.root_url,
                params={"access_token": token},
                data={"version": 2, "openid": openid, "scene": int(scene), "content": content},
            )
        )
        verdict = result.get("result") or {}
        try:
            suggest = Suggest(verdict.get("suggest"))
        except ValueError:
            raise WeChatUnavailable(None, f"msg_sec_check: unknown suggest {verdict.get('suggest')!r}") from None
        return ContentVerdict(suggest, int(verdict.get("label") or 100), result.get("trace_id"))

    async def send_subscribe_message(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        *,
        page: str | None = None,
        state: str = "formal",
        lang: str = "zh_CN",
    ) -> None:
        """``POST /cgi-bin/message/subscribe/send``. ``data`` maps a keyword (``thing1``) to its value.

        Raises ``NoSubscribeConsent`` (43101), ``InvalidMessageData`` (47003), ``InvalidOpenid`` (40003) or a
        retryable ``WeChatError``. Console mode logs the message instead.
        """
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
            "miniprogram_state": state,
            "lang": lang,
        }
        if page:
            body["page"] = page
        if self.console:
            log.info("wechat console: subscribe message", extra={"fields": {"template_id": template_id}})
            return
        await self._with_token(
            lambda token: self._client.post("message/subscribe/send", params={"access_token": token}, data=body)
        )

    async def access_token(self, *, force_refresh: bool = False, stale: str | None = None) -> str:
        """The stable access token, from the shared cache; refreshed (by one caller at a time) before it dies.

        ``stale``: a token WeChat has just refused (40001): refresh unless another caller already replaced it.
        """
        if self.console:
            raise NotConfigured()
        cached = await self.token_cache.get()
        if self._usable(cached, stale) and not force_refresh:
            return cached.token  # type: ignore[union-attr]
        async with self.token_cache.refreshing():
            cached = await self.token_cache.get()  # another caller may have refreshed while we waited
            if self._usable(cached, stale) and not (force_refresh and stale is None):
                return cached.token  # type: ignore[union-attr]
            result = await self._call(
                lambda: self._client.post(
                    "stable_token",
                    data={
                        "grant_type": "client_credential",
                        "appid": self.config.app_id,
                        "secret": self.config.app_secret,
                        "force_refresh": bool(force_refresh or stale),
                    },
                )
            )
            token = result.get("access_token")
            if not token:
                raise WeChatUnavailable(None, "stable_token answered without access_token")
            fresh = CachedToken(token=token, expires_at=self.clock() + int(result.get("expires_in") or 7200))
            await self.token_cache.set(fresh)
            log.info("wechat access token refreshed", extra={"fields": {"expires_in": result.get("expires_in")}})
            return fresh.token

    # -- plumbing ------------------------------------------------------------------------------------------------

    def _usable(self, cached: CachedToken | None, stale: str | None) -> bool:
        return (
            cached is not None
            and cached.token != stale
            and cached.expires_at - self.clock() > self.config.token_refresh_margin
        )

    def _dev_value(self, code: str, shape: re.Pattern[str]) -> str:
        """Console mode: ``dev:<value>`` in development; refused in production or when malformed."""
        if self.config.production:
            raise NotConfigured()
        value = code.removeprefix(DEV_PREFIX) if code.startswith(DEV_PREFIX) else ""
        if not shape.match(value):
            raise InvalidCode(message="开发模式下请使用 dev:<名字> 形式的登录码")
        return value

    async def _with_token(self, call: Callable[[str], dict]) -> dict:
        """Call with the access token; on 40001/42001 refresh it once and call again."""
        token = await self.access_token()
        try:
            return await self._call(lambda: call(token))
        except AccessTokenInvalid:
            log.info("wechat access token refused; refreshing once")
            token = await self.access_token(stale=token)
        try:
            return await self._call(lambda: call(token))
        except AccessTokenInvalid as exc:
            raise WeChatUnavailable(exc.errcode, exc.errmsg) from None

    async def _call(self, call: Callable[[], dict]) -> dict:
        """Run one wechatpy call in a worker thread; every failure becomes a typed ``WeChatError``."""
        try:
            result = await asyncio.to_thread(call)
        except WeChatClientException as exc:
            error = error_for(_int_or_none(exc.errcode), exc.errmsg)
            log.warning("wechat error", extra={"fields": {"errcode": exc.errcode, "kind": error.code}})
            raise error from None
        except requests.RequestException as exc:
            log.warning("wechat unreachable", extra={"fields": {"error": type(exc).__name__}})
            raise WeChatUnavailable(None, type(exc).__name__) from None
        if not isinstance(result, dict):
            raise WeChatUnavailable(None, "answer is not JSON")
        return result


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


__all__ = [
    "ContentVerdict",
    "MiniProgram",
    "PhoneInfo",
    "Scene",
    "Suggest",
    "WeChatConfig",
    "WeChatError",
    "WeChatSession",
]
