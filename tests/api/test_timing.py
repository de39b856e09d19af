"""Days left and lights through the API, on fixed dates around National Day 2026 and in 2027 (DOMAIN.md §5).

2026 schedule: 10-01…10-07 off, Saturday 10-10 a make-up working day. The clock is the app's (frozen per step).
"""

from tests.api.flows import APPROVAL_DOCUMENT, act_ok, detail, submit_ok
from tests.factories import PROJECT_CODE, shanghai


async def figures(gql, cid):
    node = await detail(gql, cid, "applicant")
    return (
        node["usedDays"],
        node["remainingDays"],
        node["dueDate"],
        node["light"],
        node["provisional"],
    )


async def test_national_day_2026(gql, client, clock):
    clock.set(shanghai(2026, 9, 24))
    cid = (await submit_ok(gql, client, ["A"]))["A"]["id"]  # item A: 5 working days
    assert await figures(gql, cid) == (None, None, None, None, False)  # not accepted: no clock
    clock.set(shanghai(2026, 9, 25, 16))  # Friday
    await act_ok(gql, "AcceptCase", "clerk", caseId=cid)
    expected = {
        shanghai(2026, 9, 25, 18): (0, 5, "2026-10-09", "GREEN"),  # acceptance day does not count
        shanghai(2026, 9, 27, 12): (0, 5, "2026-10-09", "GREEN"),  # Sunday
        shanghai(2026, 9, 28, 9): (1, 4, "2026-10-09", "GREEN"),  # day 1: the next working day
        shanghai(2026, 9, 30, 9): (3, 2, "2026-10-09", "YELLOW"),  # 2 days left: warning
        shanghai(2026, 10, 5, 9): (3, 2, "2026-10-09", "YELLOW"),  # holiday: the clock does not move
        shanghai(2026, 10, 8, 9): (4, 1, "2026-10-09", "YELLOW"),
        shanghai(2026, 10, 9, 9): (5, 0, "2026-10-09", "YELLOW"),  # due today: still yellow
        shanghai(2026, 10, 10, 9): (6, -1, "2026-10-09", "RED"),  # Saturday make-up working day: overdue
        shanghai(2026, 10, 11, 9): (6, -1, "2026-10-09", "RED"),  # Sunday
    }
    for moment, (used, remaining, due, light) in expected.items():
        clock.set(moment)
        assert await figures(gql, cid) == (used, remaining, due, light, False), moment
    clock.set(shanghai(2026, 10, 12, 10))
    await act_ok(gql, "StartCase", "planner", caseId=cid)
    await act_ok(gql, "DecideCase", "planner", caseId=cid, decision="APPROVED", document=APPROVAL_DOCUMENT)
    # Decided late (超期办结): the light it ended with stays, and the count stops at the decision day.
    clock.set(shanghai(2026, 11, 20))
    assert await figures(gql, cid) == (7, -2, "2026-10-09", "RED", False)


async def test_special_procedure_stops_the_clock(gql, client, clock):
    clock.set(shanghai(2026, 11, 2, 9))  # Monday
    cid = (await submit_ok(gql, client, ["A"]))["A"]["id"]
    await act_ok(gql, "AcceptCase", "clerk", caseId=cid)
    await act_ok(gql, "StartCase", "planner", caseId=cid)
    clock.set(shanghai(2026, 11, 4, 10))  # Wednesday: day 2 will not count, the case is paused at its end
    await act_ok(
        gql, "BeginSpecialProcedure", "planner", caseId=cid, kind="PUBLICITY", reason="批前公示", expectedDays=3
    )
    clock.set(shanghai(2026, 11, 6, 15))
    node = await detail(gql, cid, "applicant")
    assert (node["usedDays"], node["remainingDays"], node["clockRunning"]) == (1, 4, False)
    assert node["dueDate"] == "2026-11-12"  # if it resumed now: 11-09, 10, 11, 12
    assert node["state"] == "SPECIAL_PROCEDURE"
    clock.set(shanghai(2026, 11, 9, 10))  # Monday: resumes, and the day counts
    await act_ok(gql, "EndSpecialProcedure", "planner", caseId=cid, result="公示期满无异议")
    node = await detail(gql, cid, "applicant")
    assert (node["usedDays"], node["remainingDays"], node["dueDate"], node["clockRunning"]) == (
        2, 3, "2026-11-12", True
    )


async def test_natural_day_limit_counts_holidays(gql, client, clock):
    clock.set(shanghai(2026, 9, 30, 9))
    cid = (await submit_ok(gql, client, ["C"]))["C"]["id"]  # item C: 3 natural days
    clock.set(shanghai(2026, 10, 2, 9))
    await act_ok(gql, "AcceptCase", "clerk", caseId=cid)
    clock.set(shanghai(2026, 10, 5, 9))
    node = await detail(gql, cid, "applicant")
    assert (node["limitUnit"], node["limitDays"], node["usedDays"], node["remainingDays"], node["dueDate"]) == (
        "ND", 3, 3, 0, "2026-10-05"
    )
    # The old names, deprecated because they say "working days" for natural days too, keep answering the same.
    old = await gql("query($id: ID!) { node(id: $id) { ... on Case { limitWorkingDays usedWorkingDays "
                    "remainingWorkingDays } } }", {"id": cid}, as_user="applicant")
    assert old["node"] == {"limitWorkingDays": 3, "usedWorkingDays": 3, "remainingWorkingDays": 0}


async def test_the_working_day_names_are_deprecated_for_the_unit_neutral_ones(gql):
    fields = (await gql('{ __type(name: "Case") { fields(includeDeprecated: true) { name isDeprecated '
                        'deprecationReason } } }'))["__type"]["fields"]
    by_name = {f["name"]: f for f in fields}
    for old, new in [("limitWorkingDays", "limitDays"), ("usedWorkingDays", "usedDays"),
                     ("remainingWorkingDays", "remainingDays")]:
        assert by_name[old]["isDeprecated"] and new in by_name[old]["deprecationReason"], old
        assert not by_name[new]["isDeprecated"], new


async def test_a_year_without_holiday_data_is_provisional(gql, client, clock):
    clock.set(shanghai(2026, 12, 29, 9))  # Tuesday; 5 working days run into 2027, which has no data
    cid = (await submit_ok(gql, client, ["A"]))["A"]["id"]
    await act_ok(gql, "AcceptCase", "clerk", caseId=cid)
    clock.set(shanghai(2026, 12, 30, 9))
    # 12-30 (1), 12-31 (2); 2027 assumed Monday–Friday: 01-01 (3), 01-04 (4), 01-05 (5).
    assert await figures(gql, cid) == (1, 4, "2027-01-05", "GREEN", True)
    clock.set(shanghai(2027, 3, 1, 9))
    assert (await figures(gql, cid))[3:] == ("RED", True)


async def test_stage_and_project_lights_are_the_worst_running(gql, client, clock):
    clock.set(shanghai(2026, 9, 24))
    cases = await submit_ok(gql, client, ["A", "C"])
    clock.set(shanghai(2026, 9, 25, 10))
    await act_ok(gql, "AcceptCase", "clerk", caseId=cases["A"]["id"])
    clock.set(shanghai(2026, 10, 10, 10))  # A is overdue; C is accepted today (green)
    await act_ok(gql, "AcceptCase", "clerk", caseId=cases["C"]["id"])
    project = (await gql.op("ProjectProgress", {"code": PROJECT_CODE}, as_user="applicant"))["project"]
    lights = {c["item"]["code"]: c["light"] for c in project["stages"][0]["cases"]}
    assert lights == {"A": "RED", "C": "GREEN"}
    assert project["stages"][0]["light"] == "RED" and project["light"] == "RED"
    # Once A is decided, only C runs: the stage is green again, while A keeps its red.
    await act_ok(gql, "StartCase", "planner", caseId=cases["A"]["id"])
    await act_ok(gql, "DecideCase", "planner", caseId=cases["A"]["id"], decision="DISAPPROVED", reason="不符合规划")
    project = (await gql.op("ProjectProgress", {"code": PROJECT_CODE}, as_user="applicant"))["project"]
    assert project["light"] == "GREEN"
    assert {c["item"]["code"]: c["light"] for c in project["stages"][0]["cases"]} == {"A": "RED", "C": "GREEN"}
    # Filters: the red project list no longer has it; the green one does.
    red = await gql.op("Projects", {"filter": {"light": "RED"}}, as_user="applicant")
    green = await gql.op("Projects", {"filter": {"light": "GREEN"}}, as_user="applicant")
    assert red["projects"]["totalCount"] == 0
    assert [e["node"]["code"] for e in green["projects"]["edges"]] == [PROJECT_CODE]
