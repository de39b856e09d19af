"""Suggestions and complaints (建议和投诉) and service ratings (好差评): the pure rules (DOMAIN.md §8–9).

Nothing here reads or writes anything. The services load a complaint or a rating, ask these functions what may happen
and record it; the deadlines use the same working-day calendar and the same lights as the cases (DOMAIN.md §5).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Sequence

from api.domain.calendar import WorkCalendar
from api.domain.errors import DomainError
from api.domain.timing import CaseState, LimitUnit, StateChange, Timing, compute_timing, local_date

MAX_TEXT = 2000
MAX_MESSAGE = 1000
MAX_IMAGES = 9


# -- complaints -------------------------------------------------------------------------------------------------------


class ComplaintKind(str, Enum):
    SUGGESTION = "SUGGESTION"  # 建议
    COMPLAINT = "COMPLAINT"  # 投诉


class ComplaintCategory(str, Enum):
    """The problem types the national 建议和投诉 mini-program collects (住建部, 2021-09), plus four general ones."""

    REPEATED_SUBMISSION = "REPEATED_SUBMISSION"
    FORCED_PRE_REVIEW = "FORCED_PRE_REVIEW"
    OVERDUE = "OVERDUE"
    OFF_LIST = "OFF_LIST"
    EXPANDED_REVIEW = "EXPANDED_REVIEW"
    OUTSOURCED = "OUTSOURCED"
    DESIGNATED_AGENCY = "DESIGNATED_AGENCY"
    SERVICE_ATTITUDE = "SERVICE_ATTITUDE"
    SYSTEM_PROBLEM = "SYSTEM_PROBLEM"
    POLICY_SUGGESTION = "POLICY_SUGGESTION"
    OTHER = "OTHER"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]


CATEGORY_LABELS = {
    ComplaintCategory.REPEATED_SUBMISSION: "重复填报或重复提交材料",
    ComplaintCategory.FORCED_PRE_REVIEW: "强制预审查",
    ComplaintCategory.OVERDUE: "实际办理时间远超承诺时限",
    ComplaintCategory.OFF_LIST: "清单外事项或材料",
    ComplaintCategory.EXPANDED_REVIEW: "扩大审查内容或适用范围",
    ComplaintCategory.OUTSOURCED: "违规交由下属单位或中介承担",
    ComplaintCategory.DESIGNATED_AGENCY: "强制指定设计/检测/测绘/施工等机构",
    ComplaintCategory.SERVICE_ATTITUDE: "服务态度",
    ComplaintCategory.SYSTEM_PROBLEM: "系统问题",
    ComplaintCategory.POLICY_SUGGESTION: "政策建议",
    ComplaintCategory.OTHER: "其他",
}


class ComplaintState(str, Enum):
    SUBMITTED = "SUBMITTED"  # 已提交
    ASSIGNED = "ASSIGNED"  # 已分派
    REPLIED = "REPLIED"  # 已答复
    REOPENED = "REOPENED"  # 重新办理 (the filer was not satisfied)
    CLOSED = "CLOSED"  # 已办结

    @property
    def label(self) -> str:
        return COMPLAINT_STATE_LABELS[self]


COMPLAINT_STATE_LABELS = {
    ComplaintState.SUBMITTED: "已提交",
    ComplaintState.ASSIGNED: "已分派",
    ComplaintState.REPLIED: "已答复",
    ComplaintState.REOPENED: "重新办理",
    ComplaintState.CLOSED: "已办结",
}


class ComplaintAction(str, Enum):
    ASSIGN = "ASSIGN"  # 分派 (or re-assign) to a department
    REPLY = "REPLY"  # 答复
    CLOSE = "CLOSE"  # the filer closes it (satisfied or not)
    REOPEN = "REOPEN"  # the filer is not satisfied with the reply
    AUTO_CLOSE = "AUTO_CLOSE"  # no word from the filer within the auto-close period after a reply


class ComplaintParty(str, Enum):
    FILER = "FILER"
    DISPATCHER = "DISPATCHER"  # who routes complaints: a window clerk, a supervisor, an admin
    HANDLER = "HANDLER"  # staff of the department it is assigned to
    SYSTEM = "SYSTEM"


@dataclass(frozen=True)
class _ComplaintRule:
    sources: frozenset[ComplaintState]
    target: ComplaintState
    parties: frozenset[ComplaintParty]


_OPEN = frozenset({ComplaintState.SUBMITTED, ComplaintState.ASSIGNED, ComplaintState.REOPENED})
COMPLAINT_RULES: dict[ComplaintAction, _ComplaintRule] = {
    ComplaintAction.ASSIGN: _ComplaintRule(_OPEN, ComplaintState.ASSIGNED, frozenset({ComplaintParty.DISPATCHER})),
    ComplaintAction.REPLY: _ComplaintRule(
        frozenset({ComplaintState.ASSIGNED, ComplaintState.REOPENED}), ComplaintState.REPLIED,
        frozenset({ComplaintParty.HANDLER}),
    ),
    ComplaintAction.CLOSE: _ComplaintRule(
        frozenset({ComplaintState.REPLIED}), ComplaintState.CLOSED, frozenset({ComplaintParty.FILER})
    ),
    ComplaintAction.REOPEN: _ComplaintRule(
        frozenset({ComplaintState.REPLIED}), ComplaintState.REOPENED, frozenset({ComplaintParty.FILER})
    ),
    ComplaintAction.AUTO_CLOSE: _ComplaintRule(
        frozenset({ComplaintState.REPLIED}), ComplaintState.CLOSED, frozenset({ComplaintParty.SYSTEM})
    ),
}

ACTION_NAMES = {
    ComplaintAction.ASSIGN: "分派",
    ComplaintAction.REPLY: "答复",
    ComplaintAction.CLOSE: "办结",
    ComplaintAction.REOPEN: "重新办理",
    ComplaintAction.AUTO_CLOSE: "自动办结",
}


def plan_complaint_action(
    current: ComplaintState, action: ComplaintAction, party: ComplaintParty
) -> ComplaintState:
    """The state after ``action``; a clear refusal naming the current state otherwise (like the cases)."""
    rule = COMPLAINT_RULES[action]
    if party not in rule.parties:
        raise DomainError("PERMISSION_DENIED", f"您不能对该诉求进行“{ACTION_NAMES[action]}”", None)
    if current not in rule.sources:
        raise DomainError(
            "INVALID_TRANSITION", f"诉求当前状态为“{current.label}”，不能“{ACTION_NAMES[action]}”", None
        )
    return rule.target


def auto_closed(state: ComplaintState, replied_at: dt.datetime | None, now: dt.datetime, days: int) -> bool:
    """A reply the filer leaves unanswered for ``days`` natural days closes the complaint (DOMAIN.md §9)."""
    return state is ComplaintState.REPLIED and replied_at is not None and now >= replied_at + dt.timedelta(days=days)


def reply_timing(
    round_started: dt.datetime,
    replied_at: dt.datetime | None,
    *,
    limit: int,
    warning_days: int,
    calendar: WorkCalendar,
    now: dt.datetime,
) -> Timing:
    """The reply clock of the current round (from filing, or from the latest reopening): the case rules exactly —
    day 1 is the working day after, a reply stops it, the same lights (DOMAIN.md §5, §9)."""
    changes = [StateChange(round_started, CaseState.ACCEPTED)]
    if replied_at is not None:
        changes.append(StateChange(max(replied_at, round_started), CaseState.APPROVED))
    return compute_timing(
        changes, limit=limit, unit=LimitUnit.WD, warning_days=warning_days, calendar=calendar, now=now
    )


def check_complaint_text(text: str, *, field: str = "text", limit: int = MAX_TEXT) -> str:
    cleaned = (text or "").strip()
    if not cleaned:
        raise DomainError("REQUIRED", "请填写内容", field)
    if len(cleaned) > limit:
        raise DomainError("INVALID_INPUT", f"内容不能超过{limit}个字", field)
    return cleaned


def check_images(image_ids: Sequence[object], *, field: str = "imageIds") -> None:
    if len(image_ids) > MAX_IMAGES:
        raise DomainError("INVALID_INPUT", f"图片不能超过{MAX_IMAGES}张", field)


# -- ratings ----------------------------------------------------------------------------------------------------------


class RatingLevel(int, Enum):
    """GB/T 39734-2020: five levels; 1–2 are 差评."""

    VERY_DISSATISFIED = 1
    DISSATISFIED = 2
    BASICALLY_SATISFIED = 3
    SATISFIED = 4
    VERY_SATISFIED = 5

    @property
    def label(self) -> str:
        return LEVEL_LABELS[self]

    @property
    def is_bad(self) -> bool:
        return self <= RatingLevel.DISSATISFIED


LEVEL_LABELS = {
    RatingLevel.VERY_DISSATISFIED: "非常不满意",
    RatingLevel.DISSATISFIED: "不满意",
    RatingLevel.BASICALLY_SATISFIED: "基本满意",
    RatingLevel.SATISFIED: "满意",
    RatingLevel.VERY_SATISFIED: "非常满意",
}


class BadRatingReason(str, Enum):
    """Reasons a 差评 chooses from (国办发〔2019〕51号 lists the dimensions: 服务态度, 办事效率, 办理结果 …)."""

    SLOW = "SLOW"
    REPEATED_VISITS = "REPEATED_VISITS"
    UNCLEAR_GUIDE = "UNCLEAR_GUIDE"
    BAD_ATTITUDE = "BAD_ATTITUDE"
    UNREASONABLE_RESULT = "UNREASONABLE_RESULT"
    EXTRA_MATERIALS = "EXTRA_MATERIALS"
    SYSTEM_PROBLEM = "SYSTEM_PROBLEM"
    OTHER = "OTHER"

    @property
    def label(self) -> str:
        return REASON_LABELS[self]


REASON_LABELS = {
    BadRatingReason.SLOW: "办理时间过长/超时办理",
    BadRatingReason.REPEATED_VISITS: "多次跑动",
    BadRatingReason.UNCLEAR_GUIDE: "办事指南不清晰",
    BadRatingReason.BAD_ATTITUDE: "服务态度差",
    BadRatingReason.UNREASONABLE_RESULT: "办理结果不合理",
    BadRatingReason.EXTRA_MATERIALS: "要求提交清单外材料",
    BadRatingReason.SYSTEM_PROBLEM: "系统操作不便",
    BadRatingReason.OTHER: "其他",
}


def check_rating(
    *,
    level: int,
    reasons: Sequence[str],
    comment: str | None,
    rater_is_served: bool,
    decided_at: dt.datetime | None,
    now: dt.datetime,
    window_days: int,
) -> tuple[RatingLevel, list[BadRatingReason], str]:
    """May this rating be given? One matter, by the person served, after the decision, within the window; a 差评
    needs a reason (DOMAIN.md §8). Returns the cleaned values."""
    if not rater_is_served:
        raise DomainError("PERMISSION_DENIED", "只有办事人本人可以评价", None)
    try:
        rating_level = RatingLevel(level)
    except ValueError:
        raise DomainError("INVALID_INPUT", "评价等级应为1至5", "level") from None
    if decided_at is None:
        raise DomainError("NOT_RATABLE_YET", "办结后才能评价", None)
    if now > decided_at + dt.timedelta(days=window_days):
        raise DomainError("RATING_WINDOW_CLOSED", f"已超过评价期限（办结后{window_days}日内）", None)
    try:
        chosen = list(dict.fromkeys(BadRatingReason(r) for r in reasons))
    except ValueError:
        raise DomainError("INVALID_INPUT", "差评原因不在可选范围内", "reasons") from None
    text = (comment or "").strip()
    if len(text) > MAX_TEXT:
        raise DomainError("INVALID_INPUT", f"评价内容不能超过{MAX_TEXT}个字", "comment")
    if rating_level.is_bad and not chosen:
        raise DomainError("REASON_REQUIRED", "差评须选择原因", "reasons")
    if not rating_level.is_bad:
        chosen = []  # reasons belong to a 差评
    return rating_level, chosen, text


def working_days_after(start: dt.datetime, days: int, calendar: WorkCalendar) -> tuple[dt.date, bool]:
    """The ``days``-th working day after the date of ``start`` (次日起算), and whether it is provisional (a year the
    calendar has no data for: Monday–Friday assumed)."""
    day = local_date(start)
    first_year = day.year
    counted = 0
    while counted < days:
        day += dt.timedelta(days=1)
        if calendar.is_working_day(day):
            counted += 1
    provisional = any(not calendar.is_known_year(y) for y in range(first_year, day.year + 1)) if days else False
    return day, provisional


class FollowUpStep(str, Enum):
    CONTACT = "CONTACT"  # 回访: the department has called the rater
    RECTIFY = "RECTIFY"  # 整改: what was put right
    RESULT = "RESULT"  # 反馈: the result reported back to the rater


def follow_up_overdue(
    *, due: dt.date, done_at: dt.datetime | None, now: dt.datetime
) -> bool:
    """A step is overdue when it was not done by the end of its due day (Asia/Shanghai)."""
    finished_on = local_date(done_at) if done_at is not None else local_date(now)
    return finished_on > due


@dataclass(frozen=True)
class RatingFacts:
    level: int
    excluded: bool  # an upheld appeal removes it from the statistics
    rectified: bool  # a 差评 whose rectification is recorded
    overdue: bool  # a 差评 with a follow-up step past its deadline


@dataclass(frozen=True)
class RatingStats:
    count: int
    distribution: dict[int, int]
    good_rate: float | None  # 好评率: levels 3–5 / all
    bad_count: int
    rectified_rate: float | None  # 差评整改率: rectified 差评 / 差评
    overdue_follow_ups: int


def rating_stats(ratings: Iterable[RatingFacts]) -> RatingStats:
    counted = [r for r in ratings if not r.excluded]
    distribution = {level.value: 0 for level in RatingLevel}
    for r in counted:
        distribution[r.level] += 1
    bad = [r for r in counted if RatingLevel(r.level).is_bad]
    good = len(counted) - len(bad)
    return RatingStats(
        count=len(counted),
        distribution=distribution,
        good_rate=round(good / len(counted), 4) if counted else None,
        bad_count=len(bad),
        rectified_rate=round(sum(r.rectified for r in bad) / len(bad), 4) if bad else None,
        overdue_follow_ups=sum(r.overdue for r in bad),
    )
