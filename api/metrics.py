"""``/metrics`` and ``/metrics/cluster`` in Prometheus' text format (DESIGN.md §6, issue #12): what an operator watches.

``/metrics`` — this process, scraped on every replica (each series is one process's; Prometheus' ``instance`` label
tells them apart, so a sum over replicas counts each request once):

- ``jianshen_http_requests_total`` and ``jianshen_http_request_duration_seconds`` by route *template* (never the raw
  path, whose identifiers would make a series per certificate), method and status;
- the response cache's hits, misses, entries and bytes (docs/PERFORMANCE.md);
- prometheus_client's default collectors: ``process_*`` (CPU, memory, open files), ``python_info``, ``python_gc_*``.

``/metrics/cluster`` — the state every process shares, read from the database and Redis when scraped: the same
answer from whichever replica serves it, so it is scraped once, through the service's address (docs/OPERATIONS.md),
never per replica (which would repeat each figure once per replica):

- notice deliveries by channel and status (``DEAD`` ones want a person), notice attempts by channel and outcome;
- certificates still waiting for their sealed PDF;
- with Redis: the arq queue (jobs due now, jobs deferred) and, from each live worker's health record, its jobs
  complete / failed / retried (counters since that worker started) and in progress.

Counts only: no person, number or token is ever a label. In production both answer only with
``Authorization: Bearer $JIANSHEN_METRICS_TOKEN``, and not at all without that setting.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from typing import Any, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST, GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, Counter, Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

PATH = "/metrics"
CLUSTER_PATH = "/metrics/cluster"
PATHS = (PATH, CLUSTER_PATH)
CLUSTER_REUSE_SECONDS = 1.0  # scrapes arriving together share one reading of the database and Redis
_HEALTH = re.compile(r"j_complete=(\d+) j_failed=(\d+) j_retried=(\d+) j_ongoing=(\d+)")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One registry per app (tests make many apps in one process; the global registry would refuse the second)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "jianshen_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "jianshen_http_request_duration_seconds", "Time to answer an HTTP request", ["route"],
            buckets=BUCKETS, registry=self.registry,
        )
        # The defaults prometheus_client puts in its global registry: the process (CPU, memory, file descriptors),
        # the platform (python_info) and the garbage collector. Collectors keep no state: one instance serves all.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.cluster = ClusterMetrics()

    def observe(self, scope: dict, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.requests.labels(scope.get("method", ""), template, str(status)).inc()
        self.duration.labels(template).observe(seconds)

    def watch_cache(self, cache: Any) -> None:
        self.registry.register(_CacheCollector(cache))


class ClusterMetrics:
    """The figures every process shares (``/metrics/cluster``), read from the database and Redis at each scrape
    (a collector cannot await); scrapes within ``CLUSTER_REUSE_SECONDS`` of each other share one reading."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.figures: dict[str, Any] = {}
        self.redis: Any = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self.registry.register(_ClusterCollector(self.figures))

    def watch_redis(self, redis: Any) -> None:
        """The arq queue and the workers' health records live in this Redis (scaled mode)."""
        self.redis = redis

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at < CLUSTER_REUSE_SECONDS:
                return  # another scrape just read them
            await self._read_database()
            if self.redis is not None:
                await self._read_redis()
            self._read_at = time.monotonic()

    async def _read_database(self) -> None:
        from tortoise.functions import Count

        from api.models import Certificate, Delivery, DeliveryAttempt
        from api.models.certificates import StoredCertificateStatus
        from api.models.notices import DeliveryStatus

        rows = await Delivery.annotate(n=Count("id")).group_by("channel", "status").values("channel", "status", "n")
        deliveries = {("none", status.value): 0 for status in DeliveryStatus}  # every status, even when at zero
        for row in rows:
            key = (row["channel"] or "none", str(getattr(row["status"], "value", row["status"])))
            deliveries[key] = deliveries.get(key, 0) + row["n"]
        self.figures["deliveries"] = deliveries
        rows = await DeliveryAttempt.annotate(n=Count("id")).group_by("channel", "outcome").values(
            "channel", "outcome", "n"
        )
        self.figures["attempts"] = {(row["channel"], row["outcome"] or "UNFINISHED"): row["n"] for row in rows}
        self.figures["pdfs_pending"] = await Certificate.filter(
            status=StoredCertificateStatus.VALID, pdf_path__isnull=True
        ).count()

    async def _read_redis(self) -> None:
        from arq.constants import default_queue_name, health_check_key_suffix

        try:
            now_ms = int(time.time() * 1000)
            total = await self.redis.zcard(default_queue_name)
            due = await self.redis.zcount(default_queue_name, "-inf", now_ms)
            workers: dict[str, tuple[int, ...]] = {}
            prefix = f"{default_queue_name}{health_check_key_suffix}"
            keys = [key async for key in self.redis.scan_iter(match=f"{prefix}*", count=500)]
            records = await self.redis.mget(keys) if keys else []
        except Exception:  # noqa: BLE001 - Redis down: the database figures still answer, the queue's say so
            self.figures["redis_up"] = 0
            return
        for key, record in zip(keys, records):
            found = _HEALTH.search(record.decode(errors="replace")) if record else None
            if found:
                name = key.decode(errors="replace")[len(prefix):].lstrip(":") or "default"
                workers[name] = tuple(int(value) for value in found.groups())
        self.figures.update(redis_up=1, queued_due=due, queued_deferred=total - due, workers=workers)


class _CacheCollector:
    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def collect(self):
        hits = CounterMetricFamily("jianshen_response_cache_hits", "GraphQL answers served from the response cache")
        hits.add_metric([], self.cache.hits)
        misses = CounterMetricFamily("jianshen_response_cache_misses", "GraphQL requests the response cache could not answer")
        misses.add_metric([], self.cache.misses)
        entries = GaugeMetricFamily("jianshen_response_cache_entries", "Answers kept now")
        entries.add_metric([], len(self.cache))
        size = GaugeMetricFamily("jianshen_response_cache_bytes", "Bytes of the answers kept now")
        size.add_metric([], self.cache.size_bytes)
        return [hits, misses, entries, size]


class _ClusterCollector:
    def __init__(self, figures: dict[str, Any]) -> None:
        self.figures = figures

    def collect(self):
        deliveries = GaugeMetricFamily(
            "jianshen_notice_deliveries", "Notice deliveries by channel (none: not tried yet) and status (DEAD: gave up, "
            "waiting for staff)", labels=["channel", "status"],
        )
        for (channel, status), count in sorted(self.figures.get("deliveries", {}).items()):
            deliveries.add_metric([channel, status], count)
        attempts = CounterMetricFamily(
            "jianshen_notice_attempts", "Notice delivery attempts by channel and outcome", labels=["channel", "outcome"]
        )
        for (channel, outcome), count in sorted(self.figures.get("attempts", {}).items()):
            attempts.add_metric([channel, outcome], count)
        pending = GaugeMetricFamily("jianshen_certificate_pdfs_pending", "Valid certificates still without their sealed PDF")
        pending.add_metric([], self.figures.get("pdfs_pending", 0))
        families = [deliveries, attempts, pending]
        if "redis_up" not in self.figures:
            return families  # embedded mode: no queue, the dispatcher runs in the API process
        up = GaugeMetricFamily("jianshen_redis_up", "1 when Redis answered this scrape")
        up.add_metric([], self.figures["redis_up"])
        queued = GaugeMetricFamily(
            "jianshen_arq_jobs_queued", "Jobs in the arq queue: due now, or deferred to later", labels=["state"]
        )
        queued.add_metric(["due"], self.figures.get("queued_due", 0))
        queued.add_metric(["deferred"], self.figures.get("queued_deferred", 0))
        workers = self.figures.get("workers", {})
        alive = GaugeMetricFamily("jianshen_arq_workers", "Workers with a live health record")
        alive.add_metric([], len(workers))
        jobs = CounterMetricFamily(
            "jianshen_arq_jobs", "Jobs a worker finished since it started, by result", labels=["worker", "result"]
        )
        running = GaugeMetricFamily("jianshen_arq_jobs_in_progress", "Jobs a worker is running", labels=["worker"])
        for name, (complete, failed, retried, ongoing) in sorted(workers.items()):
            jobs.add_metric([name, "complete"], complete)
            jobs.add_metric([name, "failed"], failed)
            jobs.add_metric([name, "retried"], retried)
            running.add_metric([name], ongoing)
        return [*families, up, queued, alive, jobs, running]


def endpoint(metrics: Metrics, token: str | None, *, production: bool, cluster: bool = False) -> Callable:
    """``/metrics`` (this process), or with ``cluster`` ``/metrics/cluster`` (the shared figures)."""

    async def serve(request: Request) -> Response:
        if token:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return PlainTextResponse("需要监控令牌", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        elif production:
            return PlainTextResponse("Not Found", status_code=404)  # not exposed without JIANSHEN_METRICS_TOKEN
        if cluster:
            await metrics.cluster.refresh()
            return Response(generate_latest(metrics.cluster.registry), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return serve
