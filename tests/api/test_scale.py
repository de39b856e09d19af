"""The bulk generator behind ``python -m api load-demo --scale N`` (api/scale.py): the same seed writes the same rows,
every column; the rows read back through the models as the services wrote them, the clocks' read model included. On
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from api.domain.timing import SHANGHAI, LimitUnit
from api.models import Application, Case, CaseClock, CaseEvent
from api.models.feedback import Complaint, ComplaintEvent, Rating
from api.scale import ItemSpec, generate
from api.services import clocks

NOW = dt.datetime(2026, 11, 20, 15, 0, tzinfo=SHANGHAI)


def specs(world) -> list[ItemSpec]:
    return [
        ItemSpec(world.items["A"].id, "A", world.departments["planning"].id, 1, 5),
        ItemSpec(world.items["C"].id, "C", world.departments["water"].id, 1, 3, limit_unit=LimitUnit.ND),
        ItemSpec(world.items["D"].id, "D", world.departments["housing"].id, 3, 7, warning_days=3),
    ]


async def rows_of(model, first_id: int, last_id: int) -> list[dict]:
    return await model.filter(id__gte=first_id, id__lte=last_id).order_by("id").values()


def relative(rows: list[dict], offsets: dict[str, int], prefix: str) -> list[dict]:
    """Rows with their ids made relative to the load's first ones and the load's code prefix taken out."""
    out = []
    for row in rows:
        row = dict(row)
        for key, offset in offsets.items():
            if row.get(key) is not None:
                row[key] -= offset
        for key in ("code", "parallel_instance_code"):
            if row.get(key):
                row[key] = row[key].replace(prefix, "<prefix>")
        if row.get("matter_key"):
            kind, number = row["matter_key"].split(":")
            row["matter_key"] = f"{kind}:{int(number) - offsets['case_id' if kind == 'case' else 'complaint_id']}"
        out.append(row)
    return out


async def test_the_same_seed_writes_the_same_rows(world, clock):
    """Two loads with one seed (other code prefixes): equal in every column once the ids are made relative, the
    cases' created / updated times included (their first and last events, not the moment of the load)."""
    clock.set(NOW)
    kwargs = dict(seed=7, count=150, now=NOW, items=specs(world), projects=list(world.projects.values()),
                  applicant_id=world.users["applicant"].id, staff_id=world.users["clerk"].id, days_back=120)
    loads = []
    for prefix in ("LOADA-", "LOADB-"):
        firsts = {m: (await m.all().order_by("-id").first().values_list("id", flat=True) or 0) + 1
                  for m in (Application, Case, CaseEvent, Rating, Complaint, ComplaintEvent)}
        made = await generate(code_prefix=prefix, **kwargs)
        lasts = {m: await m.all().order_by("-id").first().values_list("id", flat=True) for m in firsts}
        offsets = {"id": 0, "application_id": firsts[Application] - 1, "case_id": firsts[Case] - 1,
                   "complaint_id": firsts[Complaint] - 1}
        tables = {}
        for model in firsts:
            offsets["id"] = firsts[model] - 1
            tables[model.__name__] = relative(await rows_of(model, firsts[model], lasts[model]), offsets, prefix)
        loads.append((made, tables))
    (made_p, first), (made_q, second) = loads
    assert made_p == made_q and made_p.cases == 150 and made_p.events > 300 and made_p.ratings and made_p.complaints
    for name in first:
        assert len(first[name]) == len(second[name]) > 0, name
        for a, b in zip(first[name], second[name]):
            assert a == b, name
    cases = first["Case"]
    assert all(c["created_at"] <= c["updated_at"] <= NOW for c in cases)


async def test_the_rows_read_back_as_the_models_write_them(world, clock):
    """JSON, enums, dates and booleans written by COPY / executemany come back as the models' own values."""
    clock.set(NOW)
    await generate(seed=3, count=250, now=NOW, items=specs(world), projects=list(world.projects.values()),
                   applicant_id=world.users["applicant"].id, staff_id=world.users["clerk"].id, days_back=90)
    events = await CaseEvent.filter(case__code__startswith="S3-").order_by("id")
    assert events and all(isinstance(e.data, dict) and e.attachments == [] for e in events)
    assert all(e.occurred_at.tzinfo is not None and e.occurred_at <= NOW for e in events)
    cases = await Case.filter(code__startswith="S3-")
    assert {c.limit_unit for c in cases} <= set(LimitUnit) and all(c.predecessor_codes == [] for c in cases)
    assert any(c.correction_requested for c in cases) and not all(c.correction_requested for c in cases)
    bad = await Rating.filter(case__code__startswith="S3-", level__lte=2)
    assert bad and all(isinstance(r.contact_due, dt.date) and r.deadline_provisional is False for r in bad)
    # The clocks' read model is written with the cases, as the services' own refresh computes it from the events.
    ids = sorted(c.id for c in cases)
    written = await CaseClock.filter(case_id__in=ids).order_by("case_id").values()
    assert len(written) == len(ids)
    await clocks.refresh(ids)
    assert await CaseClock.filter(case_id__in=ids).order_by("case_id").values() == written
    # The ids continue after the bulk rows (PostgreSQL's sequences were moved past them).
    extra = await Application.create(project=world.projects["main"], stage=1, parallel_instance_code="after-bulk",
                                     applicant=world.users["applicant"], submitted_at=NOW)
    assert extra.id > max(c.application_id for c in cases)
