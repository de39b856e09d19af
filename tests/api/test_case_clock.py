"""The read model of the cases' clocks (api/services/clocks.py, issue #13) answers exactly what recomputing each clock
from its events answers (``case_timing``), at any date, after every kind of write and after a calendar load.

"Exactly" is checked on the ``Timing`` values themselves (used, remaining, due date, light, provisional, running, …),
which is all the GraphQL fields read; for today ≥ the latest event's date the row alone must answer (no events).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from tortoise.transactions import in_transaction

from api.busy import is_busy
from api.demo import load_demo
from api.domain.errors import DomainError
from api.domain.lifecycle import RULES, Action
from api.domain.timing import SHANGHAI, TERMINAL_STATES, local_date
from api.models import Case, CaseClock, Project
from api.scale import ItemSpec, _data, generate
from api.services import clocks
from api.services.calendar import invalidate_calendar_cache, store_years
from api.services.cases import Actor, apply_case_action
from api.services.ingest_receive import receive_case
from api.services.progress import case_timing, events_by_case
from api.domain.calendar import parse_year_file
from tests.factories import OTHER_PROJECT_CODE, PROJECT_CODE, shanghai

ROOT = Path(__file__).resolve().parents[2]
YEAR_2027 = {"year": 2027, "source": "测试：2027年节假日安排",
             "holidays": [{"date": "2027-01-01", "name": "元旦"}, {"date": "2027-01-04", "name": "测试假日"},
                          {"date": "2027-01-05", "name": "测试假日"}, {"date": "2027-02-08", "name": "春节"},
                          {"date": "2027-02-09", "name": "春节"}, {"date": "2027-02-10", "name": "春节"}],
             "workdays": [{"date": "2027-02-06", "name": "春节调休"}]}


async def check(todays, *, ids: list[int] | None = None) -> int:
    """Read model == recomputation from the events (``case_timing``, as before the read model) for these cases
    (default: all) at each date; the rows alone answer every date on or after their latest event. Returns how many
    (case, date) answers came from the rows alone."""
    calendar = await clocks.current_calendar()
    ids = ids if ids is not None else await Case.all().order_by("id").values_list("id", flat=True)
    cases = await Case.filter(id__in=ids)
    events = await events_by_case(ids)
    rows = {row[0]: row for row in await CaseClock.filter(case_id__in=ids).values_list(*clocks.COLUMNS)}
    assert sorted(rows) == sorted(ids), "every case has its row"
    from_rows = 0
    for today in sorted(set(todays)):
        now = dt.datetime.combine(today, dt.time(), tzinfo=SHANGHAI)
        expected = {c.id: case_timing(c, events.get(c.id, []), calendar, now) for c in cases}
        assert await clocks.timings_at(ids, calendar, today) == expected, today
        for case_id, row in rows.items():
            alone = clocks.timing_of(row, calendar, today)
            if row[5] is not None and today >= row[5] or row[4] is None or row[9]:
                assert alone == expected[case_id], (case_id, today, row)
                from_rows += 1
            else:
                assert alone is None  # an open clock asked before its latest event: from the events
    return from_rows


def dates_around(rows) -> set[dt.date]:
    """Before acceptance, on it, mid-clock, the latest event's date, the due date and the days after."""
    out: set[dt.date] = set()
    for _, limit, _, _, accepted_on, last_on, used, due_on, *_ in rows:
        for day in (accepted_on, last_on, due_on):
            if day is not None:
                out |= {day - dt.timedelta(days=1), day, day + dt.timedelta(days=1)}
        if accepted_on is not None and last_on is not None:
            out.add(accepted_on + (last_on - accepted_on) / 2)
    return out


# -- the fold itself, over many random histories (no database) ---------------------------------------------------


def test_the_row_of_a_random_history_answers_as_its_events_at_every_date():
    """Histories of the scale generator's shapes (api/scale.py: every lifecycle path) with random limits, units and
    gaps, over 2026→2027 (a year without holiday data): ``timing_of(fold(...))`` == ``compute_timing`` at each date."""
    from api.domain.calendar import load_bundled_calendar
    from api.domain.timing import LimitUnit, StateChange, compute_timing
    from api.scale import _script

    calendar = load_bundled_calendar()
    rng = random.Random(14)
    from_rows = 0
    for n in range(400):
        limit = rng.choice([0, 1, 3, 5, 10, 20, 60])
        unit = rng.choice([LimitUnit.WD, LimitUnit.WD, LimitUnit.ND])
        warning = rng.choice([0, 2, 5])
        at = shanghai(2026, 9, 1, 9) + dt.timedelta(days=rng.uniform(0, 150))
        changes = []
        for action, gap in _script(rng, limit):
            at += dt.timedelta(days=gap * rng.choice([0.3, 1, 1, 2]))
            changes.append(StateChange(at, RULES[action].target))
        if rng.random() < 0.3:
            changes = changes[: rng.randrange(1, len(changes) + 1)]  # a case still under way
        row = (n, *clocks.fold(changes, limit=limit, unit=unit, warning_days=warning, calendar=calendar).values())
        first, last = local_date(changes[0].at), local_date(changes[-1].at)
        for today in {first - dt.timedelta(days=1), first, last, last + dt.timedelta(days=1),
                      *(first + dt.timedelta(days=rng.randrange(0, 400)) for _ in range(12))}:
            expected = compute_timing(changes, limit=limit, unit=unit, warning_days=warning, calendar=calendar,
                                      now=dt.datetime.combine(today, dt.time(), tzinfo=SHANGHAI))
            alone = clocks.timing_of(row, calendar, today)
            if alone is None:
                assert today < last and not expected.stopped and expected.started_on is not None
            else:
                assert alone == expected, (changes, limit, unit, today)
                from_rows += 1
    assert from_rows > 4000


# -- every demo case -------------------------------------------------------------------------------------------------


@pytest.mark.quiet_app  # no world: its test catalogue would clash with the demo's
async def test_every_demo_case_at_many_dates_and_across_a_calendar_load(app, settings, db_backend):
    now = shanghai(2026, 12, 21, 10)  # clocks due around the turn of the year
    await load_demo(settings, now=now, pdf_limit=0)
    rows = await CaseClock.all().values_list(*clocks.COLUMNS)
    assert len(rows) == await Case.all().count() > 50
    today = local_date(now)
    rng = random.Random(13)
    around = sorted(dates_around(rows))
    todays = {today, today + dt.timedelta(days=1), today - dt.timedelta(days=1), today + dt.timedelta(days=40),
              today + dt.timedelta(days=400), *rng.sample(around, min(24, len(around)))}
    assert await check(todays) > len(rows) * len(todays) // 2

    # 2027 was assumed Monday–Friday: loading its schedule makes the clocks that reach into it final, and moves them.
    calendar_before = await clocks.current_calendar()
    later = today + dt.timedelta(days=40)  # in January 2027
    provisional_before = {c for c, t in (await clocks.timings_at([r[0] for r in rows], calendar_before, later)).items()
                          if t.provisional}
    assert provisional_before, "some demo clock reaches into 2027"
    async with in_transaction():
        await store_years([parse_year_file(YEAR_2027)])
    assert set(await CaseClock.all().values_list(*clocks.COLUMNS)) != set(rows)  # due dates moved with the holidays
    calendar = await clocks.current_calendar()
    assert calendar.is_known_year(2027)
    after = await clocks.timings_at([r[0] for r in rows], calendar, later)
    assert not any(after[c].provisional for c in provisional_before)
    assert await check(todays | {dt.date(2027, 2, 7), dt.date(2027, 2, 11)}) > 0


# -- random transitions ----------------------------------------------------------------------------------------------

STEPS = [Action.ACCEPT, Action.REQUEST_CORRECTION, Action.SUBMIT_CORRECTION, Action.START,
         Action.BEGIN_SPECIAL_PROCEDURE, Action.END_SPECIAL_PROCEDURE, Action.APPROVE, Action.APPROVE_DEFICIENT,
         Action.DISAPPROVE, Action.REVOKE, Action.WITHDRAW, Action.RETRACT, Action.NOT_ACCEPT]


async def test_random_transitions_keep_each_row_equal_to_its_recomputation(world, db_backend):
    """Cases received at a department's own window (so its system may report every act, the applicant's too), then
    random acts with random gaps, across weekends, 国庆节 and into 2027 (assumed Monday–Friday). Mostly acts the case's
    state allows, sometimes one it refuses (a refusal changes nothing); a closed case is followed by a new one."""
    rng = random.Random(2026)
    planning = world.departments["planning"]
    at = shanghai(2026, 9, 25, 9)  # before 国庆节
    received = 0

    async def receive(project_code: str) -> int:
        nonlocal received
        received += 1
        made = await receive_case(
            planning, {"projectCode": project_code, "itemCode": "A", "applicant": {"name": "刘申请"}, "materials": []},
            case_code=f"SPCLOCK{received}", event_id=f"clock-r{received}", occurred_at=at, now=at,
        )
        return made.case.id

    open_cases = {PROJECT_CODE: await receive(PROJECT_CODE), OTHER_PROJECT_CODE: await receive(OTHER_PROJECT_CODE)}
    every = list(open_cases.values())
    await check([local_date(at)], ids=every)
    applied = 0
    for _ in range(70):
        at += dt.timedelta(hours=rng.choice([0.5, 3, 20, 30, 70, 200]))
        project_code = rng.choice(sorted(open_cases))
        case = await Case.get(id=open_cases[project_code])
        allowed = [a for a in STEPS if case.state in RULES[a].sources]
        if not allowed:  # closed: the next case of this item and project
            open_cases[project_code] = await receive(project_code)
            every.append(open_cases[project_code])
            continue
        weights = [0.3 if RULES[a].target in TERMINAL_STATES else 1.0 for a in allowed]
        action = rng.choices(allowed, weights)[0] if rng.random() < 0.9 else rng.choice(STEPS)
        try:
            await apply_case_action(
                Actor.department_system(planning.id), action, case_id=case.id, data=_data(action, rng, at),
                attachments=[{"name": "补正材料.pdf"}] if action is Action.SUBMIT_CORRECTION else [],
                occurred_at=at, now=at,
            )
            applied += 1
        except DomainError:
            pass
        day = local_date(at)
        await check([day, day + dt.timedelta(days=1), day + dt.timedelta(days=9), day - dt.timedelta(days=3)],
                    ids=every)
    assert applied >= 30 and received >= 4, (applied, received)


# -- the ingest history import ---------------------------------------------------------------------------------------


async def test_an_imported_history(client, clock, world, db_backend):
    from tests.api.test_ingest import full_path, push_ok
    from tests.api.test_ingest_receive import receive

    clock.set(shanghai(2026, 11, 20, 18))
    results = await push_ok(client, clock, [receive("h-1", "SPHIST1", "2026-11-02T09:00:00+08:00")]
                            + full_path("SPHIST1", prefix="h"))
    assert {r["status"] for r in results} == {"APPLIED"}, results
    case_id = await Case.get(code="SPHIST1").values_list("id", flat=True)
    rows = await CaseClock.filter(case_id=case_id).values_list(*clocks.COLUMNS)
    assert rows and rows[0][9]  # decided: stopped
    await check({local_date(clock()), *dates_around(rows)}, ids=[case_id])


# -- rows written by hand, the migration's fill and the rebuild command ---------------------------------------------


async def run_cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JIANSHEN_DATABASE_URL": settings.database_url}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "api", *args], cwd=ROOT, env=env,
                                   capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done


async def test_rebuild_and_migrate_fill_the_rows_and_a_calendar_load_recomputes_them(
    world, settings, db_backend, tmp_path
):
    planning = world.departments["planning"]
    at = shanghai(2026, 12, 28, 9)  # a Monday: 5 working days reach into 2027
    made = await receive_case(planning, {"projectCode": OTHER_PROJECT_CODE, "itemCode": "A",
                                         "applicant": {"name": "刘申请"}, "materials": []},
                              case_code="SPCLI1", event_id="cli-r", occurred_at=at, now=at)
    case_id = made.case.id
    for action, hours in [(Action.ACCEPT, 1), (Action.START, 2)]:
        await apply_case_action(Actor.department_system(planning.id), action, case_id=case_id, data={},
                                occurred_at=at + dt.timedelta(hours=hours), now=at + dt.timedelta(hours=hours))
    good = await CaseClock.filter(case_id=case_id).values_list(*clocks.COLUMNS)
    assert good[0][8] and good[0][7] >= dt.date(2027, 1, 1)  # running, due in 2027

    # A database from before the read model: no rows. `migrate` fills them; a wrong row is put right by `rebuild`.
    await CaseClock.all().delete()
    await run_cli(settings, "migrate")
    assert await CaseClock.filter(case_id=case_id).values_list(*clocks.COLUMNS) == good
    await CaseClock.filter(case_id=case_id).update(used=99, running=False)
    assert "case clocks rebuilt: 1" in (await run_cli(settings, "clocks", "rebuild")).stdout
    assert await CaseClock.filter(case_id=case_id).values_list(*clocks.COLUMNS) == good

    # The operator loads 2027 in another process: the row is recomputed in the same transaction.
    (tmp_path / "2027.json").write_text(json.dumps(YEAR_2027, ensure_ascii=False), encoding="utf-8")
    await run_cli(settings, "calendar", "load", str(tmp_path / "2027.json"))
    invalidate_calendar_cache()
    moved = await CaseClock.filter(case_id=case_id).values_list(*clocks.COLUMNS)
    assert moved != good  # 01-01, 01-04 and 01-05 are holidays after all: the due date moves by three working days
    assert (good[0][7], moved[0][7]) == (dt.date(2027, 1, 4), dt.date(2027, 1, 7))
    await check([dt.date(2026, 12, 22), dt.date(2026, 12, 31), dt.date(2027, 1, 4), dt.date(2027, 2, 1)],
                ids=[case_id])


async def test_a_calendar_load_racing_event_writes_leaves_no_stale_row(world, settings, db_backend, tmp_path):
    """The operator loads 2027 in another process while a department system reports events on many cases at once:
    however they interleave, every row ends as the fold of its case's events with the calendar that committed
    (a writer that read the old calendar must not commit its row after the load's recomputation)."""
    planning = world.departments["planning"]
    system = Actor.department_system(planning.id)
    start = shanghai(2026, 12, 28, 9)
    main = world.projects["main"]
    codes = [f"2026-440402-47-01-{900 + n:06d}" for n in range(10)]
    for code in codes:  # one open case per item and project: ten projects of the same template
        await Project.create(code=code, name=f"赛跑项目{code[-3:]}", organization_id=main.organization_id,
                             process_type=3, region_code="440402", address=main.address, investment=main.investment)
    case_ids = []
    for n, code in enumerate(codes):
        made = await receive_case(planning, {"projectCode": code, "itemCode": "A", "applicant": {"name": "刘申请"},
                                             "materials": []},
                                  case_code=f"SPRACE{n}", event_id=f"race-r{n}", occurred_at=start, now=start)
        case_ids.append(made.case.id)
        for action, minutes in [(Action.ACCEPT, 1), (Action.START, 2)]:
            when = start + dt.timedelta(minutes=minutes)
            await apply_case_action(system, action, case_id=made.case.id, data={}, occurred_at=when, now=when)
    # Many more cases (after these, by id), so the load's recomputation holds its transaction open a while.
    a = world.items["A"]
    await generate(seed=5, count=1000, now=start, projects=[main], applicant_id=world.users["applicant"].id,
                   items=[ItemSpec(item_id=a.id, item_code="A", department_id=planning.id, stage=1, limit_days=5)])
    (tmp_path / "2027.json").write_text(json.dumps(YEAR_2027, ensure_ascii=False), encoding="utf-8")
    load = asyncio.create_task(run_cli(settings, "calendar", "load", str(tmp_path / "2027.json")))
    at, rounds, rng = shanghai(2026, 12, 29, 9), 0, random.Random(7)

    async def toggle(case_id: int, when: dt.datetime) -> None:
        state = (await Case.get(id=case_id)).state.value
        action = Action.END_SPECIAL_PROCEDURE if state == "SPECIAL_PROCEDURE" else Action.BEGIN_SPECIAL_PROCEDURE
        try:
            await apply_case_action(system, action, case_id=case_id, data=_data(action, rng, when), occurred_at=when,
                                    now=when)
        except Exception as error:  # the load holds the database longer than a write waits: refused, nothing written
            assert is_busy(error), error

    while not load.done() or rounds < 3:
        at += dt.timedelta(minutes=7)
        await asyncio.gather(*(toggle(case_id, at) for case_id in case_ids))
        rounds += 1
    await load
    assert (await clocks.current_calendar()).is_known_year(2027)
    kept = sorted(await CaseClock.filter(case_id__in=case_ids).values_list(*clocks.COLUMNS))
    async with in_transaction():
        await clocks.rebuild_all()
    assert sorted(await CaseClock.filter(case_id__in=case_ids).values_list(*clocks.COLUMNS)) == kept
    await check([dt.date(2026, 12, 31), dt.date(2027, 1, 4)], ids=case_ids)
