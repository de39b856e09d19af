"""Who sees what (DESIGN.md §4): an object one may not see answers exactly like one that does not exist."""

from tests.api.flows import act_ok, submit_ok
from tests.factories import FAR_PROJECT_CODE, OTHER_PROJECT_CODE, PROJECT_CODE


async def codes(gql, user, **variables):
    data = await gql.op("Projects", variables, as_user=user)
    return sorted(e["node"]["code"] for e in data["projects"]["edges"])


async def setup_cases(gql, client):
    mine = await submit_ok(gql, client, ["A", "C"])
    theirs = await submit_ok(gql, client, ["A"], project=OTHER_PROJECT_CODE, user="other_applicant")
    far = await submit_ok(gql, client, ["A"], project=FAR_PROJECT_CODE)
    return mine, theirs, far


async def test_project_lists_by_role(gql, client):
    await setup_cases(gql, client)
    assert await codes(gql, "applicant") == sorted([PROJECT_CODE, FAR_PROJECT_CODE])
    assert await codes(gql, "other_applicant") == [OTHER_PROJECT_CODE]
    assert await codes(gql, "clerk") == sorted([PROJECT_CODE, OTHER_PROJECT_CODE])  # 4404xx only
    assert await codes(gql, "far_clerk") == [FAR_PROJECT_CODE]
    assert await codes(gql, "water") == [PROJECT_CODE]  # only projects with a water case
    assert await codes(gql, "planner") == sorted([PROJECT_CODE, OTHER_PROJECT_CODE, FAR_PROJECT_CODE])
    assert await codes(gql, "housing") == []
    assert await codes(gql, "supervisor") == sorted([PROJECT_CODE, OTHER_PROJECT_CODE, FAR_PROJECT_CODE])
    assert await codes(gql, "citizen") == []


async def test_invisible_objects_look_absent(gql, client):
    _, theirs, _ = await setup_cases(gql, client)
    data = await gql.op("ProjectProgress", {"code": OTHER_PROJECT_CODE}, as_user="applicant")
    assert data == {"project": None}
    missing = await gql.op("ProjectProgress", {"code": "2026-440402-47-01-999999"}, as_user="applicant")
    assert missing == data
    case_id = theirs["A"]["id"]
    assert await gql.op("CaseDetail", {"id": case_id}, as_user="applicant") == {"node": None}
    assert await gql.op("CaseDetail", {"id": case_id}, as_user="water") == {"node": None}
    assert (await gql.op("CaseDetail", {"id": case_id}, as_user="other_applicant"))["node"]["code"]


async def test_an_approver_sees_only_its_departments_cases_of_a_project(gql, client):
    await setup_cases(gql, client)
    project = (await gql.op("ProjectProgress", {"code": PROJECT_CODE}, as_user="water"))["project"]
    cases = [c for s in project["stages"] for c in s["cases"]]
    assert [c["item"]["code"] for c in cases] == ["C"]
    whole = (await gql.op("ProjectProgress", {"code": PROJECT_CODE}, as_user="applicant"))["project"]
    assert sorted(c["item"]["code"] for s in whole["stages"] for c in s["cases"]) == ["A", "C"]


async def test_case_queue_is_for_staff(gql, client):
    mine, theirs, far = await setup_cases(gql, client)
    queue = await gql.op("CaseQueue", {}, as_user="clerk")
    assert queue["caseQueue"]["totalCount"] == 3  # the city's cases, not Dongguan's
    planner = await gql.op("CaseQueue", {"filter": {"state": ["RECEIVED"]}}, as_user="planner")
    assert planner["caseQueue"]["totalCount"] == 3
    await act_ok(gql, "AcceptCase", "clerk", caseId=mine["A"]["id"])
    accepted = await gql.op("CaseQueue", {"filter": {"state": ["ACCEPTED"]}}, as_user="planner")
    assert [n["code"] for n in accepted["caseQueue"]["nodes"]] == [mine["A"]["code"]]
    errors = await gql.errors(
        "query { caseQueue { totalCount } }", as_user="applicant"
    )
    assert errors[0]["extensions"]["code"] == "PERMISSION_DENIED"


async def test_anonymous_and_bad_tokens(gql, client):
    assert await gql("{ viewer { displayName } }") == {"viewer": None}
    errors = await gql.errors("{ projects { totalCount } }")
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    for header in ["Bearer not.a.token", "Bearer ", "Basic dXNlcjpwYXNz"]:
        response = await client.post("/graphql", json={"query": "{ viewer { role } }"}, headers={"Authorization": header})
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_pagination(gql, client):
    await setup_cases(gql, client)
    first = (await gql.op("Projects", {"first": 2}, as_user="supervisor"))["projects"]
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"] is True
    rest = (await gql.op("Projects", {"first": 2, "after": first["pageInfo"]["endCursor"]}, as_user="supervisor"))[
        "projects"
    ]
    assert rest["pageInfo"]["hasNextPage"] is False
    seen = [e["node"]["code"] for e in first["edges"] + rest["edges"]]
    assert sorted(seen) == sorted([PROJECT_CODE, OTHER_PROJECT_CODE, FAR_PROJECT_CODE])
    errors = await gql.errors("query { projects(first: 0) { totalCount } }", as_user="supervisor")
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"
    errors = await gql.errors('query { projects(after: "garbage") { totalCount } }', as_user="supervisor")
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"


async def test_search_and_stage_filters(gql, client):
    await setup_cases(gql, client)
    assert await codes(gql, "supervisor", filter={"search": "000002"}) == [OTHER_PROJECT_CODE]
    assert await codes(gql, "supervisor", filter={"search": "测试项目far"}) == [FAR_PROJECT_CODE]
    assert len(await codes(gql, "supervisor", filter={"stage": 1})) == 3
    assert await codes(gql, "supervisor", filter={"stage": 3}) == []


async def test_search_matches_percent_and_underscore_literally(gql, world):
    """``%`` and ``_`` typed into the search box are characters to find, not LIKE wildcards (nor is ``\\`` an
    escape): "100%" finds "达标率100%" and not "达标率1000", "A_B" finds "A_B路" and not "AXB路"."""
    from decimal import Decimal

    from api.models import Project

    names = {"2026-440402-47-01-000011": "达标率100%项目", "2026-440402-47-01-000012": "达标率1000项目",
             "2026-440402-47-01-000013": "A_B路项目", "2026-440402-47-01-000014": "AXB路项目",
             "2026-440402-47-01-000015": "C\\D路项目"}
    for code, name in names.items():
        await Project.create(code=code, name=name, organization=world.organizations["builder"], process_type=3,
                             region_code="440402", address="珠海市香洲区测试路1号", investment=Decimal("1.00"))

    async def found(term):
        return [names.get(c) for c in await codes(gql, "supervisor", filter={"search": term})]

    assert await found("100%") == ["达标率100%项目"]
    assert await found("%") == ["达标率100%项目"]
    assert await found("率1_0") == []
    assert await found("A_B") == ["A_B路项目"]
    assert await found("_") == ["A_B路项目"]
    assert await found("C\\D") == ["C\\D路项目"]
    assert await found("%路项目") == []


async def test_malformed_project_code_is_a_clear_error(gql):
    errors = await gql.errors('query { project(code: "12345") { name } }', as_user="applicant")
    assert errors[0]["extensions"]["code"] == "INVALID_PROJECT_CODE"
    assert errors[0]["extensions"]["field"] == "code"
    assert "项目代码" in errors[0]["message"]
