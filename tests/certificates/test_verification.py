"""Checking a certificate (DOMAIN.md §6 [珠海]): by identifier and check code (GraphQL and the QR page), by uploading
the PDF (intact, tampered, foreign, sealed after its seal's revocation), and the signed download link."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from api.models import Seal
from api.services.seals import signer_of
from esign import render_certificate, sign_pdf
from tests.api.flows import act_ok
from tests.certificates.conftest import approve_b, download, local_path, only_certificate
from tests.esign.conftest import construction_permit, make_platform, sign_certificate

ROOT = Path(__file__).resolve().parents[2]

MASKED_HOLDER = "珠海市****有限公司"  # 珠海市建设发展有限公司


@pytest.fixture
async def issued(gql, client, seal) -> dict:
    cases = await approve_b(gql, client)
    cert = await only_certificate(gql)
    pdf = (await download(client, cert["downloadUrl"])).content
    return {"cert": cert, "pdf": pdf, "cases": cases}


async def verify_by_code(gql, identifier: str, code: str) -> dict:
    return (await gql.op("VerifyCertificate", {"input": {"identifier": identifier, "checkCode": code}}))[
        "verifyCertificate"
    ]


async def post_pdf(client, pdf: bytes, *, multipart: bool = True):
    if multipart:
        return await client.post("/verify", files={"file": ("证照.pdf", pdf, "application/pdf")})
    return await client.post("/verify", content=pdf, headers={"Content-Type": "application/pdf"})


async def test_verify_certificate_by_identifier_and_check_code(gql, issued):
    cert = issued["cert"]
    # Anyone, signed in or not; the code as a person types it (lower case, no dash).
    answer = await verify_by_code(gql, cert["identifier"].lower(), cert["checkCode"].replace("-", "").lower())
    assert answer["found"] is True and answer["status"] == "VALID" and answer["message"] == "该证照有效"
    assert answer["holder"] == MASKED_HOLDER and answer["number"] == cert["number"]
    wrong = await verify_by_code(gql, cert["identifier"], "ABCD-2345")
    unknown_id = cert["identifier"].rsplit(".", 3)[0] + ".20990000001.001."
    from api.domain.certificates import mod37_36_check_char

    parts = cert["identifier"].split(".")
    other = ".".join(parts[:-3] + ["20990000001", "001"])
    other += "." + mod37_36_check_char("".join(parts[5:7]) + "20990000001001")
    for answer in [wrong, await verify_by_code(gql, other, cert["checkCode"]), await verify_by_code(gql, unknown_id, "x")]:
        assert answer["found"] is False and answer["status"] is None and answer["holder"] is None
        assert answer["message"].startswith("未查询到该证照")


async def test_the_qr_page_says_valid_revoked_expired_or_unknown(gql, client, clock, issued):
    cert = issued["cert"]
    url = cert["verifyUrl"]
    page = await client.get(local_path(url))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "证照有效" in text and MASKED_HOLDER in text and "珠海市建设发展有限公司" not in text
    assert cert["identifier"] in text and 'name="viewport"' in text
    # Unknown: a wrong code answers like an unknown identifier.
    bad = await client.get(f"/verify/{cert['identifier']}?c=ABCD2345")
    assert bad.status_code == 404 and "未查询到该证照" in bad.text and "证照有效" not in bad.text
    assert (await client.get("/verify/1.2.3?c=ABCD2345")).status_code == 404
    assert "<form" in (await client.get("/verify")).text
    code = parse_qs(urlsplit(url).query)["c"][0]
    assert "证照有效" in (await client.get(f"/verify?identifier={cert['identifier']}&c={code}")).text
    # Revoked.
    await act_ok(gql, "RevokeCase", "planner", caseId=issued["cases"]["B"]["id"], reason="许可被依法撤销")
    text = (await client.get(local_path(url))).text
    assert "证照已撤销" in text and "许可被依法撤销" in text
    assert (await verify_by_code(gql, cert["identifier"], code))["status"] == "REVOKED"


async def test_the_qr_page_says_expired(gql, client, clock, seal):
    await approve_b(gql, client, valid_until=clock().astimezone(dt.timezone(dt.timedelta(hours=8))).date())
    cert = await only_certificate(gql)
    assert "证照有效" in (await client.get(local_path(cert["verifyUrl"]))).text
    clock.set(clock() + dt.timedelta(days=1))
    assert "证照已过期" in (await client.get(local_path(cert["verifyUrl"]))).text


async def test_uploaded_pdf_intact_tampered_foreign(client, gql, issued, tmp_path):
    cert, pdf = issued["cert"], issued["pdf"]
    for multipart in (True, False):
        answer = (await post_pdf(client, pdf, multipart=multipart)).json()
        assert answer["status"] == "VALID" and answer["valid"] is True, answer
        assert answer["identifier"] == cert["identifier"] and answer["sealName"] == "珠海市自然资源局行政审批专用章"
        assert answer["certificate"]["status"] == "VALID" and answer["certificate"]["holder"] == MASKED_HOLDER
    # One changed byte inside the signed content.
    tampered = bytearray(pdf)
    index = tampered.index(b"/Keywords")
    tampered[index + 12] ^= 0x01
    answer = (await post_pdf(client, bytes(tampered))).json()
    assert answer["status"] == "TAMPERED" and answer["valid"] is False and answer["certificate"] is None
    assert "篡改" in answer["message"]
    # From the page's upload form, in a browser: the same answer as HTML.
    page = await client.post("/verify", files={"file": ("a.pdf", bytes(tampered), "application/pdf")},
                             headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html") and "文件未通过核验" in page.text
    page = await client.post("/verify", files={"file": ("a.pdf", pdf, "application/pdf")}, headers={"Accept": "text/html"})
    assert "电子印章签名有效" in page.text and "证照有效" in page.text and MASKED_HOLDER in page.text
    # Sealed by a key of another platform (its own CA): intact, but not ours.
    outsider = make_platform(tmp_path / "outsider")
    foreign = await asyncio.to_thread(sign_certificate, outsider, construction_permit(cert["identifier"]))
    answer = (await post_pdf(client, foreign)).json()
    assert answer["status"] == "NOT_TRUSTED" and answer["certificate"] is None
    assert (await post_pdf(client, b"hello")).json()["status"] == "UNREADABLE"
    # A revoked certificate: the seal is fine, the certificate is not.
    await act_ok(gql, "RevokeCase", "planner", caseId=issued["cases"]["B"]["id"], reason="许可被依法撤销")
    answer = (await post_pdf(client, pdf)).json()
    assert answer["status"] == "VALID" and answer["certificate"]["status"] == "REVOKED"


async def test_uploads_over_the_limit_are_refused(client, settings):
    big = b"%PDF-1.7\n" + b"0" * (settings.verify_upload_max_bytes + 70 * 1024)
    response = await post_pdf(client, big, multipart=False)
    assert response.status_code == 413 and response.json()["error"]["code"] == "FILE_TOO_LARGE"
    assert (await client.post("/verify", content=b"x", headers={"Content-Type": "text/plain"})).status_code == 400


async def test_a_signature_made_after_its_seals_revocation_is_invalid(gql, client, clock, issued, settings, tmp_path):
    cert, before = issued["cert"], issued["pdf"]
    seal = await Seal.get()
    signed_before = dt.datetime.fromisoformat((await post_pdf(client, before)).json()["signedAt"])
    # The seal is revoked one second after the certificate above was sealed (signing times have whole seconds).
    revoked_at = signed_before + dt.timedelta(seconds=1)
    clock.set(revoked_at)
    revoked = (await gql.op("RevokeSeal", {"input": {"sealId": issued_seal_id(seal), "reason": "印章密钥疑似泄露"}},
                            as_user="admin"))["revokeSeal"]
    assert revoked["errors"] == [] and revoked["seal"]["status"] == "REVOKED"
    assert dt.datetime.fromisoformat(revoked["seal"]["revokedAt"]) == revoked_at
    # Someone still holding the key signs afterwards (the real signing time must reach the revocation's second:
    # signing again until it does, at most a second of signatures).
    rendered = await asyncio.to_thread(render_certificate, construction_permit(cert["identifier"]))
    signer = signer_of(settings, seal)
    for _ in range(100):
        after = await asyncio.to_thread(
            sign_pdf, rendered.pdf, signer, seal_image_png=bytes(seal.image_png), seal_box=rendered.seal_box
        )
        answer = (await post_pdf(client, after)).json()
        if dt.datetime.fromisoformat(answer["signedAt"]) >= revoked_at:
            break
    assert answer["status"] == "SEAL_REVOKED" and answer["valid"] is False and "吊销" in answer["message"], answer
    # What it sealed before the revocation stays valid (DOMAIN.md §7).
    answer = (await post_pdf(client, before)).json()
    assert answer["status"] == "VALID" and answer["sealRevokedAt"] is not None, answer
    again = (await gql.op("RevokeSeal", {"input": {"sealId": issued_seal_id(seal), "reason": "x"}}, as_user="admin"))
    assert [e["code"] for e in again["revokeSeal"]["errors"]] == ["CONFLICT"]

    # Offline, the same verdicts: the revocation list exported from the database, the platform CA, the CLI.
    env = {**os.environ, "JIANSHEN_DATABASE_URL": settings.database_url}
    revoked_file, after_file, before_file = tmp_path / "revoked.json", tmp_path / "after.pdf", tmp_path / "before.pdf"
    export = subprocess.run([sys.executable, "-m", "api", "revoked-seals", "--output", str(revoked_file)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert export.returncode == 0, export.stderr
    exported = {k: dt.datetime.fromisoformat(v) for k, v in json.loads(revoked_file.read_text()).items()}
    assert exported == {hex(int(seal.serial)): revoked_at}
    after_file.write_bytes(after)
    before_file.write_bytes(before)
    ca = str(settings.esign_dir / "platform-ca.pem")
    for path, code, word in ((after_file, 1, "吊销"), (before_file, 0, "")):
        verdict = subprocess.run([sys.executable, "-m", "esign", "verify", str(path), "--ca", ca,
                                  "--revoked", str(revoked_file)], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert verdict.returncode == code and word in verdict.stdout, verdict.stdout + verdict.stderr


def issued_seal_id(seal: Seal) -> str:
    from api.domain.ids import to_global_id

    return to_global_id("Seal", seal.id)


async def test_download_link_expires_and_cannot_be_forged(client, clock, issued):
    url = issued["cert"]["downloadUrl"]
    query = parse_qs(urlsplit(url).query)
    path = urlsplit(url).path
    assert (await download(client, url)).status_code == 200
    forged = f"{path}?expires={int(query['expires'][0]) + 3600}&sig={query['sig'][0]}"
    assert (await client.get(forged)).status_code == 403
    other = f"/certificates/999/pdf?expires={query['expires'][0]}&sig={query['sig'][0]}"
    assert (await client.get(other)).status_code == 403
    assert (await client.get(path)).status_code == 403
    clock.set(clock() + dt.timedelta(seconds=301))
    response = await download(client, url)
    assert response.status_code == 403 and "已过期" in response.json()["error"]["message"]
