from tests.factories import PROJECT_CODE


async def test_smoke(gql, world, client):
    r = await client.get("/healthz")
    assert r.json() == {"status": "ok"}
    data = await gql("{ viewer { displayName role organization { name } } }", as_user="applicant")
    assert data["viewer"]["role"] == "APPLICANT"
    up = await client.post(
        "/uploads",
        files={"file": ("申请表.pdf", b"%PDF-1.7 hello", "application/pdf")},
        headers={"Authorization": f"Bearer {world.token('applicant')}"},
    )
    assert up.status_code == 201, up.text
    m = """mutation($input: SubmitApplicationInput!) { submitApplication(input: $input) {
        errors { field code message } application { parallelInstanceCode } cases { id code state blzt } } }"""
    data = await gql(m, {"input": {"projectCode": PROJECT_CODE, "stage": 1, "itemCodes": ["A", "B"],
                                    "form": {"landArea": 1000}, "materials": [{"code": "M01", "uploadIds": [up.json()["id"]]}]}},
                     as_user="applicant")
    payload = data["submitApplication"]
    assert payload["errors"] == [], payload
    q = """query($code: String!) { project(code: $code) { code light stages { code name light counts { state count }
        cases { code state light usedWorkingDays remainingWorkingDays dueDate timeline { action blzt actorName } } } } }"""
    data = await gql(q, {"code": PROJECT_CODE}, as_user="applicant")
    print(data)
    assert data["project"]["stages"][0]["counts"] == [{"state": "RECEIVED", "count": 2}]
