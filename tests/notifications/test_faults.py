"""The fault test of issue #5: a worker SIGKILLed in the middle of a batch and Redis restarted lose no notice and double
none (DESIGN.md §5).

Real parts only: PostgreSQL shared by the test and the workers, a real Redis (killed and restarted), real
``arq notifications.worker.WorkerSettings`` processes, and a fake SMS provider (Aliyun or Tencent, real wire format
and signatures) in this process, slowed so that the batch is still in flight when the worker dies. Some messages are
then accepted by the provider but never recorded by us: the next worker must find them in the provider's records
(``lookup``) instead of sending them again.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from api.db import tortoise_config
from api.models import Delivery, DeliveryAttempt, Notice
from api.models.notices import DeliveryStatus
from tests.conftest import run_sync
from tests.notifications.arq_setup import fake_provider, start_worker, stop_worker, worker_env, write_notices
from tests.servers import RedisServer, redis_available, require

NOTICES = 60
PROVIDER_DELAY = 0.6  # seconds per provider call: the batch takes a few seconds
DEADLINE = 60.0  # seconds to wait for anything; nothing waits longer than it must


@pytest.fixture
def fault_database(postgres) -> str:
    name = f"faults_{uuid.uuid4().hex[:8]}"
    url = run_sync(lambda: postgres.create_database(name, template="jianshen_template"))
    yield url
    run_sync(lambda: postgres.drop_database(name))


@pytest.fixture
def redis() -> RedisServer:
    require(redis_available(), "redis-server")
    server = RedisServer.start()
    if not server.managed:
        pytest.skip("an external Redis cannot be killed and restarted by the test")
    yield server
    server.stop()


async def wait_until(condition, what: str, logs: list[Path]) -> None:
    """Poll ``condition`` (a coroutine function) until true; fail with the workers' logs after ``DEADLINE``."""
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        if time.monotonic() > deadline:
            tails = "\n".join(
                f"--- {log} ---\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists()
            )
            pytest.fail(f"not within {DEADLINE:g} s: {what}\n{tails}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_sigkill_mid_batch_and_a_redis_restart_lose_none_and_double_none(
    provider, fault_database, redis, tmp_path
):
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(fault_database))
    fake = fake_provider(provider, delay=PROVIDER_DELAY).start()
    workers: list[subprocess.Popen] = []
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    try:
        keys = await write_notices(NOTICES, "fault-test")
        env = worker_env(provider, fake.host, fault_database, redis.url)

        workers.append(start_worker(env, logs[0]))

        async def mid_batch() -> bool:
            # Some sent, and some at the provider right now (it has them, it has not answered): kill in that window.
            return len(fake.accepted) >= NOTICES // 4 and len(fake.requests) > len(fake.accepted)

        await wait_until(mid_batch, "the first worker is in the middle of the batch", logs)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        redis.kill()
        redis.restart()  # the queue is gone with it
        workers.append(start_worker(env, logs[1]))

        async def all_delivered() -> bool:
            return await Delivery.filter(status=DeliveryStatus.DELIVERED).count() == NOTICES

        await wait_until(all_delivered, f"all {NOTICES} notices delivered", logs)

        sent = collections.Counter(sms.idempotency for sms in fake.accepted)
        assert set(sent) == set(keys), "every notice reached the provider"
        assert [key for key, times in sent.items() if times > 1] == [], "no notice was sent twice"
        assert len(fake.accepted) == NOTICES
        lost = await DeliveryAttempt.filter(reason__contains="进程中断").values_list("outcome", flat=True)
        assert "DELIVERED" in lost, "the crash cut sends short that the provider had accepted; lookup found them"
        assert await Notice.all().count() == NOTICES
    finally:
        for worker in workers:
            stop_worker(worker)
        fake.stop()
        await Tortoise.close_connections()
        EXECUTOR_CACHE.clear()
