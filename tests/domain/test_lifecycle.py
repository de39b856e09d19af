"""The BLZT lifecycle as a table: every (state, action) pair is either the one legal transition or refused."""

import pytest

from api.domain.errors import DomainError
from api.domain.lifecycle import (
    ACTION_BLZT,
    BLZT_ACTION,
    RULES,
    STATE_BLZT,
    Action,
    LifecycleError,
    Party,
    plan_transition,
)
from api.domain.timing import CaseState

# The legal transitions of DOMAIN.md §4, written out independently of RULES.
LEGAL = {
    (None, Action.RECEIVE): CaseState.RECEIVED,
    (CaseState.RECEIVED, Action.WITHDRAW): CaseState.WITHDRAWN,
    (CaseState.CORRECTION, Action.WITHDRAW): CaseState.WITHDRAWN,
    (CaseState.CORRECTED, Action.WITHDRAW): CaseState.WITHDRAWN,
    (CaseState.RECEIVED, Action.ACCEPT): CaseState.ACCEPTED,
    (CaseState.CORRECTED, Action.ACCEPT): CaseState.ACCEPTED,
    (CaseState.RECEIVED, Action.NOT_ACCEPT): CaseState.NOT_ACCEPTED,
    (CaseState.CORRECTED, Action.NOT_ACCEPT): CaseState.NOT_ACCEPTED,
    (CaseState.RECEIVED, Action.REFUSE): CaseState.REFUSED,
    (CaseState.CORRECTED, Action.REFUSE): CaseState.REFUSED,
    (CaseState.RECEIVED, Action.REQUEST_CORRECTION): CaseState.CORRECTION,
    (CaseState.CORRECTION, Action.SUBMIT_CORRECTION): CaseState.CORRECTED,
    (CaseState.ACCEPTED, Action.START): CaseState.IN_PROGRESS,
    (CaseState.IN_PROGRESS, Action.BEGIN_SPECIAL_PROCEDURE): CaseState.SPECIAL_PROCEDURE,
    (CaseState.SPECIAL_PROCEDURE, Action.END_SPECIAL_PROCEDURE): CaseState.IN_PROGRESS,
    (CaseState.IN_PROGRESS, Action.APPROVE): CaseState.APPROVED,
    (CaseState.IN_PROGRESS, Action.APPROVE_DEFICIENT): CaseState.APPROVED_DEFICIENT,
    (CaseState.IN_PROGRESS, Action.DISAPPROVE): CaseState.DISAPPROVED,
    (CaseState.ACCEPTED, Action.RETRACT): CaseState.RETRACTED,
    (CaseState.IN_PROGRESS, Action.RETRACT): CaseState.RETRACTED,
    (CaseState.SPECIAL_PROCEDURE, Action.RETRACT): CaseState.RETRACTED,
    (CaseState.APPROVED, Action.REVOKE): CaseState.REVOKED,
    (CaseState.APPROVED_DEFICIENT, Action.REVOKE): CaseState.REVOKED,
}

VALID_DATA = {
    Action.NOT_ACCEPT: {"reason": "不属于受理范围"},
    Action.REFUSE: {"reason": "依法不予受理"},
    Action.REQUEST_CORRECTION: {"corrections": [{"material": "申请表", "requirement": "加盖公章"}]},
    Action.BEGIN_SPECIAL_PROCEDURE: {"kind": "EXPERT_REVIEW", "reason": "需专家评审", "expected_days": 5},
    Action.END_SPECIAL_PROCEDURE: {"result": "专家评审通过"},
    Action.APPROVE: {
        "document": {
            "approval_date": "2026-10-09",
            "document_number": "珠规许〔2026〕1号",
            "document_title": "关于某项目的批复",
            "valid_until": "9999-01-01",
        }
    },
    Action.DISAPPROVE: {"reason": "不符合规划条件"},
    Action.REVOKE: {"reason": "以欺骗手段取得许可"},
}
VALID_DATA[Action.APPROVE_DEFICIENT] = {**VALID_DATA[Action.APPROVE], "committed_items": ["消防设计文件"]}

STATES = [None, *CaseState]


def party_of(action: Action) -> Party:
    return next(iter(RULES[action].parties))


@pytest.mark.parametrize("state", STATES, ids=lambda s: "NEW" if s is None else s.value)
@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_every_pair(state, action):
    data = VALID_DATA.get(action, {})
    expected = LEGAL.get((state, action))
    if expected is None:
        with pytest.raises(LifecycleError) as refused:
            plan_transition(state, action, party_of(action), data)
        assert refused.value.code == "INVALID_TRANSITION"
        if state is not None:
            assert state.label in refused.value.message  # the error names the current state
    else:
        planned = plan_transition(state, action, party_of(action), data)
        assert planned.target is expected
        assert planned.blzt == ACTION_BLZT[action]


def test_blzt_codes_are_the_national_ones():
    assert [ACTION_BLZT[a] for a in Action] == list(range(1, 16))
    assert BLZT_ACTION[10] is Action.END_SPECIAL_PROCEDURE
    assert STATE_BLZT[CaseState.SPECIAL_PROCEDURE] == 9 and STATE_BLZT[CaseState.REVOKED] == 15


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_wrong_party_is_refused(action):
    state = next(s for (s, a) in LEGAL if a is action)
    for party in Party:
        if party in RULES[action].parties:
            continue
        with pytest.raises(LifecycleError) as refused:
            plan_transition(state, action, party, VALID_DATA.get(action, {}))
        assert refused.value.code == "WRONG_PARTY"


@pytest.mark.parametrize(
    "action,data,code,field",
    [
        (Action.NOT_ACCEPT, {}, "REASON_REQUIRED", "reason"),
        (Action.REFUSE, {"reason": "   "}, "REASON_REQUIRED", "reason"),
        (Action.DISAPPROVE, {}, "REASON_REQUIRED", "reason"),
        (Action.REVOKE, {"reason": ""}, "REASON_REQUIRED", "reason"),
        (Action.REQUEST_CORRECTION, {"corrections": []}, "CORRECTION_LIST_REQUIRED", "corrections"),
        (Action.REQUEST_CORRECTION, {"corrections": [{"material": "申请表"}]}, "CORRECTION_LIST_REQUIRED", "corrections"),
        (Action.APPROVE, {}, "APPROVAL_DOCUMENT_REQUIRED", "document"),
        (Action.APPROVE, {"document": {"approval_date": "2026-10-09"}}, "REQUIRED", "document.documentNumber"),
        (
            Action.APPROVE,
            {"document": {**VALID_DATA[Action.APPROVE]["document"], "valid_until": "2026-01-01"}},
            "INVALID_INPUT",
            "document.validUntil",
        ),
        (Action.APPROVE_DEFICIENT, {"document": VALID_DATA[Action.APPROVE]["document"]}, "REQUIRED", "committedItems"),
        (Action.BEGIN_SPECIAL_PROCEDURE, {"kind": "NAP", "reason": "x", "expected_days": 3}, "INVALID_INPUT", "kind"),
        (
            Action.BEGIN_SPECIAL_PROCEDURE,
            {"kind": "PUBLICITY", "reason": "公示", "expected_days": 0},
            "INVALID_INPUT",
            "expectedDays",
        ),
        (Action.END_SPECIAL_PROCEDURE, {}, "REQUIRED", "result"),
    ],
)
def test_required_data(action, data, code, field):
    state = next(s for (s, a) in LEGAL if a is action)
    with pytest.raises(DomainError) as refused:
        plan_transition(state, action, party_of(action), data)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert refused.value.message  # a Chinese sentence for the user


def test_correction_is_asked_once():
    with pytest.raises(LifecycleError) as refused:
        plan_transition(
            CaseState.RECEIVED,
            Action.REQUEST_CORRECTION,
            Party.WINDOW,
            VALID_DATA[Action.REQUEST_CORRECTION],
            correction_already_requested=True,
        )
    assert refused.value.code == "CORRECTION_ALREADY_REQUESTED"
