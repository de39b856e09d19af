"""Phone binding, acting for a company (经办人授权) and subscribe consents, through the real app (issue #3)."""

from __future__ import annotations


from api.models import AgentAuthorization, User
from api.schema.base import to_global_id
from api.services.consents import take_consent
from tests.api.accounts import data, login, send, settings  # noqa: F401 - ``settings`` is a fixture
from tests.factories import APPLICANT_PHONE, PROJECT_CODE

NEW_PHONE = "13612345678"


async def bind(client, fake, token: str, phone: str) -> dict:
    code = fake.issue_phone_code(phone)
    return (await data(client, "BindPhone", {"input": {"code": code}}, token=token))["bindPhone"]


async def can_read_main_project(gql, user: str | None = None, *, token: str | None = None, client=None) -> bool:
    if token:
        body = await data(client, "ProjectProgress", {"code": PROJECT_CODE}, token=token)
    else:
        body = await gql.op("ProjectProgress", {"code": PROJECT_CODE}, as_user=user)
    return body["project"] is not None


async def authorize(gql, org_key: str, phone: str, *, as_user: str = "applicant", is_admin: bool = False) -> dict:
    organization_id = to_global_id("Organization", gql.world.organizations[org_key].id)
    variables = {"input": {"organizationId": organization_id, "phone": phone, "name": "新经办人", "isAdmin": is_admin}}
    return (await gql.op("AuthorizeAgent", variables, as_user=as_user))["authorizeAgent"]


async def test_bind_phone_then_masked_to_everyone_else(client, gql, fake_wechat, world):
    me = await login(client, fake_wechat)
    bound = await bind(client, fake_wechat, me["accessToken"], NEW_PHONE)
    assert bound["errors"] == [] and bound["viewer"]["phone"] == NEW_PHONE  # the owner sees it in clear
    user = await User.get(phone=NEW_PHONE)
    assert user.phone_verified_at is not None

    # The organisation's admin sees the number it authorised masked; its owner in clear.
    grant = await authorize(gql, "builder", NEW_PHONE)
    assert grant["errors"] == [] and grant["authorization"]["phone"] == "136****5678"
    org_id = to_global_id("Organization", world.organizations["builder"].id)
    listed = await gql.op("OrganizationAgents", {"organizationId": org_id}, as_user="applicant")
    assert {a["phone"] for a in listed["organizationAgents"]} == {"136****5678", APPLICANT_PHONE}  # own: in clear
    # The new agent (not an admin agent) acts for the organisation but does not manage its agents.
    assert (await data(client, "Viewer", token=me["accessToken"]))["viewer"]["role"] == "APPLICANT"
    response = await send(client, "OrganizationAgents", {"organizationId": org_id}, token=me["accessToken"])
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_phone_codes_are_single_use_and_expire(client, fake_wechat):
    me = await login(client, fake_wechat)
    code = fake_wechat.issue_phone_code(NEW_PHONE)
    ok = (await data(client, "BindPhone", {"input": {"code": code}}, token=me["accessToken"]))["bindPhone"]
    assert ok["errors"] == []
    again = (await data(client, "BindPhone", {"input": {"code": code}}, token=me["accessToken"]))["bindPhone"]
    assert again["errors"][0]["code"] == "WECHAT_CODE_INVALID"
    late = fake_wechat.issue_phone_code(NEW_PHONE)
    fake_wechat.advance(5 * 60 + 1)
    expired = (await data(client, "BindPhone", {"input": {"code": late}}, token=me["accessToken"]))["bindPhone"]
    assert expired["errors"][0]["code"] == "WECHAT_CODE_INVALID"
    anonymous = (await data(client, "BindPhone", {"input": {"code": "x"}}))["bindPhone"]
    assert anonymous["errors"][0]["code"] == "UNAUTHENTICATED"


async def test_an_authorised_phone_acts_for_the_organisation_until_withdrawn(client, gql, fake_wechat, world):
    me = await login(client, fake_wechat)
    token = me["accessToken"]
    assert not await can_read_main_project(gql, token=token, client=client)
    grant = await authorize(gql, "builder", NEW_PHONE)
    # Authorised before the phone is bound: binding it makes the person the organisation's applicant.
    bound = await bind(client, fake_wechat, token, NEW_PHONE)
    assert bound["viewer"]["role"] == "APPLICANT"
    assert bound["viewer"]["organization"]["name"] == world.organizations["builder"].name
    assert await can_read_main_project(gql, token=token, client=client)

    revoked = (
        await gql.op("RevokeAgent", {"input": {"authorizationId": grant["authorization"]["id"]}}, as_user="applicant")
    )["revokeAgent"]
    assert revoked["errors"] == [] and revoked["authorization"]["revokedAt"]
    # The very next request: the same token no longer reaches the organisation's projects.
    assert not await can_read_main_project(gql, token=token, client=client)
    projects = await data(client, "Projects", {}, token=token)
    assert projects["projects"]["totalCount"] == 0


async def test_withdrawn_authorisation_of_an_existing_applicant(gql, world, clock):
    assert await can_read_main_project(gql, "applicant")
    grant = world.authorizations["applicant"]
    await AgentAuthorization.filter(id=grant.id).update(revoked_at=clock.now)
    assert not await can_read_main_project(gql, "applicant")
    errors = await gql.errors("query { caseQueue { totalCount } }", as_user="applicant")
    assert errors[0]["extensions"]["code"] == "PERMISSION_DENIED"


async def test_only_the_organisations_admins_manage_its_agents(gql, world):
    refused = await authorize(gql, "builder", NEW_PHONE, as_user="other_applicant")
    assert refused["errors"][0]["code"] == "NOT_FOUND" and refused["authorization"] is None
    refused = await authorize(gql, "builder", NEW_PHONE, as_user="clerk")
    assert refused["errors"][0]["code"] == "NOT_FOUND"
    bad = await authorize(gql, "builder", "12345")
    assert bad["errors"][0] == {"field": "phone", "code": "INVALID_PHONE", "message": "请输入正确的11位手机号码"}
    org_id = to_global_id("Organization", world.organizations["builder"].id)
    errors = await gql.errors(
        "query($id: ID!) { organizationAgents(organizationId: $id) { id } }", {"id": org_id}, as_user="other_applicant"
    )
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    grant = world.authorizations["applicant"]
    revoke = (
        await gql.op(
            "RevokeAgent",
            {"input": {"authorizationId": to_global_id("AgentAuthorization", grant.id)}},
            as_user="other_applicant",
        )
    )["revokeAgent"]
    assert revoke["errors"][0]["code"] == "NOT_FOUND"
    assert await can_read_main_project(gql, "applicant")


async def test_subscribe_consents_are_counted_and_taken_one_by_one(client, fake_wechat):
    me = await login(client, fake_wechat)
    token = me["accessToken"]
    results = [
        {"templateId": "TPL-CASE", "result": "accept"},
        {"templateId": "TPL-CERT", "result": "reject"},
        {"templateId": "TPL-BAN", "result": "ban"},
    ]
    for _ in range(2):
        payload = (await data(client, "RecordSubscribeConsent", {"input": {"results": results}}, token=token))[
            "recordSubscribeConsent"
        ]
        assert payload["errors"] == []
    assert payload["consents"] == [{"templateId": "TPL-CASE", "remaining": 2}]
    seen = (await data(client, "Viewer", token=token))["viewer"]["subscribeConsents"]
    assert seen == [{"templateId": "TPL-CASE", "remaining": 2}]

    user = await User.get(openid__isnull=False, phone__isnull=True)
    assert [await take_consent(user.id, "TPL-CASE") for _ in range(3)] == [True, True, False]
    assert await take_consent(user.id, "TPL-CERT") is False
    assert (await data(client, "Viewer", token=token))["viewer"]["subscribeConsents"] == []

    bad = await send(
        client, "RecordSubscribeConsent", {"input": {"results": [{"templateId": "T", "result": "maybe"}]}}, token=token
    )
    assert bad.json()["errors"]  # not one of accept / reject / ban / filter: refused by the schema
    anonymous = (await data(client, "RecordSubscribeConsent", {"input": {"results": results}}))["recordSubscribeConsent"]
    assert anonymous["errors"][0]["code"] == "UNAUTHENTICATED"


async def test_a_phone_belongs_to_one_account(client, fake_wechat):
    first, second = await login(client, fake_wechat), await login(client, fake_wechat)
    await bind(client, fake_wechat, first["accessToken"], NEW_PHONE)
    await bind(client, fake_wechat, second["accessToken"], NEW_PHONE)
    assert await User.filter(phone=NEW_PHONE).count() == 1
    assert (await data(client, "Viewer", token=first["accessToken"]))["viewer"]["phone"] is None
