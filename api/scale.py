"""Many realistic cases at once, for load tests and the supervision figures (issue #14 §3): ``python -m api load-demo
--scale N`` and the tests' random worlds.

Unlike the demo's 20 projects (api/demo.py), which go through the real services one action at a time, these are
written in bulk — applications, cases, their events, ratings and complaints with theirs — because 100,000 cases through
the services would take hours. Not through Tortoise's ``bulk_create`` either: a model object per row, its validators
and per-value conversions cost more than the database (and 100,000 cases into PostgreSQL had not finished after
30 minutes); rows go as plain tuples, by ``COPY`` on PostgreSQL and ``executemany`` in one transaction per batch on
SQLite (``BulkWriter``). Every event sequence follows the lifecycle's rules (DOMAIN.md §4: the transitions of
``api.domain.lifecycle.RULES``; a test checks each against ``plan_transition``), and the cases' projections (state,
BLZT, last sequence number, correction flag) are those of their events. The same seed gives the same rows (every
column, the created / updated times included: they are the case's first and last event times, not the clock's).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Sequence

from tortoise import connections
from tortoise.fields import BooleanField, DateField, DatetimeField, JSONField
from tortoise.models import Model
from tortoise.transactions import in_transaction

from api.domain.feedback import ComplaintAction, ComplaintCategory, ComplaintKind, ComplaintState
from api.domain.lifecycle import ACTION_BLZT, RULES, Action, Party, SpecialProcedureKind
from api.domain.timing import SHANGHAI, CaseState, LimitUnit, StateChange
from api.models import Application, Case, CaseClock, CaseEvent, Project
from api.models.feedback import Complaint, ComplaintEvent, Rating
from api.services import clocks

BATCH = 2000
FLUSH_EVENTS = 20_000  # events kept in memory before the rows so far are written


@dataclass(frozen=True)
class ItemSpec:
    """One item of a process template: who handles it, in which stage, with which committed limit."""

    item_id: int
    item_code: str
    department_id: int
    stage: int
    limit_days: int
    limit_unit: LimitUnit = LimitUnit.WD
    warning_days: int = 2


@dataclass
class Generated:
    cases: int = 0
    events: int = 0
    ratings: int = 0
    complaints: int = 0


def _party(action: Action) -> Party:
    return next(iter(sorted(RULES[action].parties, key=lambda p: p.value)))


def _script(rng: random.Random, limit: int) -> list[tuple[Action, float]]:
    """A case's actions with the days between each and the one before (natural days, fractions of a day)."""
    steps: list[tuple[Action, float]] = [(Action.RECEIVE, 0.0)]
    if rng.random() < 0.04:
        return steps + [(Action.WITHDRAW, rng.uniform(0.1, 5))]
    if rng.random() < 0.2:
        steps.append((Action.REQUEST_CORRECTION, rng.uniform(0.1, 2)))
        if rng.random() < 0.08:
            return steps + [(Action.WITHDRAW, rng.uniform(1, 20))]
        steps.append((Action.SUBMIT_CORRECTION, rng.uniform(0.5, 15)))
    verdict = rng.random()
    if verdict < 0.04:
        return steps + [(Action.NOT_ACCEPT, rng.uniform(0.1, 2))]
    if verdict < 0.07:
        return steps + [(Action.REFUSE, rng.uniform(0.1, 2))]
    steps.append((Action.ACCEPT, rng.uniform(0.05, 2)))
    if rng.random() < 0.03:
        return steps + [(Action.RETRACT, rng.uniform(0.5, 10))]
    steps.append((Action.START, rng.uniform(0.0, 1.5)))
    # Working days of the limit are about 1.4 natural days each; some cases run late.
    budget = max(limit, 1) * 1.4 * rng.choice([0.5, 0.8, 0.9, 1.0, 1.0, 1.1, 1.3, 3.0, 6.0])
    if rng.random() < 0.1:
        first = rng.uniform(0.2, budget / 2)
        steps.append((Action.BEGIN_SPECIAL_PROCEDURE, first))
        steps.append((Action.END_SPECIAL_PROCEDURE, rng.uniform(1, 25)))
        budget = max(budget - first, 0.2)
    if rng.random() < 0.02:
        return steps + [(Action.RETRACT, rng.uniform(0.1, budget))]
    decision = rng.random()
    action = Action.APPROVE if decision < 0.8 else Action.APPROVE_DEFICIENT if decision < 0.88 else Action.DISAPPROVE
    steps.append((action, budget * rng.uniform(0.5, 1.0)))
    if action is Action.APPROVE and rng.random() < 0.02:
        steps.append((Action.REVOKE, rng.uniform(5, 60)))
    return steps


def _data(action: Action, rng: random.Random, at: dt.datetime) -> dict:
    if action in (Action.NOT_ACCEPT, Action.REFUSE, Action.DISAPPROVE, Action.REVOKE):
        return {"reason": "不符合法定条件"}
    if action is Action.REQUEST_CORRECTION:
        return {"corrections": [{"material": "申请表", "requirement": "请补充盖章页"}]}
    if action is Action.BEGIN_SPECIAL_PROCEDURE:
        return {"kind": rng.choice(list(SpecialProcedureKind)).value, "reason": "依法需要", "expected_days": 10}
    if action is Action.END_SPECIAL_PROCEDURE:
        return {"result": "已完成"}
    if action in (Action.APPROVE, Action.APPROVE_DEFICIENT):
        day = at.astimezone(SHANGHAI).date().isoformat()
        data = {"document": {"approval_date": day, "document_number": "珠审〔2026〕1号", "document_title": "批复",
                             "valid_until": "9999-01-01"}}
        if action is Action.APPROVE_DEFICIENT:
            data["committed_items"] = ["竣工前补交"]
        return data
    return {}


def _working_hours(at: dt.datetime, rng: random.Random) -> dt.datetime:
    local = at.astimezone(SHANGHAI)
    return local.replace(hour=rng.randint(8, 17), minute=rng.randint(0, 59), second=0, microsecond=0)


def _is_postgres(connection) -> bool:
    return connection.capabilities.dialect == "postgres"


class BulkWriter:
    """Rows of one table as plain tuples, written in batches: ``COPY`` on PostgreSQL (asyncpg's
    ``copy_records_to_table``), ``executemany`` in one transaction on SQLite. ``add`` takes the model's field names
    (``case_id``, not ``case``); a column not given gets the field's default (or NULL), as the model would write it.
    Values are converted as Tortoise stores them: enums by value, JSON as text, and on SQLite datetimes as text in
    the database's zone (api/db.py: text order is time order), dates as ISO text, booleans as 0/1."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.connection = connections.get("default")
        postgres = _is_postgres(self.connection)
        meta = model._meta
        self.names = list(meta.fields_db_projection)
        self.columns = [meta.fields_db_projection[name] for name in self.names]
        self.defaults: list[Callable[[], Any]] = []
        self.converters: list[Callable[[Any], Any] | None] = []
        for name in self.names:
            field = meta.fields_map[name]
            default = field.default
            self.defaults.append(default if callable(default) else (lambda value=default: value))
            self.converters.append(_converter(field, postgres))
        self.rows: list[tuple] = []
        self.written = 0

    def add(self, **values: Any) -> None:
        row = []
        for name, default, convert in zip(self.names, self.defaults, self.converters):
            value = values.pop(name) if name in values else default()
            row.append(value if value is None or convert is None else convert(value))
        if values:
            raise TypeError(f"{self.model.__name__} has no column {sorted(values)}")
        self.rows.append(tuple(row))

    async def flush(self, connection=None) -> None:
        """Write the rows so far, on ``connection`` (a transaction's, so that several tables' rows commit together)
        or the default one."""
        connection = connection or self.connection
        rows, self.rows = self.rows, []
        table = self.model._meta.db_table
        for begin in range(0, len(rows), BATCH * 5):
            batch = rows[begin: begin + BATCH * 5]
            if _is_postgres(connection):
                async with connection.acquire_connection() as raw:
                    await raw.copy_records_to_table(table, records=batch, columns=self.columns)
            else:
                columns = ", ".join(f'"{c}"' for c in self.columns)
                marks = ", ".join("?" for _ in self.columns)
                await connection.execute_many(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', batch)
            self.written += len(batch)


def _converter(field, postgres: bool) -> Callable[[Any], Any] | None:
    if isinstance(field, JSONField):
        return field.encoder
    if getattr(field, "enum_type", None) is not None:
        return lambda value: value.value if isinstance(value, Enum) else value
    if postgres:
        return None
    if isinstance(field, DatetimeField):
        return lambda value: value.astimezone(SHANGHAI).isoformat(" ")
    if isinstance(field, DateField):
        return lambda value: value.isoformat()
    if isinstance(field, BooleanField):
        return int
    return None


async def _next_ids(*models) -> list[int]:
    out = []
    for model in models:
        last = await model.all().order_by("-id").limit(1).values_list("id", flat=True)
        out.append((last[0] if last else 0) + 1)
    return out


async def _fix_sequences(*models) -> None:
    """Rows written with explicit ids: PostgreSQL's sequences must move past them."""
    connection = connections.get("default")
    if not _is_postgres(connection):
        return
    for model in models:
        table = model._meta.db_table
        await connection.execute_query(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {table}))"
        )


async def generate(
    *,
    seed: int,
    count: int,
    now: dt.datetime,
    items: Sequence[ItemSpec],
    projects: Sequence[Project],
    applicant_id: int,
    staff_id: int | None = None,
    days_back: int = 365,
    code_prefix: str = "S",
    items_by_process_type: dict[int, Sequence[ItemSpec]] | None = None,
) -> Generated:
    """``count`` cases received over the ``days_back`` days before ``now``, with their histories up to ``now``; about
    a third of the decided ones rated, and one complaint for every 20 cases. Deterministic by ``seed``."""
    rng = random.Random(seed)
    out = Generated()
    app_id, case_id, event_id, rating_id, complaint_id, cevent_id = await _next_ids(
        Application, Case, CaseEvent, Rating, Complaint, ComplaintEvent
    )
    applications, cases, events = BulkWriter(Application), BulkWriter(Case), BulkWriter(CaseEvent)
    ratings, complaints, cevents = BulkWriter(Rating), BulkWriter(Complaint), BulkWriter(ComplaintEvent)
    # The clocks' read model (api/services/clocks.py), folded from the histories in hand: ``clocks.refresh`` would read
    # every event back and write through model objects.
    clock_rows = BulkWriter(CaseClock)
    calendar = await clocks.current_calendar()

    async def flush(final: bool = False) -> None:
        if len(events.rows) < FLUSH_EVENTS and not final:
            return
        async with in_transaction() as connection:  # the events and their clocks' read model together
            for writer in (applications, cases, events, clock_rows, ratings):  # in the order of their foreign keys
                await writer.flush(connection)

    start = now - dt.timedelta(days=days_back)
    for n in range(count):
        project = rng.choice(projects)
        spec = rng.choice((items_by_process_type or {}).get(project.process_type) or items)
        received = _working_hours(start + dt.timedelta(days=rng.uniform(0, days_back)), rng)
        at = received
        history: list[tuple[Action, dt.datetime]] = []
        for action, gap in _script(rng, spec.limit_days):
            at = at + dt.timedelta(days=gap)
            if action is not Action.RECEIVE:
                at = max(at, history[-1][1] + dt.timedelta(minutes=1))
            if at > now:
                break
            history.append((action, at))
        code = f"{code_prefix}{seed}-{n:07d}"
        applications.add(
            id=app_id, project_id=project.id, stage=spec.stage, form={}, materials=[],
            parallel_instance_code=f"P{code}", applicant_id=applicant_id, submitted_at=received,
        )
        state = CaseState.RECEIVED
        for seq, (action, when) in enumerate(history, start=1):
            state = RULES[action].target
            events.add(
                id=event_id, case_id=case_id, seq=seq, action=action, blzt=ACTION_BLZT[action], state_after=state,
                party=_party(action), actor_id=applicant_id if _party(action) is Party.APPLICANT else staff_id,
                occurred_at=when, recorded_at=when, data=_data(action, rng, when), attachments=[],
            )
            event_id += 1
        clock_rows.add(case_id=case_id, **clocks.fold(
            [StateChange(when, RULES[action].target) for action, when in history], limit=spec.limit_days,
            unit=spec.limit_unit, warning_days=spec.warning_days, calendar=calendar,
        ))
        cases.add(
            id=case_id, code=code, application_id=app_id, project_id=project.id, item_id=spec.item_id,
            department_id=spec.department_id, stage=spec.stage, limit_days=spec.limit_days, limit_unit=spec.limit_unit,
            warning_days=spec.warning_days, predecessor_codes=[], state=state, blzt=state.blzt,
            last_seq=len(history), correction_requested=any(a is Action.REQUEST_CORRECTION for a, _ in history),
            created_at=received, updated_at=history[-1][1] if history else received,
        )
        decided = next((w for a, w in history if a in (Action.APPROVE, Action.APPROVE_DEFICIENT, Action.DISAPPROVE)),
                       None)
        if decided is not None and rng.random() < 0.35:
            rated = decided + dt.timedelta(days=rng.uniform(0.1, 20))
            if rated <= now:
                level = rng.choices([5, 4, 3, 2, 1], weights=[50, 25, 10, 8, 7])[0]
                bad = level <= 2
                rectified = bad and rng.random() < 0.6
                ratings.add(
                    id=rating_id, rater_id=applicant_id, case_id=case_id, matter_key=f"case:{case_id}",
                    department_id=spec.department_id, item_code=spec.item_code, level=level,
                    reasons=["SLOW"] if bad else [], comment="", created_at=rated,
                    contact_due=(rated + dt.timedelta(days=1)).date() if bad else None,
                    contacted_at=rated + dt.timedelta(hours=5) if rectified else None,
                    rectify_due=(rated + dt.timedelta(days=7)).date() if bad else None,
                    rectified_at=rated + dt.timedelta(days=3) if rectified else None,
                    appeal_status="UPHELD" if bad and rng.random() < 0.1 else "NONE",
                )
                rating_id += 1
                out.ratings += 1
        out.cases += 1
        out.events += len(history)
        app_id += 1
        case_id += 1
        await flush()
    await flush(final=True)

    # Complaints: filed, assigned, replied (on time or late), some reopened and replied again.
    department_ids = sorted({s.department_id for s in items})
    for _ in range(count // 20):
        filed = _working_hours(start + dt.timedelta(days=rng.uniform(0, days_back)), rng)
        department_id = rng.choice(department_ids)
        project = rng.choice(projects) if rng.random() < 0.7 else None
        steps: list[tuple[ComplaintAction, ComplaintState, dt.datetime]] = []
        at = filed + dt.timedelta(hours=rng.uniform(1, 48))
        steps.append((ComplaintAction.ASSIGN, ComplaintState.ASSIGNED, at))
        for round_ in range(2):
            at = at + dt.timedelta(days=rng.uniform(0.5, 20))
            steps.append((ComplaintAction.REPLY, ComplaintState.REPLIED, at))
            if round_ == 0 and rng.random() < 0.2:
                at = at + dt.timedelta(days=rng.uniform(0.5, 5))
                steps.append((ComplaintAction.REOPEN, ComplaintState.REOPENED, at))
                continue
            break
        steps = [s for s in steps if s[2] <= now]
        state = steps[-1][1] if steps else ComplaintState.SUBMITTED
        round_started = filed
        replied_at = None
        for action, _, when in steps:
            if action is ComplaintAction.REOPEN:
                round_started, replied_at = when, None
            elif action is ComplaintAction.REPLY:
                replied_at = when
        complaints.add(
            id=complaint_id, filer_id=applicant_id, kind=ComplaintKind.COMPLAINT,
            category=rng.choice(list(ComplaintCategory)), text="办理时间过长", images=[],
            project_code=project.code if project else None, department_id=department_id if steps else None,
            state=state, round_started_at=round_started, replied_at=replied_at, last_seq=len(steps), created_at=filed,
        )
        for seq, (action, state_after, when) in enumerate(steps, start=1):
            cevents.add(
                id=cevent_id, complaint_id=complaint_id, seq=seq, action=action, state_after=state_after,
                actor_id=staff_id, department_id=department_id if action is ComplaintAction.ASSIGN else None,
                occurred_at=when,
            )
            cevent_id += 1
        replied = [when for action, _, when in steps if action is ComplaintAction.REPLY]
        if replied and rng.random() < 0.3:
            rated = replied[-1] + dt.timedelta(days=rng.uniform(0.1, 5))
            if rated <= now:
                level = rng.choice([5, 4, 3, 2, 1])
                ratings.add(
                    id=rating_id, rater_id=applicant_id, complaint_id=complaint_id, matter_key=f"complaint:{complaint_id}",
                    department_id=department_id, item_code=None, level=level, reasons=["SLOW"] if level <= 2 else [],
                    comment="", created_at=rated, rectified_at=rated + dt.timedelta(days=2) if level == 2 else None,
                )
                rating_id += 1
                out.ratings += 1
        complaint_id += 1
        out.complaints += 1
    for writer in (complaints, cevents, ratings):
        await writer.flush()
    await _fix_sequences(Application, Case, CaseEvent, Rating, Complaint, ComplaintEvent)
    return out


# -- python -m api load-demo --scale N ------------------------------------------------------------------------------

REGIONS = ["440402", "440403", "440404"]  # 香洲区, 斗门区, 金湾区


async def load_scale(count: int, *, seed: int, now: dt.datetime) -> Generated | None:
    """``count`` more cases on top of the demo (``load_demo`` first): projects of every process type of the demo's
    templates, one for about every 8 cases, then the cases of their templates' items. Idempotent per seed and count
    (the first case's code marks a load); None when already loaded."""
    from api.models import Organization, TemplateItem, User

    prefix = f"S{seed}x{count}-"
    if await Case.exists(code=f"{prefix}{seed}-{0:07d}"):
        return None
    rng = random.Random(seed)
    by_type: dict[int, list[ItemSpec]] = {}
    for entry in await TemplateItem.all().select_related("template_stage__template", "item"):
        stage = entry.template_stage
        by_type.setdefault(stage.template.process_type, []).append(ItemSpec(
            item_id=entry.item_id, item_code=entry.item.code, department_id=entry.item.department_id,
            stage=stage.stage, limit_days=entry.limit_days, limit_unit=LimitUnit(entry.limit_unit),
            warning_days=entry.warning_days,
        ))
    if not by_type:
        raise RuntimeError("no process template: load the demo (or the catalogue) first")
    applicant = await User.get(username="demo.applicant")
    clerk = await User.get(username="demo.clerk")
    organizations = await Organization.all().order_by("id").limit(2)
    first_project = await _next_ids(Project)
    projects = []
    for n in range(max(1, count // 8)):
        region = rng.choice(REGIONS)
        projects.append(Project(
            id=first_project[0] + n, code=f"{now.year}-{region}-47-{seed % 100:02d}-{(count // 8 + n) % 10**6:06d}",
            name=f"压测项目{seed}-{n + 1}", organization_id=rng.choice(organizations).id,
            process_type=rng.choice(sorted(by_type)), region_code=region, address="珠海市压测路1号",
            investment=rng.randint(500, 90000),
        ))
    # A project code is unique: one already used (an earlier load with another count) keeps its project.
    taken = set(await Project.filter(code__in=[p.code for p in projects]).values_list("code", flat=True))
    projects = [p for p in projects if p.code not in taken]
    await Project.bulk_create(projects, batch_size=BATCH)
    await _fix_sequences(Project)
    projects = await Project.filter(id__gte=first_project[0])
    all_items = [spec for specs in by_type.values() for spec in specs]
    made = await generate(
        seed=seed, count=count, now=now, items=all_items, projects=projects, applicant_id=applicant.id,
        staff_id=clerk.id, code_prefix=prefix, items_by_process_type=by_type,
    )
    connection = connections.get("default")
    if _is_postgres(connection):
        # A bulk load changes the tables' sizes by orders of magnitude: the planner's statistics are refreshed now
        # rather than whenever autovacuum gets to them (the supervision queries' plans depend on them).
        await connection.execute_query("ANALYZE")
    return made
