"""The applicant of a case a department's own window received (issue #15) gets the notices of its acceptance and
decision by SMS to the phone the department reported, like the applicant of a case made here."""

from __future__ import annotations

from api.models import Case, Notice, User
from tests.api.test_ingest import at, event, push_ok, statuses
from tests.api.test_ingest_receive import receive
from tests.factories import OTHER_PROJECT_CODE
from tests.notifications.test_dispatch import app, clock, dispatcher, fake_wechat, settings  # noqa: F401 - fixtures

PHONE = "13912345678"
DOCUMENT = {"approvalDate": "2026-11-06", "documentNumber": "珠自然资规许〔2026〕18号", "documentTitle": "批复",
            "validUntil": "9999-01-01"}


async def test_a_received_case_notifies_its_applicant_by_sms(client, world, dispatcher, tencent_fake, clock):
    results = await push_ok(client, clock, [
        receive("n-1", "N-1", at(0), project_code=OTHER_PROJECT_CODE, applicant={"name": "刘申请", "phone": PHONE}),
        event("n-3", "N-1", 3, at(1)),
    ])
    assert statuses(results) == [("APPLIED", None)] * 2
    case = await Case.get(code="N-1").prefetch_related("application")
    applicant = await User.get(id=case.application.applicant_id)
    assert applicant.phone == PHONE
    (notice,) = await Notice.filter(recipient_id=applicant.id)
    assert notice.kind == "case_accepted"
    assert await dispatcher.run_once() == 1
    assert [sms.phone for sms in tencent_fake.accepted] == [PHONE]
    results = await push_ok(client, clock, [event("n-8", "N-1", 8, at(2)),
                                            event("n-11", "N-1", 11, at(3), document=DOCUMENT)])
    assert statuses(results) == [("APPLIED", None)] * 2
    assert await dispatcher.run_once() == 1
    assert [sms.phone for sms in tencent_fake.accepted] == [PHONE, PHONE]
    kinds = [n.kind for n in await Notice.filter(recipient_id=applicant.id).order_by("id")]
    assert kinds == ["case_accepted", "case_approved"]
