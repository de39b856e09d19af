"""Who sees which certificate and seal, and reuse (复用): an application cites a held certificate instead of an upload
(DOMAIN.md §6, 规程 6.6)."""

from __future__ import annotations

import pytest

from api.domain.ids import to_global_id
from api.models import Application, Certificate
from tests.api.flows import act_ok, upload
from tests.certificates.conftest import approve_b, create_seal, only_certificate
from tests.factories import FAR_PROJECT_CODE, OTHER_PROJECT_CODE

NODE = "query($id: ID!) { node(id: $id) { id ... on Certificate { number } ... on Seal { serial } } }"


async def test_another_companys_certificate_answers_like_a_missing_one(gql, client, seal):
    await approve_b(gql, client)
    cert = await only_certificate(gql)
    missing = to_global_id("Certificate", 999)
    for user in ("other_applicant", "water", "citizen", "clerk"):
        assert (await gql.op("CertificateDetail", {"id": cert["id"]}, as_user=user))["certificate"] is None, user
        assert (await gql.op("CertificateDetail", {"id": missing}, as_user=user))["certificate"] is None, user
        assert (await gql(NODE, {"id": cert["id"]}, as_user=user))["node"] is None, user
        assert (await gql.op("Certificates", {}, as_user=user))["certificates"]["totalCount"] == 0, user
    for user in ("applicant", "planner", "supervisor", "admin"):
        assert (await gql.op("CertificateDetail", {"id": cert["id"]}, as_user=user))["certificate"]["number"]
        assert (await gql(NODE, {"id": cert["id"]}, as_user=user))["node"]["number"] == cert["number"], user
        assert (await gql.op("Certificates", {}, as_user=user))["certificates"]["totalCount"] == 1, user
    errors = await gql.errors("query { certificates { totalCount } }")
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_only_admins_manage_seals_and_no_private_key_is_exposed(gql, world, admin):
    for user in ("applicant", "planner", "supervisor"):
        payload = await create_seal(gql, world, user=user)
        assert [e["code"] for e in payload["errors"]] == ["PERMISSION_DENIED"] and payload["seal"] is None
        assert (await gql.errors("query { seals { totalCount } }", as_user=user))[0]["extensions"]["code"] == (
            "PERMISSION_DENIED"
        )
    made = await create_seal(gql, world, "housing")
    assert made["errors"] == []
    seal = made["seal"]
    assert seal["name"] == "珠海市住房和城乡建设局行政审批专用章" and seal["status"] == "ACTIVE"
    listed = (await gql.op("Seals", {}, as_user="admin"))["seals"]
    assert listed["totalCount"] == 1 and listed["nodes"][0]["serial"] == seal["serial"]
    assert (await gql(NODE, {"id": seal["id"]}, as_user="admin"))["node"]["serial"] == seal["serial"]
    assert (await gql(NODE, {"id": seal["id"]}, as_user="supervisor"))["node"] is None
    pem = (await gql("query { seals { nodes { certificatePem } } }", as_user="admin"))["seals"]["nodes"][0]
    assert pem["certificatePem"].startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE" not in pem["certificatePem"]
    fields = (await gql('{ __type(name: "Seal") { fields { name } } }'))["__type"]["fields"]
    assert not [f["name"] for f in fields if "key" in f["name"].lower()]
    bad = await gql.op(
        "CreateSeal", {"input": {"departmentId": to_global_id("Department", world.departments["water"].id),
                                 "validYears": 30}}, as_user="admin",
    )
    assert [(e["code"], e["field"]) for e in bad["createSeal"]["errors"]] == [("INVALID_INPUT", "validYears")]


async def submit_citing(gql, client, certificate_ids, *, project=FAR_PROJECT_CODE, user="applicant") -> dict:
    variables = {
        "input": {
            "projectCode": project,
            "stage": 1,
            "itemCodes": ["A"],
            "form": {"landArea": 800},
            "materials": [{"code": "M01", "certificateIds": certificate_ids}],
        }
    }
    return (await gql.op("SubmitApplication", variables, as_user=user))["submitApplication"]


async def test_an_application_may_cite_a_held_certificate_instead_of_an_upload(gql, client, seal):
    await approve_b(gql, client)
    cert = await only_certificate(gql)
    payload = await submit_citing(gql, client, [cert["id"]])
    assert payload["errors"] == [], payload["errors"]
    application = await Application.get(parallel_instance_code=payload["application"]["parallelInstanceCode"])
    (material,) = application.materials
    assert material["code"] == "M01" and material["uploads"] == []
    assert material["certificates"] == [
        {"certificateId": cert["id"], "identifier": cert["identifier"], "name": cert["name"], "number": cert["number"]}
    ]


async def test_only_a_valid_certificate_of_ones_own_organisation_may_be_cited(gql, client, world, seal):
    cases = await approve_b(gql, client)
    cert = await only_certificate(gql)
    # Another organisation's applicant: like a missing one.
    other = await submit_citing(gql, client, [cert["id"]], project=OTHER_PROJECT_CODE, user="other_applicant")
    assert [(e["code"], e["field"]) for e in other["errors"]] == [("NOT_FOUND", "materials")]
    bogus = await submit_citing(gql, client, [to_global_id("Certificate", 999)])
    assert [e["code"] for e in bogus["errors"]] == ["NOT_FOUND"]
    not_a_certificate = await submit_citing(gql, client, [cases["B"]["id"]])
    assert [e["code"] for e in not_a_certificate["errors"]] == ["NOT_FOUND"]
    # Revoked: refused with the reason.
    await act_ok(gql, "RevokeCase", "planner", caseId=cases["B"]["id"], reason="许可被依法撤销")
    revoked = await submit_citing(gql, client, [cert["id"]])
    assert [e["code"] for e in revoked["errors"]] == ["CERTIFICATE_NOT_VALID"]
    assert "已撤销" in revoked["errors"][0]["message"]
    assert await Application.filter(project__code=FAR_PROJECT_CODE).count() == 0
    # Uploads still work alongside.
    upload_id = await upload(client, world)
    variables = {"input": {"projectCode": FAR_PROJECT_CODE, "stage": 1, "itemCodes": ["A"], "form": {"landArea": 1},
                           "materials": [{"code": "M01", "uploadIds": [upload_id]}]}}
    assert (await gql.op("SubmitApplication", variables, as_user="applicant"))["submitApplication"]["errors"] == []
    assert await Certificate.all().count() == 1


@pytest.mark.no_pdf_runner  # its queries would be counted too
async def test_the_list_query_count_does_not_grow_with_certificates(gql, client, count_queries, world):
    await approve_b(gql, client)
    query = "query($first: Int) { certificates(first: $first) { nodes { number status downloadUrl checkCode " \
            "department { name } } } }"
    # More certificates of other departments' approvals are not needed: each row's department goes through a loader.
    cert = await Certificate.get()
    for n in range(2, 5):
        await Certificate.create(**{
            **{f: getattr(cert, f) for f in (
                "case_id", "organization_id", "department_id", "type_code", "type_name", "name", "version",
                "holder_name", "holder_code", "holder_code_type", "issuer_name", "issuer_uscc", "issue_date",
                "valid_from", "valid_until", "region_code", "fields_data", "issued_at")},
            "number": f"{cert.number}-{n}", "identifier": f"{cert.identifier}-{n}",
        })
    with count_queries() as one:
        assert len((await gql(query, {"first": 1}, as_user="applicant"))["certificates"]["nodes"]) == 1
    with count_queries() as four:
        assert len((await gql(query, {"first": 4}, as_user="applicant"))["certificates"]["nodes"]) == 4
    # Only this request's reads of certificates and departments: the notice dispatcher works in the background.
    def mine(counter) -> list[str]:
        return [q for q in counter.statements if 'FROM "certificate"' in q or 'FROM "department"' in q]

    assert len(mine(one)) == len(mine(four)) == 3, (mine(one), mine(four))  # count, page, departments
