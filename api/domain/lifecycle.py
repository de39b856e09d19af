"""The case lifecycle: the 15 BLZT codes of the exchange standard and the transitions between them (DOMAIN.md §4).

Pure rules: given the current state, an action, the party acting and the data it brings, either the new state and the
cleaned data of the event, or a ``LifecycleError`` naming what is wrong. Nothing here reads or writes anything; the
services load the case, call ``plan_transition`` and append the event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

from api.domain.errors import DomainError
from api.domain.timing import BLZT_CODES, DECISION_STATES, STATE_LABELS, TERMINAL_STATES, CaseState


class Party(str, Enum):
    APPLICANT = "APPLICANT"  # 申请人
    WINDOW = "WINDOW"  # 综合服务窗口
    DEPARTMENT = "DEPARTMENT"  # 审批部门 (a clerk, or the department's own system)


class Action(str, Enum):
    RECEIVE = "RECEIVE"  # 1 已接件
    WITHDRAW = "WITHDRAW"  # 2 已撤件
    ACCEPT = "ACCEPT"  # 3 已受理
    NOT_ACCEPT = "NOT_ACCEPT"  # 4 不受理
    REFUSE = "REFUSE"  # 5 不予受理
    REQUEST_CORRECTION = "REQUEST_CORRECTION"  # 6 补正(开始)
    SUBMIT_CORRECTION = "SUBMIT_CORRECTION"  # 7 补正(结束)
    START = "START"  # 8 部门开始办理
    BEGIN_SPECIAL_PROCEDURE = "BEGIN_SPECIAL_PROCEDURE"  # 9 特别程序(开始)
    END_SPECIAL_PROCEDURE = "END_SPECIAL_PROCEDURE"  # 10 特别程序(结束)
    APPROVE = "APPROVE"  # 11 办结(通过)
    APPROVE_DEFICIENT = "APPROVE_DEFICIENT"  # 12 办结(容缺通过)
    DISAPPROVE = "DISAPPROVE"  # 13 办结(不通过)
    RETRACT = "RETRACT"  # 14 撤回
    REVOKE = "REVOKE"  # 15 撤销


ACTION_BLZT: dict[Action, int] = {action: code for code, action in enumerate(Action, start=1)}
BLZT_ACTION: dict[int, Action] = {code: action for action, code in ACTION_BLZT.items()}

# The BLZT code of a case *being in* a state, and the states' labels, live with the states (timing.py).
STATE_BLZT = BLZT_CODES

ACTION_LABELS: dict[Action, str] = {
    Action.RECEIVE: "接件",
    Action.WITHDRAW: "撤件",
    Action.ACCEPT: "受理",
    Action.NOT_ACCEPT: "不受理",
    Action.REFUSE: "不予受理",
    Action.REQUEST_CORRECTION: "补正告知",
    Action.SUBMIT_CORRECTION: "提交补正材料",
    Action.START: "开始办理",
    Action.BEGIN_SPECIAL_PROCEDURE: "特别程序开始",
    Action.END_SPECIAL_PROCEDURE: "特别程序结束",
    Action.APPROVE: "办结(通过)",
    Action.APPROVE_DEFICIENT: "办结(容缺通过)",
    Action.DISAPPROVE: "办结(不通过)",
    Action.RETRACT: "撤回",
    Action.REVOKE: "撤销",
}

# States in which nothing more happens to a case, except that an approval may later be revoked (撤销).
CLOSED_STATES = TERMINAL_STATES
# "Decided" in the sense of the predecessor rule [规程 7.8]: a decision was taken (a revoked approval was decided too).
DECIDED_STATES = frozenset(DECISION_STATES | {CaseState.REVOKED})
# The clock has started and the case is not closed: these are the cases whose lights make a stage's light.
OPEN_CLOCK_STATES = frozenset({CaseState.ACCEPTED, CaseState.IN_PROGRESS, CaseState.SPECIAL_PROCEDURE})
APPROVED_STATES = frozenset({CaseState.APPROVED, CaseState.APPROVED_DEFICIENT})


@dataclass(frozen=True)
class Rule:
    sources: frozenset[CaseState | None]
    target: CaseState
    parties: frozenset[Party]


_AFTER_ACCEPTANCE = frozenset({CaseState.ACCEPTED, CaseState.IN_PROGRESS, CaseState.SPECIAL_PROCEDURE})

RULES: dict[Action, Rule] = {
    Action.RECEIVE: Rule(frozenset({None}), CaseState.RECEIVED, frozenset({Party.APPLICANT})),
    Action.WITHDRAW: Rule(
        frozenset({CaseState.RECEIVED, CaseState.CORRECTION, CaseState.CORRECTED}),
        CaseState.WITHDRAWN,
        frozenset({Party.APPLICANT}),
    ),
    Action.ACCEPT: Rule(
        frozenset({CaseState.RECEIVED, CaseState.CORRECTED}), CaseState.ACCEPTED, frozenset({Party.WINDOW})
    ),
    Action.NOT_ACCEPT: Rule(
        frozenset({CaseState.RECEIVED, CaseState.CORRECTED}), CaseState.NOT_ACCEPTED, frozenset({Party.WINDOW})
    ),
    Action.REFUSE: Rule(
        frozenset({CaseState.RECEIVED, CaseState.CORRECTED}), CaseState.REFUSED, frozenset({Party.WINDOW})
    ),
    Action.REQUEST_CORRECTION: Rule(
        frozenset({CaseState.RECEIVED}), CaseState.CORRECTION, frozenset({Party.WINDOW})
    ),
    Action.SUBMIT_CORRECTION: Rule(
        frozenset({CaseState.CORRECTION}), CaseState.CORRECTED, frozenset({Party.APPLICANT})
    ),
    Action.START: Rule(frozenset({CaseState.ACCEPTED}), CaseState.IN_PROGRESS, frozenset({Party.DEPARTMENT})),
    Action.BEGIN_SPECIAL_PROCEDURE: Rule(
        frozenset({CaseState.IN_PROGRESS}), CaseState.SPECIAL_PROCEDURE, frozenset({Party.DEPARTMENT})
    ),
    Action.END_SPECIAL_PROCEDURE: Rule(
        frozenset({CaseState.SPECIAL_PROCEDURE}), CaseState.IN_PROGRESS, frozenset({Party.DEPARTMENT})
    ),
    Action.APPROVE: Rule(frozenset({CaseState.IN_PROGRESS}), CaseState.APPROVED, frozenset({Party.DEPARTMENT})),
    Action.APPROVE_DEFICIENT: Rule(
        frozenset({CaseState.IN_PROGRESS}), CaseState.APPROVED_DEFICIENT, frozenset({Party.DEPARTMENT})
    ),
    Action.DISAPPROVE: Rule(
        frozenset({CaseState.IN_PROGRESS}), CaseState.DISAPPROVED, frozenset({Party.DEPARTMENT})
    ),
    Action.RETRACT: Rule(_AFTER_ACCEPTANCE, CaseState.RETRACTED, frozenset({Party.APPLICANT})),
    Action.REVOKE: Rule(frozenset(APPROVED_STATES), CaseState.REVOKED, frozenset({Party.DEPARTMENT})),
}


class SpecialProcedureKind(str, Enum):
    """特别程序 [规程 7.7]: the clock stops while one runs."""

    PUBLICITY = "PUBLICITY"  # 公示
    ANNOUNCEMENT = "ANNOUNCEMENT"  # 公告
    SITE_SURVEY = "SITE_SURVEY"  # 现场勘查
    EXPERT_REVIEW = "EXPERT_REVIEW"  # 专家评审
    THIRD_PARTY_ASSESSMENT = "THIRD_PARTY_ASSESSMENT"  # 第三方评估
    SUPERIOR_APPROVAL = "SUPERIOR_APPROVAL"  # 上级部门审批


SPECIAL_PROCEDURE_LABELS = {
    SpecialProcedureKind.PUBLICITY: "公示",
    SpecialProcedureKind.ANNOUNCEMENT: "公告",
    SpecialProcedureKind.SITE_SURVEY: "现场勘查",
    SpecialProcedureKind.EXPERT_REVIEW: "专家评审",
    SpecialProcedureKind.THIRD_PARTY_ASSESSMENT: "第三方评估",
    SpecialProcedureKind.SUPERIOR_APPROVAL: "上级部门审批",
}

NO_EXPIRY = dt.date(9999, 1, 1)  # 有效期限 9999-01-01 = 长期有效 [交换标准]
MAX_TEXT = 2000
MAX_LIST = 100
MAX_SPECIAL_DAYS = 365


class LifecycleError(DomainError):
    """A transition refused by the rules of DOMAIN.md §4."""


@dataclass(frozen=True)
class PlannedTransition:
    action: Action
    source: CaseState | None
    target: CaseState
    blzt: int
    data: dict[str, Any]


def plan_transition(
    current: CaseState | None,
    action: Action,
    party: Party,
    data: Mapping[str, Any] | None = None,
    *,
    correction_already_requested: bool = False,
) -> PlannedTransition:
    """Check that ``party`` may do ``action`` on a case in ``current`` with ``data``; return what to record."""
    rule = RULES[action]
    if party not in rule.parties:
        raise LifecycleError(
            "WRONG_PARTY", f"“{ACTION_LABELS[action]}”只能由{_party_names(rule.parties)}办理", None
        )
    if current not in rule.sources:
        state_text = "尚未接件" if current is None else f"当前状态为“{STATE_LABELS[current]}”"
        raise LifecycleError(
            "INVALID_TRANSITION",
            f"办件{state_text}，不能“{ACTION_LABELS[action]}”",
            None,
        )
    if action is Action.REQUEST_CORRECTION and correction_already_requested:
        # 一次性告知 [规程 7.3]: the window asks for all corrections at once, never a second time.
        raise LifecycleError(
            "CORRECTION_ALREADY_REQUESTED", "该办件已进行过一次性补正告知，不能再次要求补正", None
        )
    cleaned = _validate_data(action, dict(data or {}))
    return PlannedTransition(action, current, rule.target, ACTION_BLZT[action], cleaned)


def _party_names(parties: frozenset[Party]) -> str:
    names = {Party.APPLICANT: "申请人", Party.WINDOW: "综合服务窗口", Party.DEPARTMENT: "审批部门"}
    return "或".join(names[p] for p in sorted(parties, key=lambda p: p.value))


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def _text(data: dict[str, Any], key: str, *, required: bool, label: str, prefix: str = "") -> str | None:
    """A free text; ``field`` in errors is the API's camelCase path (``document.documentNumber``)."""
    field = prefix + _camel(key)
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise LifecycleError("REASON_REQUIRED" if key == "reason" else "REQUIRED", f"请填写{label}", field)
        return None
    if not isinstance(value, str):
        raise LifecycleError("INVALID_INPUT", f"{label}格式不正确", field)
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise LifecycleError("INVALID_INPUT", f"{label}不能超过{MAX_TEXT}个字", field)
    return value


def _date(data: dict[str, Any], key: str, label: str, prefix: str = "") -> dt.date:
    field = prefix + _camel(key)
    value = data.get(key)
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise LifecycleError("INVALID_INPUT", f"{label}应为日期（YYYY-MM-DD）", field) from None
    if not isinstance(value, dt.date):
        raise LifecycleError("APPROVAL_DOCUMENT_REQUIRED", f"请填写{label}", field)
    return value


def _validate_data(action: Action, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    opinion = _text(data, "opinion", required=False, label="办理意见")
    if opinion:
        out["opinion"] = opinion

    if action in (Action.NOT_ACCEPT, Action.REFUSE, Action.DISAPPROVE, Action.REVOKE):
        out["reason"] = _text(data, "reason", required=True, label="理由")
    elif action in (Action.WITHDRAW, Action.RETRACT):
        reason = _text(data, "reason", required=False, label="理由")
        if reason:
            out["reason"] = reason

    if action is Action.REQUEST_CORRECTION:
        out["corrections"] = _correction_list(data.get("corrections"))

    if action is Action.BEGIN_SPECIAL_PROCEDURE:
        try:
            kind = SpecialProcedureKind(data.get("kind"))
        except ValueError:
            raise LifecycleError("INVALID_INPUT", "请选择特别程序种类", "kind") from None
        days = data.get("expected_days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_SPECIAL_DAYS:
            raise LifecycleError(
                "INVALID_INPUT", f"特别程序预计时长应为1至{MAX_SPECIAL_DAYS}天", "expectedDays"
            )
        out["kind"] = kind.value
        out["reason"] = _text(data, "reason", required=True, label="启动特别程序的理由")
        out["expected_days"] = days

    if action is Action.END_SPECIAL_PROCEDURE:
        out["result"] = _text(data, "result", required=True, label="特别程序结果")

    if action in (Action.APPROVE, Action.APPROVE_DEFICIENT):
        doc = data.get("document")
        if not isinstance(doc, Mapping):
            raise LifecycleError("APPROVAL_DOCUMENT_REQUIRED", "办结(通过)须提供批复文件信息", "document")
        doc = dict(doc)
        approval_date = _date(doc, "approval_date", "批复日期", "document.")
        number = _text(doc, "document_number", required=True, label="批复文号", prefix="document.")
        title = _text(doc, "document_title", required=True, label="批复文件标题", prefix="document.")
        valid_until = _date(doc, "valid_until", "有效期限（长期有效填9999-01-01）", "document.")
        if valid_until < approval_date:
            raise LifecycleError("INVALID_INPUT", "有效期限不能早于批复日期", "document.validUntil")
        out["document"] = {
            "approval_date": approval_date.isoformat(),
            "document_number": number,
            "document_title": title,
            "valid_until": valid_until.isoformat(),
        }
        if action is Action.APPROVE_DEFICIENT:
            committed = data.get("committed_items")
            items = _string_list(committed, "committedItems", "容缺承诺事项")
            if not items:
                raise LifecycleError("REQUIRED", "容缺通过须列明申请人承诺补交的材料或事项", "committedItems")
            out["committed_items"] = items
    return out


def _string_list(value: Any, field: str, label: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise LifecycleError("INVALID_INPUT", f"{label}格式不正确", field)
    items = [v.strip() for v in value if v.strip()]
    if len(items) > MAX_LIST or any(len(v) > MAX_TEXT for v in items):
        raise LifecycleError("INVALID_INPUT", f"{label}过多或过长", field)
    return items


def _correction_list(value: Any) -> list[dict[str, str]]:
    """The complete list of what to correct [规程 7.3]: every entry names a material and what is wrong with it."""
    if not isinstance(value, (list, tuple)) or not value:
        raise LifecycleError("CORRECTION_LIST_REQUIRED", "请一次性列明全部需要补正的材料及补正要求", "corrections")
    if len(value) > MAX_LIST:
        raise LifecycleError("INVALID_INPUT", f"补正清单不能超过{MAX_LIST}项", "corrections")
    out = []
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise LifecycleError("INVALID_INPUT", "补正清单格式不正确", "corrections")
        material = entry.get("material")
        requirement = entry.get("requirement")
        if not isinstance(material, str) or not material.strip():
            raise LifecycleError("CORRECTION_LIST_REQUIRED", f"补正清单第{index + 1}项缺少材料名称", "corrections")
        if not isinstance(requirement, str) or not requirement.strip():
            raise LifecycleError("CORRECTION_LIST_REQUIRED", f"补正清单第{index + 1}项缺少补正要求", "corrections")
        if len(material) > MAX_TEXT or len(requirement) > MAX_TEXT:
            raise LifecycleError("INVALID_INPUT", "补正清单内容过长", "corrections")
        out.append({"material": material.strip(), "requirement": requirement.strip()})
    return out
