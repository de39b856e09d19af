"""A received or imported case's decision carries the certificate the department's own system already issued
(issue #15): it is recorded as the department's (its number, dates, file reference or PDF), this platform seals
nothing for it, and the applicant, verification and download say so. Also: the received applicant's phone and form.

The world of tests/factories.py: items A (no certificate) and B (a certificate, A is its predecessor) belong to
PLANNING; project "other" belongs to the organisation "other", whose applicant is ``other_applicant``.
"""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest

from api.models import Application, Case, CaseEvent, Certificate, Notice, User
from api.services import certificates as certificate_service
from tests.api.test_ingest import NOW, at, event, push, push_ok, statuses
from tests.api.test_ingest_receive import everything as every_row, receive, snapshot
from tests.factories import PROJECT_CODE

DOCUMENT = {"approvalDate": "2026-11-06", "documentNumber": "珠自然资规许〔2026〕18号",
            "documentTitle": "关于测试项目用地预审与选址意见的批复", "validUntil": "9999-01-01"}
PDF = b"%PDF-1.4\n% the department's own certificate file\n%%EOF\n"

CERTIFICATE_VIEW = """query { certificates(first: 10) { edges { node {
    id number name issueDate validFrom validUntil issuedByDepartmentSystem issuedBy fileRef pdfReady pdfPendingReason
    downloadUrl identifier checkCode status
} } } }"""
VERIFY = """query($i: String!, $c: String!) { verifyCertificate(input: {identifier: $i, checkCode: $c}) {
    found message status number issuedByDepartmentSystem issuedBy } }"""


async def everything() -> dict:
    """Every row, but the deliveries: the app's own dispatcher delivers the notices meanwhile (it is not the batch)."""
    rows = await every_row()
    return {name: value for name, value in rows.items() if name not in ("Delivery", "DeliveryAttempt")}


def reference(number: str = "ZRZY-ZZ-2026-0018", **extra) -> dict:
    return {"number": number, "issueDate": "2026-11-06", "validUntil": "2029-11-05",
            "name": "建设项目用地预审与选址意见书", "file": {"name": "选址意见书.pdf", "ref": "ZRZY-FILE-7781"}} | extra


def history(prefix: str, *, project_code: str, certificate: dict | None, approve_b: bool = True) -> list[dict]:
    """A's case decided (its predecessor rule), then B's whole past up to its approval with the certificate."""
    a, b = f"{prefix}-A", f"{prefix}-B"
    decide = {"document": DOCUMENT} | ({"certificate": certificate} if certificate is not None else {})
    steps = [
        receive(f"{prefix}-a1", a, at(0), project_code=project_code, item="A"),
        event(f"{prefix}-a3", a, 3, at(1)), event(f"{prefix}-a8", a, 8, at(2)),
        event(f"{prefix}-a11", a, 11, at(3), document=DOCUMENT),
        receive(f"{prefix}-b1", b, at(4), project_code=project_code, item="B"),
        event(f"{prefix}-b3", b, 3, at(5)), event(f"{prefix}-b8", b, 8, at(6)),
    ]
    if approve_b:
        steps.append(event(f"{prefix}-b11", b, 11, at(30), **decide))
    return steps


async def test_imported_decision_records_the_departments_certificate(gql, client, clock, settings):
    clock.set(NOW)
    results = await push_ok(client, clock, history("h", project_code=PROJECT_CODE, certificate=reference()))
    assert statuses(results) == [("APPLIED", None)] * 8
    case = await Case.get(code="h-B")
    (certificate,) = await Certificate.filter(case_id=case.id)
    assert (certificate.number, str(certificate.issue_date), str(certificate.valid_until)) == (
        "ZRZY-ZZ-2026-0018", "2026-11-06", "2029-11-05")
    assert certificate.issued_by_department_system and certificate.file_ref == "ZRZY-FILE-7781"
    # Nothing is sealed here for it: the sweep leaves it alone, and so does a download's "make it now".
    assert await certificate_service.produce_pending(settings, now=NOW) == 0
    assert (await certificate_service.ensure_pdf(settings, certificate.id, now=NOW)).pdf_path is None
    assert not (settings.certificate_dir).exists() or not any(settings.certificate_dir.rglob("*.pdf"))
    # The applicant sees it, with what is true for it.
    (edge,) = (await gql(CERTIFICATE_VIEW, as_user="applicant"))["certificates"]["edges"]
    node = edge["node"]
    assert node["number"] == "ZRZY-ZZ-2026-0018" and node["name"] == "建设项目用地预审与选址意见书"
    assert node["issuedByDepartmentSystem"] is True and node["fileRef"] == "ZRZY-FILE-7781"
    assert "审批业务系统签发" in node["issuedBy"] and "未存其电子文件" in node["issuedBy"]
    assert (node["pdfReady"], node["downloadUrl"]) == (False, None)
    assert node["pdfPendingReason"] == certificate_service.NO_FILE_HERE
    # A notice told the applicant (the certificate's notice, with the department's number).
    notice = await Notice.get(source_key=f"certificate:{certificate.id}")
    assert "ZRZY-ZZ-2026-0018" in notice.body
    # Verification says who issued it; a (forged or old) download link says there is no file here.
    verified = (await gql(VERIFY, {"i": node["identifier"], "c": node["checkCode"]}))["verifyCertificate"]
    assert (verified["found"], verified["status"], verified["number"], verified["issuedByDepartmentSystem"]) == (
        True, "VALID", "ZRZY-ZZ-2026-0018", True)
    assert "审批业务系统签发" in verified["message"]
    link = certificate_service.download_url(settings, certificate, NOW).removeprefix(settings.base_url)
    response = await client.get(link)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "FILE_NOT_HERE")
    page = await client.get(f"/verify/{node['identifier']}?c={node['checkCode']}")
    assert page.status_code == 200 and "审批业务系统签发" in page.text
    # The same import again changes nothing.
    before = await everything()
    again = await push_ok(client, clock, history("h", project_code=PROJECT_CODE, certificate=reference()))
    assert statuses(again) == [("DUPLICATE", None)] * 8
    assert await everything() == before


async def test_the_departments_pdf_is_kept_and_downloaded_as_sent(gql, client, clock, settings):
    clock.set(NOW)
    cert = reference(file={"name": "选址意见书.pdf", "pdfBase64": base64.b64encode(PDF).decode()})
    assert statuses(await push_ok(client, clock, history("p", project_code=PROJECT_CODE, certificate=cert))) == [
        ("APPLIED", None)] * 8
    (edge,) = (await gql(CERTIFICATE_VIEW, as_user="applicant"))["certificates"]["edges"]
    node = edge["node"]
    assert (node["pdfReady"], node["issuedByDepartmentSystem"], node["fileRef"]) == (True, True, None)
    assert "存有其电子文件" in node["issuedBy"]
    response = await client.get(node["downloadUrl"].removeprefix(settings.base_url))
    assert response.status_code == 200 and response.content == PDF  # the department's file, not re-sealed


async def test_a_missing_or_duplicate_certificate_is_refused_on_that_event_only(client, clock):
    clock.set(NOW)
    assert statuses(await push_ok(client, clock, history("d", project_code=PROJECT_CODE, certificate=reference(
        "NO-1")))) == [("APPLIED", None)] * 8
    before = await snapshot()
    other = history("e", project_code=_other(), certificate=None, approve_b=False)
    assert statuses(await push_ok(client, clock, other)) == [("APPLIED", None)] * 7
    counts = await snapshot()
    bad = [
        event("e-x1", "e-B", 11, at(30), document=DOCUMENT),  # a received case with a certificate: it must come
        event("e-x2", "e-B", 11, at(30), document=DOCUMENT, certificate=reference("")),
        event("e-x3", "e-B", 11, at(30), document=DOCUMENT, certificate={"issueDate": "2026-11-06"}),
        event("e-x4", "e-B", 11, at(30), document=DOCUMENT, certificate=reference("NO-1")),  # d-B's number
        event("e-x5", "e-B", 11, at(30), document=DOCUMENT, certificate=reference(issueDate="06/11/2026")),
        event("e-x6", "e-B", 11, at(30), document=DOCUMENT, certificate=reference(file={"name": "x.pdf"})),
        event("e-x7", "e-B", 11, at(30), document=DOCUMENT,
              certificate=reference(file={"name": "x.pdf", "pdfBase64": base64.b64encode(b"not a pdf").decode()})),
        event("e-x8", "e-B", 13, at(30), reason="不符合", certificate=reference("NO-8")),
        event("e-x9", "e-B", 11, at(30), document=DOCUMENT, certificate="NO-9"),
        event("e-ok", "e-B", 11, at(30), document=DOCUMENT, certificate=reference("NO-2")),
    ]
    results = await push_ok(client, clock, bad)
    assert [(r["status"], r.get("code"), r.get("field")) for r in results] == [
        ("REJECTED", "REQUIRED", "certificate"),
        ("REJECTED", "REQUIRED", "certificate.number"),
        ("REJECTED", "REQUIRED", "certificate.number"),
        ("REJECTED", "CERTIFICATE_NUMBER_TAKEN", "certificate.number"),
        ("REJECTED", "INVALID_INPUT", "certificate.issueDate"),
        ("REJECTED", "REQUIRED", "certificate.file"),
        ("REJECTED", "INVALID_INPUT", "certificate.file.pdfBase64"),
        ("REJECTED", "INVALID_INPUT", "certificate"),
        ("REJECTED", "INVALID_INPUT", "certificate"),
        ("APPLIED", None, None),
    ]
    assert await Certificate.filter(number="NO-2").count() == 1
    # The applied event sent again answers DUPLICATE, whatever its certificate says now (the first version wins).
    again = await push_ok(client, clock, [event("e-ok", "e-B", 11, at(30), document=DOCUMENT, certificate="NO-2")])
    assert statuses(again) == [("DUPLICATE", None)]
    assert await CaseEvent.all().count() == counts[1] + 1 and before[1] < counts[1]


def _other() -> str:
    from tests.factories import OTHER_PROJECT_CODE

    return OTHER_PROJECT_CODE


async def test_an_item_without_certificate_cannot_carry_one(client, clock):
    clock.set(NOW)
    steps = [receive("n-1", "n-A", at(0), item="A"), event("n-3", "n-A", 3, at(1)), event("n-8", "n-A", 8, at(2)),
             event("n-11", "n-A", 11, at(3), document=DOCUMENT, certificate=reference("N-1"))]
    results = await push_ok(client, clock, steps)
    assert [(r["status"], r.get("code"), r.get("field")) for r in results][-1] == (
        "REJECTED", "INVALID_INPUT", "certificate")
    assert await Certificate.all().count() == 0


async def test_dry_run_of_an_import_with_a_certificate_keeps_nothing(client, clock, settings):
    clock.set(NOW)
    cert = reference(file={"name": "选址意见书.pdf", "pdfBase64": base64.b64encode(PDF).decode()})
    batch = history("y", project_code=PROJECT_CODE, certificate=cert)
    before = await everything()
    dry = await push(client, clock, batch, query="?dryRun=1")
    assert dry.status_code == 200 and dry.json()["dryRun"] is True
    assert statuses(dry.json()["results"]) == [("APPLIED", None)] * 8
    assert await everything() == before
    assert not settings.certificate_dir.exists() or not any(settings.certificate_dir.rglob("*.pdf"))
    real = await push_ok(client, clock, batch)
    assert real == dry.json()["results"]
    assert await Certificate.filter(number="ZRZY-ZZ-2026-0018", issued_by_department_system=True).count() == 1
    assert any(settings.certificate_dir.rglob("*.pdf"))


async def test_one_certificate_number_under_concurrent_approvals(client, clock):
    """Two cases approved at the same moment with the same certificate number: one gets it, the other is refused."""
    from tests.factories import OTHER_PROJECT_CODE

    clock.set(NOW)
    for prefix, code in (("c1", PROJECT_CODE), ("c2", OTHER_PROJECT_CODE)):
        assert statuses(await push_ok(client, clock, history(prefix, project_code=code, certificate=None,
                                                             approve_b=False))) == [("APPLIED", None)] * 7
    answers = await asyncio.gather(*(
        push_ok(client, clock, [event(f"{p}-b11", f"{p}-B", 11, at(30), document=DOCUMENT,
                                      certificate=reference("SAME-1"))])
        for p in ("c1", "c2")
    ))
    outcomes = sorted(statuses(r)[0] for r in answers)
    assert outcomes in ([("APPLIED", None), ("REJECTED", "CERTIFICATE_NUMBER_TAKEN")],
                        [("APPLIED", None), ("REJECTED", "CONFLICT")]), outcomes
    assert await Certificate.filter(number="SAME-1").count() == 1


async def test_received_applicant_phone_and_form(client, clock, caplog, world):
    from tests.factories import OTHER_APPLICANT_PHONE as PHONE, OTHER_PROJECT_CODE

    clock.set(NOW)
    unknown_phone = "13912345678"
    caplog.set_level(logging.INFO, logger="jianshen.ingest")
    results = await push_ok(client, clock, [
        receive("ph-1", "PH-1", at(0), project_code=OTHER_PROJECT_CODE,
                applicant={"name": "刘申请", "phone": "1391234"}),
        receive("ph-2", "PH-2", at(0), project_code=OTHER_PROJECT_CODE, form={"landArea": "many"}),
        receive("ph-3", "PH-3", at(0), project_code=OTHER_PROJECT_CODE, form={"nope": 1, "landArea": 5}),
        receive("ph-4", "PH-4", at(0), project_code=OTHER_PROJECT_CODE, form={"purpose": "工业"}),  # landArea required
        receive("ph-5", "PH-5", at(0), project_code=OTHER_PROJECT_CODE,
                applicant={"name": "刘申请", "phone": unknown_phone}, form={"landArea": 1200, "purpose": "工业"}),
        receive("ph-6", "PH-6", at(0), project_code=PROJECT_CODE, item="B",
                applicant={"name": "李别家", "phone": PHONE}),
        receive("ph-7", "PH-7", at(0), project_code=OTHER_PROJECT_CODE, item="B",
                applicant={"name": "李经办", "phone": PHONE}),
    ])
    assert [(r["status"], r.get("code"), r.get("field")) for r in results] == [
        ("REJECTED", "INVALID_INPUT", "applicant.phone"),
        ("REJECTED", "FORM_INVALID", "form.landArea"),
        ("REJECTED", "FORM_INVALID", "form.nope"),
        ("REJECTED", "FORM_INVALID", "form.landArea"),
        ("APPLIED", None, None),
        ("APPLIED", None, None),
        ("APPLIED", None, None),
    ]
    case = await Case.get(code="PH-5").prefetch_related("application")
    assert case.application.form == {"landArea": 1200, "purpose": "工业"}
    applicant = await User.get(id=case.application.applicant_id)
    assert (applicant.display_name, applicant.phone, applicant.openid) == ("刘申请", unknown_phone, None)
    # A phone the organisation's own applicant verified: that user is the applicant (their notices, their WeChat).
    # (Project "main" belongs to "builder": another organisation's verified phone is not matched.)
    other = await Case.get(code="PH-6").prefetch_related("application")
    matched = await User.get(id=other.application.applicant_id)
    assert matched.phone == PHONE and matched.phone_verified_at is None  # a new contact of "builder", not 李别家
    own = await Case.get(code="PH-7").prefetch_related("application")
    assert own.application.applicant_id == world.users["other_applicant"].id
    logged = "\n".join(r.getMessage() + repr(getattr(r, "fields", "")) for r in caplog.records)
    assert unknown_phone not in logged and "139****5678" in logged


async def test_a_free_form_is_kept_when_the_stage_has_no_form(client, clock):
    """Stage 3 (item D, HOUSING) has no form: what the department sends is kept as given, checked for shape."""
    from tests.factories import OTHER_PROJECT_CODE

    clock.set(NOW)
    housing = ("HOUSING", "secret-housing")
    results = await push_ok(client, clock, [
        receive("ff-1", "FF-1", at(0), project_code=OTHER_PROJECT_CODE, item="D", form={"合同价格": ["x"]}),
        receive("ff-2", "FF-2", at(0), project_code=OTHER_PROJECT_CODE, item="D",
                form={"合同价格(万元)": 3200, "施工单位": "珠海建工"}),
    ], department=housing)
    assert [(r["status"], r.get("code"), r.get("field")) for r in results] == [
        ("REJECTED", "FORM_INVALID", "form.合同价格"), ("APPLIED", None, None)]
    application = await Application.get(cases__code="FF-2")
    assert application.form == {"合同价格(万元)": 3200, "施工单位": "珠海建工"}


@pytest.fixture(autouse=True)
def _world(world):
    """The departments, items and projects of tests/factories.py."""


async def test_a_mini_program_case_may_carry_the_departments_certificate_or_get_one_sealed_here(gql, client, clock):
    """For a case made in the mini-program the reference is optional: with it the department's certificate is
    recorded; without it this platform issues its own, as when a clerk approves."""
    from tests.api.flows import submit_ok
    from tests.api.test_ingest import SUBMITTED

    clock.set(SUBMITTED)
    cases = await submit_ok(gql, client, ["A", "B"])
    clock.set(NOW)
    a, b = cases["A"]["code"], cases["B"]["code"]
    results = await push_ok(client, clock, [
        event("m-a3", a, 3, at(1)), event("m-a8", a, 8, at(2)), event("m-a11", a, 11, at(3), document=DOCUMENT),
        event("m-b3", b, 3, at(4)), event("m-b8", b, 8, at(5)),
        event("m-b11", b, 11, at(6), document=DOCUMENT, certificate=reference("MINI-1")),
    ])
    assert statuses(results) == [("APPLIED", None)] * 6
    (certificate,) = await Certificate.filter(case__code=b)
    assert (certificate.number, certificate.issued_by_department_system) == ("MINI-1", True)
