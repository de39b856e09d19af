"""Service guides (办事指南) as data: the catalogue files, load-catalog, approvalItems / guide / stageForm, and the
Chinese search, through the public GraphQL API on SQLite and PostgreSQL (issue #11 §1)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tortoise.exceptions import IntegrityError

from api.models import ApprovalItem, Case, ItemGuide, TemplateItem, TemplateStage
from api.services.catalog import DEFAULT_ROOT, CatalogInvalid, load_catalog, read_catalog
from api.services.guides import ranked_items, search_items
from tests.api.flows import upload
from tests.factories import PROJECT_CODE

REPO = Path(__file__).resolve().parents[2]
GUIDE_SECTIONS = """implementingBody serviceObjects caseType conditions materials { code name source form copies required when }
    steps { name text } legalLimit { days unit } legalLimitText promisedLimit { days unit text } charged feeNote
    fees { name amount basis } basis { law articles text } location hours phone complaintPhone resultName visits
    onlineDepth faq { question answer } demo notice version"""


@pytest.fixture
async def catalogue(world):
    """The shipped catalogue loaded over the test world (its process type 3 template becomes the catalogue's)."""
    catalog = read_catalog()
    await load_catalog(catalog)
    return catalog


async def _items(gql, flt=None, first=50, after=None, as_user=None):
    data = await gql.op("ApprovalItems", {"first": first, "after": after, "filter": flt}, as_user=as_user)
    return data["approvalItems"]


# -- the data files ----------------------------------------------------------------------------------------------------
def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(DEFAULT_ROOT, root)
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    "file,old,new,where",
    [
        # a wrong reference
        ("templates.toml", '"HC-SGXK", "WA-PSXK", "MA-FLSJ"] },', '"HC-SGXX", "WA-PSXK", "MA-FLSJ"] },',
         ("templates.toml", "templates[0].stages[2].items[2]")),
        ("templates.toml", '{ stage = 1, lead = "ZH-DR"', '{ stage = 1, lead = "ZH-XX"',
         ("templates.toml", "templates[0].stages[0].lead")),
        ("departments/ZH-NR.toml", 'predecessors = ["NR-FASC"]', 'predecessors = ["NR-NONE"]',
         ("departments/ZH-NR.toml", "items[NR-GCGH].predecessors")),
        ("forms.toml", 'known_from = "stage2.buildingArea"', 'known_from = "stage2.floorArea"',
         ("forms.toml", "stages[3].fields[buildingArea].known_from")),
        # a missing required element
        ("departments/ZH-HC.toml", 'fee_note = "不收费"\nbasis = [\n  { law = "《中华人民共和国建筑法》"',
         'basis = [\n  { law = "《中华人民共和国建筑法》"', ("departments/ZH-HC.toml", "items[HC-SGXK].fee_note")),
        ("departments/ZH-EE.toml", 'result = "环境影响评价文件批复"\n', "", ("departments/ZH-EE.toml", "items[EE-HPSP].result")),
        ("departments/ZH-WS.toml", 'phone = "0756-2000112（演示号码）"\n', "", ("departments/ZH-WS.toml", "department.guide.phone")),
        ("catalog.toml", "demo = true\n", "", ("catalog.toml", "catalog.demo")),
        # a limit that disagrees: with the law, and with the template
        ("departments/ZH-HC.toml", "limit = { days = 5, unit = \"WD\" }\nlegal_limit = { days = 7",
         "limit = { days = 9, unit = \"WD\" }\nlegal_limit = { days = 7", ("departments/ZH-HC.toml", "items[HC-SGXK].limit")),
        ("templates.toml", '"HC-SGTSC", "HC-SGXK", "UM-ZDWJ"', '"HC-SGTSC", { code = "HC-SGXK", limit_days = 7 }, "UM-ZDWJ"',
         ("templates.toml", "templates[1].stages[2].items[1].limit_days")),
        # not TOML at all
        ("synonyms.toml", "[synonyms]", "[synonyms", ("synonyms.toml", "-")),
    ],
)
def test_a_broken_file_is_refused_naming_file_and_field(tmp_path, file, old, new, where):
    root = _copy(tmp_path)
    _edit(root / file, old, new)
    with pytest.raises(CatalogInvalid) as raised:
        read_catalog(root)
    assert where in {(e.file, e.field) for e in raised.value.errors}, raised.value.errors
    assert all(not e.message.isascii() for e in raised.value.errors)  # Chinese reasons


def test_load_catalog_command_reports_errors_and_loads_nothing(tmp_path):
    root = _copy(tmp_path)
    _edit(root / "departments/ZH-HC.toml", 'kind = "TECHNICAL_REVIEW"', 'kind = "REVIEW"')
    env = {"JIANSHEN_DATABASE_URL": f"sqlite://{tmp_path}/never.sqlite3", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "api", "load-catalog", "--dir", str(root)], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "departments/ZH-HC.toml: items[HC-SGTSC].kind:" in done.stderr
    assert not (tmp_path / "never.sqlite3").exists()
    ok = subprocess.run(
        [sys.executable, "-m", "api", "load-catalog", "--check"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and "28 items" in ok.stdout, ok.stderr


def test_every_item_has_a_complete_guide_that_agrees_with_the_templates():
    catalog = read_catalog()
    assert catalog.meta["demo"] is True and "演示" in catalog.meta["notice"]
    for code in catalog.items:
        g = catalog.guide(code)
        for key in ("department", "conditions", "materials", "steps", "promised_limit", "fee_note", "basis",
                    "location", "hours", "phone", "complaint_phone", "result", "faq", "online_depth", "case_type",
                    "service_object"):
            assert g[key], (code, key)
        assert g["legal_limit"] or g["legal_limit_text"], code
        assert g["visits"] is not None and g["demo"] is True, code
        assert all(m["source"] and m["form"] and m["copies"] >= 1 for m in g["materials"]), code
        assert all(m["required"] or m["when"] for m in g["materials"]), code
        assert all(b["law"].startswith("《") for b in g["basis"]), code
        stage = catalog.item_stage.get(code)
        if stage:
            # The guide lists exactly the materials submitApplication asks in the item's stage.
            assert [(m["code"], m["required"]) for m in g["materials"]] == [
                (m["code"], m["required"]) for m in catalog.stages[stage]["materials"]
            ], code
    assert len(catalog.items) == 28


async def test_loaded_templates_use_the_guides_limits_and_forms(catalogue):
    for entry in await TemplateItem.all().select_related("item", "template_stage"):
        if entry.item.code not in catalogue.items:
            continue
        limit = catalogue.items[entry.item.code]["limit"]
        assert (entry.limit_days, entry.limit_unit.value) == (limit["days"], limit["unit"])
        guide = (await ItemGuide.filter(item_id=entry.item.id).order_by("-version").first()).content
        assert guide["promised_limit"] == limit
        stage = await TemplateStage.get(id=entry.template_stage.id)
        assert [m["code"] for m in stage.materials] == [m["code"] for m in guide["materials"]]


# -- GraphQL -------------------------------------------------------------------------------------------------------
async def test_approval_items_filters_and_pages(gql, catalogue):
    everything = await _items(gql)  # public: no sign-in needed
    assert everything["totalCount"] == 28 + 4  # the catalogue and the test world's A–D
    stage3 = await _items(gql, {"stage": 3, "processType": 3})
    assert [e["node"]["code"] for e in stage3["edges"]] == [
        "HC-SGTSC", "HC-XFSJ", "HC-SGXK", "UM-ZDWJ", "WA-PSXK", "MA-FLSJ"
    ] or sorted(e["node"]["code"] for e in stage3["edges"]) == sorted(
        ["HC-SGTSC", "HC-XFSJ", "HC-SGXK", "UM-ZDWJ", "WA-PSXK", "MA-FLSJ"]
    )
    housing = await _items(gql, {"department": "ZH-HC"})
    assert {e["node"]["department"]["name"] for e in housing["edges"]} == {"珠海市住房和城乡建设局"}
    assert housing["totalCount"] == 6
    small = await _items(gql, {"processType": 4})
    assert small["totalCount"] == 9
    # Pages: the cursors walk the list without gaps or repeats.
    seen, after = [], None
    while True:
        page = await _items(gql, {"department": "ZH-HC"}, first=4, after=after)
        seen += [e["node"]["code"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(e["node"]["code"] for e in housing["edges"]) and len(seen) == 6


async def test_bad_filters_are_coded_errors(gql, catalogue):
    query = "query($f: ApprovalItemFilter, $first: Int!) { approvalItems(first: $first, filter: $f) { totalCount } }"
    for variables in ({"f": {"stage": 9}, "first": 5}, {"f": {"search": "查" * 101}, "first": 5}, {"f": None, "first": 0}):
        (error,) = await gql.errors(query, variables)
        assert error["extensions"]["code"] == "INVALID_INPUT" and not error["message"].isascii()


async def test_item_guide_has_every_section(gql, catalogue):
    page = await _items(gql, {"search": "建筑工程施工许可证核发"})
    node = page["edges"][0]["node"]
    assert node["code"] == "HC-SGXK"
    data = await gql.op("ItemGuide", {"code": "HC-SGXK"})  # public: no sign-in needed
    assert data["approvalItem"]["id"] == node["id"]
    guide = data["approvalItem"]["guide"]
    assert guide["implementingBody"] == "珠海市住房和城乡建设局"
    assert guide["promisedLimit"] == {"days": 5, "unit": "WD", "text": "5个工作日"}
    assert guide["legalLimit"] == {"days": 7, "unit": "WD", "text": "7个工作日"}
    assert guide["feeNote"] == "不收费" and guide["charged"] is False
    assert {"law": "《中华人民共和国建筑法》", "articles": ["第七条", "第八条"],
            "text": "《中华人民共和国建筑法》第七条、第八条"} in guide["basis"]
    assert guide["resultName"] == "建筑工程施工许可证" and guide["visits"] == 0
    assert [m["code"] for m in guide["materials"]] == ["M00", "M31", "M32", "M34", "M33"]
    assert guide["materials"][4]["required"] is False and guide["materials"][4]["when"]
    assert [s["name"] for s in guide["steps"]] == ["申请", "受理", "审查", "决定", "送达"]
    assert guide["faq"] and all(q["question"] and q["answer"] for q in guide["faq"])
    assert guide["demo"] is True and "演示" in guide["notice"] and guide["version"] == 1
    # A fee with its amount and basis.
    water = (await _items(gql, {"search": "水保方案"}))["edges"][0]["node"]
    fees = (await gql.op("ItemGuide", {"code": water["code"]}))["approvalItem"]["guide"]
    assert fees["charged"] is True and fees["fees"][0]["name"] == "水土保持补偿费"
    assert (await gql.op("ItemGuide", {"code": "NO-SUCH"}))["approvalItem"] is None


# What people type, and the item it means (or the items it could mean). Kept as data; extend freely.
SEARCHES = [
    ("供水报装", "WS-GSBZ"), ("供水报装需要什么材料", "WS-GSBZ"), ("自来水怎么接", "WS-GSBZ"),
    ("接电要多久", "PG-GDBZ"), ("供电报装收费吗", "PG-GDBZ"), ("天然气怎么接", "GAS-RQBZ"), ("燃气报装", "GAS-RQBZ"),
    ("施工证", "HC-SGXK"), ("施工证怎么办", "HC-SGXK"), ("开工证", "HC-SGXK"), ("施工许可在哪办", "HC-SGXK"),
    ("施工许可证多少钱", "HC-SGXK"), ("环评要多久", "EE-HPSP"), ("环评收费吗", "EE-HPSP"), ("环境影响评价", "EE-HPSP"),
    ("排水证", "WA-PSXK"), ("排水许可证有效期", "WA-PSXK"), ("水保", "WA-SBFA"), ("水保方案", "WA-SBFA"),
    ("用地规划许可证要多久", "NR-YDGH"), ("用地证", "NR-YDGH"), ("建设工程规划许可证", "NR-GCGH"),
    ("工程规划证", "NR-GCGH"), ("选址意见书", "NR-YDYS"), ("用地预审", "NR-YDYS"), ("设计方案审查", "NR-FASC"),
    ("规划核实", "NR-GHHS"), ("规划验收", "NR-GHHS"), ("可研批复", "DR-KXXYJ"), ("可行性研究报告", "DR-KXXYJ"),
    ("项目建议书", "DR-XMJYS"), ("初设", "DR-CBSJ"), ("概算审批", "DR-CBSJ"), ("企业投资项目备案要什么材料", "DR-XMBA"),
    ("人防审批", "CA-RFSJ"), ("人防验收", "CA-RFBA"), ("消防验收要多久", "HC-XFYS"),
    ("消防设计审查需要什么材料", "HC-XFSJ"), ("图审要多久", "HC-SGTSC"), ("施工图审查", "HC-SGTSC"),
    ("竣工验收", "HC-LHYS"), ("联合验收", "HC-LHYS"), ("竣工备案要多久", "HC-JGBA"), ("挖路审批", "UM-ZDWJ"),
    ("占道施工", "UM-ZDWJ"), ("公路涉路施工", "TR-SLSG"), ("防雷审核", "MA-FLSJ"), ("危化品", "EM-AQTJ"),
    ("安评", "EM-AQTJ"),
    # ambiguous: one candidate per item it could mean
    ("规划证", {"NR-YDGH", "NR-GCGH"}), ("规划许可证怎么办", {"NR-YDGH", "NR-GCGH"}),
    ("消防怎么办", {"HC-XFSJ", "HC-XFYS"}), ("防雷", {"MA-FLSJ", "MA-FLYS"}), ("人防", {"CA-RFSJ", "CA-RFBA"}),
    ("报装", {"WS-GSBZ", "PG-GDBZ", "GAS-RQBZ"}), ("立项", {"DR-XMBA", "DR-XMJYS"}),
    # nothing: never a wrong item
    ("我要投诉", set()), ("今天天气怎么样", set()), ("办证", set()),
]


async def test_search_understands_chinese(gql, catalogue):
    wrong = []
    for text, expected in SEARCHES:
        found = await search_items(text)
        if isinstance(expected, str):
            ok = (found.best, found.ambiguous, found.candidates) == (expected, False, [expected])
        else:
            ok = found.best is None and set(found.candidates) == expected and found.ambiguous is bool(expected)
        if not ok:
            wrong.append((text, expected, found.candidates))
    assert wrong == []
    ranked = await ranked_items("供水报装")
    assert ranked[0][0].code == "WS-GSBZ" and ranked[0][1] > ranked[1][1]
    # The same through GraphQL, ordered by relevance; concurrently.
    pages = await asyncio.gather(*(_items(gql, {"search": text}, first=3) for text, _ in SEARCHES))
    for (text, expected), page in zip(SEARCHES, pages):
        codes = [e["node"]["code"] for e in page["edges"]]
        if isinstance(expected, str):
            assert codes[0] == expected, text
        elif expected:
            assert set(codes[: len(expected)]) == expected, text
        else:
            assert codes == [], text


# -- the stage form ------------------------------------------------------------------------------------------------
async def _submit(gql, stage, items, form, materials):
    m = """mutation($input: SubmitApplicationInput!) { submitApplication(input: $input) {
        errors { field code message } application { parallelInstanceCode form } cases { code guideVersion } } }"""
    data = await gql(m, {"input": {"projectCode": PROJECT_CODE, "stage": stage, "itemCodes": items, "form": form,
                                   "materials": materials}}, as_user="applicant")
    return data["submitApplication"]


async def test_stage_form_is_what_submit_application_checks(gql, client, world, catalogue):
    form = (await gql.op("StageForm", {"projectCode": PROJECT_CODE, "stage": 1}, as_user="applicant"))["stageForm"]
    assert form["stageName"] == "立项用地规划许可" and form["leadDepartment"]["name"] == "珠海市自然资源局"
    assert [i["code"] for i in form["items"]] == ["DR-XMBA", "NR-YDYS", "NR-YDGH"]
    fields = {f["name"]: f for f in form["fields"]}
    assert fields["address"]["knownValue"] == world.projects["main"].address  # from the project: 最多填一次
    assert fields["landUse"]["type"] == "CHOICE" and "居住用地" in fields["landUse"]["choices"]
    assert fields["landArea"]["knownValue"] is None and fields["landArea"]["required"]
    required = [m["material"]["code"] for m in form["materials"] if m["material"]["required"]]
    assert required == ["M00", "M11", "M12"] and not any(m["onFile"] for m in form["materials"])

    # submitApplication refuses a required field left out, and takes the known one from the project.
    uploads = {code: await upload(client, world, "applicant") for code in required}
    materials = [{"code": c, "uploadIds": [u]} for c, u in uploads.items()]
    payload = await _submit(gql, 1, ["NR-YDYS"], {"landUse": "居住用地", "constructionScale": "住宅"}, materials)
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("FORM_INVALID", "form.landArea")]
    payload = await _submit(gql, 1, ["NR-YDYS"], {"landArea": 1000, "landUse": "居住用地", "constructionScale": "住宅"},
                            materials[:2])
    assert payload["errors"][0]["code"] == "MATERIAL_MISSING"
    payload = await _submit(gql, 1, ["NR-YDYS"], {"landArea": 1000, "landUse": "居住用地", "constructionScale": "住宅"},
                            materials)
    assert payload["errors"] == [], payload
    assert payload["application"]["form"]["address"] == world.projects["main"].address
    assert payload["cases"][0]["guideVersion"] == 1

    # The next application of the stage: materials on file and the form values known (不重复提交, 最多填一次).
    again = (await gql.op("StageForm", {"projectCode": PROJECT_CODE, "stage": 1}, as_user="applicant"))["stageForm"]
    by_code = {m["material"]["code"]: m for m in again["materials"]}
    assert by_code["M11"]["onFile"] and by_code["M11"]["reusedFrom"] == payload["application"]["parallelInstanceCode"]
    assert {f["name"]: f["knownValue"] for f in again["fields"]}["landArea"] == 1000
    second = await _submit(gql, 1, ["DR-XMBA"], {}, [])
    assert second["errors"] == [], second


async def test_stage_form_is_permission_checked(gql, catalogue):
    query = "query($c: String!) { stageForm(projectCode: $c, stage: 1) { stage } }"
    assert (await gql(query, {"c": PROJECT_CODE}, as_user="other_applicant"))["stageForm"] is None
    assert (await gql(query, {"c": PROJECT_CODE}))["stageForm"] is None  # not signed in
    (error,) = await gql.errors(query, {"c": "2026-4404"}, as_user="applicant")
    assert error["extensions"]["code"] == "INVALID_PROJECT_CODE"
    (error,) = await gql.errors(
        "query($c: String!) { stageForm(projectCode: $c, stage: 7) { stage } }", {"c": PROJECT_CODE}, as_user="applicant"
    )
    assert error["extensions"]["code"] == "STAGE_NOT_IN_TEMPLATE"


async def test_a_guide_change_never_alters_a_case_already_received(gql, client, world, catalogue, tmp_path):
    required = ["M00", "M11", "M12"]
    materials = [{"code": c, "uploadIds": [await upload(client, world, "applicant")]} for c in required]
    first = await _submit(gql, 1, ["NR-YDYS"], {"landArea": 1, "landUse": "居住用地", "constructionScale": "住宅"},
                          materials)
    assert first["errors"] == []
    # The city lengthens the limit of 用地预审 and adds a required material to stage 1.
    root = _copy(tmp_path)
    _edit(root / "departments/ZH-NR.toml", 'limit = { days = 10, unit = "WD" }\nlegal_limit = { days = 20, unit = "WD" }\n'
          'conditions = [\n  "建设项目符合', 'limit = { days = 12, unit = "WD" }\nlegal_limit = { days = 20, unit = "WD" }\n'
          'conditions = [\n  "建设项目符合')
    _edit(root / "forms.toml", 'code = "M13"', 'code = "M14"\nname = "新增材料"\nsource = "申请人自备"\nform = "电子材料"\n'
          'copies = 1\nrequired = true\n\n[[stages.materials]]\ncode = "M13"')
    report = await load_catalog(read_catalog(root))
    assert report.new_guide_versions >= 1
    case = await Case.get(code=first["cases"][0]["code"])
    assert (case.limit_days, case.guide_version) == (10, 1)  # the rules it was received under
    item = await ApprovalItem.get(code="NR-YDYS")
    latest = await ItemGuide.filter(item_id=item.id).order_by("-version").first()
    assert latest.version == 2 and latest.content["promised_limit"]["days"] == 12
    # The first version is kept as it was.
    assert (await ItemGuide.get(item_id=item.id, version=1)).content["promised_limit"]["days"] == 10
    # A new case is received under the new version, with the new limit and materials.
    payload = await _submit(gql, 1, ["NR-YDGH"], {}, [])
    assert payload["errors"][0]["code"] == "MATERIAL_MISSING"
    payload = await _submit(gql, 1, ["NR-YDGH"], {}, [{"code": "M14", "uploadIds": [await upload(client, world, "applicant")]}])
    assert payload["errors"] == [], payload
    new_case = await Case.get(code=payload["cases"][0]["code"])
    assert new_case.guide_version == (await ItemGuide.filter(item__code="NR-YDGH").order_by("-version").first()).version


async def test_concurrent_searches_and_loads_agree(gql, catalogue):
    texts = ["供水报装", "施工证", "环评要多久", "排水证"] * 5
    pages = await asyncio.gather(*(_items(gql, {"search": t}, first=1) for t in texts))
    assert [p["edges"][0]["node"]["code"] for p in pages] == ["WS-GSBZ", "HC-SGXK", "EE-HPSP", "WA-PSXK"] * 5
    # Loading the same catalogue twice at once makes no new guide version and no duplicate row.
    results = await asyncio.gather(load_catalog(catalogue), load_catalog(catalogue), return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, IntegrityError)], results
    assert await ItemGuide.all().count() == 28


async def test_concurrent_loads_of_a_changed_guide_make_one_new_version(catalogue, tmp_path):
    root = _copy(tmp_path)
    _edit(root / "departments/ZH-EE.toml", '{ q = "环评要多久？"', '{ q = "环评审批要多久？"')
    changed = read_catalog(root)
    results = await asyncio.gather(*(load_catalog(changed) for _ in range(4)), return_exceptions=True)
    # Each load commits whole or not at all: a loser of the race is refused (run it again), never half-applied.
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, IntegrityError)], results
    assert any(not isinstance(r, BaseException) for r in results)
    versions = await ItemGuide.filter(item__code="EE-HPSP").order_by("version").values_list("version", flat=True)
    assert versions == [1, 2]
    assert await ItemGuide.all().count() == 29
