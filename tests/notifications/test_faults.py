"""Fault tests of the notification workers (issues #5 and #10): a worker SIGKILLed in the middle of a batch, and Redis
restarted under a running worker, lose no notice and double none; the worker's liveness check (DESIGN.md §5).

Real parts only: PostgreSQL shared by the test and the workers, a real Redis (killed and restarted on the same port),
real ``python -m notifications.worker`` processes, and a fake SMS provider (Aliyun or Tencent, real wire format and
signatures) in this process, slowed so that the batch is still in flight when the fault strikes. Some messages are then
accepted by the provider but never recorded by us: the next worker must find them in the provider's records
(``lookup``) instead of sending them again. Nothing is cleaned up after a fault: the keys a killed worker leaves in
Redis (``arq:in-progress:*``, which arq keeps ``job_timeout`` + 10 s = 310 s) stay there.
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
from redis.asyncio import Redis
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from api.db import tortoise_config
from api.models import Delivery, DeliveryAttempt, Notice
from api.models.notices import DeliveryStatus
from tests.conftest import TEMPLATE_DB, run_sync
from tests.notifications.arq_setup import (
    check_worker, fake_provider, start_worker, stop_worker, worker_env, write_notices,
)
from tests.servers import RedisServer, redis_available, require

NOTICES = 60
PROVIDER_DELAY = 0.6  # seconds per provider call: the batch takes a few seconds
DEADLINE = 60.0  # seconds to wait for anything; nothing waits longer than it must
LEASE = 10.0  # JIANSHEN_NOTICE_LEASE_SECONDS of the workers (tests/notifications/arq_setup.py)
SWEEP = 1.0  # JIANSHEN_NOTICE_SWEEP_SECONDS of the workers
# The sends themselves (the rest of the batch, lookups at the provider: a send takes up to ~3 s on a 2-core machine
# that runs other test suites) on top of lease + sweep. Far below the 310 s a dead worker's job ids used to block.
SENDING = 15.0
# How long Redis stays down. The issue saw a restart of a minute; the worker's back-off reaches its cap (5 s) after a
# few seconds, so a 10 s outage runs the same code a minute would, several times over.
OUTAGE = 10.0


@pytest.fixture
def fault_database(postgres) -> str:
    name = f"faults_{uuid.uuid4().hex[:8]}"
    url = run_sync(lambda: postgres.create_database(name, template=TEMPLATE_DB))
    yield url
    run_sync(lambda: postgres.drop_database(name))


@pytest.fixture
def redis(request) -> RedisServer:
    require(redis_available(), "redis-server")
    server = RedisServer.start(persistent=getattr(request, "param", False))
    if not server.managed:
        pytest.skip("an external Redis cannot be killed and restarted by the test")
    yield server
    server.stop()


@pytest.fixture
async def database(fault_database):
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(fault_database))
    yield fault_database
    await Tortoise.close_connections()
    EXECUTOR_CACHE.clear()


async def wait_until(condition, what: str, logs: list[Path], *, deadline: float | None = None) -> None:
    """Poll ``condition`` (a coroutine function) until true; fail with the workers' logs at ``deadline`` (monotonic;
    ``DEADLINE`` seconds from now by default)."""
    deadline = time.monotonic() + DEADLINE if deadline is None else deadline
    while not await condition():
        if time.monotonic() > deadline:
            tails = "\n".join(
                f"--- {log} ---\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists()
            )
            pytest.fail(f"not in time: {what}\n{tails}")
        await asyncio.sleep(0.1)


async def worker_ready(redis: RedisServer, name: str, logs: list[Path]) -> float:
    """When the worker ``name`` polls its queue (its first health record); monotonic time."""
    async with Redis.from_url(redis.url) as client:
        async def recorded() -> bool:
            return bool([key async for key in client.scan_iter(f"arq:queue:health-check*{name}")])

        await wait_until(recorded, f"worker {name} started", logs)
    return time.monotonic()


def mid_batch(fake, sent: int = NOTICES // 4):
    async def condition() -> bool:
        # ``sent`` sent, and some at the provider right now (it has them, it has not answered): strike in that window.
        return len(fake.accepted) >= sent and len(fake.requests) > len(fake.accepted)

    return condition


def delivered(count: int):
    async def condition() -> bool:
        return await Delivery.filter(status=DeliveryStatus.DELIVERED).count() == count

    return condition


def assert_each_sent_once(fake, keys: dict[str, int]) -> None:
    sent = collections.Counter(sms.idempotency for sms in fake.accepted)
    assert set(sent) == set(keys), "every notice reached the provider"
    assert [key for key, times in sent.items() if times > 1] == [], "no notice was sent twice"
    assert len(fake.accepted) == len(keys)


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_sigkill_mid_batch_loses_none_doubles_none_and_recovers_within_the_lease(
    provider, database, redis, tmp_path
):
    fake = fake_provider(provider, delay=PROVIDER_DELAY).start()
    workers: list[subprocess.Popen] = []
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    try:
        keys = await write_notices(NOTICES, "fault-test")
        env = worker_env(provider, fake.host, database, redis.url)

        workers.append(start_worker(env, logs[0]))
        # Late in the batch: what the recovery has to send besides the dead worker's notices stays small.
        await wait_until(mid_batch(fake, sent=NOTICES * 2 // 3), "the first worker is in the middle of the batch", logs)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        killed = time.monotonic()
        async with Redis.from_url(redis.url) as client:
            held = [key async for key in client.scan_iter("arq:in-progress:notice-deliver-*")]
        assert held, "the dead worker's jobs are still marked in progress in Redis; nothing removes them"

        workers.append(start_worker(env | {"JIANSHEN_WORKER_NAME": "replacement"}, logs[1]))  # as an orchestrator
        ready = await worker_ready(redis, "replacement", logs)  # its start-up is not the recovery's to count
        await wait_until(
            delivered(NOTICES), f"all {NOTICES} notices delivered within lease + sweep of the kill", logs,
            deadline=max(killed + LEASE, ready) + SWEEP + SENDING,
        )

        assert_each_sent_once(fake, keys)
        lost = await DeliveryAttempt.filter(reason__contains="进程中断").values_list("outcome", flat=True)
        assert "DELIVERED" in lost, "the crash cut sends short that the provider had accepted; lookup found them"
        assert await Notice.all().count() == NOTICES
    finally:
        for worker in workers:
            stop_worker(worker)
        fake.stop()


@pytest.mark.parametrize("redis", [False, True], ids=["empty-restart", "append-only-file"], indirect=True)
async def test_a_redis_restart_mid_batch_does_not_end_the_worker_which_resumes(database, redis, tmp_path):
    fake = fake_provider("aliyun", delay=PROVIDER_DELAY).start()
    log = tmp_path / "worker.log"
    worker: subprocess.Popen | None = None
    try:
        keys = await write_notices(NOTICES, "restart-1")
        env = worker_env("aliyun", fake.host, database, redis.url)
        worker = start_worker(env, log)
        await wait_until(mid_batch(fake), "the worker is in the middle of the batch", [log])

        redis.kill()
        await asyncio.sleep(OUTAGE)  # the outage itself: there is nothing to wait for but time
        assert worker.poll() is None, f"the worker outlived a {OUTAGE:g} s Redis outage\n{log.read_text()[-3000:]}"
        down = await asyncio.to_thread(check_worker, env)
        assert down.returncode == 1 and "Redis" in down.stdout, "the liveness check tells Redis is not there"
        redis.restart()

        await wait_until(delivered(NOTICES), f"all {NOTICES} notices delivered after the restart", [log])
        more = await write_notices(20, "restart-2")  # the worker resumed: new notices go out too
        await wait_until(delivered(NOTICES + 20), "the notices written after the restart delivered", [log])
        assert worker.poll() is None, "the same worker delivered them"
        assert_each_sent_once(fake, keys | more)

        async def healthy() -> bool:
            return (await asyncio.to_thread(check_worker, env)).returncode == 0

        await wait_until(healthy, "the worker's liveness check passes again", [log])
    finally:
        if worker is not None:
            stop_worker(worker)
        fake.stop()


async def test_the_liveness_check_answers_for_this_worker_only_and_while_it_lives(database, redis, tmp_path):
    fake = fake_provider("aliyun").start()
    log = tmp_path / "worker.log"
    worker: subprocess.Popen | None = None
    try:
        env = worker_env("aliyun", fake.host, database, redis.url) | {"JIANSHEN_WORKER_NAME": "worker-a"}
        other = env | {"JIANSHEN_WORKER_NAME": "worker-b"}
        assert (await asyncio.to_thread(check_worker, env)).returncode == 1, "not started: unhealthy"
        worker = start_worker(env, log)

        async def answers(expected: int):
            async def condition() -> bool:
                return (await asyncio.to_thread(check_worker, env)).returncode == expected

            return condition

        await wait_until(await answers(0), "the check passes once the worker runs", [log])
        result = await asyncio.to_thread(check_worker, other)
        assert result.returncode == 1, "another worker's health record does not answer for worker-b"
        assert "worker-b" in result.stdout

        worker.send_signal(signal.SIGKILL)  # dead without a word: its record is left to expire
        worker.wait()
        await wait_until(await answers(1), "the check fails once the worker is dead", [log])
    finally:
        if worker is not None:
            stop_worker(worker)
        fake.stop()


def test_compose_runs_the_resilient_worker_with_its_liveness_check():
    import yaml

    from tests.notifications.arq_setup import ROOT

    worker = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]["worker"]
    assert worker["command"] == ["python", "-m", "notifications.worker"], "arq's own CLI would run arq's Worker"
    assert worker["healthcheck"]["test"] == ["CMD", "python", "-m", "notifications.worker", "--check"]
