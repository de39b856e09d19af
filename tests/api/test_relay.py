"""Relay through the public API: every type with an ``id`` is a Node that ``node()`` fetches again under its viewer's
permissions, ids issued under a former type name still work, and PageInfo is complete (issue #12 item 6)."""

from __future__ import annotations

import base64

import pytest

from api.domain.accounts import Role
from api.domain.ids import to_global_id
from api.models import User
from api.settings import Settings
from tests.api.test_ratings import rate
from tests.certificates.conftest import approve_b, create_seal
from tests.factories import shanghai
from tests.fakes.wechat import FakeWeChat

NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
CITIZEN_OPENID = "o-citizen-relay"


@pytest.fixture
def settings(database_url, tmp_path, fake_wechat: FakeWeChat) -> Settings:
    # Filing a complaint runs WeChat's content check against the fake server.
    return Settings(database_url=database_url, upload_dir=tmp_path / "uploads", **fake_wechat.settings_overrides())


async def ok(gql, name: str, user: str, **fields) -> dict:
    (payload,) = (await gql.op(name, {"input": fields}, as_user=user)).values()
    assert payload["errors"] == [], (name, payload["errors"])
    return payload


@pytest.fixture
async def samples(gql, client, world, clock, fake_wechat) -> dict[str, tuple[str, str, str | None]]:
    """One object of every node type, made through the API: type name → (global id, a user who may see it, a user
    who may not, or None when every signed-in user may)."""
    clock.set(shanghai(2026, 9, 29))
    await world.add_user("admin", "钱管理", Role.ADMIN)
    await User.filter(id=world.users["citizen"].id).update(openid=CITIZEN_OPENID)
    fake_wechat.add_openid(CITIZEN_OPENID)
    seal = (await create_seal(gql, world))["seal"]
    cases = await approve_b(gql, client)
    case = (await gql(
        """query($id: ID!) { node(id: $id) { ... on Case { id application { id } item { id } department { id }
           certificate { id } project { id organization { id } } } } }""",
        {"id": cases["B"]["id"]}, as_user="applicant",
    ))["node"]
    clock.set(shanghai(2026, 9, 30))
    rating = (await rate(gql, caseId=cases["A"]["id"], level=5))["rating"]
    complaint = (await ok(gql, "FileComplaint", "citizen", kind="COMPLAINT", category="OVERDUE",
                          text="施工许可办理时间远超承诺时限"))["complaint"]
    message = (await ok(gql, "PostComplaintMessage", "citizen", complaintId=complaint["id"], text="补充说明"))["message"]
    notices = (await gql("{ notices(first: 1) { nodes { id } } }", as_user="applicant"))["notices"]["nodes"]
    deliveries = (await gql("{ notificationDeliveries(first: 1) { nodes { id } } }", as_user="supervisor"))
    grants = (await gql("query($org: ID!) { organizationAgents(organizationId: $org) { id } }",
                        {"org": case["project"]["organization"]["id"]}, as_user="applicant"))["organizationAgents"]
    viewer = (await gql("{ viewer { id } }", as_user="citizen"))["viewer"]
    said = (await gql("{ conversation(last: 1) { nodes { id } } }", as_user="applicant"))["conversation"]["nodes"]
    consultation = (await ok(gql, "OpenConsultation", "citizen", question="施工许可需要什么材料"))["consultation"]
    return {
        "Project": (case["project"]["id"], "applicant", "other_applicant"),
        "Organization": (case["project"]["organization"]["id"], "applicant", "other_applicant"),
        "Case": (case["id"], "applicant", "other_applicant"),
        "Application": (case["application"]["id"], "applicant", "other_applicant"),
        "ApprovalItem": (case["item"]["id"], "citizen", None),
        "Department": (case["department"]["id"], "citizen", None),
        "Certificate": (case["certificate"]["id"], "applicant", "other_applicant"),
        "Seal": (seal["id"], "admin", "supervisor"),
        "Rating": (rating["id"], "applicant", "other_applicant"),
        "Complaint": (complaint["id"], "citizen", "applicant"),
        "ComplaintMessage": (message["id"], "citizen", "applicant"),
        "Notice": (notices[0]["id"], "applicant", "other_applicant"),
        "NoticeDelivery": (deliveries["notificationDeliveries"]["nodes"][0]["id"], "supervisor", "applicant"),
        "AgentAuthorization": (grants[0]["id"], "applicant", "other_applicant"),
        "Viewer": (viewer["id"], "citizen", "applicant"),
        "ConversationMessage": (said[0]["id"], "applicant", "other_applicant"),
        "Consultation": (consultation["id"], "citizen", "applicant"),
    }


async def test_every_type_with_an_id_is_a_node_that_node_fetches_again(gql, samples):
    schema = (await gql("""{ __schema { types { name kind fields { name } interfaces { name } } }
                             node: __type(name: "Node") { possibleTypes { name } } }"""))
    schema = schema["__schema"] | {"node": schema["node"]}
    with_id = {t["name"] for t in schema["types"]
               if t["kind"] == "OBJECT" and any(f["name"] == "id" for f in t["fields"] or [])}
    for type_ in schema["types"]:
        if type_["name"] in with_id:
            assert {"name": "Node"} in type_["interfaces"], f"{type_['name']} has an id but is not a Node"
    nodes = {t["name"] for t in schema["node"]["possibleTypes"]}
    assert nodes == with_id and set(samples) == nodes  # a new node type needs a sample here
    for type_name, (global_id, owner, stranger) in samples.items():
        assert base64.urlsafe_b64decode(global_id + "==").decode().startswith(f"{type_name}:"), type_name
        fetched = (await gql(NODE, {"id": global_id}, as_user=owner))["node"]
        assert fetched == {"__typename": type_name, "id": global_id}, (type_name, owner)
        if stranger is not None:
            assert (await gql(NODE, {"id": global_id}, as_user=stranger))["node"] is None, (type_name, stranger)
        assert (await gql(NODE, {"id": global_id}))["node"] is None, type_name  # signed out: nothing


async def test_a_complaint_message_is_a_node_to_its_filer_and_to_the_department_once_assigned(gql, world, samples):
    message_id = samples["ComplaintMessage"][0]
    query = "query($id: ID!) { node(id: $id) { ... on ComplaintMessage { text fromFiler } } }"
    assert (await gql(query, {"id": message_id}, as_user="citizen"))["node"] == {"text": "补充说明", "fromFiler": True}
    assert (await gql(query, {"id": message_id}, as_user="housing"))["node"] is None  # not its department's yet
    await ok(gql, "AssignComplaint", "supervisor", complaintId=samples["Complaint"][0],
             departmentId=to_global_id("Department", world.departments["housing"].id))
    assert (await gql(query, {"id": message_id}, as_user="housing"))["node"] == {"text": "补充说明", "fromFiler": True}


async def test_ids_issued_under_a_former_type_name_are_still_accepted(gql, world, samples):
    """A NoticeDelivery's id named the model (Delivery), a Viewer's named User: both forms still work."""
    delivery_id, _, _ = samples["NoticeDelivery"]
    delivery_pk = base64.urlsafe_b64decode(delivery_id + "==").decode().split(":")[1]
    old_delivery = to_global_id("Delivery", delivery_pk)
    assert (await gql(NODE, {"id": old_delivery}, as_user="supervisor"))["node"] == {
        "__typename": "NoticeDelivery", "id": delivery_id}
    citizen = world.users["citizen"].id
    assert (await gql(NODE, {"id": to_global_id("User", citizen)}, as_user="citizen"))["node"] == {
        "__typename": "Viewer", "id": to_global_id("Viewer", citizen)}
    applicant = world.users["applicant"].id
    query = "query($who: ID!) { notificationDeliveries(filter: {recipientId: $who}) { totalCount } }"
    counts = [(await gql(query, {"who": to_global_id(name, applicant)}, as_user="supervisor"))
              ["notificationDeliveries"]["totalCount"] for name in ("Viewer", "User")]
    assert counts[0] == counts[1] > 0
    resent = await gql.op("ResendNotification", {"input": {"deliveryId": old_delivery}}, as_user="supervisor")
    assert all(e["code"] != "INVALID_ID" for e in resent["resendNotification"]["errors"])


async def test_page_info_is_complete_forwards(gql, world):
    query = """query($after: String) { projects(first: 2, after: $after) {
        edges { cursor } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
    first = (await gql(query, {"after": None}, as_user="supervisor"))["projects"]  # the world has three projects
    cursors = [e["cursor"] for e in first["edges"]]
    assert first["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False,
                                 "startCursor": cursors[0], "endCursor": cursors[1]}
    second = (await gql(query, {"after": cursors[1]}, as_user="supervisor"))["projects"]
    (cursor,) = [e["cursor"] for e in second["edges"]]
    assert second["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True,
                                  "startCursor": cursor, "endCursor": cursor}
    empty = (await gql(query, {"after": cursor}, as_user="supervisor"))["projects"]
    assert empty["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True, "startCursor": None, "endCursor": None}
    # In the list of a viewer who sees one project, nothing comes before or after it.
    own = (await gql(query, {"after": None}, as_user="other_applicant"))["projects"]
    assert (own["pageInfo"]["hasPreviousPage"], own["pageInfo"]["hasNextPage"]) == (False, False)


async def test_a_notice_names_its_subject_typed_and_only_while_the_viewer_may_see_it(gql, world, samples):
    """Notice.subject: the case, certificate, complaint or rating, in one list query (issue #12 item 7)."""
    await ok(gql, "AssignComplaint", "supervisor", complaintId=samples["Complaint"][0],
             departmentId=to_global_id("Department", world.departments["housing"].id))
    await ok(gql, "ReplyComplaint", "housing", complaintId=samples["Complaint"][0], text="已督促办理，请留意")
    bad = await rate(gql, caseId=samples["Case"][0], level=1, reasons=["SLOW"])
    for step in ("CONTACT", "RECTIFY", "RESULT"):
        await ok(gql, "RecordRatingFollowUp", "planner", ratingId=bad["rating"]["id"], step=step, note="已处理")

    def subjects(data) -> dict[str, dict | None]:
        return {n["kind"]: n["subject"] for n in data["notices"]["nodes"]}

    nodes = (await gql.op("Notices", {"first": 50}, as_user="applicant"))["notices"]["nodes"]
    for node in nodes:
        if node["kind"].startswith("CASE_"):
            assert node["subject"]["__typename"] == "Case" and node["subject"]["id"] == node["subjectId"], node
    mine = subjects({"notices": {"nodes": nodes}})
    assert {"CASE_ACCEPTED", "CASE_APPROVED", "CERTIFICATE_ISSUED", "RATING_FOLLOWUP_RESULT"} <= set(mine)
    assert (mine["CERTIFICATE_ISSUED"]["__typename"], mine["CERTIFICATE_ISSUED"]["id"]) == (
        "Certificate", samples["Certificate"][0])
    assert (mine["RATING_FOLLOWUP_RESULT"]["__typename"], mine["RATING_FOLLOWUP_RESULT"]["id"]) == (
        "Rating", bad["rating"]["id"])
    filed = subjects(await gql.op("Notices", {"first": 50}, as_user="citizen"))
    assert filed["COMPLAINT_REPLIED"]["__typename"] == "Complaint"
    assert filed["COMPLAINT_REPLIED"]["id"] == samples["Complaint"][0]

    # The organisation withdraws the applicant's authorisation: its cases and certificates are no longer the
    # applicant's to see, so those subjects are null; its own rating still is its own.
    await ok(gql, "RevokeAgent", "admin", authorizationId=samples["AgentAuthorization"][0])
    after = subjects(await gql.op("Notices", {"first": 50}, as_user="applicant"))
    assert after["CASE_APPROVED"] is None and after["CERTIFICATE_ISSUED"] is None
    assert after["RATING_FOLLOWUP_RESULT"]["id"] == bad["rating"]["id"]
