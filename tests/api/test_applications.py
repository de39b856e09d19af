"""submitApplication: one stage, one form, the template's items, materials once; bad input changes nothing."""

import pytest

from api.models import Application, Case, CaseEvent
from tests.api.flows import act_ok, approve, run_to_in_progress, submit, submit_ok, upload
from tests.factories import FAR_PROJECT_CODE, OTHER_PROJECT_CODE, PROJECT_CODE


async def test_items_are_received_in_parallel(gql, client):
    payload = await submit(gql, client, ["A", "B", "C"])
    assert payload["errors"] == []
    code = payload["application"]["parallelInstanceCode"]
    assert code.startswith("BL440402") and len(code) == 24
    assert [c["item"]["code"] for c in payload["cases"]] == ["A", "B", "C"]
    assert all(c["state"] == "RECEIVED" and c["code"].startswith("SP440402") for c in payload["cases"])
    assert len({c["code"] for c in payload["cases"]}) == 3
    progress = await gql.op("ProjectProgress", {"code": PROJECT_CODE}, as_user="applicant")
    stage1 = progress["project"]["stages"][0]
    assert stage1["leadDepartment"]["name"] == "珠海市自然资源局"
    assert stage1["counts"] == [{"state": "RECEIVED", "label": "已接件", "count": 3}]
    assert stage1["light"] is None  # nothing accepted: no clock runs


@pytest.mark.parametrize(
    "override,code,field",
    [
        ({"projectCode": "2026-4404-47-01-1"}, "INVALID_PROJECT_CODE", "projectCode"),
        ({"projectCode": "2026-440402-47-01-999999"}, "NOT_FOUND", "projectCode"),
        ({"projectCode": OTHER_PROJECT_CODE}, "NOT_FOUND", "projectCode"),
        ({"stage": 2}, "STAGE_NOT_IN_TEMPLATE", "stage"),
        ({"stage": 9}, "STAGE_NOT_IN_TEMPLATE", "stage"),
        ({"itemCodes": ["A", "D"]}, "ITEM_NOT_IN_TEMPLATE", "itemCodes"),
        ({"itemCodes": []}, "REQUIRED", "itemCodes"),
        ({"itemCodes": ["A", "A"]}, "INVALID_INPUT", "itemCodes"),
        ({"itemCodes": ["B"]}, "PREDECESSOR_MISSING", "itemCodes"),
        ({"form": {}}, "FORM_INVALID", "form.landArea"),
        ({"form": {"landArea": "很大"}}, "FORM_INVALID", "form.landArea"),
        ({"form": {"landArea": 1, "colour": "red"}}, "FORM_INVALID", "form.colour"),
        ({"materials": []}, "MATERIAL_MISSING", "materials"),
        ({"materials": [{"code": "M01", "uploadIds": ["00000000-0000-0000-0000-000000000000"]}]},
         "UPLOAD_NOT_FOUND", "materials"),
        ({"materials": [{"code": "M99", "uploadIds": []}]}, "INVALID_INPUT", "materials"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(gql, client, override, code, field):
    payload = await submit(gql, client, ["A"], **override)
    assert payload["application"] is None and payload["cases"] == []
    (error,) = payload["errors"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"] and not error["message"].isascii()  # a Chinese sentence
    assert await Application.all().count() == 0
    assert await Case.all().count() == 0 and await CaseEvent.all().count() == 0


async def test_only_applicants_submit(gql, client):
    payload = await submit(gql, client, ["A"], user="clerk")
    assert payload["errors"][0]["code"] == "PERMISSION_DENIED"


async def test_someone_elses_upload_cannot_be_cited(gql, client, world):
    theirs = await upload(client, world, "other_applicant")
    payload = await submit(gql, client, ["A"], materials=[{"code": "M01", "uploadIds": [theirs]}])
    assert payload["errors"][0]["code"] == "UPLOAD_NOT_FOUND"


async def test_retry_with_idempotency_key_returns_the_first_application(gql, client):
    first = await submit(gql, client, ["A"], idempotencyKey="app-2026-1")
    second = await submit(gql, client, ["A"], idempotencyKey="app-2026-1")
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert first["application"] == second["application"]
    assert await Application.all().count() == 1 and await Case.all().count() == 1


async def test_an_item_is_not_applied_for_twice(gql, client):
    await submit_ok(gql, client, ["A"])
    payload = await submit(gql, client, ["A"])
    assert payload["errors"][0]["code"] == "ITEM_ALREADY_HANDLED"


async def test_a_failed_item_may_be_applied_for_again(gql, client):
    cid = (await submit_ok(gql, client, ["A"]))["A"]["id"]
    await act_ok(gql, "RejectCase", "clerk", caseId=cid, kind="NOT_ACCEPTED", reason="材料不全")
    assert (await submit(gql, client, ["A"]))["errors"] == []


async def test_predecessor_already_under_way_satisfies_the_order(gql, client):
    a = (await submit_ok(gql, client, ["A"]))["A"]["id"]
    await run_to_in_progress(gql, a)
    await approve(gql, a)
    assert (await submit(gql, client, ["B"]))["errors"] == []


async def test_materials_on_file_are_not_asked_again(gql, client):
    await submit_ok(gql, client, ["A"])
    # Stage 3 also needs M01 (申请表): already submitted for the project, so it is reused.
    payload = await submit(gql, client, ["D"], stage=3, materials=[])
    assert payload["errors"] == []
    app = await Application.get(parallel_instance_code=payload["application"]["parallelInstanceCode"])
    (material,) = app.materials
    assert material["code"] == "M01" and material["uploads"] == [] and material["reusedFrom"].startswith("BL")


async def test_far_project_is_in_another_region(gql, client):
    payload = await submit(gql, client, ["A"], project=FAR_PROJECT_CODE)
    assert payload["errors"] == []
    assert payload["application"]["parallelInstanceCode"].startswith("BL441900")
