"""The WeChat mini-program platform (DOMAIN.md §11): one client, used by ``api`` and ``notifications``."""

from miniapp.client import (
    ContentVerdict,
    MiniProgram,
    PhoneInfo,
    Scene,
    Suggest,
    WeChatConfig,
    WeChatSession,
)
from miniapp.errors import (
    AccessTokenInvalid,
    InvalidCode,
    InvalidMessageData,
    InvalidOpenid,
    NoSubscribeConsent,
    NotConfigured,
    RateLimited,
    RiskyUser,
    WeChatError,
    WeChatUnavailable,
)
from miniapp.tokens import CachedToken, MemoryTokenCache, RedisTokenCache, TokenCache

__all__ = [
    "AccessTokenInvalid",
    "CachedToken",
    "ContentVerdict",
    "InvalidCode",
    "InvalidMessageData",
    "InvalidOpenid",
    "MemoryTokenCache",
    "MiniProgram",
    "NoSubscribeConsent",
    "NotConfigured",
    "PhoneInfo",
    "RateLimited",
    "RedisTokenCache",
    "RiskyUser",
    "Scene",
    "Suggest",
    "TokenCache",
    "WeChatConfig",
    "WeChatError",
    "WeChatSession",
    "WeChatUnavailable",
]
