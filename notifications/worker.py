"""The arq worker of scaled mode: ``python -m notifications.worker`` (any number of processes). It delivers the notice
outbox and seals the PDFs of issued certificates. ``python -m notifications.worker --check`` is its liveness check.

Jobs only say "look at this delivery now"; the database says what is due. The API wakes a ``sweep`` after a commit
that wrote notices; every worker also sweeps on a timer (``JIANSHEN_NOTICE_SWEEP_SECONDS``), which picks up retries
that came due, deliveries whose dispatcher died (expired lease), and anything a lost job or a restarted Redis dropped.
A sweep enqueues one ``deliver`` job per due delivery, so the work spreads over the workers; the claim in the database
(a compare-and-set lease) makes sure only one of them works on a delivery at a time.

Nothing here waits on Redis state that a crash leaves behind (issue #10). arq keeps a job's ``arq:in-progress:<id>``
key for ``job_timeout`` + 10 s and refuses to enqueue an id whose job key still exists, so a fixed job id held by a
worker killed with ``kill -9`` would be blocked for five minutes. Job ids therefore never repeat across a crash: a
wake-up's id names its 0.2 s slot (wake-ups in one slot share one sweep, deferred to the slot's end), a cron sweep's
names its tick, and a ``deliver`` job's names the lease window it was enqueued in, so the sweep after a dead worker's
lease expired enqueues a fresh id. Duplicate jobs are harmless: the database lease lets one of them work.

A Redis restart does not end the worker (``ResilientWorker``): arq's ``conn_retries`` covers only the start, and an
error in its poll loop ended the process. The worker now waits for Redis with a back-off, keeps its running jobs (they
work on the database), and resumes with a sweep once Redis answers.

SIGTERM (``docker stop``) and SIGINT stop it promptly with exit code 0: it starts no new job, lets the running ones
finish for ``sms_timeout`` + 3 s (a send in flight ends and releases its lease), then closes the database connections
of ``startup``'s Tortoise context (see ``shutdown``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import math
import os
import socket
import sys
import time
from typing import Any

from arq import cron
from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name, health_check_key_suffix
from arq.worker import Worker, get_kwargs
from redis import exceptions as redis_errors

from api.settings import Settings, get_settings

# The database, the ORM and the channels are imported where a running worker needs them, not at the top: the
# liveness check imports this module every few seconds and must stay cheap (a fraction of a second).

log = logging.getLogger("jianshen.notifications")
SWEEP_JOB_ID = "notice-sweep"  # prefixes of the wake-up job ids (see ``wake_workers``)
CERTIFICATES_JOB_ID = "certificate-pdfs"
WAKE_SLOT_MS = 200  # wake-ups within one slot share one job, which starts when the slot ends
# Any Redis error in the poll loop: a lost connection also surfaces as a WatchError inside arq's transactions.
REDIS_DOWN = (redis_errors.RedisError, OSError, asyncio.TimeoutError)
REDIS_BACKOFF_FIRST, REDIS_BACKOFF_MAX = 0.25, 5.0  # seconds between tries while Redis does not answer
SHUTDOWN_CLOSE_SECONDS = 5.0  # the most ``shutdown`` waits for the database connections to close
HEALTH_PERIODS = 3  # the health record outlives this many periods: one slow poll is not a dead worker


async def startup(ctx: dict[str, Any]) -> None:
    from tortoise import Tortoise

    from api.db import config_from_settings
    from api.logs import configure_logging
    from notifications.setup import build_dispatcher

    settings = get_settings()
    configure_logging(settings)
    # Tortoise keeps its context in a context variable: set here, inside arq's ``main`` task, and seen by the jobs
    # (their tasks copy it), but not by ``shutdown``, which arq runs in another task after ``main`` ended. Keep it.
    ctx["tortoise"] = await Tortoise.init(config=config_from_settings(settings))
    ctx["dispatcher"] = build_dispatcher(settings)
    ctx["settings"] = settings


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close the database connections of ``startup``'s Tortoise context. ``Tortoise.close_connections()`` here found
    no context (see ``startup``) and closed nothing: on SQLite each connection's thread (not a daemon) then kept the
    process alive after arq's "shutdown on SIGTERM", until docker's SIGKILL."""
    tortoise = ctx.pop("tortoise", None)
    if tortoise is None:
        return
    try:  # a job cancelled past ``job_completion_wait`` may hold a pool connection that closing would wait for
        await asyncio.wait_for(tortoise.close_connections(), SHUTDOWN_CLOSE_SECONDS)
    except asyncio.TimeoutError:
        log.warning("the database connections did not close in time; the worker exits without them",
                    extra={"fields": {"seconds": SHUTDOWN_CLOSE_SECONDS}})


async def deliver(ctx: dict[str, Any], delivery_id: int) -> int:
    return await ctx["dispatcher"].deliver(delivery_id)


def deliver_job_id(delivery_id: int, lease_seconds: float, now: float | None = None) -> str:
    """The id of the job that delivers ``delivery_id``: the same for every sweep within one lease window (queued twice
    = once), a new one in the next window. A worker killed holding the job leaves its id blocked (arq's in-progress
    key lives ``job_timeout`` + 10 s), but its lease expires one lease after the claim, which is always in a later
    window than the enqueue: the sweep that finds the expired lease enqueues an id nobody holds."""
    window = int((time.time() if now is None else now) // lease_seconds)
    return f"notice-deliver-{delivery_id}:{window}"


async def sweep(ctx: dict[str, Any]) -> int:
    """Enqueue a ``deliver`` job for each due delivery (see ``deliver_job_id``)."""
    ids = await ctx["dispatcher"].due_ids(limit=500)
    lease = ctx["settings"].notice_lease_seconds
    now = time.time()
    for delivery_id in ids:
        await ctx["redis"].enqueue_job("deliver", delivery_id, _job_id=deliver_job_id(delivery_id, lease, now))
    return len(ids)


async def produce_certificates(ctx: dict[str, Any]) -> int:
    """Seal the PDFs of issued certificates that have none yet (idempotent): woken by the API after an approval's
    commit, and on a timer. Rendering costs ~0.4 s of CPU a certificate: here, not in the API processes."""
    from api.services.certificates import produce_pending

    made = 0
    while batch := await produce_pending(ctx["settings"], now=dt.datetime.now(dt.timezone.utc)):
        made += batch
    return made


async def exchange_push(ctx: dict[str, Any]) -> int:
    """Push what changed to the national exchange database (JIANSHEN_EXCHANGE_URL, DOMAIN.md §13); the rows written."""
    from api.services.exchange import push

    url = ctx["settings"].exchange_url
    if not url:
        return 0
    report = await push(url)
    if report.failures:
        log.warning("exchange rows refused", extra={"fields": {
            "refused": [f"{f.table} {f.key}: {f.reason}" for f in report.failures[:50]], "count": len(report.failures)}})
    return sum(report.inserted.values()) + sum(report.updated.values())


async def wake_workers(pool: ArqRedis, function: str, prefix: str) -> None:
    """Ask the workers to run ``function`` soon (the API, after a commit). The job's id names the current
    ``WAKE_SLOT_MS`` slot and it starts when the slot ends, so a burst of commits costs one job a slot, and no wake-up
    is lost to a job of its slot that already started. A crashed worker's job blocks only its own slot's id."""
    slot_end = (time.time_ns() // 1_000_000 // WAKE_SLOT_MS + 1) * WAKE_SLOT_MS
    await pool.enqueue_job(
        function, _job_id=f"{prefix}:{slot_end}",
        _defer_until=dt.datetime.fromtimestamp(slot_end / 1000, dt.timezone.utc),
    )


def _every(seconds: float) -> dict[str, set[int]]:
    """arq cron fields for "every ``seconds``" (rounded to whole seconds below a minute, whole minutes above)."""
    step = max(1, round(seconds))
    if step < 60:
        return {"second": set(range(0, 60, step))}
    return {"second": {0}, "minute": set(range(0, 60, max(1, round(step / 60))))}


def _redis_url(settings: Settings) -> str:
    return os.environ.get("JIANSHEN_REDIS_URL") or settings.redis_url or "redis://127.0.0.1:6379/0"


def _redis_settings(settings: Settings) -> RedisSettings:
    redis_settings = RedisSettings.from_dsn(_redis_url(settings))
    redis_settings.conn_retries = 60  # Redis not there at start: keep trying for a minute instead of dying
    redis_settings.conn_retry_delay = 1
    return redis_settings


def health_key(settings: Settings) -> str:
    """Where this worker records that it is alive: one key per worker (``JIANSHEN_WORKER_NAME``, else the host name,
    i.e. the container), so the check of one container is not answered by another container's worker."""
    return f"{default_queue_name}{health_check_key_suffix}:{settings.worker_name or socket.gethostname()}"


class ResilientWorker(Worker):
    """arq's worker that survives Redis going away while it runs (a restart, a fail-over, a network cut).

    arq lets a Redis error in its poll loop (reading the queue, starting a job, recording a finished one, the health
    record, enqueuing a cron job) end ``main`` and the process. Here such an error makes the worker wait for Redis,
    pinging it with a back-off; the jobs it is running go on (they work on the database, which is the truth), and
    when Redis answers again it polls as before and runs each cron job once at once (a sweep: whatever was queued in a
    Redis that lost its data is found again in the database) instead of one per tick missed."""

    def __init__(self, *args: Any, health_ttl: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.health_ttl_s = health_ttl or HEALTH_PERIODS * self.health_check_interval

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            await self._wait_for_redis(exc)

    async def _wait_for_redis(self, error: BaseException) -> None:
        started = time.monotonic()
        delay = REDIS_BACKOFF_FIRST
        while True:
            try:
                await self.pool.ping()
                break
            except REDIS_DOWN as exc:
                if delay == REDIS_BACKOFF_FIRST:
                    log.warning("Redis does not answer; the worker waits for it, its running jobs go on",
                                extra={"fields": {"error": repr(exc)}})
                await asyncio.sleep(delay)
                delay = min(delay * 2, REDIS_BACKOFF_MAX)
        if delay == REDIS_BACKOFF_FIRST:  # it answers: one call failed (a job's result not recorded, say)
            log.info("a Redis call failed; Redis answers, the worker goes on", extra={"fields": {"error": repr(error)}})
            return
        log.warning("Redis answers again; the worker resumes",
                    extra={"fields": {"waited_seconds": round(time.monotonic() - started, 1)}})
        for cron_job in self.cron_jobs:
            cron_job.next_run = None  # run_at_startup: once now, then on its schedule

    async def record_health(self) -> None:
        recorded = self._last_health_check
        await super().record_health()
        if self._last_health_check != recorded:  # arq's record lives one period + 1 s: too tight for a busy loop
            await self.pool.pexpire(self.health_check_key, int(self.health_ttl_s * 1000))

    async def close(self) -> None:
        try:
            await super().close()
        except REDIS_DOWN:
            log.warning("Redis does not answer at shutdown; the worker stops without clearing its health record")
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)


def _settings_class(settings: Settings) -> type:
    class WorkerSettings:
        functions = [deliver, sweep, produce_certificates, exchange_push]
        cron_jobs = [
            cron(sweep, **_every(settings.notice_sweep_seconds), run_at_startup=True, unique=True),
            cron(produce_certificates, **_every(settings.certificate_sweep_seconds), run_at_startup=True,
                 unique=True),
        ] + ([cron(exchange_push, **_every(settings.exchange_push_seconds), run_at_startup=True, unique=True)]
             if settings.exchange_url else [])
        on_startup = startup
        on_shutdown = shutdown
        redis_settings = _redis_settings(settings)
        keep_result = 0  # a finished job's id is free again at once: the same delivery may be enqueued for its retry
        max_jobs = 16
        # arq starts new jobs only when it polls the queue (default every 0.5 s): with 16 jobs a poll, that capped a
        # worker at ~65 notices/s however fast the provider answered (bench/notices.py); 0.1 s = ten cheap Redis
        # reads/s.
        poll_delay = 0.1
        job_timeout = 300
        max_tries = 3
        # SIGTERM/SIGINT: start no new job, let the running ones finish (a ``deliver`` ends within one provider call,
        # ``sms_timeout``, and then releases its lease), cancel only what is left after this many seconds (arq
        # re-queues it; a delivery it held waits out its lease). Default 5 s + 3: inside docker's 10 s before SIGKILL.
        job_completion_wait = math.ceil(settings.sms_timeout) + 3
        health_check_interval = settings.worker_health_seconds
        health_check_key = health_key(settings)

    return WorkerSettings


WorkerSettings = _settings_class(get_settings())  # also what `arq --check notifications.worker.WorkerSettings` reads


def run(settings_class: type = WorkerSettings) -> None:
    """Run one worker until SIGINT/SIGTERM (arq finishes or re-queues its running jobs)."""
    ResilientWorker(**get_kwargs(settings_class)).run()


async def check(settings: Settings) -> int:
    """0 when this worker recorded that it is alive within ``HEALTH_PERIODS`` health periods, else 1 (no record: the
    worker is dead, stuck, or cannot reach Redis; Redis does not answer). One line on stdout says which."""
    from redis.asyncio import Redis

    key = health_key(settings)
    client = Redis.from_url(_redis_url(settings), socket_connect_timeout=2, socket_timeout=2)
    try:
        record = await client.get(key)
    except (redis_errors.RedisError, OSError) as exc:
        print(f"unhealthy: Redis does not answer ({exc})")
        return 1
    finally:
        await client.aclose()
    if record is None:
        print(f"unhealthy: no health record {key} (the worker is dead, stuck, or cannot reach Redis)")
        return 1
    print(f"healthy: {record.decode(errors='replace')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifications.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="liveness check: exit 0 when this worker (JIANSHEN_WORKER_NAME, else the host name) "
                        "recorded that it is alive within the last health periods, else 1")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.check:
        return asyncio.run(check(settings))
    from api.logs import configure_logging

    configure_logging(settings)  # arq's own lines too, as JSON (issue #12); ``startup`` configures it again, the same
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
