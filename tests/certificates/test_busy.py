"""A certificate's first download makes its PDF and writes it down; with the database locked by another process that
write cannot happen now: 503 SERVICE_BUSY with Retry-After (issue #10, item 9), and the retry gets the PDF."""

from __future__ import annotations

import pytest

from tests.api.test_busy import sqlite_write_lock
from tests.certificates.conftest import approve_b, download, only_certificate


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"db_busy_timeout_ms": 200})


# quiet_app: the lock is taken by a blocking call on the test's own event loop (it stands for another process); a
# notice dispatcher in the background holding the app's write lock at that moment could not finish its transaction.
@pytest.mark.quiet_app
@pytest.mark.no_pdf_runner
@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_first_download_while_the_database_is_locked_answers_503(gql, client, seal, settings):
    await approve_b(gql, client)
    cert = await only_certificate(gql)
    assert cert["pdfReady"] is False
    with sqlite_write_lock(settings.database_url):
        response = await download(client, cert["downloadUrl"])
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"].isdigit()
        assert response.json()["error"]["code"] == "SERVICE_BUSY"
    retried = await download(client, cert["downloadUrl"])
    assert retried.status_code == 200 and retried.content.startswith(b"%PDF"), retried.text[:200]
