"""A department's ingest secret rotated with ``python -m api department secret CODE --rotate`` (issue #12): the new
secret is printed once; the old one keeps signing ``POST /ingest/events`` for JIANSHEN_INGEST_SECRET_GRACE_SECONDS,
then never again; a second rotation ends the first secret at once; the demo's published secrets get no grace."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from api.models import Department
from api.services.ingest import rotate_ingest_secret
from api.settings import DEV_INGEST_SECRET_PREFIX
from tests.api.test_ingest import PLANNING, at, cases, event, push, push_ok, state_of, statuses  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]
GRACE = 3600


def rotate(settings, *codes: str, grace: int = GRACE, alias: bool = False) -> tuple[dict[str, str], str]:
    """The real command line, as an operator runs it: ``CODE SECRET`` lines on stdout, the grace on stderr.
    ``alias``: its older spelling ``rotate-ingest-secret CODE...`` (issue #10), which does the same."""
    env = {**os.environ, "JIANSHEN_DATABASE_URL": settings.database_url,
           "JIANSHEN_INGEST_SECRET_GRACE_SECONDS": str(grace)}
    command = ["rotate-ingest-secret", *codes] if alias else ["department", "secret", *codes, "--rotate"]
    done = subprocess.run([sys.executable, "-m", "api", *command],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines()), done.stderr


async def test_the_old_secret_signs_during_the_grace_period_only(gql, client, clock, cases, settings):
    code, old = PLANNING
    (a, b) = cases["A"], cases["B"]
    before = dt.datetime.now(dt.timezone.utc)
    printed, said = rotate(settings, code)
    new = printed[code]
    assert len(new) >= 32 and new != old and "accepted until" in said
    until = (await Department.get(code=code)).previous_ingest_secret_until
    assert before + dt.timedelta(seconds=GRACE) <= until <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=GRACE)
    # The state shown without --rotate never prints a secret.
    shown = subprocess.run([sys.executable, "-m", "api", "department", "secret", code], cwd=REPO, text=True,
                           env={**os.environ, "JIANSHEN_DATABASE_URL": settings.database_url}, capture_output=True)
    assert shown.returncode == 0 and new not in shown.stdout and "previous one is accepted until" in shown.stdout

    # Within the grace period both keys sign, at the same time (the department's system is being reconfigured).
    clock.set(until - dt.timedelta(seconds=1))
    answers = await asyncio.gather(
        push(client, clock, [event("r-old", a["code"], 3, at(1))], department=(code, old)),
        push(client, clock, [event("r-new", b["code"], 3, at(1))], department=(code, new)),
        push(client, clock, [event("r-bad", b["code"], 3, at(1))], department=(code, "not-a-secret")),
    )
    assert [r.status_code for r in answers] == [200, 200, 401], [r.text for r in answers]
    assert statuses(answers[0].json()["results"]) == [("APPLIED", None)]

    # From the end of the grace period, only the new key signs.
    clock.set(until)
    late = await push(client, clock, [event("r-late", a["code"], 8, at(2))], department=(code, old))
    assert late.status_code == 401 and late.json()["error"]["code"] == "BAD_SIGNATURE"
    assert (await state_of(gql, a))[0] == "ACCEPTED"
    await push_ok(client, clock, [event("r-late-new", a["code"], 8, at(2))], department=(code, new))
    assert (await state_of(gql, a))[0] == "IN_PROGRESS"


async def test_a_second_rotation_ends_the_first_secret_at_once(gql, client, clock, cases, settings):
    code, first = PLANNING
    second = rotate(settings, code)[0][code]
    third = rotate(settings, code, alias=True)[0][code]
    a = cases["A"]
    clock.set(dt.datetime.now(dt.timezone.utc))
    refused = await push(client, clock, [event("s-1", a["code"], 3, at(1))], department=(code, first))
    assert refused.status_code == 401
    for n, secret in enumerate((second, third)):  # the one before the last rotation is still in its grace period
        await push_ok(client, clock, [event(f"s-{n + 2}", a["code"], 3, at(1))], department=(code, secret))


async def test_no_grace_for_the_demo_secret_or_when_the_setting_is_zero(gql, client, clock, cases, settings):
    a, c = cases["A"], cases["C"]
    demo = f"{DEV_INGEST_SECRET_PREFIX}-planning"
    await Department.filter(code="PLANNING").update(ingest_secret=demo)
    now = dt.datetime.now(dt.timezone.utc)
    new = await rotate_ingest_secret("PLANNING", now=now, grace_seconds=GRACE)  # published in the repository
    water = rotate(settings, "WATER", grace=0)[0]["WATER"]
    assert await rotate_ingest_secret("NO-SUCH", now=now, grace_seconds=GRACE) is None
    clock.set(now)
    answers = await asyncio.gather(
        push(client, clock, [event("d-1", a["code"], 3, at(1))], department=("PLANNING", demo)),
        push(client, clock, [event("d-2", c["code"], 3, at(1))], department=("WATER", "secret-water")),
    )
    assert [r.status_code for r in answers] == [401, 401]
    await push_ok(client, clock, [event("d-3", a["code"], 3, at(1))], department=("PLANNING", new))
    await push_ok(client, clock, [event("d-4", c["code"], 3, at(1))], department=("WATER", water))
