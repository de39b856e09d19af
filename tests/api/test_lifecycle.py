"""The case lifecycle through the GraphQL API: every step, every refusal, nothing changed by a refusal."""

import pytest

from tests.api.flows import (
    APPROVAL_DOCUMENT,
    act,
    act_ok,
    approve,
    detail,
    run_to_in_progress,
    submit_ok,
    upload,
)


async def test_full_path_with_special_procedure_and_revocation(gql, client):
    case = (await submit_ok(gql, client, ["A"]))["A"]
    assert (case["state"], case["blzt"]) == ("RECEIVED", 1)
    cid = case["id"]
    steps = [
        ("AcceptCase", "clerk", {"opinion": "材料齐全，予以受理"}, "ACCEPTED", 3),
        ("StartCase", "planner", {}, "IN_PROGRESS", 8),
        (
            "BeginSpecialProcedure",
            "planner",
            {"kind": "EXPERT_REVIEW", "reason": "选址涉及生态红线，需专家论证", "expectedDays": 5},
            "SPECIAL_PROCEDURE",
            9,
        ),
        ("EndSpecialProcedure", "planner", {"result": "专家论证通过"}, "IN_PROGRESS", 8),
        ("DecideCase", "planner", {"decision": "APPROVED", "document": APPROVAL_DOCUMENT}, "APPROVED", 11),
        ("RevokeCase", "planner", {"reason": "申请人以欺骗手段取得批复"}, "REVOKED", 15),
    ]
    for operation, user, fields, state, blzt in steps:
        result = await act_ok(gql, operation, user, caseId=cid, **fields)
        assert (result["state"], result["blzt"]) == (state, blzt), operation
    node = await detail(gql, cid, "applicant")
    timeline = node["timeline"]
    assert [e["blzt"] for e in timeline] == [1, 3, 8, 9, 10, 11, 15]
    assert [e["seq"] for e in timeline] == list(range(1, 8))
    assert timeline[1]["opinion"] == "材料齐全，予以受理"
    assert timeline[1]["actorName"] == "王窗口"
    assert timeline[3]["specialProcedure"] == {
        "kind": "EXPERT_REVIEW",
        "label": "专家评审",
        "reason": "选址涉及生态红线，需专家论证",
        "expectedDays": 5,
    }
    assert timeline[4]["result"] == "专家论证通过"
    assert timeline[5]["document"]["documentNumber"] == APPROVAL_DOCUMENT["documentNumber"]
    assert timeline[5]["document"]["validUntil"] == "9999-01-01"
    assert timeline[6]["reason"] == "申请人以欺骗手段取得批复"


async def test_correction_then_acceptance(gql, client, world):
    cid = (await submit_ok(gql, client, ["A"]))["A"]["id"]
    corrections = [
        {"material": "申请表", "requirement": "缺少法定代表人签字"},
        {"material": "用地红线图", "requirement": "坐标系应为2000国家大地坐标系"},
    ]
    result = await act_ok(gql, "RequestCorrection", "clerk", caseId=cid, corrections=corrections)
    assert result["state"] == "CORRECTION"
    # 一次性告知: the window may not ask a second time.
    again = await act(gql, "RequestCorrection", "clerk", caseId=cid, corrections=corrections)
    assert again["errors"][0]["code"] == "INVALID_TRANSITION"
    # The applicant resubmits with materials; without any it is refused.
    empty = await act(gql, "SubmitCorrection", "applicant", caseId=cid, uploadIds=[])
    assert empty["errors"] == [{"field": "uploadIds", "code": "REQUIRED", "message": "请上传补正材料"}]
    fixed = await upload(client, world, name="申请表(补正).pdf")
    assert (await act_ok(gql, "SubmitCorrection", "applicant", caseId=cid, uploadIds=[fixed]))["state"] == "CORRECTED"
    # Corrected: the window accepts — and cannot ask for another correction.
    again = await act(gql, "RequestCorrection", "clerk", caseId=cid, corrections=corrections)
    assert again["errors"][0]["code"] == "INVALID_TRANSITION"
    assert (await act_ok(gql, "AcceptCase", "clerk", caseId=cid))["state"] == "ACCEPTED"
    timeline = (await detail(gql, cid))["timeline"]
    assert [e["blzt"] for e in timeline] == [1, 6, 7, 3]
    assert timeline[1]["corrections"] == corrections
    assert timeline[2]["attachments"] == [{"name": "申请表(补正).pdf", "uploadId": fixed, "ref": None}]


@pytest.mark.parametrize(
    "kind,state,blzt", [("NOT_ACCEPTED", "NOT_ACCEPTED", 4), ("REFUSED", "REFUSED", 5)]
)
async def test_rejection_needs_a_reason(gql, client, kind, state, blzt):
    cid = (await submit_ok(gql, client, ["A"]))["A"]["id"]
    refused = await act(gql, "RejectCase", "clerk", caseId=cid, kind=kind, reason="  ")
    assert refused["errors"][0]["code"] == "REASON_REQUIRED"
    assert refused["errors"][0]["field"] == "reason"
    assert len((await detail(gql, cid))["timeline"]) == 1  # nothing changed
    done = await act_ok(gql, "RejectCase", "clerk", caseId=cid, kind=kind, reason="不属于本部门职权范围")
    assert (done["state"], done["blzt"]) == (state, blzt)
    # Terminal: nothing more.
    late = await act(gql, "AcceptCase", "clerk", caseId=cid)
    assert late["errors"][0]["code"] == "INVALID_TRANSITION"


async def test_withdraw_before_and_retract_after_acceptance(gql, client):
    cases = await submit_ok(gql, client, ["A", "C"])
    a, c = cases["A"]["id"], cases["C"]["id"]
    assert (await act_ok(gql, "WithdrawCase", "applicant", caseId=a, reason="项目调整"))["state"] == "WITHDRAWN"
    # Retract is for accepted cases only.
    early = await act(gql, "RetractCase", "applicant", caseId=c)
    assert early["errors"][0]["code"] == "INVALID_TRANSITION"
    assert "已接件" in early["errors"][0]["message"]
    await act_ok(gql, "AcceptCase", "clerk", caseId=c)
    withdrawn_late = await act(gql, "WithdrawCase", "applicant", caseId=c)
    assert withdrawn_late["errors"][0]["code"] == "INVALID_TRANSITION"
    result = await act_ok(gql, "RetractCase", "applicant", caseId=c, reason="暂缓建设")
    assert (result["state"], result["blzt"]) == ("RETRACTED", 14)


async def test_decisions_need_their_data(gql, client):
    cid = (await submit_ok(gql, client, ["A"]))["A"]["id"]
    await run_to_in_progress(gql, cid)
    no_doc = await act(gql, "DecideCase", "planner", caseId=cid, decision="APPROVED")
    assert no_doc["errors"][0]["code"] == "APPROVAL_DOCUMENT_REQUIRED"
    bad_doc = await act(
        gql, "DecideCase", "planner", caseId=cid, decision="APPROVED",
        document={**APPROVAL_DOCUMENT, "documentNumber": " "},
    )
    assert bad_doc["errors"][0] == {
        "field": "document.documentNumber", "code": "REQUIRED", "message": "请填写批复文号"
    }
    no_commitment = await act(
        gql, "DecideCase", "planner", caseId=cid, decision="APPROVED_DEFICIENT", document=APPROVAL_DOCUMENT
    )
    assert no_commitment["errors"][0]["code"] == "REQUIRED"
    no_reason = await act(gql, "DecideCase", "planner", caseId=cid, decision="DISAPPROVED")
    assert no_reason["errors"][0]["code"] == "REASON_REQUIRED"
    assert len((await detail(gql, cid))["timeline"]) == 3  # none of these changed anything
    done = await act_ok(
        gql, "DecideCase", "planner", caseId=cid, decision="APPROVED_DEFICIENT",
        document=APPROVAL_DOCUMENT, committedItems=["建设工程规划许可证核发前补交环评批复"],
    )
    assert (done["state"], done["blzt"]) == ("APPROVED_DEFICIENT", 12)
    assert (await detail(gql, cid))["timeline"][-1]["committedItems"] == ["建设工程规划许可证核发前补交环评批复"]


async def test_disapproval(gql, client):
    cid = (await submit_ok(gql, client, ["C"]))["C"]["id"]
    await run_to_in_progress(gql, cid, approver="water")
    done = await act_ok(gql, "DecideCase", "water", caseId=cid, decision="DISAPPROVED", reason="取水量超出区域总量控制指标")
    assert (done["state"], done["blzt"]) == ("DISAPPROVED", 13)
    revoke = await act(gql, "RevokeCase", "water", caseId=cid, reason="x")
    assert revoke["errors"][0]["code"] == "INVALID_TRANSITION"  # only an approval can be revoked


async def test_predecessor_must_be_decided_first(gql, client):
    cases = await submit_ok(gql, client, ["A", "B"])
    a, b = cases["A"]["id"], cases["B"]["id"]
    await run_to_in_progress(gql, a)
    await run_to_in_progress(gql, b)  # B may start at once ...
    early = await act(gql, "DecideCase", "planner", caseId=b, decision="APPROVED", document=APPROVAL_DOCUMENT)
    assert early["errors"][0]["code"] == "PREDECESSOR_NOT_DECIDED"  # ... but not be decided before A
    assert "建设项目用地预审与选址意见书核发" in early["errors"][0]["message"]
    assert (await detail(gql, b))["state"] == "IN_PROGRESS"
    await approve(gql, a)
    assert (await approve(gql, b))["state"] == "APPROVED"


async def test_each_party_does_only_its_own_steps(gql, client):
    cid = (await submit_ok(gql, client, ["A"]))["A"]["id"]
    by_applicant = await act(gql, "AcceptCase", "applicant", caseId=cid)
    assert by_applicant["errors"][0]["code"] == "PERMISSION_DENIED"
    by_approver = await act(gql, "AcceptCase", "planner", caseId=cid)
    assert by_approver["errors"][0]["code"] == "PERMISSION_DENIED"
    # Another department's approver does not even see the case.
    await act_ok(gql, "AcceptCase", "clerk", caseId=cid)
    other_department = await act(gql, "StartCase", "water", caseId=cid)
    assert other_department["errors"][0]["code"] == "NOT_FOUND"
    other_company = await act(gql, "RetractCase", "other_applicant", caseId=cid)
    assert other_company["errors"][0]["code"] == "NOT_FOUND"
    citizen = await act(gql, "StartCase", "citizen", caseId=cid)
    assert citizen["errors"][0]["code"] == "NOT_FOUND"
    assert len((await detail(gql, cid))["timeline"]) == 2


async def test_retry_with_the_same_request_id_changes_nothing(gql, client):
    cid = (await submit_ok(gql, client, ["A"]))["A"]["id"]
    first = await act(gql, "AcceptCase", "clerk", caseId=cid, requestId="accept-1")
    second = await act(gql, "AcceptCase", "clerk", caseId=cid, requestId="accept-1")
    assert first["errors"] == second["errors"] == []
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert second["case"]["state"] == "ACCEPTED"
    assert len((await detail(gql, cid))["timeline"]) == 2
    reused = await act(gql, "StartCase", "clerk", caseId=cid, requestId="accept-1")
    assert reused["errors"][0]["code"] == "DUPLICATE_REQUEST_ID"


async def test_malformed_case_id_is_a_field_error(gql):
    result = await act(gql, "AcceptCase", "clerk", caseId="not-an-id")
    assert result["errors"] == [{"field": "caseId", "code": "INVALID_ID", "message": "编号格式不正确"}]
    result = await act(gql, "AcceptCase", "clerk", caseId="Q2FzZTo5OTk5OTk")  # Case:999999
    assert result["errors"][0]["code"] == "NOT_FOUND"
