"""GraphQL of the conversation (issue #11): the messages with their cards, sending, reading, the live events, and the
在线咨询 a person opens from it with the staff's queue and answers."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any, AsyncGenerator

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.extensions import SchemaExtension

from api import models
from api.domain.errors import DomainError
from api.models.conversation import ConsultationState as ConsultationStateModel
from api.models.conversation import MessageAuthor as MessageAuthorModel
from api.services import assistant
from api.services import complaints as complaint_service
from api.services import consultations as consultation_service
from api.services import conversation as service
from api.services.progress import check_first
from api.schema.base import PageInfo, Node, UserError, graphql_error, payload_or_errors, pk_of
from api.schema.certificates import Certificate
from api.schema.feedback import Complaint, _person
from api.schema.notices import Notice
from api.schema.types import ApprovalItem, Case, Connection, Department, Edge, Light, Project, connection_of

MessageAuthor = strawberry.enum(
    MessageAuthorModel, name="MessageAuthor",
    description="USER 本人 · ASSISTANT 智能助手 · STAFF 工作人员(在线咨询) · SYSTEM 系统通知",
)
ConsultationState = strawberry.enum(
    ConsultationStateModel, name="ConsultationState", description="WAITING 待答复 · ANSWERED 已答复"
)


@strawberry.enum(description="A section of a service guide (办事指南).")
class GuideSection(Enum):
    OVERVIEW = "OVERVIEW"
    CONDITIONS = "CONDITIONS"
    MATERIALS = "MATERIALS"
    TIME_LIMIT = "TIME_LIMIT"
    FEES = "FEES"
    PROCESS = "PROCESS"
    LOCATION = "LOCATION"
    BASIS = "BASIS"
    FAQ = "FAQ"
    FORM = "FORM"


@strawberry.enum(description="What an action card offers to do.")
class ConversationAction(Enum):
    FILE_COMPLAINT = "FILE_COMPLAINT"
    FILE_SUGGESTION = "FILE_SUGGESTION"
    RATE_SERVICE = "RATE_SERVICE"
    CONSULT_STAFF = "CONSULT_STAFF"
    APPLY = "APPLY"
    VIEW_PROGRESS = "VIEW_PROGRESS"
    VIEW_CERTIFICATES = "VIEW_CERTIFICATES"


@strawberry.type(description="A suggested answer: tapping it sends `text`.")
class QuickReply:
    label: str
    text: str


@strawberry.type(description="A project of yours.")
class ProjectCard:
    project: Project


@strawberry.type(description="A case (办件) you may see.")
class CaseCard:
    case: Case


@strawberry.type(description="A certificate (电子证照) you may see.")
class CertificateCard:
    certificate: Certificate


@strawberry.type(description="A section of an item's service guide, its text taken from the guide.")
class GuideCard:
    item: ApprovalItem
    section: GuideSection
    title: str
    text: str


@strawberry.type(description="A notice of yours (受理, 补正, 办结, 证照签发, 诉求答复 …).")
class NoticeCard:
    notice: Notice


@strawberry.type(description="A suggestion or complaint you may see.")
class ComplaintCard:
    complaint: Complaint


@strawberry.type(description="A button: what to do next.")
class ActionCard:
    action: ConversationAction
    label: str
    case_to_rate: Case | None = strawberry.field(default=None, description="RATE_SERVICE: the case to rate")


Card = Annotated[
    ProjectCard | CaseCard | CertificateCard | GuideCard | NoticeCard | ComplaintCard | ActionCard,
    strawberry.union("Card", description="What a message points at: resolved now, through your permissions."),
]


def _loader(info: strawberry.Info, name: str, load) -> DataLoader:
    """A DataLoader of this request, made on first use (the context's own loaders are the other areas')."""
    ctx = info.context
    loaders = ctx.__dict__.setdefault("_conversation_loaders", {})
    if name not in loaders:
        loaders[name] = DataLoader(load)
    return loaders[name]


def _card_loader(info: strawberry.Info) -> DataLoader:
    """The cards of every message of a page load with one statement per kind, through the viewer's permissions."""
    viewer = info.context.viewer
    return _loader(info, "cards", lambda keys: service.visible_objects(viewer, keys))


async def _consultations(ids: list[int]) -> list[Any]:
    rows = {c.id: c for c in await models.Consultation.filter(id__in=list(set(ids)))}
    return [rows.get(i) for i in ids]


async def _items(codes: list[str]) -> list[Any]:
    rows = {i.code: i for i in await models.ApprovalItem.filter(code__in=list(set(codes)))}
    return [rows.get(c) for c in codes]


async def _answers(ids: list[int]) -> list[list[Any]]:
    grouped: dict[int, list[Any]] = {i: [] for i in ids}
    for message in await models.ConversationMessage.filter(
        consultation_id__in=list(set(ids)), author=MessageAuthorModel.STAFF
    ).order_by("id"):
        grouped[message.consultation_id].append(message)
    return [grouped[i] for i in ids]


def _card(shown: service.ShownCard) -> Any:
    ref, obj = shown.ref, shown.obj
    if ref.kind == "PROJECT":
        return ProjectCard(project=obj)
    if ref.kind == "CASE":
        return CaseCard(case=obj)
    if ref.kind == "CERTIFICATE":
        return CertificateCard(certificate=obj)
    if ref.kind == "NOTICE":
        return NoticeCard(notice=obj)
    if ref.kind == "COMPLAINT":
        return ComplaintCard(complaint=obj)
    if ref.kind == "GUIDE":
        return GuideCard(item=obj, section=GuideSection(ref.section), title=ref.title or obj.name, text=ref.text or "")
    return ActionCard(action=ConversationAction(ref.action), label=ref.label or "", case_to_rate=obj)


async def cards_of(info: strawberry.Info, refs: list[assistant.CardRef]) -> list[Any]:
    shown = await service.visible_cards(info.context.viewer, refs, load=_card_loader(info).load_many)
    return [_card(s) for s in shown]


@strawberry.type(description="One message of your conversation.")
class ConversationMessage(Node):
    is_type_of = classmethod(lambda cls, obj, _info: isinstance(obj, models.ConversationMessage))
    text: str
    sent_at: dt.datetime
    item_code: str | None = strawberry.field(description="The item being discussed after this message, if any")

    @strawberry.field
    def author(self) -> MessageAuthor:
        return MessageAuthorModel(self.author)

    @strawberry.field
    def quick_replies(self) -> list[QuickReply]:
        return [QuickReply(label=q["label"], text=q["text"]) for q in self.quick_replies or []]

    @strawberry.field(description="Cards resolved now: one whose object you may no longer see is left out.")
    async def cards(self, info: strawberry.Info) -> list[Card]:
        refs = [ref for data in self.cards or [] if (ref := service.card_of(data)) is not None]
        return await cards_of(info, refs) if refs else []

    @strawberry.field(description="STAFF: who answered (the department's name).")
    async def author_name(self, info: strawberry.Info) -> str | None:
        if self.author is not MessageAuthorModel.STAFF:
            return None
        consultation = None
        if self.consultation_id is not None:
            consultation = await _loader(info, "consultation", _consultations).load(self.consultation_id)
        if consultation is None or consultation.department_id is None:
            return consultation_service.WINDOW_NAME
        department = await info.context.loaders.department.load(consultation.department_id)
        return department.name if department else None


@strawberry.type(description="Your conversation, a page of it (newest at the bottom), and what is unread.")
class ConversationConnection:
    edges: list[Edge[ConversationMessage]]
    page_info: PageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[ConversationMessage]:
        return [edge.node for edge in self.edges]

    @strawberry.field(description="Messages not from you after your read marker")
    async def unread_count(self, info: strawberry.Info) -> int:
        return await service.unread_count(info.context.viewer.user_id)


@strawberry.type(description="A new message of your conversation, as it is stored.")
class ConversationEvent:
    message: ConversationMessage
    unread_count: int


@strawberry.type(description="在线咨询: a question handed to staff, with the complaints' reply clock.")
class Consultation(Node):
    is_type_of = classmethod(lambda cls, obj, _info: isinstance(obj, models.Consultation))
    question: str
    item_code: str | None
    created_at: dt.datetime
    replied_at: dt.datetime | None

    @strawberry.field
    def state(self) -> ConsultationState:
        return ConsultationStateModel(self.state)

    @strawberry.field
    async def item(self, info: strawberry.Info) -> ApprovalItem | None:
        return await _loader(info, "item", _items).load(self.item_code) if self.item_code else None

    @strawberry.field(description="The department that answers; null: the window (综合服务窗口)")
    async def department(self, info: strawberry.Info) -> Department | None:
        if self.department_id is None:
            return None
        return await info.context.loaders.department.load(self.department_id)

    @strawberry.field(description="Who asked: in clear to themself, masked to staff.")
    async def asker_name(self, info: strawberry.Info) -> str:
        return await _person(info, self.asker_id)

    @strawberry.field(description="Working days left to reply; negative when late; null once answered.")
    async def reply_remaining_days(self, info: strawberry.Info) -> int | None:
        if self.state is not ConsultationStateModel.WAITING:
            return None
        ctx = info.context
        return complaint_service.complaint_timing(self, ctx.settings, await ctx.calendar(), ctx.today_start).remaining

    @strawberry.field(description="The reply clock's light (the complaints' rules).")
    async def light(self, info: strawberry.Info) -> Light | None:
        ctx = info.context
        return complaint_service.complaint_timing(self, ctx.settings, await ctx.calendar(), ctx.today_start).light

    @strawberry.field(description="The staff's answers, oldest first.")
    async def answers(self, info: strawberry.Info) -> list[ConversationMessage]:
        return await _loader(info, "answers", _answers).load(self.id)


# -- inputs and payloads -----------------------------------------------------------------------------------------


@strawberry.input
class SendMessageInput:
    text: str
    client_message_id: str = strawberry.field(description="The client's id of this message: a retry sends the same")


@strawberry.type
class SendMessagePayload:
    message: ConversationMessage | None = None
    reply: ConversationMessage | None = None
    duplicate: bool = False
    errors: list[UserError]


@strawberry.input
class MarkConversationReadInput:
    up_to: strawberry.ID | None = strawberry.field(default=None, description="The newest message read; null: all")


@strawberry.type
class MarkConversationReadPayload:
    unread_count: int = 0
    errors: list[UserError]


@strawberry.input
class OpenConsultationInput:
    item_code: str | None = strawberry.field(default=None, description="The item asked about; default: the one "
                                             "being discussed in the conversation, else the window answers")
    question: str | None = strawberry.field(default=None, description="Default: your latest message")
    request_id: str | None = None


@strawberry.type
class ConsultationPayload:
    consultation: Consultation | None = None
    duplicate: bool = False
    errors: list[UserError]


@strawberry.input
class AnswerConsultationInput:
    consultation_id: strawberry.ID
    text: str
    request_id: str | None = None


@strawberry.type
class AnswerConsultationPayload:
    consultation: Consultation | None = None
    message: ConversationMessage | None = None
    duplicate: bool = False
    errors: list[UserError]


@strawberry.input
class ConsultationFilter:
    state: ConsultationState | None = None
    overdue_only: bool = False


# -- root fields -------------------------------------------------------------------------------------------------


@strawberry.type
class ConversationQuery:
    @strawberry.field(description="Your conversation, backwards (Relay): the `last` messages before `before`, "
                      "oldest first.")
    async def conversation(
        self, info: strawberry.Info, last: int = 20, before: str | None = None
    ) -> ConversationConnection:
        ctx = info.context
        try:
            page = await service.page_of_messages(ctx.viewer, last=last, before=before, page_max=ctx.settings.page_max)
        except DomainError as error:
            raise graphql_error(error) from None
        base = connection_of(page)
        return ConversationConnection(edges=base.edges, page_info=base.page_info, total_count=base.total_count)

    @strawberry.field(description="在线咨询 you may see: staff their department's (clerks the window's), oldest "
                      "first; yours to you.")
    async def consultations(
        self, info: strawberry.Info, first: int = 20, after: str | None = None,
        filter: ConsultationFilter | None = None,
    ) -> Connection[Consultation]:
        ctx = info.context
        f = filter or ConsultationFilter()
        try:
            page = await consultation_service.list_consultations(
                ctx.viewer, first=check_first(first, ctx.settings.page_max), after=after,
                state=ConsultationStateModel(f.state.value) if f.state else None, overdue_only=f.overdue_only,
                settings=ctx.settings, calendar=await ctx.calendar(), now=ctx.today_start,
            )
        except DomainError as error:
            raise graphql_error(error) from None
        return connection_of(page)


@strawberry.type
class ConversationMutation:
    @strawberry.mutation(description="Send a message; the assistant's answer comes back with it.")
    async def send_message(self, info: strawberry.Info, input: SendMessageInput) -> SendMessagePayload:
        ctx = info.context

        async def action() -> dict:
            sent = await service.send_message(
                ctx.viewer, text=input.text, client_message_id=input.client_message_id, settings=ctx.settings,
                rate_limiter=ctx.rate_limiter, now=ctx.now,
            )
            return {"message": sent.message, "reply": sent.reply, "duplicate": sent.duplicate}

        return await payload_or_errors(SendMessagePayload, action)

    @strawberry.mutation(description="Mark your conversation read up to a message (all when `upTo` is null).")
    async def mark_conversation_read(
        self, info: strawberry.Info, input: MarkConversationReadInput
    ) -> MarkConversationReadPayload:
        ctx = info.context

        async def action() -> dict:
            up_to = pk_of(input.up_to, "ConversationMessage", "upTo") if input.up_to is not None else None
            return {"unread_count": await service.mark_read(ctx.viewer, up_to, ctx.now)}

        return await payload_or_errors(MarkConversationReadPayload, action)

    @strawberry.mutation(description="转人工: hand your question to staff (在线咨询).")
    async def open_consultation(self, info: strawberry.Info, input: OpenConsultationInput) -> ConsultationPayload:
        ctx = info.context

        async def action() -> dict:
            opened = await consultation_service.open_consultation(
                ctx.viewer, item_code=input.item_code, question=input.question, request_id=input.request_id,
                settings=ctx.settings, now=ctx.now,
            )
            return {"consultation": opened.consultation, "duplicate": opened.duplicate}

        return await payload_or_errors(ConsultationPayload, action)

    @strawberry.mutation(description="Staff answer a consultation; the answer appears in the asker's conversation.")
    async def answer_consultation(
        self, info: strawberry.Info, input: AnswerConsultationInput
    ) -> AnswerConsultationPayload:
        ctx = info.context

        async def action() -> dict:
            consultation, message, duplicate = await consultation_service.answer_consultation(
                ctx.viewer, pk_of(input.consultation_id, "Consultation", "consultationId"), text=input.text,
                request_id=input.request_id, now=ctx.now,
            )
            return {"consultation": consultation, "message": message, "duplicate": duplicate}

        return await payload_or_errors(AnswerConsultationPayload, action)


async def _still_signed_in(viewer) -> bool:
    from api.services.agents import load_viewer

    if viewer is None or viewer.session_id is None:
        return False
    return await load_viewer(viewer.user_id, viewer.session_id) is not None


@strawberry.type
class ConversationSubscription:
    @strawberry.subscription(description="Each new message of your conversation, as it is stored.")
    async def conversation_events(self, info: strawberry.Info) -> AsyncGenerator[ConversationEvent, None]:
        ctx = info.context
        viewer = ctx.viewer
        if viewer is None:
            raise graphql_error(DomainError("UNAUTHENTICATED", "请先登录", None))
        async with ctx.broker.subscribe(service.channel_of(viewer.user_id)) as queue:
            while True:
                event = await queue.get()
                message = await models.ConversationMessage.filter(
                    id=event.get("messageId"), conversation__user_id=viewer.user_id
                ).first()
                if message is None:
                    continue
                # Logged out or deactivated since the subscription began: end it rather than deliver.
                if not await _still_signed_in(viewer):
                    return
                yield ConversationEvent(message=message, unread_count=await service.unread_count(viewer.user_id))


class ConversationPublishing(SchemaExtension):
    """The messages an operation stored go live after it (its transactions have committed by then): SYSTEM messages
    of the notices it wrote, the exchange it sent, the staff answer it gave (api/services/conversation.py)."""

    async def on_operation(self):
        service.begin_publishing()
        yield
        context = self.execution_context.context
        await service.publish_pending(getattr(context, "_broker", None))


__all__ = ["Consultation", "ConversationMessage", "ConversationMutation", "ConversationPublishing",
           "ConversationQuery", "ConversationSubscription"]
