"""The worker stops when told (``docker stop`` sends SIGTERM; Ctrl-C sends SIGINT): a real ``python -m
notifications.worker`` against a real Redis, on SQLite and PostgreSQL, with a send in flight at the fake SMS provider.

It used to log "shutdown on SIGTERM" and hang: ``shutdown`` closed no database connection (Tortoise's context lives in
a context variable of arq's ``main`` task, which ``shutdown`` does not run in), and on SQLite each open connection's
(non-daemon) thread kept the process alive until docker's SIGKILL. The send in flight at the signal is finished, not
cut: no delivery is left leased (SENDING) for the next worker to wait out.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import pytest
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from api.db import tortoise_config
from api.models import Delivery
from api.models.notices import DeliveryStatus
from tests.notifications.arq_setup import fake_provider, start_worker, stop_worker, worker_env, write_notices
from tests.servers import RedisServer, redis_available, require

NOTICES = 3
PROVIDER_DELAY = 1.0  # seconds per provider call: the signal reaches the worker while a send is in flight
DEADLINE = 30.0  # seconds to wait for the worker to start sending; nothing waits longer than it must
# The bound on the exit: the worker lets running jobs finish for sms_timeout (5 s in worker_env) + 3 s, so a worker
# that exits at all exits well within it; the old one never did. An exit bound, not a speed assertion.
EXIT_BOUND = 15.0


@pytest.fixture
def redis() -> RedisServer:
    require(redis_available(), "redis-server")
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture
async def database(database_url):
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(database_url))
    yield database_url
    await Tortoise.close_connections()
    EXECUTOR_CACHE.clear()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_the_worker_exits_on_a_signal_finishing_the_send_in_flight(signum, database, redis, tmp_path):
    fake = fake_provider("aliyun", delay=PROVIDER_DELAY).start()
    log = tmp_path / "worker.log"
    worker: subprocess.Popen | None = None
    try:
        await write_notices(NOTICES, "shutdown")
        worker = start_worker(worker_env("aliyun", fake.host, database, redis.url), log)

        # Started, swept (its cron ran), and sending: a request is at the provider and not answered yet.
        deadline = time.monotonic() + DEADLINE
        while not fake.requests:
            assert worker.poll() is None, f"the worker died\n{log.read_text(errors='replace')[-3000:]}"
            assert time.monotonic() < deadline, f"the worker sent nothing\n{log.read_text(errors='replace')[-3000:]}"
            await asyncio.sleep(0.05)
        assert await Delivery.filter(status=DeliveryStatus.SENDING).exists(), "a delivery is leased at the signal"

        worker.send_signal(signum)
        try:
            code = await asyncio.to_thread(worker.wait, EXIT_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit within {EXIT_BOUND:g} s of {signum.name}\n"
                        f"{log.read_text(errors='replace')[-3000:]}")
        assert code == 0, f"exit code {code}\n{log.read_text(errors='replace')[-3000:]}"

        left = await Delivery.filter(status=DeliveryStatus.SENDING).values_list("id", "lease_owner")
        assert left == [], "no delivery is left leased: the sends in flight were finished"
        assert await Delivery.filter(lease_owner__isnull=False).count() == 0
        assert len(fake.accepted) >= 1, "the send in flight at the signal went out"
    finally:
        if worker is not None:
            stop_worker(worker)
        fake.stop()
