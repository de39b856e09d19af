"""Limits and uniqueness rules under concurrency (issue #10, items 4-6): many simultaneous requests, in one process
over the ASGI interface (asyncio.gather) and between two real ``python -m api serve`` processes on the same database.

Each rule reads, decides, then writes; these tests send the requests that would all pass the read at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from api.settings import Settings
from tests.api.test_accounts_staff import PASSWORD, clerk  # noqa: F401 - the fixture
from tests.conftest import operation
from tests.servers import free_port, port_is_open, stop_process

ROOT = Path(__file__).resolve().parents[2]
DAILY_LIMIT = 4
CITIZEN_OPENID = "o-citizen-0001"


@pytest.fixture
def settings(database_url, tmp_path, fake_wechat) -> Settings:
    """For every test here: the fake WeChat server, a small daily complaint limit and verification rate limit."""
    return Settings(
        database_url=database_url, upload_dir=tmp_path / "uploads", complaint_daily_limit=DAILY_LIMIT,
        esign_dir=tmp_path / "esign", certificate_dir=tmp_path / "certificates", public_verify_per_minute=3,
        **fake_wechat.settings_overrides(),
    )


# -- helpers -------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def api_processes(settings: Settings, count: int = 2, **extra_env: str):
    """``count`` API processes on free ports, on the test's database; stopped at the end whatever happens."""
    env = {
        **os.environ,
        "JIANSHEN_DATABASE_URL": settings.database_url,
        "JIANSHEN_UPLOAD_DIR": str(settings.upload_dir),
        "JIANSHEN_LOG_LEVEL": "WARNING",
        **{f"JIANSHEN_{k.upper()}": str(v) for k, v in extra_env.items()},
    }
    env.pop("JIANSHEN_REDIS_URL", None)
    started: list[tuple[subprocess.Popen, int]] = []
    try:
        for _ in range(count):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            started.append((process, port))
        for process, port in started:
            deadline = time.monotonic() + 30
            while not port_is_open(port):
                if process.poll() is not None:
                    raise RuntimeError(f"API process exited: {process.stderr.read().decode()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("API process did not listen in 30 s")
                time.sleep(0.05)
        yield [f"http://127.0.0.1:{port}" for _, port in started]
    finally:
        for process, _ in started:
            stop_process(process)


async def post_to(base_url: str, name: str, variables: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        response = await http.post("/graphql", json={"query": operation(name), "variables": variables},
                                   headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def post_in_process(client: httpx.AsyncClient, name: str, variables: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": operation(name), "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def codes(payloads: list[dict]) -> Counter:
    return Counter(p["errors"][0]["code"] if p["errors"] else "OK" for p in payloads)


# -- 4. staff lock-out: at most staff_login_max_failures passwords checked per window ------------------------------


def login_input(password: str) -> dict:
    return {"input": {"username": "wang.clerk", "password": password}}


async def test_simultaneous_wrong_passwords_check_at_most_the_limit(client, clerk, settings):
    answers = await asyncio.gather(*(
        post_in_process(client, "StaffLogin", login_input(f"Wrong-pass-{n}")) for n in range(12)
    ))
    seen = codes([a["staffLogin"] for a in answers])
    # Each INVALID_CREDENTIALS is a password that was checked and the lock not yet reached: fewer than the limit.
    assert seen["INVALID_CREDENTIALS"] <= settings.staff_login_max_failures - 1, seen
    assert seen["LOGIN_LOCKED"] >= 12 - (settings.staff_login_max_failures - 1), seen
    refused = await post_in_process(client, "StaffLogin", login_input(PASSWORD))
    assert refused["staffLogin"]["errors"][0]["code"] == "LOGIN_LOCKED"


async def test_the_right_password_among_simultaneous_guesses(client, clerk, settings):
    """The issue's case: 24 wrong passwords and the right one at once. The right one may win only as one of the first
    guesses of the window; after a success a new window starts, with its own limit."""
    limit = settings.staff_login_max_failures
    answers = await asyncio.gather(*(
        post_in_process(client, "StaffLogin", login_input(f"Wrong-pass-{n}" if n < 24 else PASSWORD))
        for n in range(25)
    ))
    seen = codes([a["staffLogin"] for a in answers])
    if seen["OK"]:
        assert seen["INVALID_CREDENTIALS"] <= 2 * (limit - 1), seen
    else:
        assert seen["INVALID_CREDENTIALS"] <= limit - 1, seen


# -- 5. ten complaints a day per filer -----------------------------------------------------------------------------

@pytest.fixture
async def filer(world, fake_wechat):
    from api.models import User

    await User.filter(id=world.users["citizen"].id).update(openid=CITIZEN_OPENID)
    fake_wechat.add_openid(CITIZEN_OPENID)
    return world.token("citizen")


def complaint_input(n: int, **extra) -> dict:
    return {"input": {"kind": "COMPLAINT", "category": "OVERDUE", "text": f"施工许可办理超时，第{n}次反映", **extra}}


async def test_simultaneous_complaints_stop_at_the_daily_limit(client, filer):
    from api.models import Complaint

    answers = await asyncio.gather(*(
        post_in_process(client, "FileComplaint", complaint_input(n), filer) for n in range(3 * DAILY_LIMIT)
    ))
    seen = codes([a["fileComplaint"] for a in answers])
    assert seen == {"OK": DAILY_LIMIT, "RATE_LIMITED": 2 * DAILY_LIMIT}, seen
    assert await Complaint.all().count() == DAILY_LIMIT


async def test_two_processes_share_the_lock_out_and_the_daily_limit(clerk, filer, settings, fake_wechat):
    """The race between processes (on SQLite each process has its own connection): guesses and complaints sent to
    two API processes at once still stop at the limits. One pair of processes for both rules keeps the test short."""
    from api.models import Complaint

    with api_processes(settings, complaint_daily_limit=DAILY_LIMIT, **fake_wechat.settings_overrides()) as hosts:
        guesses, complaints = await asyncio.gather(
            asyncio.gather(*(
                post_to(hosts[n % 2], "StaffLogin", login_input(f"Wrong-pass-{n}")) for n in range(12)
            )),
            asyncio.gather(*(
                post_to(hosts[n % 2], "FileComplaint", complaint_input(n), filer) for n in range(3 * DAILY_LIMIT)
            )),
        )
        seen = codes([a["staffLogin"] for a in guesses])
        assert seen["INVALID_CREDENTIALS"] <= settings.staff_login_max_failures - 1, seen
        assert set(seen) <= {"INVALID_CREDENTIALS", "LOGIN_LOCKED"}, seen
        for host in hosts:
            refused = await post_to(host, "StaffLogin", login_input(PASSWORD))
            assert refused["staffLogin"]["errors"][0]["code"] == "LOGIN_LOCKED"
    seen = codes([a["fileComplaint"] for a in complaints])
    assert seen == {"OK": DAILY_LIMIT, "RATE_LIMITED": 2 * DAILY_LIMIT}, seen
    assert await Complaint.all().count() == DAILY_LIMIT


# -- 6. every other limit and uniqueness rule ----------------------------------------------------------------------

SIMULTANEOUS = 6
BINDERS = 20  # the binding transaction is short: enough binders that some overlap on PostgreSQL


def gid(kind: str, pk: int) -> str:
    from api.domain.ids import to_global_id

    return to_global_id(kind, pk)


async def all_at_once(gql, name: str, variables, user: str) -> list[dict]:
    """The same operation ``SIMULTANEOUS`` times at once; ``variables`` may be a function of the request's number."""
    answers = await asyncio.gather(*(
        gql.op(name, variables(n) if callable(variables) else variables, as_user=user) for n in range(SIMULTANEOUS)
    ))
    return [next(iter(a.values())) for a in answers]


async def closed_complaint(world):
    """A complaint of the citizen, handled by the water department and closed just now: ratable."""
    import datetime as dt

    from api.domain.feedback import ComplaintCategory, ComplaintKind, ComplaintState
    from api.models import Complaint

    now = dt.datetime.now(dt.timezone.utc)
    return await Complaint.create(
        filer_id=world.users["citizen"].id, kind=ComplaintKind.COMPLAINT, category=ComplaintCategory.OVERDUE,
        text="办理超时", images=[], department_id=world.departments["water"].id, state=ComplaintState.CLOSED,
        round_started_at=now, replied_at=now, closed_at=now, created_at=now,
    )


async def bad_rating(world, **state):
    """A 差评 of the water department's handling of a complaint, at the given point of its follow-up."""
    import datetime as dt

    from api.models import Rating

    complaint = await closed_complaint(world)
    return await Rating.create(
        rater_id=complaint.filer_id, complaint_id=complaint.id, matter_key=f"complaint:{complaint.id}",
        department_id=complaint.department_id, level=1, reasons=["SLOW"], created_at=dt.datetime.now(dt.timezone.utc),
        **state,
    )


async def test_one_rating_per_matter(gql, world):
    """一事一评: the same rating sent at once gives one rating; every answer is it (the later ones as duplicates)."""
    from api.models import Rating

    complaint = await closed_complaint(world)
    payloads = await all_at_once(
        gql, "RateService", {"input": {"complaintId": gid("Complaint", complaint.id), "level": 5}}, "citizen"
    )
    assert all(p["errors"] == [] for p in payloads), payloads
    assert len({p["rating"]["id"] for p in payloads}) == 1
    assert sorted(p["duplicate"] for p in payloads) == [False] + [True] * (SIMULTANEOUS - 1)
    assert await Rating.all().count() == 1


async def test_a_follow_up_result_sent_twice_at_once_is_reported_once(gql, world):
    """The result of a 差评's follow-up is reported once, with one notice to the rater, however often it is sent."""
    import datetime as dt

    from api.models import Notice

    now = dt.datetime.now(dt.timezone.utc)
    rating = await bad_rating(world, contacted_at=now, contact_note="已电话回访", rectified_at=now, rectification="已整改")
    payloads = await all_at_once(gql, "RecordRatingFollowUp", {"input": {
        "ratingId": gid("Rating", rating.id), "step": "RESULT", "note": "整改完成，已告知",
    }}, "water")
    assert all(p["errors"] == [] for p in payloads), payloads
    assert await Notice.filter(recipient_id=rating.rater_id).count() == 1


async def test_one_appeal_and_one_decision_per_rating(gql, world):
    """申诉复核 happens once: of simultaneous appeals one is lodged, of simultaneous decisions one is taken; the
    others are told so (INVALID_TRANSITION), not answered as if theirs had been applied."""
    from api.models import Rating

    rating = await bad_rating(world)
    appeals = await all_at_once(gql, "AppealRating", lambda n: {"input": {
        "ratingId": gid("Rating", rating.id), "reason": f"恶意差评，理由{n}",
    }}, "water")
    assert codes(appeals) == {"OK": 1, "INVALID_TRANSITION": SIMULTANEOUS - 1}, appeals
    decisions = await all_at_once(gql, "DecideRatingAppeal", lambda n: {"input": {
        "ratingId": gid("Rating", rating.id), "upheld": n % 2 == 0, "note": f"复核意见{n}",
    }}, "supervisor")
    assert codes(decisions) == {"OK": 1, "INVALID_TRANSITION": SIMULTANEOUS - 1}, decisions
    (taken,) = [p for p in decisions if not p["errors"]]
    assert (await Rating.get(id=rating.id)).appeal_status == taken["rating"]["appealStatus"]


async def test_one_authorisation_per_phone_and_organisation(gql, world):
    """经办人授权: the same phone authorised at once gives one active authorisation, not one per request."""
    from api.models import AgentAuthorization

    org = world.organizations["builder"]
    payloads = await all_at_once(gql, "AuthorizeAgent", lambda n: {"input": {
        "organizationId": gid("Organization", org.id), "phone": "13700003333", "name": f"新经办{n}",
    }}, "applicant")
    assert all(p["errors"] == [] for p in payloads), payloads
    assert await AgentAuthorization.filter(organization_id=org.id, phone="13700003333",
                                           revoked_at__isnull=True).count() == 1


async def test_one_application_per_idempotency_key(gql, client):
    from api.models import Application
    from tests.api.flows import submit

    payloads = await asyncio.gather(*(submit(gql, client, ["A"], idempotencyKey="submit-1") for _ in range(SIMULTANEOUS)))
    assert all(p["errors"] == [] for p in payloads), payloads
    assert len({p["application"]["id"] for p in payloads}) == 1
    assert await Application.all().count() == 1


async def test_one_open_case_per_item(gql, client):
    """The same item applied for at once (different requests, not retries): one case, the others refused."""
    from api.models import Case
    from tests.api.flows import submit

    payloads = await asyncio.gather(*(submit(gql, client, ["A"]) for _ in range(SIMULTANEOUS)))
    seen = codes(payloads)
    assert seen == {"OK": 1, "ITEM_ALREADY_HANDLED": SIMULTANEOUS - 1}, seen
    assert await Case.all().count() == 1


async def test_one_complaint_per_idempotency_key(gql, filer):
    from api.models import Complaint

    payloads = await all_at_once(gql, "FileComplaint", complaint_input(0, idempotencyKey="complaint-1"), "citizen")
    assert all(p["errors"] == [] for p in payloads), payloads
    assert len({p["complaint"]["id"] for p in payloads}) == 1
    assert await Complaint.all().count() == 1


async def test_one_complaint_step_per_request_id(gql, filer, world):
    """A complaint step sent twice at once with one requestId is done once; the repeat answers as a duplicate, not
    as a step the new state refuses."""
    from api.models import ComplaintEvent

    filed = await gql.op("FileComplaint", complaint_input(0), as_user="citizen")
    cid = filed["fileComplaint"]["complaint"]["id"]
    payloads = await all_at_once(gql, "AssignComplaint", {"input": {
        "complaintId": cid, "departmentId": gid("Department", world.departments["water"].id), "requestId": "assign-1",
    }}, "clerk")
    assert all(p["errors"] == [] for p in payloads), payloads
    assert sorted(p["duplicate"] for p in payloads) == [False] + [True] * (SIMULTANEOUS - 1)
    assert await ComplaintEvent.filter(action="ASSIGN").count() == 1


async def test_one_thread_message_per_request_id(gql, filer):
    from api.models import ComplaintMessage

    filed = await gql.op("FileComplaint", complaint_input(0), as_user="citizen")
    cid = filed["fileComplaint"]["complaint"]["id"]
    payloads = await all_at_once(gql, "PostComplaintMessage", {"input": {
        "complaintId": cid, "text": "请尽快处理", "requestId": "message-1",
    }}, "citizen")
    assert all(p["errors"] == [] for p in payloads), payloads
    assert len({p["message"]["id"] for p in payloads}) == 1
    assert await ComplaintMessage.all().count() == 1


async def test_one_request_id_for_messages_to_two_complaints(gql, filer):
    """The same requestId used at once for messages to two complaints: one is posted, the other is told the id is
    taken (DUPLICATE_REQUEST_ID), as in sequence — never handed the other complaint's message as its duplicate."""
    ids = []
    for n in range(2):
        filed = await gql.op("FileComplaint", complaint_input(n), as_user="citizen")
        ids.append(filed["fileComplaint"]["complaint"]["id"])
    answers = await asyncio.gather(*(
        gql.op("PostComplaintMessage", {"input": {"complaintId": cid, "text": "请尽快处理", "requestId": "message-1"}},
               as_user="citizen")
        for cid in ids
    ))
    assert codes([a["postComplaintMessage"] for a in answers]) == {"OK": 1, "DUPLICATE_REQUEST_ID": 1}, answers


async def test_one_case_step_per_request_id(gql, client):
    from api.models import CaseEvent
    from tests.api.flows import submit_ok

    cid = (await submit_ok(gql, client, ["A"]))["A"]["id"]
    payloads = await all_at_once(gql, "AcceptCase", {"input": {"caseId": cid, "requestId": "accept-1"}}, "clerk")
    assert all(p["errors"] == [] for p in payloads), payloads
    assert sorted(p["duplicate"] for p in payloads) == [False] + [True] * (SIMULTANEOUS - 1)
    assert await CaseEvent.filter(action="ACCEPT").count() == 1


async def test_one_certificate_per_case(gql, client):
    """Approvals of one case sent at once (no request id): one approval, one certificate; the rest coded refusals."""
    from api.models import Certificate
    from tests.api.flows import APPROVAL_DOCUMENT, act_ok, submit_ok

    cases = await submit_ok(gql, client, ["A", "B"])
    for code in ("A", "B"):
        await act_ok(gql, "AcceptCase", "clerk", caseId=cases[code]["id"])
        await act_ok(gql, "StartCase", "planner", caseId=cases[code]["id"])
    await act_ok(gql, "DecideCase", "planner", caseId=cases["A"]["id"], decision="APPROVED", document=APPROVAL_DOCUMENT)
    payloads = await all_at_once(gql, "DecideCase", {"input": {
        "caseId": cases["B"]["id"], "decision": "APPROVED", "document": APPROVAL_DOCUMENT,
    }}, "planner")
    seen = codes(payloads)
    assert seen["OK"] == 1 and set(seen) <= {"OK", "INVALID_TRANSITION", "CONFLICT"}, seen
    assert await Certificate.all().count() == 1


async def test_a_replayed_refresh_token_racing_the_real_one(client, clerk):
    """Refresh-token rotation: of two refreshes with one token at once, one wins; the other is a replay, which ends
    the session for both (the winner's new refresh token is refused too)."""
    signed_in = await post_in_process(client, "StaffLogin", login_input(PASSWORD))
    token = signed_in["staffLogin"]["refreshToken"]
    answers = await asyncio.gather(*(
        post_in_process(client, "RefreshSession", {"input": {"refreshToken": token}}) for _ in range(2)
    ))
    payloads = [a["refreshSession"] for a in answers]
    assert codes(payloads) == {"OK": 1, "SESSION_EXPIRED": 1}, payloads
    winner = next(p for p in payloads if not p["errors"])
    again = await post_in_process(client, "RefreshSession", {"input": {"refreshToken": winner["refreshToken"]}})
    assert again["refreshSession"]["errors"][0]["code"] == "SESSION_EXPIRED"


async def test_one_account_per_phone_number(client, world, fake_wechat):
    """bindPhone: two accounts binding the same number at once — one keeps it, never both."""
    from api.domain.accounts import Role
    from api.models import User

    for n in range(BINDERS):
        openid = f"o-binder-{n:04d}"
        fake_wechat.add_openid(openid)
        await world.add_user(f"binder{n}", f"市民{n}", Role.CITIZEN, openid=openid)
    answers = await asyncio.gather(*(
        post_in_process(client, "BindPhone", {"input": {"code": fake_wechat.issue_phone_code("13600004444")}},
                        world.token(f"binder{n}"))
        for n in range(BINDERS)
    ))
    assert all(a["bindPhone"]["errors"] == [] for a in answers), answers
    assert await User.filter(phone="13600004444").count() == 1


async def test_seals_made_at_once_are_distinct_and_revoked_once(gql, world):
    from api.domain.accounts import Role
    from api.models import Seal

    await world.add_user("admin", "管理员", Role.ADMIN)
    payloads = await all_at_once(gql, "CreateSeal", {"input": {
        "departmentId": gid("Department", world.departments["water"].id),
    }}, "admin")
    assert all(p["errors"] == [] for p in payloads), payloads
    assert len(set(await Seal.all().values_list("serial", flat=True))) == SIMULTANEOUS
    seal_id = payloads[0]["seal"]["id"]
    revocations = await all_at_once(gql, "RevokeSeal", lambda n: {"input": {"sealId": seal_id, "reason": f"密钥泄露{n}"}},
                                    "admin")
    assert codes(revocations) == {"OK": 1, "CONFLICT": SIMULTANEOUS - 1}, revocations


async def test_rate_limit_without_redis_under_simultaneous_requests(client, settings):
    """api/ratelimit.py counts in the process when there is no Redis: simultaneous requests still stop at the limit."""
    answers = await asyncio.gather(*(client.get("/verify/1.2.156.3005.2.X?c=ABCD-2345") for _ in range(12)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {404: settings.public_verify_per_minute, 429: 12 - settings.public_verify_per_minute}, statuses


async def test_a_new_user_signing_in_twice_at_once_gets_one_account(client, fake_wechat):
    """The mini-program may call wx.login twice at start: two codes of one new openid at once make one account and
    two sessions, never a unique violation answered as an internal error."""
    from api.models import User

    codes_ = [fake_wechat.issue_login_code("o-new-user-0001") for _ in range(SIMULTANEOUS)]
    answers = await asyncio.gather(*(
        post_in_process(client, "LoginWithWechat", {"input": {"code": code}}) for code in codes_
    ))
    payloads = [a["loginWithWechat"] for a in answers]
    assert all(p["errors"] == [] for p in payloads), payloads
    assert await User.filter(openid="o-new-user-0001").count() == 1


async def test_subscribe_consents_counted_and_spent_once_each(gql, world):
    """订阅消息: simultaneous acceptances of one template all count (no unique violation on its first row), and each
    consent is spent by exactly one message however many senders take one at once."""
    from api.services.consents import take_consent

    payloads = await all_at_once(gql, "RecordSubscribeConsent", {"input": {
        "results": [{"templateId": "tmpl-case-progress", "result": "accept"}],
    }}, "citizen")
    assert all(p["errors"] == [] for p in payloads), payloads
    user_id = world.users["citizen"].id
    taken = await asyncio.gather(*(take_consent(user_id, "tmpl-case-progress") for _ in range(2 * SIMULTANEOUS)))
    assert taken.count(True) == SIMULTANEOUS
