"""The conversation's understanding (issue #11): a question in, an answer with cards and quick replies out.

This is the plumbing branch's stand-in with the agreed interface only: it answers every question with the honest
fallback ("没有找到", offer a person). The real understanding (segmentation, BM25 over the guides, intent and slot
rules as data) replaces this module; ``api/services/conversation.py`` calls nothing else of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import api.services.access


@dataclass(frozen=True)
class QuickReply:
    label: str
    text: str


@dataclass(frozen=True)
class CardRef:
    kind: str  # "PROJECT" | "CASE" | "CERTIFICATE" | "GUIDE" | "NOTICE" | "COMPLAINT" | "ACTION"
    object_id: int | None = None  # database pk: project, case, certificate, notice, complaint; ACTION RATE_SERVICE: the case
    item_code: str | None = None  # GUIDE: the catalogue item code
    section: str | None = None  # GUIDE: GuideSection name
    title: str | None = None  # GUIDE: heading, e.g. "供水报装 · 申请材料"
    text: str | None = None  # GUIDE: the section's text from the guide
    action: str | None = None  # ACTION: ConversationAction name
    label: str | None = None  # ACTION: button label


@dataclass(frozen=True)
class Answer:
    intent: str
    text: str
    cards: tuple[CardRef, ...] = ()
    quick_replies: tuple[QuickReply, ...] = ()
    item_code: str | None = None  # the item now being discussed (CONSULT_STAFF routing, follow-up questions)


async def answer(
    text: str,
    viewer: "api.services.access.Viewer",
    *,
    now: datetime,
    previous_item_code: str | None = None,
) -> Answer:
    return Answer(
        intent="unknown",
        text="抱歉，没有找到……可以转人工咨询。",
        cards=(CardRef(kind="ACTION", action="CONSULT_STAFF", label="转人工咨询"),),
        quick_replies=(QuickReply(label="转人工", text="转人工"),),
    )
