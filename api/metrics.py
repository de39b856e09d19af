"""``/metrics`` in Prometheus' text format (DESIGN.md §6): what an operator watches.

- ``jianshen_http_requests_total`` and ``jianshen_http_request_duration_seconds`` by route *template* (never the raw
  path, whose identifiers would make a series per certificate), method and status;
- the response cache's hits, misses, entries and bytes (docs/PERFORMANCE.md);
- read from the database at each scrape: notice deliveries by status (``DEAD`` ones want a person) and certificates
  still waiting for their sealed PDF.

Counts only: no person, number or token is ever a label. In production the endpoint answers only with
``Authorization: Bearer $JIANSHEN_METRICS_TOKEN``, and not at all without that setting.
"""

from __future__ import annotations

import hmac
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

PATH = "/metrics"
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
        self._database: dict[str, Any] = {}

    def observe(self, scope: dict, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.requests.labels(scope.get("method", ""), template, str(status)).inc()
        self.duration.labels(template).observe(seconds)

    def watch_cache(self, cache: Any) -> None:
        self.registry.register(_CacheCollector(cache))

    def watch_database(self) -> None:
        self.registry.register(_DatabaseCollector(self._database))

    async def refresh_database(self) -> None:
        """The database figures, read before each scrape (a collector cannot await)."""
        from tortoise.functions import Count

        from api.models import Certificate, Delivery
        from api.models.certificates import StoredCertificateStatus
        from api.models.notices import DeliveryStatus

        rows = await Delivery.annotate(n=Count("id")).group_by("status").values("status", "n")
        deliveries = {status.value: 0 for status in DeliveryStatus}
        for row in rows:
            deliveries[str(getattr(row["status"], "value", row["status"]))] = row["n"]
        self._database["deliveries"] = deliveries
        self._database["pdfs_pending"] = await Certificate.filter(
            status=StoredCertificateStatus.VALID, pdf_path__isnull=True
        ).count()


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


class _DatabaseCollector:
    def __init__(self, figures: dict[str, Any]) -> None:
        self.figures = figures

    def collect(self):
        deliveries = GaugeMetricFamily(
            "jianshen_notice_deliveries", "Notice deliveries by status (DEAD: gave up, waiting for staff)", labels=["status"]
        )
        for status, count in sorted(self.figures.get("deliveries", {}).items()):
            deliveries.add_metric([status], count)
        pending = GaugeMetricFamily("jianshen_certificate_pdfs_pending", "Valid certificates still without their sealed PDF")
        pending.add_metric([], self.figures.get("pdfs_pending", 0))
        return [deliveries, pending]


def endpoint(metrics: Metrics, token: str | None, *, production: bool) -> Callable:
    async def serve(request: Request) -> Response:
        if token:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return PlainTextResponse("需要监控令牌", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        elif production:
            return PlainTextResponse("Not Found", status_code=404)  # not exposed without JIANSHEN_METRICS_TOKEN
        await metrics.refresh_database()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return serve
