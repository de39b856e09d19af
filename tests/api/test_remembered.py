"""Hot read statements keep their rendered SQL (api/remembered.py, issue #13 item 1): the same rows and objects as the
plain queryset, per scope and values, on the connection of the moment (a transaction's own included)."""

from __future__ import annotations

from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from api import remembered
from api.models import Building, Case, CaseClock, Project, TemplateStage
from api.remembered import q_key, scoped_key
from api.services.access import Viewer, case_scope, project_scope
from api.services.progress import get_project


def _fields(rows):
    return [row if isinstance(row, tuple) else {k: getattr(row, k) for k in row._meta.db_fields} for row in rows]


async def test_kept_statements_answer_what_the_plain_querysets_answer(world):
    project = world.projects[next(iter(world.projects))]
    queries = {
        "buildings": (Building, lambda: Building.filter(project_id__in=[project.id]).order_by("id")),
        "stages": (TemplateStage, lambda: TemplateStage.filter(template__process_type__in=[1, 2, 3, 4])
                   .select_related("template").order_by("stage")),
        "clocks": (CaseClock, lambda: CaseClock.filter(case_id__in=[1, 2, 3]).values_list("case_id", "due_on", "used")),
        "one": (Project, lambda: Project.filter(code=project.code).first()),
        "none": (Project, lambda: Project.filter(code="2026-440402-47-01-999999").first()),
    }
    for name, (model, build) in queries.items():
        plain = await build()
        for _ in range(2):  # built, then kept
            kept = await remembered.select(model, ("test", name), build)
            if name in ("one", "none"):
                assert (kept and _fields([kept])) == (plain and _fields([plain])), name
            else:
                assert _fields(kept) == _fields(plain), name
        if name == "stages":
            assert [s.template.process_type for s in kept] == [s.template.process_type for s in plain]


async def test_every_viewer_sees_through_its_own_scope(world):
    """The viewer's project and its cases as each demo role sees them, kept and plain: never another viewer's."""
    for key, user in world.users.items():
        viewer = Viewer.of(user)
        for code in [p.code for p in world.projects.values()]:
            plain = await Project.filter(project_scope(viewer), code=code).first()
            assert ((await get_project(viewer, code)) or None) == plain, (key, code)
            assert ((await get_project(viewer, code)) or None) == plain, (key, code)
            if plain is not None:
                scope = case_scope(viewer)
                cases = await Case.filter(scope, project_id__in=[plain.id]).order_by("stage", "id")
                kept = await remembered.select(
                    Case, scoped_key("cases", scope, plain.id),
                    lambda: Case.filter(scope, project_id__in=[plain.id]).order_by("stage", "id"),
                )
                assert [c.id for c in kept] == [c.id for c in cases], (key, code)


async def test_a_kept_statement_runs_on_the_transactions_connection(world):
    """Inside a transaction the kept SQL sees the transaction's own uncommitted rows, and after a rollback not."""
    project = world.projects[next(iter(world.projects))]
    build = lambda: Building.filter(project_id__in=[project.id]).order_by("id")  # noqa: E731
    before = await remembered.select(Building, ("test", "tx"), build)
    try:
        async with in_transaction():
            await Building.create(project=project, building_code="TX-1", name="事务内", floors=1, floor_area=1)
            inside = await remembered.select(Building, ("test", "tx"), build)
            assert [b.building_code for b in inside] == [b.building_code for b in before] + ["TX-1"]
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert _fields(await remembered.select(Building, ("test", "tx"), build)) == _fields(before)


async def test_keys_differ_exactly_when_the_filters_do(app):
    assert q_key(Q(department_id=3)) == q_key(Q(department_id=3))
    assert q_key(Q(department_id=3)) != q_key(Q(department_id=4))
    assert q_key(Q(department_id=3)) != q_key(Q(project__organization_id=3))
    assert q_key(Q(id__in=[1, 2])) != q_key(Q(id__in=[1, 2, 3]))
    assert q_key(Q(a=1) | Q(b=2)) != q_key(Q(a=1) & Q(b=2))
    assert q_key(~Q(a=1)) != q_key(Q(a=1))
    assert q_key(Q(a="1")) != q_key(Q(a=1))
    assert scoped_key("x", Q(a=[1]), 1) != scoped_key("x", Q(a=[1]), 2)
    assert scoped_key("x", Q(a={"no": "hash"}), 1) is None  # not keyable: the plain way
    assert scoped_key("x", Q(id__in=Subquery(Project.filter(id=1).values("id"))), 1) is None  # compared by identity


async def test_the_kept_statements_are_bounded(world, monkeypatch):
    monkeypatch.setattr(remembered, "KEPT", 3)
    for i in range(10):
        await remembered.select(Project, ("bound", i), lambda i=i: Project.filter(id=i).first())
    assert len(remembered._kept) <= 3


async def test_the_shallow_copy_is_copy_copy(app):
    import copy

    from api.remembered import _shallow_copy

    for query in (Project.filter(code="2026-440402-47-01-000001").first(), Building.filter(id__in=[1]).order_by("id"),
                  CaseClock.filter(case_id__in=[1]).values_list("case_id", "used")):
        query._make_query()
        ours, theirs = _shallow_copy(query), copy.copy(query)
        assert type(ours) is type(theirs) and ours is not query
        for klass in type(query).__mro__:
            for name in getattr(klass, "__slots__", ()):
                if name in ("__weakref__", "__dict__"):
                    continue
                assert getattr(ours, name, "unset") is getattr(theirs, name, "unset"), name
        assert getattr(ours, "__dict__", None) == getattr(theirs, "__dict__", None)
