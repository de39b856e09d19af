"""Issuance on approval (同步签发, DOMAIN.md §6): the record and its notice in the approval's transaction, the sealed PDF
right after (checked by the project's verifier and by poppler's pdfsig), a department without a seal, the
crash-before-PDF recovery, 撤销 revoking the certificate, and a department system's pushed approval."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest

from api.domain.certificates import is_valid_identifier
from api.models import Certificate, Notice
from esign import VerificationStatus, async_verify_pdf
from esign.ca import load_certificates
from tests.api.flows import APPROVAL_DOCUMENT, act_ok, approve, run_to_in_progress, submit_ok
from tests.certificates.conftest import approve_b, create_seal, download, only_certificate
from tests.esign.conftest import pdfsig


def platform_roots(settings):
    return load_certificates((settings.esign_dir / "platform-ca.pem").read_bytes())


async def test_approval_issues_a_sealed_certificate(gql, client, world, seal, settings, tmp_path, nss_db):
    cases = await approve_b(gql, client)
    cert = await only_certificate(gql)
    assert cert["status"] == "VALID" and cert["statusLabel"] == "有效"
    assert cert["name"] == APPROVAL_DOCUMENT["documentTitle"]
    assert cert["typeCode"] == "11100000000013338W002" and cert["typeName"] == "建设用地规划许可证"
    assert is_valid_identifier(cert["identifier"])
    assert cert["identifier"].startswith("1.2.156.3005.2.11100000000013338W002." + world.departments["planning"].uscc)
    assert cert["holderName"] == "珠海市建设发展有限公司" and cert["holderCodeType"] == "USCC"
    assert cert["holderCode"] == world.organizations["builder"].uscc
    assert cert["issuerName"] == "珠海市自然资源局" and cert["validUntil"] == "9999-01-01"
    assert cert["department"]["name"] == "珠海市自然资源局"
    assert len(cert["checkCode"]) == 9 and cert["checkCode"][4] == "-"
    assert cert["verifyUrl"].startswith(f"http://localhost:8000/verify/{cert['identifier']}?c=")
    assert {"label": "办件编号", "value": cases["B"]["code"]} in cert["fields"]
    # The case leads to its certificate (the phone's case page); another company's applicant sees neither.
    detail = (await gql.op("CaseDetail", {"id": cases["B"]["id"]}, as_user="applicant"))["node"]
    assert detail["certificate"]["identifier"] == cert["identifier"] and detail["certificate"]["status"] == "VALID"
    assert (await gql.op("CaseDetail", {"id": cases["B"]["id"]}, as_user="other_applicant"))["node"] is None
    # The holder as 建设单位 and the type's own fields: what the stage's one form asked for, as the form labels them.
    assert {"label": "建设单位", "value": "珠海市建设发展有限公司"} in cert["fields"]
    assert {"label": "用地面积(平方米)", "value": "12000"} in cert["fields"]
    # The applicant is told, in the approval's transaction (one notice per certificate).
    notices = await Notice.filter(kind="certificate_issued").values_list("recipient_id", "variables")
    assert [(r, v["certificate_no"]) for r, v in notices] == [(world.users["applicant"].id, cert["number"])]

    response = await download(client, cert["downloadUrl"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    pdf = response.content
    stored = await Certificate.get(identifier=cert["identifier"])
    assert hashlib.sha256(pdf).hexdigest() == stored.pdf_sha256 and stored.seal_id is not None
    result = await async_verify_pdf(pdf, platform_roots(settings))
    assert result.status is VerificationStatus.VALID, result.message
    assert result.identifier == cert["identifier"]
    assert result.seal_name == seal["name"] == "珠海市自然资源局行政审批专用章"
    path = tmp_path / "certificate.pdf"
    path.write_bytes(pdf)
    out = pdfsig(path, nss_db)
    assert "Signature Validation: Signature is Valid." in out, out
    assert "Certificate Validation: Certificate is Trusted." in out, out
    assert "Total document signed" in out, out
    # Downloading again gives the same file: it is made once.
    assert (await download(client, cert["downloadUrl"])).content == pdf


async def test_items_without_a_certificate_type_issue_nothing(gql, client, seal):
    cases = await submit_ok(gql, client, ["A"])
    await run_to_in_progress(gql, cases["A"]["id"])
    await approve(gql, cases["A"]["id"])
    assert await Certificate.all().count() == 0


async def test_without_a_seal_the_certificate_waits_and_says_why(gql, client, world, admin):
    await approve_b(gql, client)
    cert = await only_certificate(gql)
    assert cert["status"] == "VALID" and cert["pdfReady"] is False
    response = await download(client, cert["downloadUrl"])
    assert response.status_code == 503
    assert "尚无有效的电子印章" in response.json()["error"]["message"]
    cert = await only_certificate(gql, "planner")
    assert "尚无有效的电子印章" in cert["pdfPendingReason"]
    # The admin makes the seal: the waiting certificate is sealed (here on its download; the runner does it too).
    assert (await create_seal(gql, world))["errors"] == []
    response = await download(client, cert["downloadUrl"])
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    cert = await only_certificate(gql)
    assert cert["pdfReady"] is True and cert["pdfPendingReason"] is None


@pytest.mark.no_pdf_runner
async def test_a_certificate_left_without_its_pdf_is_made_later(gql, client, seal, app, settings, clock):
    """The process "died" after the approval's commit: no runner sealed the PDF. The sweep makes it, idempotently."""
    from api.services.certificates import produce_pending

    await approve_b(gql, client)
    stored = await Certificate.get()
    assert stored.pdf_path is None
    assert await produce_pending(settings, now=clock()) == 1
    assert await produce_pending(settings, now=clock()) == 0  # nothing left: made once
    stored = await Certificate.get()
    assert (settings.certificate_dir / stored.pdf_path).exists()
    cert = await only_certificate(gql)
    assert cert["pdfReady"] is True
    response = await download(client, cert["downloadUrl"])
    assert hashlib.sha256(response.content).hexdigest() == stored.pdf_sha256


@pytest.mark.no_pdf_runner
async def test_first_download_makes_a_missing_pdf(gql, client, seal, settings):
    await approve_b(gql, client)
    cert = await only_certificate(gql)
    assert cert["pdfReady"] is False
    response = await download(client, cert["downloadUrl"])
    assert response.status_code == 200
    result = await async_verify_pdf(response.content, platform_roots(settings))
    assert result.status is VerificationStatus.VALID and result.identifier == cert["identifier"]


async def test_revoking_the_case_revokes_the_certificate(gql, client, seal):
    cases = await approve_b(gql, client)
    await act_ok(gql, "RevokeCase", "planner", caseId=cases["B"]["id"], reason="申请人以欺骗手段取得许可")
    cert = await only_certificate(gql)
    assert cert["status"] == "REVOKED" and cert["revokeReason"] == "申请人以欺骗手段取得许可"
    assert cert["downloadUrl"] is None
    revoked = (await gql.op("Certificates", {"filter": {"status": "REVOKED"}}, as_user="applicant"))["certificates"]
    assert revoked["totalCount"] == 1
    valid = (await gql.op("Certificates", {"filter": {"status": "VALID"}}, as_user="applicant"))["certificates"]
    assert valid["totalCount"] == 0


async def test_a_certificate_past_its_validity_shows_expired(gql, client, seal, clock):
    today = clock().astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    await approve_b(gql, client, valid_until=today + dt.timedelta(days=30))
    assert (await only_certificate(gql))["status"] == "VALID"
    clock.set(clock() + dt.timedelta(days=31))
    cert = await only_certificate(gql)
    assert (cert["status"], cert["statusLabel"]) == ("EXPIRED", "已过期")
    expired = (await gql.op("Certificates", {"filter": {"status": "EXPIRED"}}, as_user="applicant"))["certificates"]
    assert expired["totalCount"] == 1


async def test_an_approval_pushed_by_the_department_system_issues_the_certificate(gql, client, clock, seal, settings):
    cases = await submit_ok(gql, client, ["A", "B"])
    start = clock()
    events = []
    for n, (letter, case) in enumerate(sorted(cases.items())):
        code = case["code"]
        events += [
            {"eventId": f"{letter}-3", "caseCode": code, "blzt": 3, "occurredAt": (start + dt.timedelta(minutes=10 * n + 1)).isoformat()},
            {"eventId": f"{letter}-8", "caseCode": code, "blzt": 8, "occurredAt": (start + dt.timedelta(minutes=10 * n + 2)).isoformat()},
            {"eventId": f"{letter}-11", "caseCode": code, "blzt": 11, "document": APPROVAL_DOCUMENT,
             "occurredAt": (start + dt.timedelta(minutes=10 * n + 3)).isoformat()},
        ]
    clock.set(start + dt.timedelta(hours=1))
    body = json.dumps({"events": events}, ensure_ascii=False).encode()
    timestamp = str(int(clock().timestamp()))
    response = await client.post(
        "/ingest/events",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Jianshen-Department": "PLANNING",
            "X-Jianshen-Timestamp": timestamp,
            "X-Jianshen-Signature": hmac.new(b"secret-planning", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest(),
        },
    )
    assert response.status_code == 200, response.text
    assert {r["status"] for r in response.json()["results"]} == {"APPLIED"}
    cert = await only_certificate(gql)
    assert cert["status"] == "VALID"
    assert dt.datetime.fromisoformat(cert["issuedAt"]) == start + dt.timedelta(minutes=13)  # the event's own time
    assert await Notice.filter(kind="certificate_issued").count() == 1
    pdf = (await download(client, cert["downloadUrl"])).content
    result = await async_verify_pdf(pdf, platform_roots(settings))
    assert result.status is VerificationStatus.VALID, result.message
