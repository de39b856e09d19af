"""stageForm and submitApplication agree that a certificate the project holds satisfies a material (电子证照复用,
不重复提交): it is shown as on file and may be left out of the application, which then cites it (issue #11 §1)."""

from __future__ import annotations

import shutil

from api.models import Application
from api.services.catalog import DEFAULT_ROOT, load_catalog, read_catalog
from tests.api.flows import upload
from tests.certificates.conftest import approve_b
from tests.factories import PROJECT_CODE

B_CERTIFICATE_TYPE = "11100000000013338W002"  # the test world's item B yields this certificate


async def test_a_held_certificate_satisfies_its_material(gql, client, world, seal, tmp_path):
    await approve_b(gql, client)  # the project now holds B's certificate
    root = tmp_path / "catalog"
    shutil.copytree(DEFAULT_ROOT, root)
    forms = root / "forms.toml"
    forms.write_text(
        forms.read_text(encoding="utf-8").replace('certificate_types = ["11100000MB0341032Y004"]',
                                                  f'certificate_types = ["{B_CERTIFICATE_TYPE}"]'),
        encoding="utf-8",
    )
    await load_catalog(read_catalog(root))

    form = (await gql.op("StageForm", {"projectCode": PROJECT_CODE, "stage": 3}, as_user="applicant"))["stageForm"]
    by_code = {m["material"]["code"]: m for m in form["materials"]}
    assert by_code["M34"]["onFile"] is True and by_code["M34"]["reusedFrom"] is None
    assert by_code["M34"]["certificateNames"] and by_code["M34"]["material"]["source"] == "政府部门核发"
    assert by_code["M31"]["onFile"] is False
    # Another company's view of the same project: none (the project is not theirs).
    other = await gql.op("StageForm", {"projectCode": PROJECT_CODE, "stage": 3}, as_user="other_applicant")
    assert other["stageForm"] is None

    materials = [{"code": code, "uploadIds": [await upload(client, world, "applicant")]} for code in ("M00", "M31", "M32")]
    form_values = {"buildingArea": 1000, "contractPrice": 500, "constructionUnit": "施工单位", "supervisionUnit": "监理单位",
                   "projectManager": "项目经理", "contractDays": 300}
    m = """mutation($input: SubmitApplicationInput!) { submitApplication(input: $input) {
        errors { field code message } application { parallelInstanceCode } } }"""
    payload = (await gql(m, {"input": {"projectCode": PROJECT_CODE, "stage": 3, "itemCodes": ["HC-SGXK"],
                                       "form": form_values, "materials": materials}}, as_user="applicant"))
    payload = payload["submitApplication"]
    assert payload["errors"] == [], payload
    application = await Application.get(parallel_instance_code=payload["application"]["parallelInstanceCode"])
    (m34,) = [entry for entry in application.materials if entry["code"] == "M34"]
    assert m34["uploads"] == [] and [c["name"] for c in m34["certificates"]] == by_code["M34"]["certificateNames"]
