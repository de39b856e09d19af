"""Rows become the same model instances as Tortoise makes them (api/remembered.py ``instances``, issue #13 item 1): for
every model with rows in the demo, on SQLite and PostgreSQL; a select of other columns goes Tortoise's way."""

from __future__ import annotations

import pytest
from tortoise import Tortoise
from tortoise.exceptions import DoesNotExist, MultipleObjectsReturned

from api import remembered
from api.app import create_app
from api.demo import load_demo
from api.models import Case, Department, Project


@pytest.fixture
async def demo(settings):
    application = create_app(settings, run_dispatcher=False, produce_certificates=False)
    async with application.router.lifespan_context(application):
        await load_demo(settings, pdf_limit=0)
        yield


def _same(fast, slow) -> None:
    assert type(fast) is type(slow)
    assert vars(fast) == vars(slow)
    assert list(vars(fast)) == list(vars(slow)), type(fast)  # the same attributes, set in the same order


async def test_every_models_rows_become_the_instances_tortoise_makes(demo):
    seen = set()
    for model in Tortoise.apps["models"].values():
        db = model._meta.db
        _, rows = await db.execute_query(model.all().sql())
        if not rows:
            continue
        seen.add(model.__name__)
        fast = remembered.instances(model, rows)
        slow = [model._init_from_db(**dict(row)) for row in rows]
        assert len(fast) == len(slow)
        for a, b in zip(fast, slow):
            _same(a, b)
        assert [c.pk for c in fast] == [c.pk for c in await model.all()], model
        assert remembered._plan(model, tuple(rows[0].keys())) is not None, model  # the fast way was taken
    assert {"Case", "Department", "ApprovalItem", "Project", "Organization", "Building", "User", "CaseEvent",
            "TemplateStage", "Certificate", "Complaint", "Notice"} <= seen, seen


async def test_other_columns_go_tortoises_way(demo):
    db = Case._meta.db
    _, rows = await db.execute_query(Case.all().only("id", "code").sql())
    assert rows
    assert remembered._plan(Case, tuple(rows[0].keys())) is None
    fast = remembered.instances(Case, rows)
    for a, row in zip(fast, rows):
        _same(a, Case._init_from_db(**dict(row)))
        assert a._partial is True
    assert remembered.instances(Case, []) == []


async def test_a_kept_single_select_answers_as_the_queryset_does(demo):
    some = await Department.all().order_by("id").first()
    one = await remembered.select(Department, ("t", "one"), lambda: Department.filter(id=some.id).first())
    _same(one, some)
    assert await remembered.select(Department, ("t", "none"), lambda: Department.filter(id=-1).first()) is None
    with pytest.raises(DoesNotExist):
        await remembered.select(Department, ("t", "get"), lambda: Department.get(id=-1))
    for _ in range(2):  # built, then kept
        with pytest.raises(MultipleObjectsReturned):
            await remembered.select(Project, ("t", "many"), lambda: Project.all().get())
        got = await remembered.select(Department, ("t", "get1"), lambda: Department.get(id=some.id))
        _same(got, some)


async def test_kept_plain_selects_make_their_instances_without_tortoises_executor(demo, monkeypatch):
    from tortoise.queryset import QuerySet

    from api.models import TemplateStage

    project = await Project.all().order_by("id").first()
    plain_cases = await Case.filter(project_id__in=[project.id]).order_by("stage", "id")
    plain_stages = await TemplateStage.all().select_related("template").order_by("id")
    executed = []
    original = QuerySet._execute

    async def counting(query):
        executed.append(query.model)
        return await original(query)

    monkeypatch.setattr(QuerySet, "_execute", counting)
    for _ in range(2):  # built (Tortoise's way, once), then kept
        cases = await remembered.select(
            Case, ("t", "cases"), lambda: Case.filter(project_id__in=[project.id]).order_by("stage", "id"))
        stages = await remembered.select(
            TemplateStage, ("t", "stages"), lambda: TemplateStage.all().select_related("template").order_by("id"))
        for a, b in zip(cases, plain_cases, strict=True):
            _same(a, b)
        for a, b in zip(stages, plain_stages, strict=True):
            _same(a, b)
            assert a.template.process_type == b.template.process_type
    assert executed == [TemplateStage, TemplateStage]  # a select_related goes through Tortoise's executor every time
