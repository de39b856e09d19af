"""Publishing events to live subscribers (GraphQL subscriptions), after the commit that made them (DESIGN.md §1, §5).

Embedded mode: an in-process broker. Scaled mode: Redis pub/sub, so that a message posted through one API process
reaches a subscriber connected to another. A broker carries only "something happened" with ids; subscribers read the
object from the database, where it was committed before the publish, so nothing is trusted from the channel.

The Redis broker keeps one pub/sub connection per process and fans messages out to local queues; when Redis goes away
it reconnects and re-subscribes. A message published while a subscriber was disconnected is not replayed: the
subscription is for "at once", the thread itself (``messages``) is the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any, AsyncIterator

log = logging.getLogger("jianshen.broker")
QUEUE_SIZE = 100  # a subscriber this far behind drops messages rather than holding the process's memory


class InProcessBroker:
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue]] = defaultdict(set)

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        for queue in list(self._queues.get(channel, ())):
            _offer(queue, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue]:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self._queues[channel].add(queue)
        try:
            yield queue
        finally:
            self._queues[channel].discard(queue)
            if not self._queues[channel]:
                del self._queues[channel]

    async def close(self) -> None:
        self._queues.clear()


def _offer(queue: asyncio.Queue, message: dict[str, Any]) -> None:
    try:
        queue.put_nowait(message)
    except asyncio.QueueFull:
        log.warning("subscriber too slow; message dropped")


class RedisBroker:
    """Redis pub/sub behind the same interface. ``prefix`` keeps channels of different deployments apart."""

    def __init__(self, url: str, *, prefix: str = "jianshen:") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, decode_responses=True, health_check_interval=15)
        self._prefix = prefix
        self._local: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._pubsub = None
        self._reader: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Best effort, like every pub/sub: a failure is logged, never fails the request that committed."""
        try:
            await self._redis.publish(self._prefix + channel, json.dumps(message))
        except Exception:  # noqa: BLE001
            log.warning("publish to Redis failed", exc_info=True)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue]:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        async with self._lock:
            first = not self._local[channel]
            self._local[channel].add(queue)
            await self._ensure_reader()
            if first:
                await self._pubsub.subscribe(self._prefix + channel)
        try:
            yield queue
        finally:
            async with self._lock:
                self._local[channel].discard(queue)
                if not self._local[channel]:
                    del self._local[channel]
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(self._prefix + channel)

    async def _ensure_reader(self) -> None:
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="redis-broker-reader")

    async def _read(self) -> None:
        delay = 0.2
        while not self._closed:
            try:
                if not self._local:
                    await asyncio.sleep(0.1)
                    continue
                message = await self._pubsub.get_message(timeout=1.0)
                delay = 0.2
                if message is None or message.get("type") != "message":
                    continue
                channel = message["channel"].removeprefix(self._prefix)
                payload = json.loads(message["data"])
                for queue in list(self._local.get(channel, ())):
                    _offer(queue, payload)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis went away: reconnect and subscribe again
                log.warning("Redis pub/sub connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                await self._resubscribe()

    async def _resubscribe(self) -> None:
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        channels = [self._prefix + c for c in self._local]
        if channels:
            with contextlib.suppress(Exception):
                await self._pubsub.subscribe(*channels)

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        with contextlib.suppress(Exception):
            await self._redis.aclose()


def make_broker(redis_url: str | None) -> InProcessBroker | RedisBroker:
    return RedisBroker(redis_url) if redis_url else InProcessBroker()
