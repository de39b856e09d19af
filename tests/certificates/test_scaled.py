"""Scaled mode (Redis configured): the arq workers seal the certificates' PDFs, woken by the API after the approval's
commit — the API processes spend no CPU on rendering. A real worker process, a real Redis, the test's database."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.models import Certificate
from api.services import certificates
from api.settings import Settings
from tests.certificates.conftest import approve_b, only_certificate
from tests.notifications.arq_setup import start_worker, stop_worker, worker_env


@pytest.fixture
def settings(database_url, tmp_path, redis_server) -> Settings:
    return Settings(
        database_url=database_url, upload_dir=tmp_path / "uploads", esign_dir=tmp_path / "esign",
        certificate_dir=tmp_path / "certificates", redis_url=redis_server.url, public_verify_per_minute=10_000,
    )


async def test_the_workers_seal_the_pdf_the_api_only_wakes_them(gql, client, settings, seal, tmp_path):
    assert certificates._runners == set()  # no PDF runner in an API process of scaled mode
    env = worker_env("console", "127.0.0.1:1", settings.database_url, settings.redis_url) | {
        "JIANSHEN_ESIGN_DIR": str(settings.esign_dir), "JIANSHEN_CERTIFICATE_DIR": str(settings.certificate_dir),
    }
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        await approve_b(gql, client)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stored = await Certificate.first()
            if stored is not None and stored.pdf_sha256:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("the worker did not seal the PDF within 60 s:\n" + (tmp_path / "worker.log").read_text()[-3000:])
    finally:
        stop_worker(worker)
    cert = await only_certificate(gql)
    assert cert["pdfReady"] is True and cert["status"] == "VALID"
