"""The arq worker of scaled mode: ``arq notifications.worker.WorkerSettings`` (any number of processes). It delivers
the notice outbox and seals the PDFs of issued certificates.

Jobs only say "look at this delivery now"; the database says what is due. The API enqueues ``sweep`` after a commit
that wrote notices; every worker also sweeps on a timer, which picks up retries that came due, deliveries whose
dispatcher died (expired lease), and anything a lost job or a restarted Redis dropped. A sweep enqueues one
``deliver`` job per due delivery, so the work spreads over the workers; the claim in the database makes sure only
one of them works on a delivery at a time.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from tortoise import Tortoise

from api.db import config_from_settings
from api.middleware import configure_logging
from api.settings import get_settings
from notifications.setup import build_dispatcher

log = logging.getLogger("jianshen.notifications")
SWEEP_JOB_ID = "notice-sweep"
CERTIFICATES_JOB_ID = "certificate-pdfs"


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    configure_logging(settings)
    await Tortoise.init(config=config_from_settings(settings))
    ctx["dispatcher"] = build_dispatcher(settings)
    ctx["settings"] = settings


async def shutdown(ctx: dict[str, Any]) -> None:
    await Tortoise.close_connections()


async def deliver(ctx: dict[str, Any], delivery_id: int) -> int:
    return await ctx["dispatcher"].deliver(delivery_id)


async def sweep(ctx: dict[str, Any]) -> int:
    """Enqueue a ``deliver`` job for each due delivery (one job id per delivery: queued twice = once)."""
    ids = await ctx["dispatcher"].due_ids(limit=500)
    for delivery_id in ids:
        await ctx["redis"].enqueue_job("deliver", delivery_id, _job_id=f"notice-deliver-{delivery_id}")
    return len(ids)


async def produce_certificates(ctx: dict[str, Any]) -> int:
    """Seal the PDFs of issued certificates that have none yet (idempotent): woken by the API after an approval's
    commit, and on a timer. Rendering costs ~0.4 s of CPU a certificate: here, not in the API processes."""
    import datetime as dt

    from api.services.certificates import produce_pending

    made = 0
    while batch := await produce_pending(ctx["settings"], now=dt.datetime.now(dt.timezone.utc)):
        made += batch
    return made


def _redis_settings() -> RedisSettings:
    url = os.environ.get("JIANSHEN_REDIS_URL") or get_settings().redis_url or "redis://127.0.0.1:6379/0"
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = 60  # a restarted Redis: keep trying for a minute instead of dying
    settings.conn_retry_delay = 1
    return settings


class WorkerSettings:
    functions = [deliver, sweep, produce_certificates]
    cron_jobs = [
        cron(sweep, second=set(range(0, 60, 5)), run_at_startup=True, unique=True),
        cron(produce_certificates, second={0, 30}, run_at_startup=True, unique=True),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = _redis_settings()
    keep_result = 0  # a finished job's id is free again at once: the same delivery may be enqueued for its retry
    max_jobs = 16
    # arq starts new jobs only when it polls the queue (default every 0.5 s): with 16 jobs a poll, that capped a
    # worker at ~65 notices/s however fast the provider answered (bench/notices.py); 0.1 s = ten cheap Redis reads/s.
    poll_delay = 0.1
    job_timeout = 300
    max_tries = 3
