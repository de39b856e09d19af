"""Where the stable access token lives: shared by every instance (Redis) or by this process (memory).

``POST /cgi-bin/stable_token`` does not invalidate the token other holders have, but it is rate limited and one
token per app is what WeChat expects (DOMAIN.md §11): every instance reads the same cached token, and only one of them
refreshes it at a time (an asyncio lock in one process, a Redis lock across processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import AsyncIterator, Protocol

from redis.exceptions import LockError, RedisError

from miniapp.errors import WeChatUnavailable


@dataclass(frozen=True)
class CachedToken:
    token: str
    expires_at: float  # epoch seconds, by the client's clock


class TokenCache(Protocol):
    async def get(self) -> CachedToken | None: ...

    async def set(self, value: CachedToken) -> None: ...

    def refreshing(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while one caller refreshes the token; the others wait, then read what it stored."""
        ...


class MemoryTokenCache:
    """The embedded mode's cache: this process only."""

    def __init__(self) -> None:
        self._value: CachedToken | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> CachedToken | None:
        return self._value

    async def set(self, value: CachedToken) -> None:
        self._value = value

    @contextlib.asynccontextmanager
    async def refreshing(self) -> AsyncIterator[None]:
        async with self._lock:
            yield


class RedisTokenCache:
    """The scaled mode's cache: one key per app id, and a Redis lock so one instance refreshes at a time."""

    def __init__(self, redis, app_id: str, *, lock_timeout: float = 30.0, prefix: str = "jianshen:wechat") -> None:
        self.redis = redis  # a redis.asyncio.Redis
        self.key = f"{prefix}:access_token:{app_id}"
        self.lock_key = f"{prefix}:access_token_lock:{app_id}"
        self.lock_timeout = lock_timeout
        self._local = asyncio.Lock()  # callers of this process queue here rather than all polling Redis

    async def get(self) -> CachedToken | None:
        with _redis_failure_is_unavailable():
            raw = await self.redis.get(self.key)
        if not raw:
            return None
        data = json.loads(raw)
        return CachedToken(token=data["token"], expires_at=float(data["expires_at"]))

    async def set(self, value: CachedToken) -> None:
        payload = json.dumps({"token": value.token, "expires_at": value.expires_at})
        # Redis drops the key a little after the token dies; the client never uses it that late anyway.
        with _redis_failure_is_unavailable():
            await self.redis.set(self.key, payload, ex=7200 + 600)

    @contextlib.asynccontextmanager
    async def refreshing(self) -> AsyncIterator[None]:
        async with self._local:
            lock = self.redis.lock(self.lock_key, timeout=self.lock_timeout, blocking_timeout=self.lock_timeout)
            with _redis_failure_is_unavailable():
                if not await lock.acquire():
                    raise LockError("another instance holds the refresh lock too long")
            try:
                yield
            finally:
                with contextlib.suppress(RedisError):  # it expires by itself (``timeout``)
                    await lock.release()


@contextlib.contextmanager
def _redis_failure_is_unavailable():
    """Redis down or the lock not obtained in time: a retryable "WeChat unavailable", never a 500."""
    try:
        yield
    except RedisError as exc:
        raise WeChatUnavailable(None, f"token cache: {type(exc).__name__}") from None
