"""What a certificate's download link and the public /verify page may give (issue #10, items 13 and 16): a link made
before the certificate was revoked stops working at once, and nothing the service sends back that holds what others
typed or uploaded can be sniffed, framed or rendered inline by a browser."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.api.flows import act_ok
from tests.certificates.conftest import approve_b, download, local_path, only_certificate

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
async def issued(gql, client, seal) -> dict:
    cases = await approve_b(gql, client)
    cert = await only_certificate(gql)
    assert (await download(client, cert["downloadUrl"])).status_code == 200  # the PDF exists before the revocation
    return {"cert": cert, "cases": cases}


async def test_a_link_issued_before_the_revocation_no_longer_downloads(gql, client, issued):
    url = issued["cert"]["downloadUrl"]  # still within its lifetime (JIANSHEN_CERTIFICATE_DOWNLOAD_TTL)
    await act_ok(gql, "RevokeCase", "planner", caseId=issued["cases"]["B"]["id"], reason="许可被依法撤销")
    # Many at once, as a client retrying would: none of them gets the PDF.
    answers = await asyncio.gather(*(download(client, url) for _ in range(10)))
    for response in answers:
        assert response.status_code == 410, response.status_code
        assert response.headers["content-type"].startswith("application/json")
        error = response.json()["error"]
        assert error["code"] == "CERTIFICATE_NOT_VALID" and "已撤销" in error["message"]
        assert b"%PDF" not in response.content


async def test_the_pdf_is_an_attachment_never_sniffed_or_rendered_inline(client, issued):
    response = await download(client, issued["cert"]["downloadUrl"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]


def assert_page_headers(response) -> None:
    headers = response.headers
    assert headers["content-type"].startswith("text/html")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"  # the page's address holds the check code
    assert headers["x-frame-options"] == "DENY"
    policy = dict(
        (part.strip().split(" ", 1) + [""])[:2] for part in headers["content-security-policy"].split(";") if part.strip()
    )
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'" and "script-src" not in policy  # no script may run, inline or not
    # The page's one style sheet is allowed by its hash, so an injected <style> would not apply either.
    style = re.search(r"<style>(.*?)</style>", response.text, re.S).group(1)
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert policy["style-src"] == f"'sha256-{digest}'"


async def test_every_verify_page_sends_its_security_headers(client, issued, settings):
    cert = issued["cert"]
    pages = [
        await client.get("/verify"),  # the form
        await client.get(local_path(cert["verifyUrl"])),  # valid
        await client.get(f"/verify/{cert['identifier']}?c=ABCD2345"),  # unknown (404)
        await client.get("/verify?identifier=%3Cscript%3Ealert(1)%3C/script%3E&c=x"),  # reflected input, escaped
        await client.post("/verify", files={"file": ("x.pdf", PDF, "application/pdf")}, headers={"Accept": "text/html"}),
    ]
    assert [p.status_code for p in pages] == [200, 200, 404, 404, 200]
    for page in pages:
        assert_page_headers(page)
    assert "<script>" not in pages[3].text


async def test_the_rate_limited_page_sends_them_too(client, app):
    app.state.settings = app.state.settings.model_copy(update={"public_verify_per_minute": 1})
    first, second = await asyncio.gather(client.get("/verify"), client.get("/verify"))
    assert sorted([first.status_code, second.status_code]) == [200, 429]
    for page in (first, second):
        assert_page_headers(page)


async def test_answers_holding_what_clients_sent_are_never_sniffed(client, world, issued):
    token = {"Authorization": f"Bearer {world.token('applicant')}"}
    answers = [
        await client.post("/uploads", files={"file": ("<b>申请表</b>.pdf", PDF, "application/pdf")}, headers=token),
        await client.post("/uploads", files={"file": ("x.html", b"<html><script>1</script>", "text/html")}, headers=token),
        await client.post("/verify", content=PDF, headers={"Content-Type": "application/pdf"}),  # JSON
        await client.post("/graphql", json={"query": "{ viewer { id } }"}),
        await client.post("/graphql", json={"query": "{ viewer { id } }"}, headers={"Authorization": "Bearer bad"}),
        await client.get("/certificates/1/pdf?expires=1&sig=x"),
        await client.get("/healthz"),
    ]
    assert [a.status_code for a in answers][:2] == [201, 415]
    for answer in answers:
        assert answer.headers.get("x-content-type-options") == "nosniff", (answer.request.url, answer.headers)
