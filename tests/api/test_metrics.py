"""``/metrics`` (DESIGN.md §6): requests by route template, the response cache, the notice outbox and the PDFs still
to seal, read from the database at each scrape; closed in production unless a token is configured."""

from __future__ import annotations

import re

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from api.app import create_app
from api.models import Delivery
from api.models.notices import DeliveryStatus
from api.settings import Settings
from tests.api.flows import act_ok, submit_ok
from tests.factories import PROJECT_CODE, shanghai


pytestmark = pytest.mark.quiet_app  # the outbox holds still while the test counts it


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus' text format."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            found = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
            if found == wanted:
                return float(match.group(3))
    raise AssertionError(f"no {name}{{{wanted}}} in the metrics")


async def test_requests_the_cache_and_the_outbox_are_counted(gql, client, world, clock, app):
    clock.set(shanghai(2026, 11, 2, 9))
    case = (await submit_ok(gql, client, ["A"]))["A"]
    await act_ok(gql, "AcceptCase", "clerk", caseId=case["id"])  # notices of acceptance go to the outbox
    for _ in range(3):
        await gql.op("ProjectProgress", {"code": PROJECT_CODE}, as_user="applicant")
    await client.get("/verify/1.2.156.3005.2.SOMETHING?c=ABCD-2345")
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample(text, "jianshen_http_requests_total", method="POST", route="/graphql", status="200") >= 5
    # The template, never the identifier: one series however many certificates are looked up.
    assert sample(text, "jianshen_http_requests_total", method="GET", route="/verify/{identifier}", status="404") == 1
    assert "SOMETHING" not in text
    assert sample(text, "jianshen_http_request_duration_seconds_count", route="/graphql") >= 5
    assert sample(text, "jianshen_response_cache_hits_total") >= 1
    assert sample(text, "jianshen_response_cache_entries") >= 1
    # The shared figures are on /metrics/cluster (scraped once, not per replica): deliveries by channel and status.
    assert "jianshen_notice_deliveries" not in text
    cluster = (await client.get("/metrics/cluster")).text
    counts = {s.value: await Delivery.filter(status=s).count() for s in DeliveryStatus}
    assert counts["PENDING"] > 0
    for status, count in counts.items():
        assert sample(cluster, "jianshen_notice_deliveries", channel="none", status=status) == count
    assert sample(cluster, "jianshen_certificate_pdfs_pending") == 0


async def test_the_request_log_names_the_operation(gql, client, world, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="jianshen.request"):
        for _ in range(2):  # executed, then answered from the cache: named both times
            await gql.op("ProjectProgress", {"code": PROJECT_CODE}, as_user="applicant")
    lines = [r for r in caplog.records if r.name == "jianshen.request"]
    assert [r.fields.get("operation") for r in lines[-2:]] == ["ProjectProgress", "ProjectProgress"]
    assert lines[-1].fields.get("cache") == "hit" and "cache" not in lines[-2].fields


@pytest.fixture
def production(database_url, tmp_path):
    def make(token: str | None) -> Settings:
        return Settings(
            env="production", database_url=database_url, upload_dir=tmp_path / "u", esign_dir=tmp_path / "e",
            certificate_dir=tmp_path / "c", secret_key="s" * 40, esign_kek="k" * 40,
            certificate_check_secret="c" * 40, metrics_token=token, public_base_url="https://js.example",
        )

    return make


@pytest.mark.parametrize("token", [None, "prometheus-scrape-token-0123456789"])
async def test_production_exposes_metrics_only_to_the_token(production, token, world_free_app):
    async with world_free_app(production(token)) as http:
        if token is None:
            assert (await http.get("/metrics")).status_code == 404
            assert (await http.get("/metrics/cluster")).status_code == 404
            return
        for path in ("/metrics", "/metrics/cluster"):
            assert (await http.get(path)).status_code == 401
            assert (await http.get(path, headers={"Authorization": "Bearer wrong"})).status_code == 401
        # The scrape token is not a person's JWT: the auth middleware leaves it alone.
        answered = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert answered.status_code == 200 and "jianshen_http_requests_total" in answered.text
        cluster = await http.get("/metrics/cluster", headers={"Authorization": f"Bearer {token}"})
        assert cluster.status_code == 200 and "jianshen_notice_deliveries" in cluster.text


@pytest.fixture
def world_free_app(clock):
    import contextlib

    @contextlib.asynccontextmanager
    async def run(settings: Settings):
        EXECUTOR_CACHE.clear()
        application = create_app(settings, clock=clock, run_dispatcher=False, produce_certificates=False)
        async with application.router.lifespan_context(application):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as http:
                yield http

    return run
