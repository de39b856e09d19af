"""``POST /ingest/events`` through the real ASGI app: a department system pushes signed BLZT events (docs/INGEST.md).

Cases are created as the mini-program does (``submitApplication``), so they are RECEIVED and belong to their item's
department: A and B to PLANNING (B has predecessor A), C to WATER. The app's "now" is the ``clock`` fixture; the
signature is computed here from the documented recipe, not with the service's own helper.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest

from api.models import CaseEvent
from api.routes.ingest import MAX_BODY
from tests.api.flows import APPROVAL_DOCUMENT, act, run_to_in_progress, submit_ok
from tests.factories import shanghai

SUBMITTED = shanghai(2026, 11, 2, 9)  # a Monday
NOW = shanghai(2026, 11, 20, 18)  # when the department system pushes
PLANNING = ("PLANNING", "secret-planning")
WATER = ("WATER", "secret-water")

CASE_TIMELINE = """query($id: ID!) { node(id: $id) { ... on Case {
    code state blzt acceptedOn
    timeline { seq blzt action stateAfter party source actorName externalId occurredAt opinion reason result
               specialProcedure { kind reason expectedDays }
               document { approvalDate documentNumber documentTitle validUntil } attachments { name uploadId ref } }
} } }"""


def at(hours: float) -> str:
    """An event time, ``hours`` after the submission."""
    return (SUBMITTED + dt.timedelta(hours=hours)).isoformat()


def event(event_id: str, case_code: str, blzt: int, occurred_at: str, **fields) -> dict:
    return {"eventId": event_id, "caseCode": case_code, "blzt": blzt, "occurredAt": occurred_at, **fields}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


async def push(
    client, clock, events=None, *, department=PLANNING, body=None, timestamp=None, sign_with=None, headers=None,
    query="",
):
    code, secret = department
    body = json.dumps({"events": events}, ensure_ascii=False).encode() if body is None else body
    timestamp = str(int(clock().timestamp())) if timestamp is None else timestamp
    sent = {
        "Content-Type": "application/json",
        "X-Jianshen-Department": code,
        "X-Jianshen-Timestamp": timestamp,
        "X-Jianshen-Signature": signature(sign_with or secret, timestamp, body),
    }
    return await client.post("/ingest/events" + query, content=body, headers=sent | (headers or {}))


async def push_ok(client, clock, events, **kwargs) -> list[dict]:
    response = await push(client, clock, events, **kwargs)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(events)))
    return results


def statuses(results: list[dict]) -> list[tuple]:
    return [(r["status"], r.get("code")) for r in results]


@pytest.fixture
async def cases(gql, client, clock) -> dict[str, dict]:
    """Items A, B (planning) and C (water), received at SUBMITTED; then the clock moves on to NOW."""
    clock.set(SUBMITTED)
    received = await submit_ok(gql, client, ["A", "B", "C"])
    clock.set(NOW)
    return received


async def state_of(gql, case: dict) -> tuple[str, int, int]:
    node = (await gql(CASE_TIMELINE, {"id": case["id"]}, as_user="supervisor"))["node"]
    return node["state"], node["blzt"], len(node["timeline"])


async def event_count() -> int:
    return await CaseEvent.all().count()


SPECIAL = {"specialProcedure": {"kind": "EXPERT_REVIEW", "reason": "选址涉及生态红线，需专家论证", "expectedDays": 5}}


def full_path(code: str, prefix: str = "ev") -> list[dict]:
    return [
        event(f"{prefix}-3", code, 3, at(1), opinion="材料齐全，予以受理"),
        event(f"{prefix}-8", code, 8, at(2)),
        event(f"{prefix}-9", code, 9, at(26), **SPECIAL),
        event(f"{prefix}-10", code, 10, at(72), result="专家论证通过", attachments=[{"name": "专家意见.pdf", "ref": "KB-77"}]),
        event(f"{prefix}-11", code, 11, at(96), document=APPROVAL_DOCUMENT, attachments=[{"name": "批复.pdf"}]),
    ]


async def test_full_case_pushed_by_its_department(gql, client, clock, cases):
    a = cases["A"]
    results = await push_ok(client, clock, full_path(a["code"]))
    assert [(r["eventId"], r["status"], r["state"], r["blzt"], r["caseCode"]) for r in results] == [
        ("ev-3", "APPLIED", "ACCEPTED", 3, a["code"]),
        ("ev-8", "APPLIED", "IN_PROGRESS", 8, a["code"]),
        ("ev-9", "APPLIED", "SPECIAL_PROCEDURE", 9, a["code"]),
        ("ev-10", "APPLIED", "IN_PROGRESS", 8, a["code"]),
        ("ev-11", "APPLIED", "APPROVED", 11, a["code"]),
    ]
    node = (await gql(CASE_TIMELINE, {"id": a["id"]}, as_user="applicant"))["node"]
    assert (node["state"], node["blzt"], node["acceptedOn"]) == ("APPROVED", 11, "2026-11-02")
    timeline = node["timeline"]
    assert [e["blzt"] for e in timeline] == [1, 3, 8, 9, 10, 11]
    pushed = timeline[1:]
    assert [e["externalId"] for e in pushed] == ["ev-3", "ev-8", "ev-9", "ev-10", "ev-11"]
    assert {e["source"] for e in pushed} == {"DEPARTMENT_SYSTEM"}
    assert {e["actorName"] for e in pushed} == {"珠海市自然资源局（业务系统）"}
    assert [e["party"] for e in pushed] == ["WINDOW", "DEPARTMENT", "DEPARTMENT", "DEPARTMENT", "DEPARTMENT"]
    # The events keep the department's own times, not the time they were pushed.
    occurred = [dt.datetime.fromisoformat(e["occurredAt"]) for e in pushed]
    assert occurred == [SUBMITTED + dt.timedelta(hours=h) for h in (1, 2, 26, 72, 96)]
    assert pushed[0]["opinion"] == "材料齐全，予以受理"
    assert pushed[2]["specialProcedure"] == {"kind": "EXPERT_REVIEW", "reason": SPECIAL["specialProcedure"]["reason"],
                                             "expectedDays": 5}
    assert pushed[3]["result"] == "专家论证通过"
    assert pushed[3]["attachments"] == [{"name": "专家意见.pdf", "uploadId": None, "ref": "KB-77"}]
    assert pushed[4]["document"] == APPROVAL_DOCUMENT
    assert pushed[4]["attachments"] == [{"name": "批复.pdf", "uploadId": None, "ref": None}]
    # The project view sees the same.
    project = await gql(
        "query($code: String!) { project(code: $code) { stages { cases { code state } } } }",
        {"code": "2026-440402-47-01-000001"},
        as_user="applicant",
    )
    states = {c["code"]: c["state"] for c in project["project"]["stages"][0]["cases"]}
    assert states == {a["code"]: "APPROVED", cases["B"]["code"]: "RECEIVED", cases["C"]["code"]: "RECEIVED"}


async def test_repeated_event_ids_change_nothing(gql, client, clock, cases):
    a = cases["A"]
    events = full_path(a["code"])[:3]
    assert statuses(await push_ok(client, clock, events)) == [("APPLIED", None)] * 3
    before = (await event_count(), await state_of(gql, a))
    # The same batch again (a retry after a lost answer), even a while later: nothing changes.
    clock.set(NOW + dt.timedelta(minutes=10))
    again = await push_ok(client, clock, events)
    assert [(r["eventId"], r["status"], r["state"]) for r in again] == [
        ("ev-3", "DUPLICATE", "SPECIAL_PROCEDURE"),
        ("ev-8", "DUPLICATE", "SPECIAL_PROCEDURE"),
        ("ev-9", "DUPLICATE", "SPECIAL_PROCEDURE"),
    ]
    # Within one batch: the second copy is a duplicate of the first.
    end = event("ev-10", a["code"], 10, at(30), result="专家论证通过")
    assert statuses(await push_ok(client, clock, [end, end])) == [("APPLIED", None), ("DUPLICATE", None)]
    assert await event_count() == before[0] + 1
    assert await state_of(gql, a) == ("IN_PROGRESS", 8, 5)


async def test_event_id_reused_for_another_case_or_action_is_rejected(gql, client, clock, cases):
    a, b = cases["A"], cases["B"]
    assert statuses(await push_ok(client, clock, [event("x-1", a["code"], 3, at(1))])) == [("APPLIED", None)]
    count = await event_count()
    results = await push_ok(
        client, clock, [event("x-1", b["code"], 3, at(1)), event("x-1", a["code"], 8, at(2))]
    )
    assert statuses(results) == [("REJECTED", "DUPLICATE_REQUEST_ID")] * 2
    assert {r["field"] for r in results} == {"eventId"}
    assert await event_count() == count
    assert await state_of(gql, a) == ("ACCEPTED", 3, 2)
    assert await state_of(gql, b) == ("RECEIVED", 1, 1)
    # Event ids are the department's own: another department may use the same id for its own case.
    c = cases["C"]
    assert statuses(await push_ok(client, clock, [event("x-1", c["code"], 3, at(1))], department=WATER)) == [
        ("APPLIED", None)
    ]


def _bad(kind: str, clock) -> dict:
    now = int(clock().timestamp())
    return {
        "wrong-secret": {"sign_with": "not-the-secret"},
        "another-departments-secret": {"sign_with": "secret-water"},
        "unknown-department": {"department": ("NOBODY", "secret-planning")},
        "stale-timestamp": {"timestamp": str(now - 3600)},
        "future-timestamp": {"timestamp": str(now + 3600)},
        "non-numeric-timestamp": {"timestamp": "2026-11-20T18:00:00"},
        "garbage-signature": {"headers": {"X-Jianshen-Signature": "é".encode("latin-1") * 64}},
        "missing-signature": {"headers": {"X-Jianshen-Signature": ""}},
        "missing-department": {"headers": {"X-Jianshen-Department": ""}},
    }[kind]


@pytest.mark.parametrize(
    "kind, code",
    [
        ("wrong-secret", "BAD_SIGNATURE"),
        ("another-departments-secret", "BAD_SIGNATURE"),
        ("unknown-department", "BAD_SIGNATURE"),
        ("stale-timestamp", "STALE_TIMESTAMP"),
        ("future-timestamp", "STALE_TIMESTAMP"),
        ("non-numeric-timestamp", "STALE_TIMESTAMP"),
        ("garbage-signature", "BAD_SIGNATURE"),
        ("missing-signature", "UNAUTHENTICATED"),
        ("missing-department", "UNAUTHENTICATED"),
    ],
)
async def test_unauthenticated_requests_apply_nothing(gql, client, clock, cases, kind, code):
    count = await event_count()
    response = await push(client, clock, [event("e-1", cases["A"]["code"], 3, at(1))], **_bad(kind, clock))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert await event_count() == count
    assert await state_of(gql, cases["A"]) == ("RECEIVED", 1, 1)


async def test_timestamp_window_follows_the_app_clock(client, clock, cases):
    a = cases["A"]
    # Signed five minutes ago is still fine; the same request signed five minutes and one second ago is not.
    edge = str(int(clock().timestamp()) - 300)
    assert (await push(client, clock, [event("t-1", a["code"], 3, at(1))], timestamp=edge)).status_code == 200
    stale = str(int(clock().timestamp()) - 301)
    assert (await push(client, clock, [event("t-2", a["code"], 8, at(2))], timestamp=stale)).status_code == 401


async def test_tampered_body_is_refused(gql, client, clock, cases):
    a = cases["A"]
    signed = json.dumps({"events": [event("e-1", a["code"], 3, at(1))]}).encode()
    timestamp = str(int(clock().timestamp()))
    tampered = json.dumps({"events": [event("e-1", a["code"], 4, at(1), reason="x")]}).encode()
    response = await client.post(
        "/ingest/events",
        content=tampered,
        headers={
            "X-Jianshen-Department": "PLANNING",
            "X-Jianshen-Timestamp": timestamp,
            "X-Jianshen-Signature": signature("secret-planning", timestamp, signed),
        },
    )
    assert response.status_code == 401
    assert await state_of(gql, a) == ("RECEIVED", 1, 1)


async def test_another_departments_case_answers_like_a_missing_one(gql, client, clock, cases):
    a, c = cases["A"], cases["C"]
    results = await push_ok(
        client, clock, [event("w-1", a["code"], 3, at(1)), event("w-2", "NO-SUCH-CASE", 3, at(1))], department=WATER
    )
    assert statuses(results) == [("REJECTED", "NOT_FOUND")] * 2
    assert results[0]["message"] == results[1]["message"]
    assert "caseCode" not in results[0] and "state" not in results[0]
    assert await state_of(gql, a) == ("RECEIVED", 1, 1)
    # Its own case it may act on.
    assert statuses(await push_ok(client, clock, [event("w-3", c["code"], 3, at(1))], department=WATER)) == [
        ("APPLIED", None)
    ]


async def test_refusals_match_the_mutations(gql, client, clock, cases):
    """Exactly the same validation: the same code and message as a clerk's mutation in the same situation."""
    a, b = cases["A"], cases["B"]
    results = await push_ok(client, clock, [event("v-1", a["code"], 8, at(1))])
    assert statuses(results) == [("REJECTED", "INVALID_TRANSITION")]
    assert "已接件" in results[0]["message"]  # names the current state
    mutation = await act(gql, "StartCase", "planner", caseId=a["id"])
    error = mutation["errors"][0]
    assert (error["code"], error["message"]) == ("INVALID_TRANSITION", results[0]["message"])

    await run_to_in_progress(gql, b["id"])
    clock.set(NOW + dt.timedelta(hours=1))
    later = (NOW + dt.timedelta(minutes=30)).isoformat()
    results = await push_ok(client, clock, [event("v-2", b["code"], 13, later)])
    assert statuses(results) == [("REJECTED", "REASON_REQUIRED")]
    assert results[0]["field"] == "reason"
    mutation = await act(gql, "DecideCase", "planner", caseId=b["id"], decision="DISAPPROVED")
    assert mutation["errors"] == [{"field": "reason", "code": "REASON_REQUIRED", "message": results[0]["message"]}]
    assert await state_of(gql, b) == ("IN_PROGRESS", 8, 3)


async def test_lifecycle_refusals(gql, client, clock, cases):
    a = cases["A"]
    count = await event_count()
    results = await push_ok(
        client,
        clock,
        [
            event("r-1", a["code"], 11, at(1), document=APPROVAL_DOCUMENT),  # not in progress
            event("r-2", a["code"], 4, at(1)),  # 不受理 without a reason
            event("r-3", a["code"], 4, at(1), reason="   "),  # a blank reason is no reason
            event("r-4", a["code"], 6, at(1), corrections=[]),  # 补正 without the list
            event("r-5", a["code"], 16, at(1)),  # no such BLZT code
            event("r-6", a["code"], "3", at(1)),  # a code is a number
            {"caseCode": a["code"], "blzt": 3, "occurredAt": at(1)},  # no event id
            event("r-8", "", 3, at(1)),
            "not an object",
        ],
    )
    assert statuses(results) == [
        ("REJECTED", "INVALID_TRANSITION"),
        ("REJECTED", "REASON_REQUIRED"),
        ("REJECTED", "REASON_REQUIRED"),
        ("REJECTED", "CORRECTION_LIST_REQUIRED"),
        ("REJECTED", "INVALID_INPUT"),
        ("REJECTED", "INVALID_INPUT"),
        ("REJECTED", "INVALID_INPUT"),
        ("REJECTED", "INVALID_INPUT"),
        ("REJECTED", "INVALID_INPUT"),
    ]
    assert all(r["message"] for r in results)
    assert "eventId" not in results[6] and "eventId" not in results[8]
    assert await event_count() == count


async def test_disapproval_with_reason_is_applied(gql, client, clock, cases):
    a = cases["A"]
    events = [
        event("d-3", a["code"], 3, at(1)),
        event("d-8", a["code"], 8, at(2)),
        event("d-13", a["code"], 13, at(3), reason="选址不符合国土空间规划"),
    ]
    assert statuses(await push_ok(client, clock, events)) == [("APPLIED", None)] * 3
    node = (await gql(CASE_TIMELINE, {"id": a["id"]}, as_user="supervisor"))["node"]
    assert (node["state"], node["timeline"][-1]["reason"]) == ("DISAPPROVED", "选址不符合国土空间规划")


@pytest.mark.parametrize("blzt", [2, 7, 14])  # 1 (接件) creates a case: tests/api/test_ingest_receive.py
async def test_applicant_only_codes_are_refused(gql, client, clock, cases, blzt):
    a = cases["A"]
    results = await push_ok(client, clock, [event("p-1", a["code"], blzt, at(1), reason="部门代为撤件")])
    assert statuses(results) == [("REJECTED", "WRONG_PARTY")]
    assert "申请人" in results[0]["message"]
    assert await state_of(gql, a) == ("RECEIVED", 1, 1)


@pytest.mark.parametrize(
    "occurred_at",
    [
        (SUBMITTED - dt.timedelta(minutes=1)).isoformat(),  # before the case was received
        (NOW + dt.timedelta(hours=1)).isoformat(),  # in the future
        "2026-11-02T10:00:00",  # no time zone
        "yesterday",
        None,
    ],
    ids=["before-last-event", "future", "naive", "garbage", "missing"],
)
async def test_event_time_must_be_valid(gql, client, clock, cases, occurred_at):
    a = cases["A"]
    results = await push_ok(client, clock, [event("t-1", a["code"], 3, occurred_at)])
    assert statuses(results) == [("REJECTED", "EVENT_TIME_INVALID")]
    assert results[0]["field"] == "occurredAt"
    assert await state_of(gql, a) == ("RECEIVED", 1, 1)


async def test_events_out_of_order_are_refused(gql, client, clock, cases):
    a = cases["A"]
    results = await push_ok(
        client,
        clock,
        [
            event("o-3", a["code"], 3, at(5)),
            event("o-8", a["code"], 8, at(4)),  # before the acceptance it follows
            event("o-8b", a["code"], 8, at(5)),  # at the same moment is fine
        ],
    )
    assert statuses(results) == [("APPLIED", None), ("REJECTED", "EVENT_TIME_INVALID"), ("APPLIED", None)]
    assert await state_of(gql, a) == ("IN_PROGRESS", 8, 3)


async def test_a_few_minutes_of_clock_difference_are_tolerated(gql, client, clock, cases):
    a = cases["A"]
    just_ahead = (NOW + dt.timedelta(seconds=299)).isoformat()
    assert statuses(await push_ok(client, clock, [event("s-1", a["code"], 3, just_ahead)])) == [("APPLIED", None)]


async def test_predecessor_must_be_decided_first(gql, client, clock, cases):
    a, b = cases["A"], cases["B"]
    results = await push_ok(
        client,
        clock,
        [
            event("b-3", b["code"], 3, at(1)),
            event("b-8", b["code"], 8, at(2)),
            event("b-11", b["code"], 11, at(3), document=APPROVAL_DOCUMENT),
        ],
    )
    assert statuses(results) == [("APPLIED", None), ("APPLIED", None), ("REJECTED", "PREDECESSOR_NOT_DECIDED")]
    assert "建设项目用地预审与选址意见书核发" in results[2]["message"]
    assert await state_of(gql, b) == ("IN_PROGRESS", 8, 3)
    # Once A is decided, the same decision of B goes through (a rejected event id may be sent again).
    results = await push_ok(
        client,
        clock,
        [
            event("a-3", a["code"], 3, at(1)),
            event("a-8", a["code"], 8, at(2)),
            event("a-11", a["code"], 11, at(4), document=APPROVAL_DOCUMENT),
            event("b-11", b["code"], 11, at(5), document=APPROVAL_DOCUMENT),
        ],
    )
    assert statuses(results) == [("APPLIED", None)] * 4
    assert await state_of(gql, b) == ("APPROVED", 11, 4)


async def test_batch_over_the_limit_applies_nothing(gql, client, clock, cases, settings):
    a = cases["A"]
    assert settings.ingest_max_batch == 500
    events = [event("big-0", a["code"], 3, at(1))] + [
        event(f"big-{i}", "NO-SUCH-CASE", 8, at(2)) for i in range(1, 501)
    ]
    count = await event_count()
    response = await push(client, clock, events)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "BATCH_TOO_LARGE"
    assert await event_count() == count
    assert await state_of(gql, a) == ("RECEIVED", 1, 1)
    # 500 is allowed.
    results = await push_ok(client, clock, events[:500])
    assert results[0]["status"] == "APPLIED" and len(results) == 500


async def test_body_over_the_limit_is_refused_while_reading(client, clock, cases):
    pulled = 0
    chunk = b" " * (256 * 1024)

    async def endless():
        nonlocal pulled
        for _ in range(4 * MAX_BODY // len(chunk)):
            pulled += len(chunk)
            yield chunk

    response = await client.post(
        "/ingest/events",
        content=endless(),
        headers={"X-Jianshen-Department": "PLANNING", "X-Jianshen-Timestamp": "0", "X-Jianshen-Signature": "0"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "BODY_TOO_LARGE"
    assert pulled <= MAX_BODY + len(chunk)
    declared = await client.post(
        "/ingest/events", content=b"{}", headers={"Content-Length": str(MAX_BODY + 1)}
    )
    assert declared.status_code == 413


@pytest.mark.parametrize(
    "body, code",
    [
        (b"{\"events\": [", "BAD_JSON"),
        (b"\xff\xfe not utf-8", "BAD_JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "BAD_JSON"),  # nested beyond any use
        (b"[]", "BAD_REQUEST"),
        (b"{\"events\": []}", "BAD_REQUEST"),
        (b"{\"events\": {\"eventId\": \"x\"}}", "BAD_REQUEST"),
    ],
    ids=["truncated", "not-utf8", "too-deep", "not-an-object", "no-events", "events-not-a-list"],
)
async def test_malformed_body_is_refused(gql, client, clock, cases, body, code):
    response = await push(client, clock, body=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert await state_of(gql, cases["A"]) == ("RECEIVED", 1, 1)


async def test_mixed_batch_gets_one_result_per_event(gql, client, clock, cases):
    a, b, c = cases["A"], cases["B"], cases["C"]
    results = await push_ok(
        client,
        clock,
        [
            event("m-1", a["code"], 3, at(1)),  # good
            event("m-2", c["code"], 3, at(1)),  # water's case
            event("m-3", b["code"], 5, at(1)),  # 不予受理 without a reason
            event("m-4", b["code"], 5, at(1), reason="不属于本部门职权范围"),  # good
            event("m-5", a["code"], 8, at(2)),  # good, after m-1 in the same batch
            event("m-6", a["code"], 3, at(3)),  # already accepted
        ],
    )
    assert [(r["eventId"], r["status"], r.get("code"), r.get("state")) for r in results] == [
        ("m-1", "APPLIED", None, "ACCEPTED"),
        ("m-2", "REJECTED", "NOT_FOUND", None),
        ("m-3", "REJECTED", "REASON_REQUIRED", None),
        ("m-4", "APPLIED", None, "REFUSED"),
        ("m-5", "APPLIED", None, "IN_PROGRESS"),
        ("m-6", "REJECTED", "INVALID_TRANSITION", None),
    ]
    assert "办理中" in results[5]["message"]
    assert await state_of(gql, a) == ("IN_PROGRESS", 8, 3)
    assert await state_of(gql, b) == ("REFUSED", 5, 2)
    assert await state_of(gql, c) == ("RECEIVED", 1, 1)


@pytest.mark.parametrize("stored", [None, "", "   "])
async def test_a_department_without_an_ingest_secret_refuses_every_push(gql, client, clock, cases, settings, stored):
    """No secret, no push: no fallback key (a constant, the empty string, the code, the app's own key) may sign for it."""
    from api.models import Department

    await Department.filter(code="WATER").update(ingest_secret=stored)
    c = cases["C"]
    count = await event_count()
    guesses = ["", "   ", "unknown-department", "None", "WATER", "water", "secret-water", settings.secret_key]
    for n, guess in enumerate(guesses):
        response = await push(client, clock, [event(f"w-{n}", c["code"], 3, at(1))], department=("WATER", guess))
        assert response.status_code == 401, (guess, response.text)
        assert response.json()["error"]["code"] == "BAD_SIGNATURE"
    assert await event_count() == count
    assert await state_of(gql, c) == ("RECEIVED", 1, 1)


@pytest.mark.parametrize("blzt", [True, False, 3.0, "3"])
async def test_a_json_boolean_or_float_is_not_a_blzt_code(gql, client, clock, cases, blzt):
    """``true == 1`` in Python: a JSON boolean must not pass as BLZT 1 (nor ``3.0`` as 3)."""
    a = cases["A"]
    count = await event_count()
    (result,) = await push_ok(client, clock, [event("b-1", a["code"], blzt, at(1))])
    assert (result["status"], result["code"], result["field"]) == ("REJECTED", "INVALID_INPUT", "blzt")
    assert await event_count() == count
