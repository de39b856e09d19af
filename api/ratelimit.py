"""Fixed-window rate limits for the anonymous public endpoints (certificate verification).

Anyone may check a certificate, so nothing ties a request to a person: the limit is per client address and per
endpoint. With Redis every API process counts in the same window (INCR with an expiry); without it each process counts
for itself. A Redis failure lets the request through (a verification must not fail because a counter is down) and is
logged. Behind a load balancer, uvicorn takes the client address from X-Forwarded-For for the proxies named in
FORWARDED_ALLOW_IPS.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger("jianshen.ratelimit")
MAX_LOCAL_KEYS = 50_000  # an in-process table larger than this forgets its past windows


class RateLimiter:
    def __init__(self, redis_url: str | None = None, *, prefix: str = "jianshen:rl:") -> None:
        self._prefix = prefix
        self._redis = None
        if redis_url:
            import redis.asyncio as redis

            self._redis = redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        self._local: dict[str, int] = {}

    async def retry_after(self, key: str, *, limit: int, window: int, now: float) -> int | None:
        """Count one request for ``key``; ``None`` when allowed, else the seconds until the window ends."""
        index = math.floor(now / window)
        slot = f"{self._prefix}{key}:{index}"
        wait = max(1, math.ceil((index + 1) * window - now))
        if self._redis is not None:
            try:
                count = await self._redis.incr(slot)
                if count == 1:
                    await self._redis.expire(slot, window * 2)
            except Exception:  # noqa: BLE001 - fail open, loudly
                log.warning("rate-limit counter unavailable; request let through", exc_info=True)
                return None
        else:
            if len(self._local) > MAX_LOCAL_KEYS:
                self._local = {k: v for k, v in self._local.items() if k.endswith(f":{index}")}
            count = self._local[slot] = self._local.get(slot, 0) + 1
        return wait if count > limit else None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def client_address(request) -> str:
    client = getattr(request, "client", None)
    return client.host if client else "unknown"
