"""Benchmark: notices delivered per second through the arq path to a fake SMS provider, with one and with two workers.

    .venv/bin/python bench/notices.py [--notices 400] [--provider aliyun|tencent] [--no-write]

What it does, for 1 and then 2 workers:
1. a fresh PostgreSQL database (a throw-away cluster from the machine's binaries, or ``JIANSHEN_TEST_POSTGRES_URL``),
   migrated; a throw-away Redis; the fake provider of ``tests/fakes/sms.py`` (real wire format and signatures, no
   artificial delay) in this process;
2. ``--notices`` citizens with phones and one notice each, written through the service layer in one transaction;
3. starts the workers (``python -m notifications.worker``, INFO logs to a file as in production) and waits
   until every delivery is DELIVERED. The rate is the number of notices over the time from the first message the
   provider accepted to the last delivery recorded, so the workers' start-up (imports, connections) is not counted.

Everything runs on 127.0.0.1 and stops by itself; the figures go to the "Notices" section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import machine, write_section  # noqa: E402

BEGIN, END = "<!-- bench/notices.py writes between these markers -->", "<!-- /bench/notices.py -->"
DEADLINE = 300.0  # seconds for one run, at most


async def one_run(postgres, redis_url: str, *, workers: int, notices: int, provider: str, logs: Path) -> dict:
    from tortoise import Tortoise

    from api.db import tortoise_config
    from api.models import Delivery
    from api.models.notices import DeliveryStatus
    from tests.notifications.arq_setup import fake_provider, start_worker, stop_worker, worker_env, write_notices

    name = f"bench_notices_{workers}"
    url = await postgres.create_database(name, template="bench_template")
    await Tortoise.init(config=tortoise_config(url))
    fake = fake_provider(provider).start()
    processes = []
    try:
        await write_notices(notices, f"bench-{workers}")
        env = worker_env(provider, fake.host, url, redis_url) | {"JIANSHEN_LOG_LEVEL": "INFO"}
        started = time.monotonic()
        processes = [start_worker(env, logs / f"worker-{workers}-{n}.log") for n in range(workers)]
        while await Delivery.filter(status=DeliveryStatus.DELIVERED).count() < notices:
            if time.monotonic() - started > DEADLINE or any(p.poll() is not None for p in processes):
                raise SystemExit(f"not all delivered within {DEADLINE:g} s (or a worker died); logs in {logs}")
            await asyncio.sleep(0.05)
        done = dt.datetime.now(dt.timezone.utc)
        total = time.monotonic() - started
        first = min(sms.at for sms in fake.accepted)
        keys = {sms.idempotency for sms in fake.accepted}
        if len(fake.accepted) != notices or len(keys) != notices:
            raise SystemExit(
                f"the provider accepted {len(fake.accepted)} messages, {len(keys)} distinct: expected {notices}"
            )
        seconds = (done - first).total_seconds()
        return {"workers": workers, "notices": notices, "seconds": seconds, "rate": notices / seconds, "total": total}
    finally:
        for process in processes:
            stop_worker(process)
        fake.stop()
        await Tortoise.close_connections()
        await postgres.drop_database(name)


async def run(args: argparse.Namespace, logs: Path) -> list[dict]:
    from api.db import migrate
    from tests.servers import PostgresServer, RedisServer

    postgres = PostgresServer.start()
    redis = RedisServer.start()
    try:
        await migrate(await postgres.create_database("bench_template"))
        results = []
        for workers in (1, 2):
            await redis_flush(redis.url)
            results.append(
                await one_run(postgres, redis.url, workers=workers, notices=args.notices, provider=args.provider,
                              logs=logs)
            )
            print(f"{workers} worker(s): {results[-1]['rate']:.1f} notices/s", flush=True)
        return results
    finally:
        redis.stop()
        postgres.stop()


async def redis_flush(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def report(results: list[dict], args: argparse.Namespace) -> str:
    rows = "\n".join(
        f"| {r['workers']} | {r['rate']:.1f} | {r['notices']} | {r['seconds']:.2f} | {r['total']:.2f} |"
        for r in results
    )
    return (
        f"Measured {dt.date.today():%Y-%m-%d} on {machine()}; PostgreSQL, Redis, the workers, the fake "
        f"{args.provider} SMS server and this script all on the same machine. {args.notices} notices per run, each to "
        f"its own number, written in one transaction before the workers start; rate = notices / (first message "
        f"accepted by the provider → last delivery recorded); INFO logs as in production.\n\n"
        "| arq workers | notices/s | notices | seconds | incl. worker start-up, s |\n"
        "| ---: | ---: | ---: | ---: | ---: |\n"
        f"{rows}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notices", type=int, default=400)
    parser.add_argument("--provider", choices=("aliyun", "tencent"), default="aliyun")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/PERFORMANCE.md alone")
    args = parser.parse_args()
    if not 0 < args.notices <= 5000:
        parser.error("--notices must be in (0, 5000]")
    logs = Path(tempfile.mkdtemp(prefix="jianshen-bench-notices-"))
    results = asyncio.run(run(args, logs))
    shutil.rmtree(logs, ignore_errors=True)  # kept only when a run fails, for its workers' logs
    text = report(results, args)
    print(text)
    if not args.no_write:
        write_section(BEGIN, END, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
