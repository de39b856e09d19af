"""Scaled mode: the API wakes the arq workers after a commit (api/app.py). A worker killed with ``kill -9`` while it
ran a woken job leaves arq's ``arq:in-progress:<job id>`` key (job_timeout + 10 s = 310 s) and the job's key behind;
a later wake-up must still queue a job that a live worker can start at once (issue #10, item 20). Real Redis, the
app's own wake-up functions; the crash's leftovers are written as arq writes them when it starts a job.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.constants import default_queue_name, in_progress_key_prefix

from api.app import _certificate_pdfs, _notice_dispatch
from api.services import certificates
from api.settings import Settings
from notifications import dispatch
from tests.servers import xdist_worker_index

# A Redis database of its own on the session's server, emptied by the test (counting down from 15: an external Redis
# shared by xdist workers gives worker N database N, tests/conftest.py).
DATABASE = 15 - xdist_worker_index()


async def queued(pool) -> list[tuple[bytes, float]]:
    return await pool.zrange(default_queue_name, 0, -1, withscores=True)


async def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within 10 s: {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("wakes", ["notices", "certificates"])
async def test_a_wake_up_is_not_swallowed_by_the_job_of_a_worker_that_died(wakes, redis_server):
    url = redis_server.url.rsplit("/", 1)[0] + f"/{DATABASE}"
    settings = Settings(redis_url=url)
    pool = await create_pool(RedisSettings.from_dsn(url))
    await pool.flushdb()
    if wakes == "notices":
        running, wake = _notice_dispatch(settings, None, lambda: dt.datetime.now(dt.timezone.utc), enabled=True), dispatch.wake
    else:
        running = _certificate_pdfs(settings, lambda: dt.datetime.now(dt.timezone.utc), enabled=True)

        async def wake() -> None:
            certificates.wake()

    try:
        async with running:
            await wake()
            await wait_for(lambda: _has_jobs(pool, 1), "the first wake-up queued a job")
            [(first, score)] = await queued(pool)
            # A worker took it (arq's in-progress key, as Worker.start_jobs writes it) and was killed: the key stays.
            await pool.psetex(in_progress_key_prefix + first.decode(), 310_000, b"1")

            # A later commit wakes the workers again, once the first job was due (a worker could have started it).
            await wait_for(lambda: _past(score), "the first job came due")
            await wake()

            async def runnable() -> bool:
                now_ms = time.time() * 1000
                for job_id, at in await queued(pool):
                    if not await pool.exists(in_progress_key_prefix + job_id.decode()) and at <= now_ms + 1000:
                        return True
                return False

            await wait_for(runnable, "a job nobody holds, due within a second, for the second wake-up")
    finally:
        await pool.flushdb()
        await pool.aclose()


async def _has_jobs(pool, count: int) -> bool:
    return len(await queued(pool)) >= count


async def _past(score: float) -> bool:
    return time.time() * 1000 > score
