"""An object one may not see answers exactly like one that does not exist (DESIGN.md §4, issue #10 item 14).

For every mutation of the committed schema that takes an id — found by walking the ``Mutation`` type of
graphql/schema.graphql and every input type under it, so that a new one is covered or fails here for lack of a
probe — the whole answer for a real id of an object the viewer may not see (another's case, upload, complaint,
rating, …) is compared with the answer for an id of the same type that exists nowhere: the same HTTP status, the
same data, the same error code, field and message (the id itself, where a message quotes it, set aside).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from graphql import (
    GraphQLInputObjectType,
    GraphQLObjectType,
    build_schema,
    get_named_type,
    is_leaf_type,
)

from api.domain.feedback import ComplaintCategory, ComplaintKind, ComplaintState
from api.domain.ids import to_global_id
from api.models import AgentAuthorization, Case, Certificate, Delivery, Notice, Seal
from api.models.conversation import Consultation, ConsultationState, ConversationMessage
from api.models.feedback import Complaint, Rating
from api.services.conversation import conversation_of
from tests.api.flows import act_ok, run_to_in_progress, submit_ok, upload
from tests.factories import OTHER_PROJECT_CODE

SDL = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"
SCHEMA = build_schema(SDL.read_text(encoding="utf-8"))
MISSING_PK = 987_654_321


def id_paths(input_type: GraphQLInputObjectType, prefix: str = "") -> list[str]:
    """Every ID-typed field under an input type, as dotted paths (a list of inputs counts as one)."""
    paths = []
    for name, field in input_type.fields.items():
        named = get_named_type(field.type)
        if named.name == "ID":
            paths.append(prefix + name)
        elif isinstance(named, GraphQLInputObjectType):
            paths.extend(id_paths(named, f"{prefix}{name}."))
    return paths


def mutations_taking_ids() -> set[tuple[str, str]]:
    out = set()
    for name, field in SCHEMA.mutation_type.fields.items():
        for arg_name, arg in field.args.items():
            named = get_named_type(arg.type)
            if named.name == "ID":
                out.add((name, arg_name))
            elif isinstance(named, GraphQLInputObjectType):
                out.update((name, f"{arg_name}.{path}") for path in id_paths(named))
    return out


def document(mutation: str) -> str:
    """The mutation with its whole payload: every scalar, and for an object only whether there is one."""
    field = SCHEMA.mutation_type.fields[mutation]
    payload = get_named_type(field.type)
    assert isinstance(payload, GraphQLObjectType)
    selections = []
    for name, sub in payload.fields.items():
        named = get_named_type(sub.type)
        if is_leaf_type(named):
            selections.append(name)
        elif name == "errors":
            selections.append("errors { field code message }")
        else:
            selections.append(f"{name} {{ __typename }}")
    (arg_name, arg), = field.args.items()
    return f"mutation($input: {arg.type}) {{ {mutation}(input: $input) {{ {' '.join(selections)} }} }}"


@dataclass
class Objects:
    """What the probes point at: real objects of one party, and the other party's own objects to act on."""
    theirs_case: str  # the applicant's case A, accepted and in a special procedure (planning)
    water_case: str  # the applicant's case C, in progress (water)
    my_case: str  # other_applicant's case A on its own project, waiting for correction
    foreign_upload: str  # the citizen's upload
    my_upload: str  # other_applicant's upload
    planner_upload: str
    foreign_certificate: str  # held by the applicant's organisation
    complaint: str  # filed by the applicant, assigned to water
    rating: str  # by the applicant, of water's case C, a 差评
    authorization: str  # other_applicant's 经办人授权
    other_organization: str
    notice: str  # the applicant's
    delivery: str
    seal: str
    department: str
    conversation_message: str  # a SYSTEM message of the applicant's conversation
    consultation: str  # the citizen's, routed to water


@dataclass(frozen=True)
class Probe:
    user: str
    kind: str  # the global-id type name, or "Upload" (a UUID)
    real: Callable[[Objects], str]  # a real id the user may not see (or use)
    input: Callable[[Objects, str], dict]  # the input with the probed id in place


def missing(kind: str) -> str:
    return str(uuid.uuid4()) if kind == "Upload" else to_global_id(kind, MISSING_PK)


DOC = {"approvalDate": "2026-10-09", "documentNumber": "珠自然资规许〔2026〕18号", "documentTitle": "批复",
       "validUntil": "9999-01-01"}
FAR = "far_clerk"  # the window of another city: the case on 440402 is not its to see
NOBODY = "housing"  # a department with no case here


def case_probe(user: str, **fields) -> Probe:
    return Probe(user, "Case", lambda o: o.theirs_case, lambda o, i: {"caseId": i, **fields})


PROBES: dict[tuple[str, str], Probe] = {
    ("acceptCase", "input.caseId"): case_probe(FAR),
    ("rejectCase", "input.caseId"): case_probe(FAR, kind="NOT_ACCEPTED", reason="材料不全"),
    ("requestCorrection", "input.caseId"): case_probe(
        FAR, corrections=[{"material": "申请表", "requirement": "加盖公章"}]
    ),
    ("submitCorrection", "input.caseId"): Probe(
        "other_applicant", "Case", lambda o: o.theirs_case, lambda o, i: {"caseId": i, "uploadIds": [o.my_upload]}
    ),
    ("submitCorrection", "input.uploadIds"): Probe(
        "other_applicant", "Upload", lambda o: o.foreign_upload, lambda o, i: {"caseId": o.my_case, "uploadIds": [i]}
    ),
    ("withdrawCase", "input.caseId"): case_probe("other_applicant", reason="不办了"),
    ("retractCase", "input.caseId"): case_probe("other_applicant", reason="不办了"),
    ("startCase", "input.caseId"): case_probe(NOBODY),
    ("beginSpecialProcedure", "input.caseId"): case_probe(
        NOBODY, kind="EXPERT_REVIEW", reason="专家论证", expectedDays=5
    ),
    ("endSpecialProcedure", "input.caseId"): case_probe(NOBODY, result="论证通过"),
    ("endSpecialProcedure", "input.attachmentIds"): Probe(
        "planner", "Upload", lambda o: o.foreign_upload,
        lambda o, i: {"caseId": o.theirs_case, "result": "论证通过", "attachmentIds": [i]},
    ),
    ("decideCase", "input.caseId"): case_probe(NOBODY, decision="APPROVED", document=DOC),
    ("decideCase", "input.attachmentIds"): Probe(
        "water", "Upload", lambda o: o.planner_upload,
        lambda o, i: {"caseId": o.water_case, "decision": "DISAPPROVED", "reason": "不符合", "attachmentIds": [i]},
    ),
    ("revokeCase", "input.caseId"): case_probe(NOBODY, reason="撤销"),
    ("submitApplication", "input.materials.uploadIds"): Probe(
        "other_applicant", "Upload", lambda o: o.foreign_upload,
        lambda o, i: application_input([{"code": "M01", "uploadIds": [i]}]),
    ),
    ("submitApplication", "input.materials.certificateIds"): Probe(
        "other_applicant", "Certificate", lambda o: o.foreign_certificate,
        lambda o, i: application_input([{"code": "M01", "uploadIds": [o.my_upload], "certificateIds": [i]}]),
    ),
    ("authorizeAgent", "input.organizationId"): Probe(
        "applicant", "Organization", lambda o: o.other_organization,
        lambda o, i: {"organizationId": i, "phone": "13700003333", "name": "王新人"},
    ),
    ("revokeAgent", "input.authorizationId"): Probe(
        "applicant", "AgentAuthorization", lambda o: o.authorization, lambda o, i: {"authorizationId": i}
    ),
    ("markNoticesRead", "input.noticeIds"): Probe(
        "other_applicant", "Notice", lambda o: o.notice, lambda o, i: {"noticeIds": [i]}
    ),
    ("resendNotification", "input.deliveryId"): Probe(
        "planner", "Delivery", lambda o: o.delivery, lambda o, i: {"deliveryId": i}
    ),
    ("fileComplaint", "input.imageUploadIds"): Probe(
        "applicant", "Upload", lambda o: o.foreign_upload,
        lambda o, i: {"kind": "COMPLAINT", "category": "OTHER", "text": "反映问题", "imageUploadIds": [i]},
    ),
    ("assignComplaint", "input.complaintId"): Probe(
        "planner", "Complaint", lambda o: o.complaint, lambda o, i: {"complaintId": i, "departmentId": o.department}
    ),
    ("replyComplaint", "input.complaintId"): Probe(
        "planner", "Complaint", lambda o: o.complaint, lambda o, i: {"complaintId": i, "text": "已处理"}
    ),
    ("closeComplaint", "input.complaintId"): Probe(
        "other_applicant", "Complaint", lambda o: o.complaint, lambda o, i: {"complaintId": i, "satisfied": True}
    ),
    ("reopenComplaint", "input.complaintId"): Probe(
        "other_applicant", "Complaint", lambda o: o.complaint, lambda o, i: {"complaintId": i, "reason": "不满意"}
    ),
    ("postComplaintMessage", "input.complaintId"): Probe(
        "planner", "Complaint", lambda o: o.complaint, lambda o, i: {"complaintId": i, "text": "留言"}
    ),
    ("postComplaintMessage", "input.imageUploadIds"): Probe(
        "applicant", "Upload", lambda o: o.foreign_upload,
        lambda o, i: {"complaintId": o.complaint, "text": "补充图片", "imageUploadIds": [i]},
    ),
    ("rateService", "input.caseId"): Probe(
        "other_applicant", "Case", lambda o: o.water_case, lambda o, i: {"caseId": i, "level": 5}
    ),
    ("rateService", "input.complaintId"): Probe(
        "other_applicant", "Complaint", lambda o: o.complaint, lambda o, i: {"complaintId": i, "level": 5}
    ),
    ("recordRatingFollowUp", "input.ratingId"): Probe(
        "planner", "Rating", lambda o: o.rating, lambda o, i: {"ratingId": i, "step": "CONTACT", "note": "已联系"}
    ),
    ("confirmRatingResult", "input.ratingId"): Probe(
        "other_applicant", "Rating", lambda o: o.rating, lambda o, i: {"ratingId": i, "satisfied": True}
    ),
    ("appealRating", "input.ratingId"): Probe(
        "planner", "Rating", lambda o: o.rating, lambda o, i: {"ratingId": i, "reason": "恶意评价"}
    ),
    ("decideRatingAppeal", "input.ratingId"): Probe(
        "planner", "Rating", lambda o: o.rating, lambda o, i: {"ratingId": i, "upheld": True, "note": "同意"}
    ),
    ("createSeal", "input.departmentId"): Probe(
        "planner", "Department", lambda o: o.department, lambda o, i: {"departmentId": i}
    ),
    ("revokeSeal", "input.sealId"): Probe("planner", "Seal", lambda o: o.seal, lambda o, i: {"sealId": i, "reason": "泄露"}),
    ("markConversationRead", "input.upTo"): Probe(
        "other_applicant", "ConversationMessage", lambda o: o.conversation_message, lambda o, i: {"upTo": i}
    ),
    ("answerConsultation", "input.consultationId"): Probe(
        "planner", "Consultation", lambda o: o.consultation, lambda o, i: {"consultationId": i, "text": "答复"}
    ),
}

# Ids of objects everyone may see: there is nothing to hide, so a real one and a missing one answer differently.
PUBLIC = {
    ("fileComplaint", "input.departmentId"): "the list of departments is public: a filer picks one",
    ("assignComplaint", "input.departmentId"): "dispatchers route to any department",
}


def application_input(materials: list[dict]) -> dict:
    return {"projectCode": OTHER_PROJECT_CODE, "stage": 1, "itemCodes": ["C"], "form": {"landArea": 1},
            "materials": materials}


def test_every_mutation_taking_an_id_has_a_probe():
    """A new mutation (or a new id field) must say how its hidden objects are probed, or why there are none."""
    found = mutations_taking_ids()
    assert found, "no mutation takes an id: the walk of the schema is broken"
    assert found == set(PROBES) | set(PUBLIC), {
        "without a probe": sorted(found - set(PROBES) - set(PUBLIC)),
        "probe of nothing": sorted((set(PROBES) | set(PUBLIC)) - found),
    }


@pytest.fixture
async def objects(gql, client, world, clock) -> Objects:
    mine = await submit_ok(gql, client, ("A", "C"))
    theirs_case, water_case = mine["A"]["id"], mine["C"]["id"]
    await run_to_in_progress(gql, theirs_case)
    await act_ok(gql, "BeginSpecialProcedure", "planner", caseId=theirs_case, kind="EXPERT_REVIEW", reason="专家论证",
                 expectedDays=5)
    await run_to_in_progress(gql, water_case, approver="water")
    my_case = (await submit_ok(gql, client, ("A",), project=OTHER_PROJECT_CODE, user="other_applicant"))["A"]["id"]
    await act_ok(gql, "RequestCorrection", "clerk", caseId=my_case,
                 corrections=[{"material": "申请表", "requirement": "加盖公章"}])

    now = clock()
    a_case = await Case.get(id=int(_pk(theirs_case)))
    builder = world.organizations["builder"]
    certificate = await Certificate.create(
        case_id=a_case.id, organization=builder, department=world.departments["planning"],
        type_code="11100000000013338W002", type_name="建设用地规划许可证", name="批复", number="No.1",
        identifier="1.2.156.3005.2.test.1", holder_name=builder.name, holder_code=builder.uscc,
        holder_code_type="001", issuer_name="珠海市自然资源局", issuer_uscc=world.departments["planning"].uscc,
        issue_date=now.date(), valid_from=now.date(), valid_until=dt.date(9999, 1, 1), region_code="440402",
        issued_at=now,
    )
    applicant = world.users["applicant"]
    complaint = await Complaint.create(
        filer=applicant, kind=ComplaintKind.COMPLAINT, category=ComplaintCategory.OTHER, text="反映问题",
        department=world.departments["water"], state=ComplaintState.ASSIGNED, round_started_at=now, created_at=now,
    )
    rating = await Rating.create(
        rater=applicant, case_id=int(_pk(water_case)), matter_key=f"case:{_pk(water_case)}",
        department=world.departments["water"], item_code="C", level=1, reasons=["SLOW"], created_at=now,
        contact_due=now.date(), rectify_due=now.date(),
    )
    seal = await Seal.create(
        department=world.departments["planning"], name="测试专用章", seal_type="行政审批专用章", serial="1",
        certificate_pem="-", encrypted_key=b"-", image_png=b"-", valid_from=now, valid_to=now, created_at=now,
    )
    notice = await Notice.filter(recipient_id=applicant.id).first()
    delivery = await Delivery.filter(notice_id=notice.id).first()
    authorization = await AgentAuthorization.get(id=world.authorizations["other_applicant"].id)
    said = await ConversationMessage.filter(conversation__user_id=applicant.id).first()
    citizen = world.users["citizen"]
    consultation = await Consultation.create(
        asker=citizen, conversation=await conversation_of(citizen.id, now), department=world.departments["water"],
        item_code="C", question="取水许可需要什么材料", state=ConsultationState.WAITING, round_started_at=now,
        created_at=now,
    )
    return Objects(
        theirs_case=theirs_case, water_case=water_case, my_case=my_case,
        foreign_upload=await upload(client, world, "citizen"), my_upload=await upload(client, world, "other_applicant"),
        planner_upload=await upload(client, world, "planner"),
        foreign_certificate=to_global_id("Certificate", certificate.id),
        complaint=to_global_id("Complaint", complaint.id), rating=to_global_id("Rating", rating.id),
        authorization=to_global_id("AgentAuthorization", authorization.id),
        other_organization=to_global_id("Organization", world.organizations["other"].id),
        notice=to_global_id("Notice", notice.id), delivery=to_global_id("Delivery", delivery.id),
        seal=to_global_id("Seal", seal.id), department=to_global_id("Department", world.departments["water"].id),
        conversation_message=to_global_id("ConversationMessage", said.id),
        consultation=to_global_id("Consultation", consultation.id),
    )


def _pk(global_id: str) -> str:
    from api.domain.ids import from_global_id

    return from_global_id(global_id)[1]


async def answer(gql, mutation: str, variables: dict, user: str, probed: str) -> tuple[int, Any]:
    response = await gql.raw(document(mutation), {"input": variables}, as_user=user)
    text = response.text.replace(probed, "<id>")
    return response.status_code, json.loads(text)


REFUSALS = {"NOT_FOUND", "UPLOAD_NOT_FOUND", "PERMISSION_DENIED", "UNAUTHENTICATED"}


@pytest.mark.quiet_app
async def test_a_hidden_object_answers_like_a_missing_one(gql, objects):
    """One probe per (mutation, id field), by its viewer and anonymously: nothing differs between the hidden and the
    missing id, and the answer is a refusal of the object (so the probe did reach the id)."""
    differing = {}
    for (mutation, path), probe in sorted(PROBES.items()):
        for user in (probe.user, None):
            real, absent = probe.real(objects), missing(probe.kind)
            hidden = await answer(gql, mutation, probe.input(objects, real), user, real)
            nowhere = await answer(gql, mutation, probe.input(objects, absent), user, absent)
            if hidden != nowhere:
                differing[(mutation, path, user)] = {"hidden": hidden, "missing": nowhere}
                continue
            status, body = nowhere
            assert status == 200 and "errors" not in body, (mutation, body)
            payload = body["data"][mutation]
            if mutation == "markNoticesRead" and user is not None:  # another's ids are ignored, as if missing
                assert payload["marked"] == 0, payload
                continue
            codes = {e["code"] for e in payload["errors"]}
            assert codes and codes <= REFUSALS, (mutation, path, user, payload)
    assert differing == {}
