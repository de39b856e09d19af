"""The assistant of the conversation (issue #11 §2, DESIGN.md §3a): one user message → one answer with cards.

Understanding is in-process and explainable, and its rules are data (api/data/assistant/intents.toml):

1. The items a message names are found by the guide search (api/services/guides.py: jieba, BM25, the synonym list)
   and replaced by a mark, so that the words of an item (环境影响*评价*, 项目*建议*书) never read as an intent.
2. The first intent rule that matches the rest decides what is asked: progress, certificates, complaint, suggestion,
   rating, consult_staff, greeting …; with none, a named item makes a guide question, and the section is the first
   section whose cue words appear (材料 → MATERIALS, 多久 → TIME_LIMIT …, else OVERVIEW).
3. Never a wrong item: an item counts as named only when the message contains one of its phrases (name, 结果名称, a
   synonym) not qualified by an unknown word (夜间施工许可 is not 施工许可), or the search scores it confidently; a
   phrase standing for several items (规划证, 消防) is ambiguous and answered with one quick reply per item; a
   follow-up without an item (那要多久？) uses the item of the previous answer only when nothing else is left unexplained.

Answers about the viewer's own matters (projects, cases, certificates, rateable cases) read through the viewer's scopes
(api/services/access.py, certificates.py, ratings.py): nobody is ever shown another organisation's matters.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.domain.accounts import Role
from api.domain.catalog import STAGE_NAMES, Stage
from api.domain.lifecycle import OPEN_CLOCK_STATES
from api.domain.timing import Light, local_date, worst

if TYPE_CHECKING:
    from api.services.access import Viewer
    from api.services.guides import GuideIndex

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "assistant" / "intents.toml"
MARK = "＃"  # stands for an item the message names
MAX_TEXT = 500  # characters of a message that are read
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_SPLIT = re.compile(r"[\s,，。.!！?？;；:：、~～…（）()\[\]【】“”\"'‘’]+")
SECTIONS = ("OVERVIEW", "CONDITIONS", "MATERIALS", "TIME_LIMIT", "FEES", "PROCESS", "LOCATION", "BASIS", "FAQ", "FORM")


@dataclass(frozen=True)
class QuickReply:
    label: str
    text: str


@dataclass(frozen=True)
class CardRef:
    kind: str  # "PROJECT" | "CASE" | "CERTIFICATE" | "GUIDE" | "NOTICE" | "COMPLAINT" | "ACTION"
    object_id: int | None = None  # database pk: project, case, certificate, notice, complaint; RATE_SERVICE: the case
    item_code: str | None = None  # GUIDE: the catalogue item code
    section: str | None = None  # GUIDE: GuideSection name
    title: str | None = None  # GUIDE: heading, e.g. "供水报装 · 申请材料"
    text: str | None = None  # GUIDE: the section's text, taken from the guide
    action: str | None = None  # ACTION: ConversationAction name
    label: str | None = None  # ACTION: button label


@dataclass(frozen=True)
class Answer:
    intent: str  # "guide", "progress", "certificates", "complaint", "suggestion", "rating", "consult_staff", …
    text: str  # the assistant's reply text (Chinese)
    cards: tuple[CardRef, ...] = ()
    quick_replies: tuple[QuickReply, ...] = ()
    item_code: str | None = None  # the item now being discussed (CONSULT_STAFF routing, follow-ups)


# -- the rules, as data ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntentRule:
    name: str
    priority: int
    words: tuple[str, ...]
    patterns: tuple[re.Pattern, ...]
    unless: tuple[str, ...]
    reply: str | None = None  # answered by these words alone ({about}, {complaint_reply_days})
    action: str | None = None  # the ActionCard of that answer
    staff_reply: str | None = None  # what staff get instead (no action)
    examples: bool = False  # offer the example questions

    def matches(self, masked: str, plain: str) -> bool:
        if any(u in plain for u in self.unless):
            return False
        return any(w in masked for w in self.words) or any(p.search(masked) for p in self.patterns)


@dataclass(frozen=True)
class SectionRule:
    name: str
    title: str
    ask: str
    words: tuple[str, ...]
    weak_words: tuple[str, ...] = ()  # ask for this section only when no other section's words appear


@dataclass(frozen=True)
class Rules:
    intents: tuple[IntentRule, ...]  # highest priority first
    sections: tuple[SectionRule, ...]  # first match wins
    lights: tuple[tuple[Light, tuple[str, ...]], ...]
    stages: tuple[tuple[int, tuple[str, ...]], ...]
    fillers: tuple[str, ...]
    confident_score: float
    max_cards: int
    examples: tuple[QuickReply, ...] = ()
    replies: dict[str, str] = field(default_factory=dict)  # unknown, follow_up
    known_words: tuple[str, ...] = field(default=())  # every cue and filler, longest first

    def section(self, name: str) -> SectionRule:
        return next(s for s in self.sections if s.name == name)

    def intent(self, name: str) -> IntentRule:
        return next(r for r in self.intents if r.name == name)


def read_rules(path: Path = RULES_FILE) -> Rules:
    """Read and check the rules file; a mistake names the entry (the file is edited by hand)."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    intents = []
    for i, entry in enumerate(doc.get("intents", [])):
        try:
            patterns = tuple(re.compile(p.replace("＃", MARK)) for p in entry.get("patterns", []))
        except re.error as exc:
            raise ValueError(f"{path.name}: intents[{i}].patterns: {exc}") from None
        rule = IntentRule(
            entry["name"], int(entry.get("priority", 0)), tuple(entry.get("words", [])), patterns,
            tuple(entry.get("unless", [])), entry.get("reply"), entry.get("action"), entry.get("staff_reply"),
            bool(entry.get("examples")),
        )
        if rule.action is not None and rule.action not in ACTION_LABELS:
            raise ValueError(f"{path.name}: intents[{i}].action: unknown action {rule.action}")
        try:
            (rule.reply or "").format(about="", complaint_reply_days=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{path.name}: intents[{i}].reply: unknown placeholder {exc}") from None
        intents.append(rule)
    intents.sort(key=lambda r: -r.priority)
    sections = tuple(
        SectionRule(s["name"], s["title"], s["ask"], tuple(s["words"]), tuple(s.get("weak_words", [])))
        for s in doc["sections"]
    )
    unknown = {s.name for s in sections} - set(SECTIONS)
    if unknown or "OVERVIEW" not in {s.name for s in sections}:
        raise ValueError(f"{path.name}: sections: unknown {sorted(unknown)} or OVERVIEW missing")
    lights = tuple((Light(e["light"]), tuple(e["words"])) for e in doc.get("lights", []))
    stages = tuple((int(e["stage"]), tuple(e["words"])) for e in doc.get("stages", []))
    fillers = tuple(doc.get("fillers", {}).get("words", []))
    known = {*fillers, *(w for r in intents for w in r.words), *(w for s in sections for w in s.words + s.weak_words),
             *(w for _, ws in lights for w in ws), *(w for _, ws in stages for w in ws)}
    limits = doc.get("limits", {})
    examples = tuple(QuickReply(q, q) for q in doc.get("examples", {}).get("questions", []))
    replies = dict(doc.get("replies", {}))
    if {"unknown", "follow_up"} - set(replies):
        raise ValueError(f"{path.name}: replies: unknown and follow_up are required")
    return Rules(tuple(intents), sections, lights, stages, fillers, float(limits.get("confident_score", 9.0)),
                 int(limits.get("max_cards", 5)), examples, replies, tuple(sorted(known, key=len, reverse=True)))


@lru_cache(maxsize=1)
def rules() -> Rules:
    return read_rules()


# -- understanding ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Understanding:
    intent: str | None  # from the intent rules; None = a guide question or nothing understood
    section: str | None  # the guide section asked for (by a cue word), None = none asked
    item: str | None  # the one item the message names
    candidates: tuple[str, ...]  # the items a message names ambiguously (规划证)
    lights: frozenset[Light]
    stage: int | None
    unexplained: str  # what is left of the message after the items, the cue words and the fillers


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()[:MAX_TEXT].lower()


def _remove(text: str, words) -> tuple[str, list[str]]:
    found = []
    for word in words:
        if word and word in text:
            found.append(word)
            text = text.replace(word, " ")
    return text, found


def _item_phrases(index: "GuideIndex") -> list[str]:
    """Every phrase that names an item: catalogue names and results, synonyms and their targets, longest first."""
    cached = getattr(index, "_assistant_phrases", None)
    if cached is None:
        synonyms = index.analyzer.vocabulary.synonyms
        phrases = {*index.phrases, *synonyms, *(t for ts in synonyms.values() for t in ts)}
        cached = sorted((p for p in phrases if len(p) > 1), key=len, reverse=True)
        index._assistant_phrases = cached  # one list per index (the index is rebuilt when a guide changes)
    return cached


def _qualified(masked: str, item_title: str, r: Rules) -> bool:
    """Does an unknown word directly qualify a named item (夜间 + 施工许可, 临时 + 用电, 商品房 + 许可证)? A
    modifier comes before its noun in Chinese: the last word before each mark must be a known word or the item's own."""
    from api.services.guides import _jieba

    jieba = _jieba()
    for match in re.finditer(MARK, masked):
        before = _SPLIT.split(masked[: match.start()])[-1]
        run = _CJK_RUN.findall(before[-8:])
        if not run or not before.endswith(run[-1]):
            continue
        words = jieba.lcut(run[-1])
        last = words[-1] if words else ""
        if last in item_title:
            continue
        left, _ = _remove(last, r.known_words)  # 办个, 要接: made of known words
        if len("".join(_CJK_RUN.findall(left))) > 1:
            return True
    return False


def understand(text: str, index: "GuideIndex", r: Rules | None = None) -> Understanding:
    r = r or rules()
    plain = normalize(text)
    # Stage names first: 施工许可阶段 is a stage, not the item 施工许可.
    stage = None
    rest = plain
    for number, words in r.stages:
        rest, found = _remove(rest, sorted(words, key=len, reverse=True))
        if found and stage is None:
            stage = number
    # The items it names, masked.
    masked, named = rest, []
    for phrase in _item_phrases(index):
        if phrase in masked:
            named.append(phrase)
            masked = masked.replace(phrase, MARK)
    intent = next((rule.name for rule in r.intents if rule.matches(masked, plain)), None)
    section = next((s.name for s in r.sections if any(w in masked for w in s.words)), None) or next(
        (s.name for s in r.sections if any(w in masked for w in s.weak_words)), None
    )
    lights: set[Light] = set()
    light_text = masked
    for light, words in r.lights:
        light_text, found = _remove(light_text, sorted(words, key=len, reverse=True))
        if found:
            lights.add(light)
    unexplained, _ = _remove(masked.replace(MARK, " "), r.known_words)
    unexplained = "".join(_CJK_RUN.findall(unexplained))

    item, candidates = None, ()
    if rest.strip():
        found = index.search(rest)
        top = found.hits[0] if found.hits else None
        confident = top is not None and (bool(named) or top.score >= r.confident_score)
        synonyms = index.analyzer.vocabulary.synonyms
        targets = {t for p in named for t in synonyms.get(p, (p,))}

        def pointed(code: str) -> bool:  # a phrase of the message names this item (a synonym through its targets)
            return any(t in index.titles.get(code, "") for t in targets)

        if confident and found.ambiguous:
            candidates = tuple(found.candidates)
            # Close scores, but the phrases of the message point at one of them only (竣工规划验收 → 规划条件核实).
            chosen = [c for c in candidates if pointed(c)]
            if len(chosen) == 1:
                item, candidates = chosen[0], ()
        elif confident and found.best is not None:
            if named and not pointed(found.best):
                pass  # the words of another item outscore the phrase the message names: no guess
            elif named or not unexplained:
                # (a confident score without any phrase of an item must leave no word of the message unexplained)
                item = found.best
        if named and any(_qualified(masked, index.titles.get(c, ""), r) for c in (item, *candidates) if c):
            item, candidates = None, ()  # 夜间施工许可: a different matter that merely contains an item's words
    return Understanding(intent, section, item, candidates, frozenset(lights), stage, unexplained)


async def warm_up() -> None:
    """Read the rules and build the guide index (jieba's dictionary, BM25) ahead of the first message: call it at
    start-up, so that no user's first question waits a second or two, and never inside a write transaction."""
    from api.services.guides import _jieba, guide_index

    rules()
    await guide_index()
    _jieba()


# -- answering --------------------------------------------------------------------------------------------------------
ACTION_LABELS = {
    "FILE_COMPLAINT": "我要投诉",
    "FILE_SUGGESTION": "我要提建议",
    "RATE_SERVICE": "评价办件",
    "CONSULT_STAFF": "在线咨询工作人员",
    "APPLY": "在线申报",
    "VIEW_PROGRESS": "查看办理进度",
    "VIEW_CERTIFICATES": "查看我的证照",
}


def _action(action: str, label: str | None = None, object_id: int | None = None) -> CardRef:
    return CardRef(kind="ACTION", action=action, label=label or ACTION_LABELS[action], object_id=object_id)


async def answer(
    text: str, viewer: "Viewer", *, now: dt.datetime, previous_item_code: str | None = None
) -> Answer:
    """The assistant's answer to one message of ``viewer`` (see the module's docstring).

    ``item_code`` of the answer is the item it is about, or else the one discussed before (a complaint or 转人工 after
    a guide question stays about that item); an ambiguous or unknown answer leaves it empty."""
    reply = await _answer(text, viewer, now, previous_item_code)
    if reply.item_code is None and reply.intent not in ("ambiguous", "unknown") and previous_item_code:
        reply = replace(reply, item_code=previous_item_code)
    return reply


async def _answer(text: str, viewer: "Viewer", now: dt.datetime, previous_item_code: str | None) -> Answer:
    from api.services.guides import guide_index
    from api.settings import get_settings

    index = await guide_index()
    r = rules()
    u = understand(text, index, r)
    named = (u.item,) if u.item else u.candidates
    handler = {"rating": _rating, "progress": _progress, "certificates": _certificates}.get(u.intent or "")
    if handler is not None:
        return await handler(viewer, text, u, named, now, index, r)
    rule = r.intent(u.intent) if u.intent else None
    if rule is not None and rule.reply is not None:
        if viewer.role.is_staff and rule.staff_reply:
            return Answer(rule.name, rule.staff_reply, item_code=u.item)
        item = u.item or (previous_item_code if rule.action == "CONSULT_STAFF" else None)
        about = f"关于“{index.names[item]}”的问题" if item in index.names else "您的问题"
        reply = rule.reply.format(about=about, complaint_reply_days=get_settings().complaint_reply_days)
        return Answer(rule.name, reply, (_action(rule.action),) if rule.action else (),
                      r.examples if rule.examples else (), item_code=item)
    if u.item:
        return await _guide(u.item, u.section or "OVERVIEW", text, index, r)
    if u.candidates:
        section = r.section(u.section or "OVERVIEW")
        names = [index.names[c] for c in u.candidates]
        return Answer(
            "ambiguous", f"您问的可能是以下事项之一：{'、'.join(names)}。请选择您要办理的事项。",
            quick_replies=tuple(QuickReply(name, f"{name}{section.ask}") for name in names),
        )
    if u.section and u.section != "OVERVIEW" and previous_item_code in index.names and not u.unexplained:
        return await _guide(previous_item_code, u.section, text, index, r)
    return _unknown(r, follow_up=bool(u.section and not u.unexplained))


def _unknown(r: Rules, *, follow_up: bool = False) -> Answer:
    text = r.replies["follow_up" if follow_up else "unknown"]
    return Answer("unknown", text, (_action("CONSULT_STAFF"),), r.examples)


# -- guides -------------------------------------------------------------------------------------------------------------
def _limit_text(limit: dict[str, Any] | None) -> str:
    from api.services.catalog import limit_text

    return limit_text(limit) if limit else ""


async def _guide(code: str, section: str, question: str, index: "GuideIndex", r: Rules) -> Answer:
    from api.models import ItemGuide

    row = await ItemGuide.filter(item__code=code).order_by("-version").first()
    if row is None:  # the index and the catalogue disagree for a moment (a load is under way)
        return _unknown(r)
    g = row.content
    rule = r.section(section)
    body = await _section_text(section, g, question, index)
    name = g["name"]
    others = [s for s in ("MATERIALS", "TIME_LIMIT", "FEES", "LOCATION", "PROCESS") if s != section][:4]
    return Answer(
        "guide",
        f"“{name}”的{rule.title}如下（{g.get('department', '')}，办事指南第{row.version}版）。",
        (CardRef(kind="GUIDE", item_code=code, section=section, title=f"{name} · {rule.title}", text=body),),
        tuple(QuickReply(r.section(s).title, f"{name}{r.section(s).ask}") for s in others),
        item_code=code,
    )


async def _section_text(section: str, g: dict[str, Any], question: str, index: "GuideIndex") -> str:
    promised = _limit_text(g.get("promised_limit"))
    if section == "MATERIALS":
        lines = []
        for i, m in enumerate(g.get("materials", []), start=1):
            need = "必要" if m.get("required") else f"视情况（{m['when']}）" if m.get("when") else "视情况"
            extra = f"；{m['notes']}" if m.get("notes") else ""
            blank = f"；空白表格：{m['blank_form']}" if m.get("blank_form") else ""
            lines.append(f"{i}. {m['name']}（{m.get('form') or '电子材料'}{m.get('copies') or 1}份，{need}{extra}{blank}）")
        lines.append("已在前面阶段提交过的材料、已取得的电子证照无需重复提交。")
        return "\n".join(lines)
    if section == "TIME_LIMIT":
        legal = g.get("legal_limit_text") or "法律未规定"
        return (f"承诺时限：{promised}，自受理次日起计算（特别程序时间不计入）。\n法定时限：{legal}。")
    if section == "FEES":
        lines = [f"收费：{g.get('fee_note', '')}"]
        lines += [f"{f['name']}：{f['amount']}（依据：{f['basis']}）" for f in g.get("fees", [])]
        return "\n".join(lines)
    if section == "LOCATION":
        visits = g.get("visits") or 0
        return (f"办理地点：{g.get('location', '')}\n办理时间：{g.get('hours', '')}\n咨询电话：{g.get('phone', '')}\n"
                f"监督投诉电话：{g.get('complaint_phone', '')}\n网办深度：{g.get('online_depth', '')}；"
                f"到办事现场次数：{visits}次" + ("（全程网办，可在建审小程序在线申报）" if visits == 0 else ""))
    if section == "CONDITIONS":
        return "\n".join(f"{i}. {c}" for i, c in enumerate(g.get("conditions", []), start=1))
    if section == "BASIS":
        return "\n".join(f"{b['law']}{'、'.join(b.get('articles', []))}" for b in g.get("basis", []))
    if section == "PROCESS":
        return "\n".join(f"{i}. {s['name']}：{s['text']}" for i, s in enumerate(g.get("steps", []), start=1))
    if section == "FAQ":
        faq = list(g.get("faq", []))
        terms = set(index.analyzer.terms(question))
        faq.sort(key=lambda f: -len(terms & set(index.analyzer.terms(f["q"]))))
        return "\n".join(f"问：{f['q']}\n答：{f['a']}" for f in faq)
    if section == "FORM":
        return await _form_text(g)
    service = "、".join(g.get("service_object", []))
    return (f"实施主体：{g.get('department', '')}\n服务对象：{service}\n办件类型：{g.get('case_type', '')}\n"
            f"承诺时限：{promised}\n收费：{g.get('fee_note', '')}\n办理结果：{g.get('result', '')}\n"
            f"网办深度：{g.get('online_depth', '')}\n" + (f"说明：{g['notice']}" if g.get("notice") else "")).strip()


async def _form_text(g: dict[str, Any]) -> str:
    from api.models import TemplateStage

    stage = g.get("stage")
    forms = [m for m in g.get("materials", []) if m.get("blank_form") or m.get("sample")]
    lines = []
    if stage:
        row = await TemplateStage.filter(stage=stage).order_by("id").first()
        fields = (row.form_fields or []) if row else []
        stage_name = STAGE_NAMES[Stage(stage)]
        lines.append(f"本事项随“{stage_name}”阶段的一张表单在线申报，需填写：")
        lines += [f"- {f['label']}{'（必填）' if f.get('required') else ''}" for f in fields]
        lines.append("已在项目或前面阶段填过的内容自动带出，无需重复填写。")
    for m in forms:
        parts = [p for p in (m.get("blank_form"), m.get("sample")) if p]
        lines.append(f"{m['name']}：{'、'.join(parts)}")
    return "\n".join(lines) or "本事项无需单独填写申请表，在线申报时按提示填写即可。"


# -- the viewer's own matters -----------------------------------------------------------------------------------------
def _not_an_applicant(viewer: "Viewer", what: str) -> str | None:
    """Why the viewer has no "my projects / certificates", or None when it acts for an organisation."""
    if viewer.role.is_staff:
        return f"您当前是工作人员账号，没有个人的{what}；办件请在工作人员端的办件队列中查看。"
    if viewer.role is not Role.APPLICANT:
        return f"您的账号没有代表建设单位，暂无{what}。以建设单位经办人身份登录后可查看。"
    if viewer.organization_id is None:
        return f"您的经办人授权已失效或尚未授权，暂时看不到单位的{what}，请联系单位管理员授权。"
    return None


def _project_mentions(text: str, projects: list[Any]) -> list[Any]:
    """The viewer's projects a message names: by 项目代码, or by name (without a trailing 项目/工程)."""
    plain = normalize(text)
    found = []
    for p in projects:
        name = (p.name or "").lower()
        stem = re.sub(r"(项目|工程)$", "", name)
        if p.code in plain or (len(stem) >= 4 and stem in plain):
            found.append(p)
    return found


async def _progress(viewer: "Viewer", text: str, u: Understanding, named: tuple[str, ...], now: dt.datetime,
                    index: "GuideIndex", r: Rules) -> Answer:
    from api.models import Case, Project
    from api.services.access import case_scope, project_scope
    from api.services.calendar import get_calendar
    from api.services.clocks import timings_at

    item = named[0] if len(named) == 1 else None
    refusal = _not_an_applicant(viewer, "项目")
    if refusal:
        return Answer("progress", refusal, item_code=item)
    calendar = await get_calendar()
    mentioned = _project_mentions(text, await Project.filter(project_scope(viewer)).only("id", "name", "code"))
    if mentioned:
        # A project's own name is not a question about an item (珠海供水厂改造项目 is not 供水报装).
        rest = text
        for p in mentioned:
            rest = rest.replace(p.name, " ").replace(p.code, " ")
        u = understand(rest, index, r)
        named = (u.item,) if u.item else u.candidates
        item = named[0] if len(named) == 1 else None

    async def timed(query) -> tuple[list[Any], dict[int, Any]]:
        """Cases with their clocks (lights depend on today: computed, never stored)."""
        rows = await query.order_by("-id").prefetch_related("item", "project")
        return rows, await timings_at([c.id for c in rows if c.state in OPEN_CLOCK_STATES], calendar, local_date(now))

    if not named and not u.lights and u.stage is None:
        if mentioned:
            projects = sorted(mentioned, key=lambda p: -p.id)[: r.max_cards]
        else:
            projects = await Project.filter(project_scope(viewer)).order_by("-id").limit(r.max_cards)
        if not projects:
            return Answer("progress", "您所在的建设单位还没有项目。", quick_replies=r.examples[:2])
        cases, timings = await timed(Case.filter(case_scope(viewer), project_id__in=[p.id for p in projects]))
        lines = []
        for p in projects:
            own = [c for c in cases if c.project_id == p.id]
            if not own:
                lines.append(f"{p.name}（{p.code}）：尚未申报")
                continue
            stage = max(c.stage for c in own)
            light = worst(timings[c.id].light for c in own if c.id in timings)
            running = sum(1 for c in own if c.id in timings)
            lights = f"，亮灯：{light.label}" if light else ""
            lines.append(f"{p.name}（{p.code}）：当前在“{STAGE_NAMES[Stage(stage)]}”阶段，{running}件在办{lights}")
        cards = [CardRef(kind="PROJECT", object_id=p.id) for p in projects]
        if len(projects) == 1 and mentioned:  # one project asked about by name: its cases too, running ones first
            own = sorted((c for c in cases if c.project_id == projects[0].id), key=lambda c: c.id not in timings)
            cards += [CardRef(kind="CASE", object_id=c.id) for c in own[: r.max_cards - 1]]
        return Answer("progress", "您的项目进度如下：\n" + "\n".join(lines), tuple(cards))
    query = Case.filter(case_scope(viewer))
    if mentioned:
        query = query.filter(project_id__in=[p.id for p in mentioned])
    if named:
        query = query.filter(item__code__in=list(named))
    if u.stage is not None:
        query = query.filter(stage=u.stage)
    if u.lights:
        query = query.filter(state__in=list(OPEN_CLOCK_STATES))
    cases, timings = await timed(query)
    chosen = [c for c in cases if not u.lights or (c.id in timings and timings[c.id].light in u.lights)]
    what = "、".join(index.names.get(code, code) for code in named) if named else ""
    if u.stage is not None:
        what = f"“{STAGE_NAMES[Stage(u.stage)]}”阶段" + (f"的{what}" if what else "")
    if u.lights:
        worded = "或".join(sorted((lt.label for lt in u.lights), reverse=True))
        what = (what + "中" if what else "") + f"正在办理且{worded}的"
    if not chosen:
        return Answer("progress", f"您的项目中没有{what or '符合条件的'}办件。", quick_replies=r.examples[2:3],
                      item_code=item)
    lines = []
    for c in chosen[: r.max_cards]:
        t = timings.get(c.id)
        clock = light = ""
        if t is not None and t.remaining is not None:
            unit = "个工作日" if t.unit.value == "WD" else "天"
            clock = f"，剩余{t.remaining}{unit}" if t.remaining >= 0 else f"，已超期{-t.remaining}{unit}"
            light = f"，{t.light.label}" if t.light else ""
        lines.append(f"{c.item.name}（{c.project.name}）：{c.state.label}{clock}{light}")
    more = f"\n另有{len(chosen) - r.max_cards}件未列出。" if len(chosen) > r.max_cards else ""
    return Answer("progress", f"找到{len(chosen)}件{what}办件：\n" + "\n".join(lines) + more,
                  tuple(CardRef(kind="CASE", object_id=c.id) for c in chosen[: r.max_cards]), item_code=item)


async def _certificates(viewer: "Viewer", text: str, u: Understanding, named: tuple[str, ...], now: dt.datetime,
                        index: "GuideIndex", r: Rules) -> Answer:
    from api.models import Certificate
    from api.services.certificates import certificate_scope, status_of

    item = named[0] if len(named) == 1 else None
    refusal = _not_an_applicant(viewer, "电子证照")
    if refusal:
        return Answer("certificates", refusal, item_code=item)
    query = Certificate.filter(certificate_scope(viewer))
    if named:
        query = query.filter(case__item__code__in=list(named))
    found = await query.order_by("-id").limit(r.max_cards + 1)
    what = "、".join(index.names.get(code, code) for code in named)
    if not found:
        return Answer("certificates", f"您的单位还没有{'“' + what + '”的' if what else ''}电子证照。办结后证照会同步签发到这里。",
                      item_code=item)
    lines = [
        f"{c.type_name}（编号{c.number}，{status_of(c, now).label}，"
        f"{'长期有效' if c.valid_until.year >= 9999 else '有效期至' + c.valid_until.isoformat()}）"
        for c in found[: r.max_cards]
    ]
    return Answer("certificates", "您的电子证照如下，点击卡片可查看和下载：\n" + "\n".join(lines),
                  tuple(CardRef(kind="CERTIFICATE", object_id=c.id) for c in found[: r.max_cards]), item_code=item)


async def _rating(viewer: "Viewer", text: str, u: Understanding, named: tuple[str, ...], now: dt.datetime,
                  index: "GuideIndex", r: Rules) -> Answer:
    from api.models import Case, CaseEvent
    from api.models.feedback import Rating
    from api.services.ratings import DECISION_ACTIONS, RATABLE_CASE_STATES
    from api.settings import get_settings

    item = named[0] if len(named) == 1 else None
    if viewer.role.is_staff:
        return Answer("rating", "工作人员账号不参与好差评；差评整改请在工作人员端处理。", item_code=item)
    window = get_settings().rating_window_days
    query = Case.filter(application__applicant_id=viewer.user_id, state__in=list(RATABLE_CASE_STATES))
    if named:
        query = query.filter(item__code__in=list(named))
    cases = await query.order_by("-id").prefetch_related("item")
    rated = set(await Rating.filter(rater_id=viewer.user_id, matter_key__in=[f"case:{c.id}" for c in cases])
                .values_list("matter_key", flat=True))
    decided: dict[int, dt.datetime] = {}
    for e in await CaseEvent.filter(case_id__in=[c.id for c in cases], action__in=DECISION_ACTIONS).order_by("seq"):
        decided[e.case_id] = e.occurred_at
    rateable = [
        c for c in cases
        if f"case:{c.id}" not in rated and c.id in decided and now <= decided[c.id] + dt.timedelta(days=window)
    ][: r.max_cards]
    if not rateable:
        return Answer("rating", f"您目前没有可以评价的办件：办结后{window}日内可以对办件进行评价（一事一评）。",
                      item_code=item)
    return Answer("rating", "感谢您参与好差评！以下办件可以评价，点击按钮打分：",
                  tuple(_action("RATE_SERVICE", f"评价：{c.item.name}", c.id) for c in rateable), item_code=item)
