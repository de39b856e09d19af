"""Small helpers that drive cases through the public API, as the mini-program and the staff side do."""

from __future__ import annotations

from tests.factories import PROJECT_CODE

APPROVAL_DOCUMENT = {
    "approvalDate": "2026-10-09",
    "documentNumber": "珠自然资规许〔2026〕18号",
    "documentTitle": "关于测试项目用地预审与选址意见的批复",
    "validUntil": "9999-01-01",
}


async def upload(client, world, user: str = "applicant", name: str = "申请表.pdf") -> str:
    response = await client.post(
        "/uploads",
        files={"file": (name, b"%PDF-1.7\n% test material\n", "application/pdf")},
        headers={"Authorization": f"Bearer {world.token(user)}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def submit(gql, client, items=("A",), *, project=PROJECT_CODE, stage=1, user="applicant", **extra) -> dict:
    upload_id = await upload(client, gql.world, user)
    variables = {
        "input": {
            "projectCode": project,
            "stage": stage,
            "itemCodes": list(items),
            "form": {"landArea": 12000} if stage == 1 else {},
            "materials": [{"code": "M01", "uploadIds": [upload_id]}],
            **extra,
        }
    }
    data = await gql.op("SubmitApplication", variables, as_user=user)
    return data["submitApplication"]


async def submit_ok(gql, client, items=("A",), **kwargs) -> dict[str, dict]:
    payload = await submit(gql, client, items, **kwargs)
    assert payload["errors"] == [], payload["errors"]
    return {case["item"]["code"]: case for case in payload["cases"]}


async def act(gql, operation: str, user: str, **fields) -> dict:
    data = await gql.op(operation, {"input": fields}, as_user=user)
    (payload,) = data.values()
    return payload


async def act_ok(gql, operation: str, user: str, **fields) -> dict:
    payload = await act(gql, operation, user, **fields)
    assert payload["errors"] == [], payload["errors"]
    return payload["case"]


async def detail(gql, case_id: str, user: str = "supervisor") -> dict:
    return (await gql.op("CaseDetail", {"id": case_id}, as_user=user))["node"]


async def approve(gql, case_id: str, user: str = "planner") -> dict:
    return await act_ok(gql, "DecideCase", user, caseId=case_id, decision="APPROVED", document=APPROVAL_DOCUMENT)


async def run_to_in_progress(gql, case_id: str, approver: str = "planner") -> None:
    await act_ok(gql, "AcceptCase", "clerk", caseId=case_id)
    await act_ok(gql, "StartCase", approver, caseId=case_id)
