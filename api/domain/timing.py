"""The case clock: used and remaining days, due date and light of a case (DOMAIN.md §4, §5).

Everything here is derived from the ordered list of a case's state changes, so a timeline can always be recomputed
and audited [规程 4.3]. This module is self-contained apart from the calendar: the lifecycle module imports the
states from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

from api.domain.calendar import WorkCalendar

# All dates of the clock are local dates in China (DOMAIN.md §5).
SHANGHAI = ZoneInfo("Asia/Shanghai")


class CaseState(str, Enum):
    """办理状态 of a case (DOMAIN.md §4). The value is the name; the national BLZT code is in ``BLZT_CODES``."""

    RECEIVED = "RECEIVED"  # 1 已接件
    WITHDRAWN = "WITHDRAWN"  # 2 已撤件 (before acceptance)
    ACCEPTED = "ACCEPTED"  # 3 已受理: the clock starts
    NOT_ACCEPTED = "NOT_ACCEPTED"  # 4 不受理
    REFUSED = "REFUSED"  # 5 不予受理
    CORRECTION = "CORRECTION"  # 6 补正(开始)
    CORRECTED = "CORRECTED"  # 7 补正(结束)
    IN_PROGRESS = "IN_PROGRESS"  # 8 部门开始办理 (also entered by BLZT 10 特别程序(结束))
    SPECIAL_PROCEDURE = "SPECIAL_PROCEDURE"  # 9 特别程序(开始): the clock stops
    APPROVED = "APPROVED"  # 11 办结(通过)
    APPROVED_DEFICIENT = "APPROVED_DEFICIENT"  # 12 办结(容缺通过)
    DISAPPROVED = "DISAPPROVED"  # 13 办结(不通过)
    RETRACTED = "RETRACTED"  # 14 撤回 (by the applicant, after acceptance)
    REVOKED = "REVOKED"  # 15 撤销 (by the department, after approval)

    @property
    def label(self) -> str:
        return STATE_LABELS[self]

    @property
    def blzt(self) -> int:
        return BLZT_CODES[self]


# State → national BLZT code [交换标准]. BLZT 10 (特别程序(结束)) is an event, not a state: it returns the case to
# IN_PROGRESS, which is why STATE_BY_BLZT (code → resulting state) has one more entry than BLZT_CODES.
BLZT_CODES: dict[CaseState, int] = {
    CaseState.RECEIVED: 1,
    CaseState.WITHDRAWN: 2,
    CaseState.ACCEPTED: 3,
    CaseState.NOT_ACCEPTED: 4,
    CaseState.REFUSED: 5,
    CaseState.CORRECTION: 6,
    CaseState.CORRECTED: 7,
    CaseState.IN_PROGRESS: 8,
    CaseState.SPECIAL_PROCEDURE: 9,
    CaseState.APPROVED: 11,
    CaseState.APPROVED_DEFICIENT: 12,
    CaseState.DISAPPROVED: 13,
    CaseState.RETRACTED: 14,
    CaseState.REVOKED: 15,
}
BLZT_SPECIAL_PROCEDURE_END = 10
STATE_BY_BLZT: dict[int, CaseState] = {code: state for state, code in BLZT_CODES.items()}
STATE_BY_BLZT[BLZT_SPECIAL_PROCEDURE_END] = CaseState.IN_PROGRESS

STATE_LABELS: dict[CaseState, str] = {
    CaseState.RECEIVED: "已接件",
    CaseState.WITHDRAWN: "已撤件",
    CaseState.ACCEPTED: "已受理",
    CaseState.NOT_ACCEPTED: "不受理",
    CaseState.REFUSED: "不予受理",
    CaseState.CORRECTION: "补正中",
    CaseState.CORRECTED: "已补正",
    CaseState.IN_PROGRESS: "办理中",
    CaseState.SPECIAL_PROCEDURE: "特别程序",
    CaseState.APPROVED: "办结（通过）",
    CaseState.APPROVED_DEFICIENT: "办结（容缺通过）",
    CaseState.DISAPPROVED: "办结（不通过）",
    CaseState.RETRACTED: "已撤回",
    CaseState.REVOKED: "已撤销",
}

# The clock runs through a day when the case is in one of these states at the day's end (DOMAIN.md §5).
RUNNING_STATES = frozenset({CaseState.ACCEPTED, CaseState.IN_PROGRESS})
# 办结: the decision ends the clock, and the decision day itself counts (DOMAIN.md §5).
DECISION_STATES = frozenset({CaseState.APPROVED, CaseState.APPROVED_DEFICIENT, CaseState.DISAPPROVED})
# States in which nobody works on the case any more: the clock, if started, ends on entering one (DOMAIN.md §4).
# (An approved case can still be REVOKED later; its clock ended at the decision.)
TERMINAL_STATES = DECISION_STATES | frozenset(
    {CaseState.WITHDRAWN, CaseState.NOT_ACCEPTED, CaseState.REFUSED, CaseState.RETRACTED, CaseState.REVOKED}
)


class Light(str, Enum):
    """亮灯 [济宁 §5, §17]: GREEN 正常 · YELLOW 预警 · RED 逾期."""

    GREEN = "GREEN"
    YELLOW = "YELLOW"
    RED = "RED"

    @property
    def label(self) -> str:
        return {"GREEN": "正常", "YELLOW": "预警", "RED": "逾期"}[self.value]

    @property
    def severity(self) -> int:
        return _SEVERITY[self.value]


_SEVERITY = {"GREEN": 0, "YELLOW": 1, "RED": 2}


def worst(lights: Iterable[Light | None]) -> Light | None:
    """The worst of ``lights`` (RED > YELLOW > GREEN), ignoring ``None``; ``None`` when there is none.

    A stage's or a project's light is the worst light of its running cases (DOMAIN.md §5).
    """
    present = [light for light in lights if light is not None]
    return max(present, key=lambda light: light.severity) if present else None


class LimitUnit(str, Enum):
    """Unit of a committed time limit (承诺时限) [vendor]: working days (default) or natural days."""

    WD = "WD"  # 工作日
    ND = "ND"  # 自然日


@dataclass(frozen=True)
class StateChange:
    """The case entered ``state`` at ``at`` (timezone-aware)."""

    at: datetime
    state: CaseState

    def __post_init__(self) -> None:
        # A naive datetime would be read in the server's zone and silently shift dates near midnight.
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("StateChange.at must be timezone-aware")


@dataclass(frozen=True)
class Timing:
    """The clock of one case at a given moment. Day figures are ``None`` until the case is accepted."""

    limit: int
    unit: LimitUnit
    started_on: date | None  # acceptance date (day 0; day 1 is the next counting day)
    used: int | None
    remaining: int | None  # limit - used; negative when overdue
    due_date: date | None  # the day the limit runs out (projected if nothing pauses the clock from now on)
    light: Light | None
    provisional: bool  # some figure depends on a year without holiday data (Monday–Friday assumed)
    running: bool  # the clock is counting now
    stopped: bool  # the clock has ended for good (decided, retracted, …)


def light_for(remaining: int, warning_days: int) -> Light:
    """RED when overdue, YELLOW within ``warning_days`` of the limit, else GREEN [济宁 §5; thresholds vendor]."""
    if remaining < 0:
        return Light.RED
    if remaining <= warning_days:
        return Light.YELLOW
    return Light.GREEN


def local_date(moment: datetime) -> date:
    """The date of ``moment`` in Asia/Shanghai."""
    try:
        return moment.astimezone(SHANGHAI).date()
    except OverflowError:  # within hours of datetime.min / datetime.max: never crash on a date
        return date.max if moment.year == date.max.year else date.min


def compute_timing(
    changes: Sequence[StateChange],
    *,
    limit: int,
    unit: LimitUnit,
    warning_days: int,
    calendar: WorkCalendar,
    now: datetime,
) -> Timing:
    """Derive the clock of a case from its state changes (in order) at the moment ``now`` (DOMAIN.md §5).

    - The clock starts on the date of the first change to ACCEPTED; that day is not counted (次日起算).
    - It ends on the date of the first later change into a terminal state (a decision, a retraction, …), else today.
    - A counting day (a working day for WD, any day for ND) after the acceptance date and up to the end counts when
      the case is running (ACCEPTED / IN_PROGRESS) at the end of that day, or is decided on it. Today, for a case
      still open, is judged by the current state, so a running case counts today.
    - ``due_date`` is the counting day on which the count reached ``limit``; if it has not yet, it is projected
      from the day after the end assuming every later counting day counts.
    """
    if limit < 0:
        raise ValueError("limit must be >= 0")
    if warning_days < 0:
        raise ValueError("warning_days must be >= 0")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")

    today = local_date(now)
    days = [local_date(change.at) for change in changes]
    current_state = changes[-1].state if changes else None

    accepted_index = next((i for i, c in enumerate(changes) if c.state is CaseState.ACCEPTED), None)
    if accepted_index is None:
        return Timing(
            limit=limit,
            unit=unit,
            started_on=None,
            used=None,
            remaining=None,
            due_date=None,
            light=None,
            provisional=False,
            running=False,
            stopped=current_state in TERMINAL_STATES,
        )
    accepted_on = days[accepted_index]

    # The end of the clock: the first terminal change after acceptance, else today.
    end_index = next((i for i in range(accepted_index + 1, len(changes)) if changes[i].state in TERMINAL_STATES), None)
    ended = end_index is not None
    end_on = today
    decided_on: date | None = None
    if end_index is not None:
        end_on = days[end_index]
        if changes[end_index].state in DECISION_STATES:
            decided_on = end_on

    def is_counting_day(day: date) -> bool:
        return unit is LimitUnit.ND or calendar.is_working_day(day)

    # State at the end of a day = the state after the last change (in sequence order) whose local date is ≤ that day.
    # Walk the changes in date order (stable, so equal dates keep their sequence order), keeping the highest index.
    by_date = sorted(range(len(changes)), key=lambda i: days[i])
    pointer = 0
    last_index = -1

    used = 0
    due_date: date | None = accepted_on if limit == 0 else None
    day = accepted_on
    while day < end_on:  # days (accepted_on, end_on]; written so as never to step past date.max
        day += timedelta(days=1)
        while pointer < len(by_date) and days[by_date[pointer]] <= day:
            last_index = max(last_index, by_date[pointer])
            pointer += 1
        if is_counting_day(day):
            state = current_state if (not ended and day == today) else changes[last_index].state
            if state in RUNNING_STATES or day == decided_on:
                used += 1
                if used == limit:
                    due_date = day

    # Not reached yet: project forward "if nothing pauses it" from the day after the end.
    if due_date is None:
        due_date = _project_due_date(max(end_on, accepted_on), limit - used, is_counting_day)

    remaining = limit - used
    # Provisional when a day that decides a figure, from the day after acceptance up to the end or the due date,
    # lies in a year without holiday data (DOMAIN.md §5). The acceptance date itself is day 0 and decides nothing.
    last_day = max(end_on, due_date or accepted_on)
    provisional = (
        unit is LimitUnit.WD
        and last_day > accepted_on
        and any(not calendar.is_known_year(y) for y in range((accepted_on + timedelta(days=1)).year, last_day.year + 1))
    )

    return Timing(
        limit=limit,
        unit=unit,
        started_on=accepted_on,
        used=used,
        remaining=remaining,
        due_date=due_date,
        light=light_for(remaining, warning_days),  # for an ended case: the light it ended with
        provisional=provisional,
        running=not ended and current_state in RUNNING_STATES,
        stopped=ended,
    )


def _project_due_date(after: date, needed: int, is_counting_day: Callable[[date], bool]) -> date | None:
    """The ``needed``-th counting day after ``after`` (``needed`` ≥ 1); ``None`` past the last representable date."""
    day = after
    try:
        while needed > 0:
            day += timedelta(days=1)
            if is_counting_day(day):
                needed -= 1
    except OverflowError:
        return None
    return day
