"""What a Prometheus scrape costs (issue #12 item 12): ``/metrics`` (this process: requests, cache, process / platform /
gc collectors) and ``/metrics/cluster`` (the database's deliveries and attempts, and with Redis the arq queue and the
workers' health records), on a SQLite file holding ``--deliveries`` deliveries with two attempts each.

    .venv/bin/python -m bench.metrics [--deliveries 20000] [--scrapes 30] [--redis redis://127.0.0.1:6379/0]

Prints the median and the slowest scrape of each (the figures docs/OPERATIONS.md quotes). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench._report import machine


async def fill(count: int) -> None:
    from tortoise.transactions import in_transaction

    from api.domain.accounts import Role
    from api.models import Delivery, DeliveryAttempt, Notice, User
    from api.models.notices import DeliveryStatus

    now = dt.datetime.now(dt.timezone.utc)
    statuses = [DeliveryStatus.DELIVERED] * 8 + [DeliveryStatus.PENDING, DeliveryStatus.DEAD]
    async with in_transaction():
        user = await User.create(display_name="市民", role=Role.CITIZEN)
        for start in range(0, count, 1000):
            batch = range(start, min(count, start + 1000))
            await Notice.bulk_create([
                Notice(recipient_id=user.id, kind="COMPLAINT_REPLIED", source_key=f"bench:{n}", variables={},
                       title="t", body="b", created_at=now) for n in batch
            ])
        notices = await Notice.all().order_by("id").values_list("id", flat=True)
        for start in range(0, count, 1000):
            await Delivery.bulk_create([
                Delivery(notice_id=notice_id, status=statuses[n % 10], channel=("sms", "wechat")[n % 2],
                         next_attempt_at=now, updated_at=now)
                for n, notice_id in enumerate(notices[start:start + 1000], start=start)
            ])
        deliveries = await Delivery.all().order_by("id").values_list("id", "channel")
        for start in range(0, count, 500):
            await DeliveryAttempt.bulk_create([
                DeliveryAttempt(delivery_id=delivery_id, number=number, channel=channel, started_at=now,
                                finished_at=now, outcome=("RETRYABLE", "DELIVERED")[number - 1])
                for delivery_id, channel in deliveries[start:start + 500] for number in (1, 2)
            ])


async def main(deliveries: int, scrapes: int, redis_url: str | None) -> None:
    from tortoise import Tortoise

    from api.app import create_app
    from api.db import config_from_settings, migrate
    from api.settings import Settings

    directory = Path(tempfile.mkdtemp(prefix="jianshen-bench-metrics-"))
    url = f"sqlite://{directory / 'bench.sqlite3'}"
    await migrate(url)
    settings = Settings(database_url=url, upload_dir=directory / "u", esign_dir=directory / "e",
                        certificate_dir=directory / "c", redis_url=redis_url, log_level="WARNING")
    await Tortoise.init(config=config_from_settings(settings))
    await fill(deliveries)
    await Tortoise.close_connections()
    app = create_app(settings, run_dispatcher=False, produce_certificates=False)
    print(f"{machine()}; SQLite, {deliveries} deliveries, {2 * deliveries} attempts, Redis: {redis_url or 'none'}")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
            for path in ("/metrics", "/metrics/cluster"):
                times = []
                for _ in range(scrapes):
                    started = time.perf_counter()
                    response = await http.get(path)
                    times.append(time.perf_counter() - started)
                    assert response.status_code == 200
                    # Scrapes a second apart: the cluster figures are read again each time, not reused.
                    app.state.metrics.cluster._read_at = float("-inf")
                print(f"{path:18} median {statistics.median(times) * 1000:7.1f} ms   slowest {max(times) * 1000:7.1f} ms"
                      f"   {len(response.content)} bytes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=20000)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.deliveries, args.scrapes, args.redis))
