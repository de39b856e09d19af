"""N+1 guard: the progress query sends the same number of SQL statements for 4 cases as for 40 (DESIGN.md §3)."""

import datetime as dt

from api.domain.lifecycle import Action, Party
from api.domain.timing import CaseState, LimitUnit
from api.models import Application, Case, CaseEvent
from api.services import clocks
from api.services.calendar import invalidate_calendar_cache
from tests.conftest import operation
from tests.factories import PROJECT_CODE, shanghai


async def add_cases(world, count: int) -> None:
    """Cases written straight to the tables: each received, accepted and started, with its three events (and its
    clock's read-model row, as every writer of events keeps it: api/services/clocks.py)."""
    project = world.projects["main"]
    items = list(world.items.values())
    user = world.users["applicant"]
    app = await Application.create(
        project=project, stage=1, form={}, materials=[], parallel_instance_code=f"BLQC{count}", applicant=user,
        submitted_at=shanghai(2026, 11, 2),
    )
    for n in range(count):
        item = items[n % len(items)]
        case = await Case.create(
            code=f"SPQC{count}-{n}", application=app, project=project, item=item, department_id=item.department_id,
            stage=1 + (n % 4), limit_days=5 + n % 7, limit_unit=LimitUnit.WD, warning_days=2,
            predecessor_codes=[], state=CaseState.IN_PROGRESS, blzt=8, last_seq=3,
        )
        for seq, (action, state, day) in enumerate(
            [(Action.RECEIVE, CaseState.RECEIVED, 2), (Action.ACCEPT, CaseState.ACCEPTED, 3),
             (Action.START, CaseState.IN_PROGRESS, 4)], start=1
        ):
            await CaseEvent.create(
                case=case, seq=seq, action=action, blzt=seq if seq < 3 else 8, state_after=state,
                party=Party.WINDOW, actor=user, occurred_at=shanghai(2026, 11, day) + dt.timedelta(minutes=n),
                data={}, attachments=[],
            )
        await clocks.refresh([case.id])


async def statements_for_progress(gql, count_queries, user: str) -> tuple[int, int]:
    query = operation("ProjectProgress").replace("item { code name kind }", "item { code name kind department { name } }")
    query = query.replace("department { name }\n      }", "department { name }\n        application { parallelInstanceCode }\n      }")
    invalidate_calendar_cache()  # both runs read the calendar: measure the same work
    with count_queries() as counter:
        data = await gql(query, {"code": PROJECT_CODE}, as_user=user)
    cases = sum(len(s["cases"]) for s in data["project"]["stages"])
    return _data_statements(counter), cases


async def test_progress_query_count_does_not_grow_with_cases(gql, world, count_queries, clock):
    clock.set(shanghai(2026, 11, 20))
    await add_cases(world, 4)
    small, n_small = await statements_for_progress(gql, count_queries, "applicant")
    await add_cases(world, 36)
    large, n_large = await statements_for_progress(gql, count_queries, "applicant")
    assert (n_small, n_large) == (4, 40)
    assert small == large, (small, large)
    # project, cases, clock rows, items and departments, stages, … — a handful (the generation and the viewer not counted)
    assert large <= 13, large


def _data_statements(counter) -> int:
    """Statements of the answer itself: the request's generation and viewer (api/middleware.py) are read or not
    depending on whether anything committed in between — on PostgreSQL, anywhere in the cluster — and since issue
    #13 on whether the users' tables were written."""
    return sum(
        1 for s in counter.statements if "pg_current_snapshot" not in s and 'FROM "app_user" LEFT OUTER JOIN "login_session"' not in s
    )


async def test_case_detail_timeline_query_count_is_fixed(gql, world, count_queries, clock):
    clock.set(shanghai(2026, 11, 20))
    await add_cases(world, 10)
    many = "query { caseQueue(first: 10) { nodes { code light dueDate item { name } department { name } " \
           "project { code } timeline { seq actorName } certificate { number } } } }"
    invalidate_calendar_cache()
    with count_queries() as counter:
        data = await gql(many, as_user="supervisor")
    assert len(data["caseQueue"]["nodes"]) == 10
    invalidate_calendar_cache()
    with count_queries() as single:
        await gql(many.replace("first: 10", "first: 1"), as_user="supervisor")
    assert _data_statements(counter) == _data_statements(single), (counter.statements, single.statements)


async def add_notices(world, count: int) -> None:
    """``count`` notices to the applicant, each about a case, a rating or a complaint of its own (issue #12 item 7)."""
    from api.domain.feedback import ComplaintCategory, ComplaintKind, ComplaintState
    from api.domain.ids import to_global_id
    from api.models import Complaint, Notice, Rating

    await add_cases(world, count)
    user = world.users["applicant"]
    at = shanghai(2026, 11, 5)
    cases = await Case.filter(code__startswith=f"SPQC{count}-").order_by("id")
    for n, case in enumerate(cases):
        if n % 3 == 0:
            variables = {"case_id": to_global_id("Case", case.id)}
        elif n % 3 == 1:
            rating = await Rating.create(rater=user, case=case, matter_key=f"case:{case.id}",
                                         department_id=case.department_id, level=5, created_at=at)
            variables = {"rating_id": to_global_id("Rating", rating.id)}
        else:
            complaint = await Complaint.create(
                filer=user, kind=ComplaintKind.COMPLAINT, category=ComplaintCategory.OVERDUE, text=f"诉求{n}",
                state=ComplaintState.SUBMITTED, round_started_at=at, created_at=at,
            )
            variables = {"complaint_id": to_global_id("Complaint", complaint.id)}
        await Notice.create(recipient=user, kind="case_accepted", source_key=f"test:{count}:{n}", variables=variables,
                            title="通知", body="通知", created_at=at)


async def test_notice_subjects_are_loaded_in_a_bounded_number_of_statements(gql, world, count_queries, clock):
    clock.set(shanghai(2026, 11, 20))
    counts = []
    for count in (3, 30):
        await add_notices(world, count)
        invalidate_calendar_cache()  # both runs read the calendar (it is kept while its table is unchanged)
        with count_queries() as counter:
            data = await gql(operation("Notices"), {"first": 50}, as_user="applicant")
        nodes = data["notices"]["nodes"]
        assert all(n["subject"] is not None for n in nodes)
        counts.append((_data_statements(counter), {n["subject"]["__typename"] for n in nodes}, len(nodes)))
    assert counts[0][1] == counts[1][1] == {"Case", "Rating", "Complaint"} and (counts[0][2], counts[1][2]) == (3, 33)
    assert counts[0][0] == counts[1][0], counts


async def test_progress_reads_the_departments_in_one_statement(gql, world, count_queries, clock):
    """The stages' lead departments and the cases' departments are one statement, not one each (issue #13)."""
    clock.set(shanghai(2026, 11, 20))
    await add_cases(world, 8)
    invalidate_calendar_cache()
    with count_queries() as counter:
        data = await gql(operation("ProjectProgress"), {"code": PROJECT_CODE}, as_user="applicant")
    stages = data["project"]["stages"]
    assert any(s["leadDepartment"] for s in stages) and all(c["department"] for s in stages for c in s["cases"])
    assert sum('FROM "department"' in s for s in counter.statements) == 1, counter.statements


async def test_a_project_reached_without_its_root_field_answers_the_same_and_loads_alike(gql, world, count_queries,
                                                                                        clock):
    """``project(code:)`` loads what its fields will read before they resolve (types.prefetch_progress); a project
    reached otherwise — by ``node(id:)``, or with its fields in a fragment — loads through the DataLoaders as before:
    the same answer, and the same statements but the project's own."""
    clock.set(shanghai(2026, 11, 20))
    await add_cases(world, 6)
    fields = """id light currentStage buildings { buildingCode name } organization { name }
        stages { code light leadDepartment { name } counts { state count }
                 cases { id state light usedDays remainingDays dueDate item { code } department { name } } }"""
    invalidate_calendar_cache()
    with count_queries() as by_code:
        direct = (await gql(f"query($code: String!) {{ project(code: $code) {{ {fields} }} }}",
                            {"code": PROJECT_CODE}, as_user="applicant"))["project"]
    invalidate_calendar_cache()
    with count_queries() as by_fragment:
        fragment = (await gql(f"query($code: String!) {{ project(code: $code) {{ ... on Project {{ {fields} }} }} }}",
                              {"code": PROJECT_CODE}, as_user="applicant"))["project"]
    invalidate_calendar_cache()
    with count_queries() as by_node:
        node = (await gql(f"query($id: ID!) {{ node(id: $id) {{ ... on Project {{ {fields} }} }} }}",
                          {"id": direct["id"]}, as_user="applicant"))["node"]
    assert sum(len(s["cases"]) for s in direct["stages"]) >= 6
    assert direct == fragment == node
    assert _data_statements(by_code) == _data_statements(by_fragment) == _data_statements(by_node)
