"""The conversation's assistant (issue #11 §2): what it understands and what it answers, on SQLite and PostgreSQL.

The world: the shipped catalogue over the test world; the applicant's project has 用地预审 and 用地规划许可 approved
(with their certificates, rateable), 施工许可 running with a yellow light and 排水许可 running with a red one; the
other organisation has a red 施工许可 of its own, which the applicant must never see.

The labelled questions live in tests/data/conversation_questions*.toml (the second file is held out: never tuned
against). ``ask(text) -> Answer`` is the one function the accuracy test calls: re-point it at GraphQL sendMessage to
run the same set through the public API (each labelled question is asked in a fresh conversation, after its
``before`` message when it has one).
"""

from __future__ import annotations

import asyncio
import shutil
import tomllib
from pathlib import Path
from typing import Awaitable, Callable

import pytest

from api.domain.accounts import Role
from api.models import Case, Certificate, Department
from api.services.access import Viewer
from api.services.assistant import Answer, answer, read_rules, understand, warm_up
from api.services.catalog import DEFAULT_ROOT, load_catalog, read_catalog
from api.services.guides import guide_index
from tests.api.flows import act_ok, approve, run_to_in_progress, upload
from tests.factories import OTHER_PROJECT_CODE, PROJECT_CODE, shanghai

DATA = Path(__file__).resolve().parents[1] / "data"
NOW = shanghai(2026, 11, 6, 15)  # 施工许可 (5 WD, accepted 11-02) has 1 day left; 排水许可 (10 WD, 10-12) is overdue


def _questions(name: str) -> list[dict]:
    return tomllib.loads((DATA / name).read_text(encoding="utf-8"))["questions"]


async def _apply(gql, client, world, user: str, project: str, stage: int, items: list[str]) -> dict[str, str]:
    """Submit a stage of a project as the mini-program does: the stage form tells what is missing."""
    form = (await gql.op("StageForm", {"projectCode": project, "stage": stage}, as_user=user))["stageForm"]
    values = {}
    for f in form["fields"]:
        if f["required"] and f["knownValue"] is None:
            values[f["name"]] = {"NUMBER": 1000, "CHOICE": (f["choices"] or [""])[0], "DATE": "2026-10-01"}.get(
                f["type"], "测试"
            )
    materials = [
        {"code": m["material"]["code"], "uploadIds": [await upload(client, world, user)]}
        for m in form["materials"]
        if m["material"]["required"] and not m["onFile"]
    ]
    variables = {"input": {"projectCode": project, "stage": stage, "itemCodes": items, "form": values,
                           "materials": materials}}
    payload = (await gql.op("SubmitApplication", variables, as_user=user))["submitApplication"]
    assert payload["errors"] == [], payload["errors"]
    return {c["item"]["code"]: c["id"] for c in payload["cases"]}


@pytest.fixture
async def catalogue(world):
    """The shipped catalogue over the test world, without any case: for what needs only the guides."""
    await load_catalog(read_catalog())
    return {"viewers": {key: Viewer.of(user) for key, user in world.users.items()}}


@pytest.fixture
async def matters(gql, client, world, clock):
    """The catalogue and the cases described in the module's docstring; the viewers by key."""
    await load_catalog(read_catalog())
    for key, dept in [("nr", "ZH-NR"), ("hc", "ZH-HC"), ("wa", "ZH-WA")]:
        await world.add_user(key, f"审批{dept}", Role.APPROVER, department=await Department.get(code=dept))
    clock.set(shanghai(2026, 10, 12, 9))
    stage1 = await _apply(gql, client, world, "applicant", PROJECT_CODE, 1, ["NR-YDYS", "NR-YDGH"])
    for code in ("NR-YDYS", "NR-YDGH"):
        await run_to_in_progress(gql, stage1[code], "nr")
    psxk = await _apply(gql, client, world, "applicant", PROJECT_CODE, 3, ["WA-PSXK"])
    await act_ok(gql, "AcceptCase", "clerk", caseId=psxk["WA-PSXK"])
    theirs = await _apply(gql, client, world, "other_applicant", OTHER_PROJECT_CODE, 3, ["HC-SGXK"])
    await act_ok(gql, "AcceptCase", "clerk", caseId=theirs["HC-SGXK"])
    clock.set(shanghai(2026, 10, 20, 10))
    for code in ("NR-YDYS", "NR-YDGH"):
        await approve(gql, stage1[code], "nr")
    clock.set(shanghai(2026, 11, 2, 9))
    sgxk = await _apply(gql, client, world, "applicant", PROJECT_CODE, 3, ["HC-SGXK"])
    await run_to_in_progress(gql, sgxk["HC-SGXK"], "hc")
    clock.set(NOW)
    return {
        "viewers": {key: Viewer.of(user) for key, user in world.users.items()},
        "cases": {(c.project.code, c.item.code): c.id for c in await Case.all().prefetch_related("item", "project")},
    }


async def _conversation(viewer: Viewer) -> Callable[[str], Awaitable[Answer]]:
    """A fresh conversation: ``ask(text)`` remembers the item of the previous answer, as the conversation does."""
    state: dict[str, str | None] = {"item": None}

    async def ask(text: str) -> Answer:
        reply = await answer(text, viewer, now=NOW, previous_item_code=state["item"])
        state["item"] = reply.item_code
        return reply

    return ask


def _kinds(reply: Answer) -> list[str]:
    return sorted({c.kind for c in reply.cards})


# -- the issue's examples ---------------------------------------------------------------------------------------------
async def test_the_issue_examples(matters):
    await warm_up()
    applicant = matters["viewers"]["applicant"]
    ask = await _conversation(applicant)
    index = await guide_index()

    water = await ask("供水报装需要什么材料")
    (card,) = water.cards
    assert (water.intent, card.kind, card.item_code, card.section) == ("guide", "GUIDE", "WS-GSBZ", "MATERIALS")
    assert card.title == "供水报装 · 申请材料"
    guide = read_catalog().guide("WS-GSBZ")
    assert all(m["name"] in card.text for m in guide["materials"]) and water.item_code == "WS-GSBZ"
    # A follow-up without the item uses the one being discussed.
    follow = await ask("那要多久？")
    assert (follow.cards[0].item_code, follow.cards[0].section) == ("WS-GSBZ", "TIME_LIMIT")
    assert "15个自然日" in follow.cards[0].text

    eia = await ask("环评要多久")
    assert (eia.cards[0].item_code, eia.cards[0].section) == ("EE-HPSP", "TIME_LIMIT")
    assert "15个工作日" in eia.cards[0].text

    mine = await ask("我的证照")
    expected = set(await Certificate.filter(organization_id=applicant.organization_id).values_list("id", flat=True))
    assert mine.intent == "certificates" and {c.object_id for c in mine.cards} == expected and len(expected) == 2
    assert _kinds(mine) == ["CERTIFICATE"]

    complaint = await ask("我要投诉")
    assert [(c.kind, c.action) for c in complaint.cards] == [("ACTION", "FILE_COMPLAINT")]

    staff = await ask("转人工")
    assert [(c.kind, c.action) for c in staff.cards] == [("ACTION", "CONSULT_STAFF")]
    assert staff.item_code == "EE-HPSP"  # routed to the department of the item being discussed

    fire = await ask("消防怎么办")
    assert fire.intent == "ambiguous" and fire.cards == () and fire.item_code is None
    by_name = {name: code for code, name in index.names.items()}
    assert sorted(by_name[q.label] for q in fire.quick_replies) == ["HC-XFSJ", "HC-XFYS"]
    # Each quick reply is a full question the assistant resolves to its item, unambiguously.
    for reply in fire.quick_replies:
        code = by_name[reply.label]
        chosen = await ask(reply.text)
        assert (chosen.intent, chosen.cards[0].item_code, chosen.cards[0].section) == ("guide", code, "OVERVIEW")

    # Concurrent questions get the answers they get alone.
    texts = ["供水报装需要什么材料", "环评要多久", "我的证照", "消防怎么办", "有没有快超期的", "天气", "我要评价"] * 4
    alone = [await answer(t, applicant, now=NOW) for t in texts]
    together = await asyncio.gather(*(answer(t, applicant, now=NOW) for t in texts))
    assert list(together) == alone


async def test_every_quick_reply_resolves_to_what_it_names(catalogue):
    """The quick replies of ambiguous and guide answers are questions the assistant answers exactly."""
    ask = await _conversation(catalogue["viewers"]["applicant"])
    index = await guide_index()
    by_name = {name: code for code, name in index.names.items()}
    for text in ["规划证需要什么材料", "报装要多久", "人防怎么办", "立项收费吗", "施工证怎么办"]:
        first = await ask(text)
        assert first.quick_replies, text
        for reply in first.quick_replies:
            second = await ask(reply.text)
            assert second.intent == "guide", (text, reply.text)
            code = by_name.get(reply.label, first.item_code)
            assert second.cards[0].item_code == code, (text, reply.text)


async def test_the_guide_card_is_taken_from_the_current_guide(catalogue, tmp_path):
    ask = await _conversation(catalogue["viewers"]["applicant"])
    first = await ask("施工许可证收费吗")
    assert first.cards[0].text == "收费：不收费" and "第1版" in first.text
    # The city edits the guide: the next answer quotes the new version.
    root = tmp_path / "catalog"
    shutil.copytree(DEFAULT_ROOT, root)
    path = root / "departments/ZH-HC.toml"
    text = path.read_text(encoding="utf-8")
    old = 'result = "建筑工程施工许可证"\nfee_note = "不收费"'
    assert old in text
    path.write_text(text.replace(old, 'result = "建筑工程施工许可证"\nfee_note = "不收费（工本费亦免收）"'), encoding="utf-8")
    await load_catalog(read_catalog(root))
    second = await ask("施工许可证收费吗")
    assert second.cards[0].text == "收费：不收费（工本费亦免收）" and "第2版" in second.text


# -- the viewer's own matters -----------------------------------------------------------------------------------------
async def test_progress_shows_only_the_viewers_own_cases(matters):
    viewers, cases = matters["viewers"], matters["cases"]
    ask = await _conversation(viewers["applicant"])
    theirs = cases[(OTHER_PROJECT_CODE, "HC-SGXK")]

    overview = await ask("我的项目到哪一步了")
    assert _kinds(overview) == ["PROJECT"]
    assert "测试项目main" in overview.text and "测试项目other" not in overview.text

    yellow = await ask("有没有快超期的")
    assert [c.object_id for c in yellow.cards] == [cases[(PROJECT_CODE, "HC-SGXK")]] and "预警" in yellow.text
    red = await ask("有没有超期的")
    assert [c.object_id for c in red.cards] == [cases[(PROJECT_CODE, "WA-PSXK")]]
    named = await ask("施工许可办到哪了")
    assert [c.object_id for c in named.cards] == [cases[(PROJECT_CODE, "HC-SGXK")]] and named.item_code == "HC-SGXK"
    none = await ask("供水报装进度怎么样了")
    assert none.cards == () and "没有" in none.text
    # A project named in the question: its card and its cases, running first.
    main = await ask("测试项目main到哪一步了")
    assert [c.kind for c in main.cards][:1] == ["PROJECT"] and main.cards[1].object_id in {
        cases[(PROJECT_CODE, "HC-SGXK")], cases[(PROJECT_CODE, "WA-PSXK")]}
    assert {c.object_id for c in main.cards[1:]} <= {cid for (p, _), cid in cases.items() if p == PROJECT_CODE}
    overdue = await ask(f"{PROJECT_CODE}有没有超期的")
    assert [c.object_id for c in overdue.cards] == [cases[(PROJECT_CODE, "WA-PSXK")]]
    # Another organisation's project is not found by its name either.
    foreign = await ask("测试项目other到哪一步了")
    assert theirs not in {c.object_id for c in foreign.cards} and "测试项目other（" not in foreign.text

    # The other organisation sees its own overdue case, and never the applicant's.
    other = await (await _conversation(viewers["other_applicant"]))("有没有超期的办件")
    assert [c.object_id for c in other.cards] == [theirs]
    for text in ["我的项目到哪一步了", "有没有超期的", "施工许可办到哪了", "我的证照", "我要评价"]:
        reply = await ask(text)
        assert theirs not in {c.object_id for c in reply.cards if c.kind == "CASE"}, text
        other_reply = await (await _conversation(viewers["other_applicant"]))(text)
        mine = {cid for (project, _), cid in cases.items() if project == PROJECT_CODE}
        assert not mine & {c.object_id for c in other_reply.cards if c.kind in ("CASE", "ACTION")}, text
        assert "测试项目main" not in other_reply.text, text


async def test_staff_and_citizens_have_no_projects_of_their_own(catalogue):
    for key in ["clerk", "planner", "supervisor", "citizen"]:
        ask = await _conversation(catalogue["viewers"][key])
        for text in ["我的项目到哪一步了", "我的证照", "有没有超期的"]:
            reply = await ask(text)
            assert reply.cards == () and reply.text, (key, text)
        if key != "citizen":  # staff file no complaints and consult nobody
            for text in ["我要投诉", "转人工", "我要评价"]:
                reply = await ask(text)
                assert reply.cards == () and "工作人员" in reply.text, (key, text)
        # Guides are for everyone.
        guide = await ask("施工许可证收费吗")
        assert guide.cards[0].section == "FEES" and "不收费" in guide.cards[0].text


async def test_a_rating_action_names_the_rateable_case(matters):
    cases = matters["cases"]
    ask = await _conversation(matters["viewers"]["applicant"])
    reply = await ask("我想评价一下服务")
    decided = {cases[(PROJECT_CODE, "NR-YDYS")], cases[(PROJECT_CODE, "NR-YDGH")]}
    assert {(c.action, c.object_id) for c in reply.cards} == {("RATE_SERVICE", cid) for cid in decided}
    one = await ask("评价一下用地预审")
    assert [c.object_id for c in one.cards] == [cases[(PROJECT_CODE, "NR-YDYS")]]
    # Nothing decided to rate: said so, no action.
    none = await (await _conversation(matters["viewers"]["other_applicant"]))("我要评价")
    assert none.cards == () and "没有可以评价" in none.text


async def test_never_a_wrong_item(catalogue):
    ask = await _conversation(catalogue["viewers"]["applicant"])
    for text in ["夜间施工许可怎么办", "取水许可要多久", "营业执照需要什么材料", "今天天气怎么样", "", "   ", "？？？",
                 "a" * 2000, "那要多久"]:
        reply = await ask(text)
        assert reply.intent == "unknown" and reply.item_code is None, text
        assert [c.action for c in reply.cards] == ["CONSULT_STAFF"] and reply.quick_replies, text


# -- the rules are data -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "old,new,where",
    [
        ('patterns = ["有没有', 'patterns = ["(有没有', r"intents\[\d+\]\.patterns"),
        ('action = "FILE_COMPLAINT"', 'action = "FILE_LAWSUIT"', r"intents\[\d+\]\.action"),
        ("{complaint_reply_days}个工作日", "{reply_days}个工作日", r"intents\[\d+\]\.reply"),
        ('follow_up = "', 'follow_upp = "', "replies"),
    ],
)
def test_a_broken_rules_file_names_the_entry(tmp_path, old, new, where):
    path = tmp_path / "intents.toml"
    text = (Path(__file__).resolve().parents[2] / "api/data/assistant/intents.toml").read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ValueError, match=where):
        read_rules(path)


def test_every_synonym_points_at_an_item():
    """The assistant names an item through a synonym only when the synonym's target is in the item's name or result."""
    catalog = read_catalog()
    titles = [f"{i['name']} {i['result']}" for i in catalog.items.values()]
    lost = [(k, t) for k, ts in catalog.synonyms.items() for t in ts if not any(t in title for title in titles)]
    assert lost == []


async def test_understanding_is_explainable(catalogue):
    index = await guide_index()
    u = understand("施工许可阶段有没有快超期的", index)
    assert (u.intent, u.stage, set(u.lights), u.item) == ("progress", 3, {"YELLOW"}, None)
    u = understand("项目建议书需要什么材料", index)  # 建议 inside an item's name is not a suggestion
    assert (u.intent, u.item, u.section) == (None, "DR-XMJYS", "MATERIALS")


# -- the labelled questions -------------------------------------------------------------------------------------------
async def _accuracy(name: str, new_conversation: Callable[[], Awaitable[Callable[[str], Awaitable[Answer]]]]
                    ) -> tuple[float, list[str]]:
    """Ask every labelled question of a file, each in a fresh conversation (after its ``before`` message)."""
    index = await guide_index()
    by_name = {n: code for code, n in index.names.items()}
    questions = _questions(name)
    wrong = []
    for q in questions:
        ask = await new_conversation()
        if q.get("before"):
            await ask(q["before"])
        reply = await ask(q["text"])
        got = {
            "intent": reply.intent,
            "item": reply.item_code,
            "section": next((c.section for c in reply.cards if c.kind == "GUIDE"), None),
            "cards": _kinds(reply),
            "candidates": sorted(by_name.get(r.label, "?") for r in reply.quick_replies)
            if reply.intent == "ambiguous" else None,
        }
        want = {
            "intent": q["intent"], "item": q.get("item"), "section": q.get("section"), "cards": sorted(q["cards"]),
            "candidates": sorted(q["candidates"]) if "candidates" in q else None,
        }
        if got != want:
            wrong.append(f"{q['text']!r}: want {want} got {got}")
    return 1 - len(wrong) / len(questions), wrong


async def test_labelled_questions_accuracy(matters):
    viewer = matters["viewers"]["applicant"]
    tuned, tuned_wrong = await _accuracy("conversation_questions.toml", lambda: _conversation(viewer))
    held, held_wrong = await _accuracy("conversation_questions_heldout.toml", lambda: _conversation(viewer))
    print(f"\nassistant accuracy: tuning set {tuned:.1%} ({len(_questions('conversation_questions.toml'))} questions), "
          f"held-out set {held:.1%} ({len(_questions('conversation_questions_heldout.toml'))} questions)")
    for line in tuned_wrong:
        print("  wrong (tuning set):", line)
    for line in held_wrong:
        print("  wrong (held out):", line)
    assert tuned >= 0.95, tuned_wrong
    assert held >= 0.95, held_wrong
