"""The notices the service sends and the variables each one carries (DOMAIN.md §10).

This is the contract between the use cases that write a notice to the outbox and the templates file: a use case
gives exactly these variables; the templates file (``templates.toml``) may use any of them and nothing else, which
``templates.load_templates`` checks at startup. Adding a notice means adding a kind here and its entry in the file.
"""

from __future__ import annotations

from enum import Enum


class NoticeKind(str, Enum):
    """What happened. At least acceptance and completion must be notified [规程 6.7]; the others follow 广东's list."""

    CASE_ACCEPTED = "case_accepted"  # 受理
    CORRECTION_REQUESTED = "correction_requested"  # 补正, with the full list of what is missing
    CASE_NOT_ACCEPTED = "case_not_accepted"  # 不受理
    CASE_REFUSED = "case_refused"  # 不予受理
    CASE_APPROVED = "case_approved"  # 办结(通过)
    CASE_APPROVED_DEFICIENT = "case_approved_deficient"  # 办结(容缺通过)
    CASE_DISAPPROVED = "case_disapproved"  # 办结(不通过)
    CERTIFICATE_ISSUED = "certificate_issued"  # 证照已签发
    COMPLAINT_REPLIED = "complaint_replied"  # 投诉/建议已答复
    RATING_FOLLOWUP_RESULT = "rating_followup_result"  # 差评整改结果


class VariableType(str, Enum):
    """How a variable is written into a message. Times are aware datetimes, shown in Asia/Shanghai."""

    TEXT = "text"
    DATETIME = "datetime"
    DATE = "date"


T, DT, D = VariableType.TEXT, VariableType.DATETIME, VariableType.DATE

# Every case notice names the case the same way: its global id (for the mini-program page), its 办件编号, the item and
# the department handling it.
_CASE = {"case_id": T, "case_code": T, "item_name": T, "department": T, "project_name": T}

NOTICE_VARIABLES: dict[NoticeKind, dict[str, VariableType]] = {
    NoticeKind.CASE_ACCEPTED: {**_CASE, "accepted_at": DT, "due_date": D},
    NoticeKind.CORRECTION_REQUESTED: {**_CASE, "requested_at": DT, "corrections": T},
    NoticeKind.CASE_NOT_ACCEPTED: {**_CASE, "decided_at": DT, "reason": T},
    NoticeKind.CASE_REFUSED: {**_CASE, "decided_at": DT, "reason": T},
    NoticeKind.CASE_APPROVED: {**_CASE, "decided_at": DT},
    NoticeKind.CASE_APPROVED_DEFICIENT: {**_CASE, "decided_at": DT, "deficiencies": T},
    NoticeKind.CASE_DISAPPROVED: {**_CASE, "decided_at": DT, "reason": T},
    NoticeKind.CERTIFICATE_ISSUED: {
        **_CASE,
        "certificate_id": T,
        "certificate_name": T,
        "certificate_no": T,
        "issued_at": DT,
    },
    NoticeKind.COMPLAINT_REPLIED: {"complaint_id": T, "complaint_title": T, "department": T, "replied_at": DT},
    NoticeKind.RATING_FOLLOWUP_RESULT: {
        "rating_id": T,
        "item_name": T,
        "department": T,
        "result": T,
        "followed_up_at": DT,
    },
}
