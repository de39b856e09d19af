"""The conversation (issue #11, DESIGN.md §3a): one per user, the mini-program's home, the chat and the notice centre.

- ``send_message``: the user's message and the assistant's answer (``api.services.assistant``), in one transaction;
  a retried ``clientMessageId`` answers the first pair and stores nothing.
- ``record_system_message``: called by ``record_notice`` inside the transaction of the change that causes a notice,
  so the SYSTEM message exists if and only if the notice (and the change) does.
- Live delivery: every stored message is noted in the request's ``publishing`` collector; after the operation the
  collector publishes ``{"messageId"}`` on the person's channel (the broker: in-process, or Redis between processes).
  Subscribers read the message back from the database, where it was committed before the publish.

Cards are stored as references and resolved when read (``visible_objects``): a card whose object its reader may no
longer see is dropped from the message, never shown empty or stale.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from api.domain.errors import DomainError
from api.models import Conversation, ConversationMessage, Notice
from api.models.conversation import MessageAuthor
from api.services import assistant
from api.services.access import Viewer, case_scope, project_scope, require_viewer
from api.services.locks import lock_row
from api.services.progress import Page, decode_cursor, encode_cursor
from api.settings import Settings

log = logging.getLogger("jianshen.conversation")

CARD_KINDS = ("PROJECT", "CASE", "CERTIFICATE", "GUIDE", "NOTICE", "COMPLAINT", "ACTION")
CLIENT_ID_MAX = 100


def channel_of(user_id: int) -> str:
    return f"conversation:{user_id}"


# -- live publishing ---------------------------------------------------------------------------------------------

_pending: contextvars.ContextVar[list[tuple[int, int]] | None] = contextvars.ContextVar(
    "conversation_pending", default=None
)


def begin_publishing() -> None:
    """Start collecting the messages stored by this request (called before the GraphQL operation runs)."""
    _pending.set([])


async def publish_pending(broker) -> None:
    """Publish what this request stored, after its commits. A message whose transaction rolled back is not found by
    the subscriber, which skips it: the channel carries ids only."""
    pending = _pending.get()
    _pending.set(None)
    if not pending or broker is None:
        return
    for user_id, message_id in pending:
        await broker.publish(channel_of(user_id), {"messageId": message_id})


def _note(user_id: int, message_id: int) -> None:
    pending = _pending.get()
    if pending is not None:
        pending.append((user_id, message_id))


# -- storing -----------------------------------------------------------------------------------------------------


def card_data(card: assistant.CardRef) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(card).items() if v is not None}


def card_of(data: dict[str, Any]) -> assistant.CardRef | None:
    """A stored card back as a CardRef; one of an unknown shape (a newer release's) is skipped."""
    names = {f.name for f in dataclasses.fields(assistant.CardRef)}
    if not isinstance(data, dict) or data.get("kind") not in CARD_KINDS:
        return None
    return assistant.CardRef(**{k: v for k, v in data.items() if k in names})


async def conversation_of(user_id: int, now: dt.datetime) -> Conversation:
    """The person's conversation, made on first use. Safe inside a transaction and under concurrency: the insert
    ignores a conflict (a twin made it first) instead of failing, which on PostgreSQL would end the transaction."""
    found = await Conversation.get_or_none(user_id=user_id)
    if found is None:
        await Conversation.bulk_create([Conversation(user_id=user_id, created_at=now)], ignore_conflicts=True)
        found = await Conversation.get(user_id=user_id)
    return found


async def append_message(
    conversation: Conversation, author: MessageAuthor, text: str, *, now: dt.datetime,
    cards: Iterable[assistant.CardRef] = (), quick_replies: Iterable[assistant.QuickReply] = (), **extra: Any,
) -> ConversationMessage:
    message = await ConversationMessage.create(
        conversation_id=conversation.id, author=author, text=text, cards=[card_data(c) for c in cards],
        quick_replies=[{"label": q.label, "text": q.text} for q in quick_replies], sent_at=now, **extra,
    )
    _note(conversation.user_id, message.id)
    return message


# Which variable of a notice names the object it is about, and the card that shows it (the most specific first).
_NOTICE_SUBJECTS = (("certificate_id", "Certificate", "CERTIFICATE"), ("complaint_id", "Complaint", "COMPLAINT"),
                    ("case_id", "Case", "CASE"))


async def record_system_message(notice: Notice, now: dt.datetime) -> ConversationMessage:
    """The notice as a SYSTEM message of its recipient's conversation, with a NoticeCard and the card of what it is
    about. Call inside the notice's transaction (``record_notice`` does)."""
    from api.domain.ids import key_of

    conversation = await conversation_of(notice.recipient_id, now)
    cards = [assistant.CardRef(kind="NOTICE", object_id=notice.id)]
    for variable, type_name, kind in _NOTICE_SUBJECTS:
        pk = key_of(str((notice.variables or {}).get(variable) or ""), type_name)
        if pk is not None:
            cards.append(assistant.CardRef(kind=kind, object_id=pk))
            break
    text = notice.title if not notice.body else f"{notice.title}\n{notice.body}"
    return await append_message(conversation, MessageAuthor.SYSTEM, text, now=now, cards=cards, notice_id=notice.id)


# -- sending -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    message: ConversationMessage  # the USER message
    reply: ConversationMessage  # the ASSISTANT's answer
    duplicate: bool


def check_text(text: str | None, settings: Settings) -> str:
    cleaned = (text or "").strip()
    if not cleaned:
        raise DomainError("REQUIRED", "请输入要咨询的内容", "text")
    if len(cleaned) > settings.conversation_message_max_chars:
        raise DomainError(
            "INVALID_INPUT", f"一条消息不能超过{settings.conversation_message_max_chars}个字", "text"
        )
    return cleaned


def message_key(viewer: Viewer, client_message_id: str | None) -> str:
    raw = (client_message_id or "").strip()
    if not raw:
        raise DomainError("REQUIRED", "缺少消息编号", "clientMessageId")
    if len(raw) > CLIENT_ID_MAX:
        raise DomainError("INVALID_INPUT", f"消息编号不能超过{CLIENT_ID_MAX}个字符", "clientMessageId")
    return f"{viewer.user_id}:{raw}"


async def _previous_exchange(key: str, text: str) -> Exchange | None:
    message = await ConversationMessage.get_or_none(client_message_id=key)
    if message is None:
        return None
    if message.text != text:
        raise DomainError("DUPLICATE_REQUEST_ID", "该消息编号已用于另一条消息", "clientMessageId")
    reply = await ConversationMessage.filter(in_reply_to_id=message.id).order_by("id").first()
    return Exchange(message, reply, duplicate=True)


async def send_message(
    viewer: Viewer | None, *, text: str, client_message_id: str, settings: Settings, rate_limiter,
    now: dt.datetime,
) -> Exchange:
    """Store the person's message and the assistant's answer together. Nothing is stored for a refusal (empty or too
    long text, a bad key, too many messages a minute), and a retry of a stored send answers the stored pair."""
    viewer = require_viewer(viewer)
    key = message_key(viewer, client_message_id)
    cleaned = check_text(text, settings)
    if (previous := await _previous_exchange(key, cleaned)) is not None:
        return previous
    conversation = await conversation_of(viewer.user_id, now)
    latest_item = await item_in_discussion(conversation.id)
    # Understood before the transaction: the answer reads the guides and the person's matters, and need not hold the
    # conversation's lock while it does.
    answer = await assistant.answer(cleaned, viewer, now=now, previous_item_code=latest_item)
    try:
        async with in_transaction():
            # The conversation's row is the lock of its sends: twins of one retry (also from other processes) pass
            # here one after the other, and the second finds the first's pair (issue #10's pattern).
            await lock_row(Conversation, conversation.id, "read_up_to")
            if (previous := await _previous_exchange(key, cleaned)) is not None:
                return previous
            await _check_rate(viewer, settings, rate_limiter, now)
            message = await append_message(
                conversation, MessageAuthor.USER, cleaned, now=now, client_message_id=key,
                item_code=latest_item,
            )
            reply = await append_message(
                conversation, MessageAuthor.ASSISTANT, answer.text, now=now, cards=answer.cards,
                quick_replies=answer.quick_replies, intent=answer.intent[:32], item_code=answer.item_code,
                in_reply_to_id=message.id,
            )
    except IntegrityError:
        if (previous := await _previous_exchange(key, cleaned)) is not None:
            return previous
        raise DomainError("CONFLICT", "消息发送冲突，请重试", None) from None
    return Exchange(message, reply, duplicate=False)


async def item_in_discussion(conversation_id: int) -> str | None:
    """The item the conversation is about now: the newest message that names one."""
    latest = await ConversationMessage.filter(
        conversation_id=conversation_id, item_code__isnull=False
    ).order_by("-id").only("id", "item_code").first()
    return latest.item_code if latest else None


async def _check_rate(viewer: Viewer, settings: Settings, rate_limiter, now: dt.datetime) -> None:
    """Messages a person may send a minute (api/ratelimit.py: shared by every API process through Redis)."""
    if rate_limiter is None:
        return
    limit = settings.conversation_messages_per_minute
    wait = await rate_limiter.retry_after(
        f"conversation:{viewer.user_id}", limit=limit, window=60, now=now.timestamp()
    )
    if wait is not None:
        raise DomainError("RATE_LIMITED", f"发送太频繁（每分钟最多{limit}条），请{wait}秒后再试", None)


# -- reading -----------------------------------------------------------------------------------------------------


async def page_of_messages(
    viewer: Viewer | None, *, last: int, before: str | None, page_max: int
) -> Page[ConversationMessage]:
    """A backward page (Relay): the ``last`` messages before the cursor ``before``, oldest first, newest at the bottom.
    ``has_previous_page``: older messages exist; ``has_next_page``: newer ones exist (after ``before``)."""
    viewer = require_viewer(viewer)
    if last < 1 or last > page_max:
        raise DomainError("INVALID_INPUT", f"每页条数应为1至{page_max}", "last")
    try:
        cursor = decode_cursor(before)
    except DomainError:
        raise DomainError("INVALID_INPUT", "分页游标无效", "before") from None
    conversation = await Conversation.get_or_none(user_id=viewer.user_id)
    if conversation is None:
        return Page(items=[], has_next_page=False, total_count=0)
    query = ConversationMessage.filter(conversation_id=conversation.id)
    total = await query.count()
    newer = False
    if cursor is not None:
        newer = await query.filter(id__gte=cursor).exists()
        query = query.filter(id__lt=cursor)
    rows = list(await query.order_by("-id").limit(last + 1))
    older = len(rows) > last
    items = list(reversed(rows[:last]))
    return Page(items=items, has_next_page=newer, total_count=total, has_previous_page=older)


def cursor_of(message: ConversationMessage) -> str:
    return encode_cursor(message.id)


async def unread_count(user_id: int) -> int:
    conversation = await Conversation.get_or_none(user_id=user_id)
    if conversation is None:
        return 0
    return await ConversationMessage.filter(
        conversation_id=conversation.id, id__gt=conversation.read_up_to, author__not=MessageAuthor.USER
    ).count()


async def mark_read(viewer: Viewer | None, up_to: int | None, now: dt.datetime) -> int:
    """Everything up to the message ``up_to`` (all when None) is read; the marker never moves back. Another's message
    answers like one that does not exist. Returns the unread count after."""
    viewer = require_viewer(viewer)
    conversation = await Conversation.get_or_none(user_id=viewer.user_id)
    if conversation is None:
        if up_to is not None:
            raise DomainError("NOT_FOUND", "消息不存在", "upTo")
        return 0
    messages = ConversationMessage.filter(conversation_id=conversation.id)
    if up_to is None:
        newest = await messages.order_by("-id").first()
        target = newest.id if newest else 0
    else:
        if not await messages.filter(id=up_to).exists():
            raise DomainError("NOT_FOUND", "消息不存在", "upTo")
        target = up_to
    async with in_transaction():
        # Conditional: two marks at once leave the larger, whatever their order.
        await Conversation.filter(id=conversation.id, read_up_to__lt=target).update(read_up_to=target)
        # The conversation is the notice centre: the notices its read SYSTEM messages show are read too.
        shown = ConversationMessage.filter(
            conversation_id=conversation.id, id__lte=target, notice_id__isnull=False
        ).values("notice_id")
        await Notice.filter(recipient_id=viewer.user_id, read_at__isnull=True, id__in=Subquery(shown)).update(
            read_at=now
        )
    return await unread_count(viewer.user_id)


async def message_for(viewer: Viewer | None, message_id: int) -> ConversationMessage | None:
    """One message of the viewer's own conversation (``node``); anyone else's is None, like a missing one."""
    if viewer is None:
        return None
    return await ConversationMessage.filter(id=message_id, conversation__user_id=viewer.user_id).first()


# -- cards -------------------------------------------------------------------------------------------------------


def _scopes(viewer: Viewer | None) -> dict[str, tuple[Any, Q]]:
    from api.models import Case, Certificate, Complaint, Project
    from api.services.certificates import certificate_scope
    from api.services.complaints import complaint_scope

    own = Q(recipient_id=viewer.user_id) if viewer is not None else Q(id__in=[])
    return {
        "PROJECT": (Project, project_scope(viewer)),
        "CASE": (Case, case_scope(viewer)),
        "CERTIFICATE": (Certificate, certificate_scope(viewer)),
        "COMPLAINT": (Complaint, complaint_scope(viewer)),
        "NOTICE": (Notice, own),
    }


async def visible_objects(viewer: Viewer | None, keys: Sequence[tuple[str, Any]]) -> list[Any]:
    """Objects by (card kind, key), among those the viewer may see *now*; None for the rest. One statement per kind.
    ``("ITEM", code)``: a catalogue item (public, like a guide page)."""
    from api.models import ApprovalItem

    scopes = _scopes(viewer)
    wanted: dict[str, set[Any]] = defaultdict(set)
    for kind, pk in keys:
        if kind in scopes or kind == "ITEM":
            wanted[kind].add(pk)
    found: dict[tuple[str, Any], Any] = {}
    for kind, pks in wanted.items():
        if kind == "ITEM":
            codes = [c for c in pks if isinstance(c, str) and len(c) <= 64]
            for row in await ApprovalItem.filter(code__in=codes):
                found[(kind, row.code)] = row
            continue
        model, scope = scopes[kind]
        for row in await model.filter(scope, id__in=[p for p in pks if isinstance(p, int)]):
            found[(kind, row.pk)] = row
    return [found.get(key) for key in keys]


GUIDE_SECTIONS = frozenset({"OVERVIEW", "CONDITIONS", "MATERIALS", "TIME_LIMIT", "FEES", "PROCESS", "LOCATION", "BASIS",
                            "FAQ", "FORM"})
ACTIONS = frozenset({"FILE_COMPLAINT", "FILE_SUGGESTION", "RATE_SERVICE", "CONSULT_STAFF", "APPLY", "VIEW_PROGRESS",
                     "VIEW_CERTIFICATES"})


def object_key(card: assistant.CardRef) -> tuple[str, Any] | None:
    """What a card must load to be shown: its object, a guide's item, a RATE_SERVICE action's case; None: nothing."""
    if card.kind == "ACTION":
        return ("CASE", card.object_id) if card.object_id is not None else None
    if card.kind == "GUIDE":
        return ("ITEM", card.item_code)
    return (card.kind, card.object_id)


def well_formed(card: assistant.CardRef) -> bool:
    if card.kind == "GUIDE":
        return bool(card.item_code) and card.section in GUIDE_SECTIONS
    if card.kind == "ACTION":
        return card.action in ACTIONS
    return isinstance(card.object_id, int)


@dataclass(frozen=True)
class ShownCard:
    ref: assistant.CardRef
    obj: Any  # the live object; a guide's item; None for an action that names nothing


async def visible_cards(viewer: Viewer | None, refs: Sequence[assistant.CardRef], *, load=None) -> list[ShownCard]:
    """The cards the viewer may see, with their live objects. A card whose object is gone or hidden from the viewer is
    dropped (an action naming a case the viewer may not see, too): a card never shows what its viewer may not see.
    ``load``: a batch loader of ``visible_objects`` keys (the request's DataLoader); default: load them now."""
    refs = [r for r in refs if well_formed(r)]
    keys = [object_key(r) for r in refs]
    wanted = [k for k in keys if k is not None]
    objects = await (load(wanted) if load is not None else visible_objects(viewer, wanted)) if wanted else []
    it = iter(objects)
    shown = []
    for ref, key in zip(refs, keys):
        obj = next(it) if key is not None else None
        if key is not None and obj is None:
            continue
        shown.append(ShownCard(ref, obj))
    return shown
