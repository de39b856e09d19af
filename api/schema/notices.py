"""Notices: the viewer's in-app notices, and for staff the deliveries of every notice with each attempt (issue #5)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from api import models
from api.domain.errors import DomainError
from api.models.notices import DeliveryStatus as DeliveryStatusModel
from api.services import notices as service
from api.services.progress import check_first
from api.schema.base import Node, UserError, graphql_error, node_key, payload_or_errors, pk_of
from api.schema.certificates import Certificate
from api.schema.feedback import Complaint, Rating
from api.schema.types import Case, Connection, connection_of
from notifications.channels.base import mask_phone

DeliveryStatus = strawberry.enum(
    DeliveryStatusModel,
    description="PENDING 待发送 · SENDING 发送中 · DELIVERED 已送达 · DEAD 发送失败(可重发) · IN_APP_ONLY 仅站内通知",
)
NoticeKind = strawberry.enum(service.NoticeKind, name="NoticeKind", description="What a notice is about.")


NoticeSubject = Annotated[
    Case | Certificate | Complaint | Rating,
    strawberry.union("NoticeSubject", description="What a notice is about: a case, a certificate, a complaint, a rating."),
]
# The most specific first: a certificate's notice also names its case.
SUBJECT_VARIABLES = (("certificate_id", "Certificate"), ("rating_id", "Rating"), ("complaint_id", "Complaint"),
                     ("case_id", "Case"))


@strawberry.type(description="An in-app notice (站内通知); the same notice is also sent by WeChat or SMS.")
class Notice(Node):
    is_type_of = classmethod(lambda cls, obj, _info: isinstance(obj, models.Notice))
    title: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None

    @strawberry.field
    def kind(self) -> NoticeKind:
        return service.NoticeKind(self.kind)

    @strawberry.field(description="The global id of the object it is about (a case, a complaint …), to open it.")
    def subject_id(self) -> strawberry.ID | None:
        for name in ("case_id", "complaint_id", "rating_id", "certificate_id"):
            if self.variables.get(name):
                return strawberry.ID(str(self.variables[name]))
        return None

    @strawberry.field(
        description="What it is about, to render without a node() call: the certificate issued, the rating followed "
        "up, the complaint or the case; null when it is gone or you may no longer see it."
    )
    async def subject(self, info: strawberry.Info) -> NoticeSubject | None:
        for name, kind in SUBJECT_VARIABLES:
            if self.variables.get(name):
                pk = node_key(self.variables[name], kind)
                # Loaded with every other notice's of the list: one statement per kind (tests/api/test_query_count.py).
                return None if pk is None else await info.context.loaders.visible_subject.load((kind, pk))
        return None


@strawberry.type(description="One try on one channel.")
class DeliveryAttempt:
    number: int
    channel: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str | None = strawberry.field(description="DELIVERED, RETRY_AFTER, FALLBACK, PERMANENT_FAILURE or LOST")
    error_code: str | None = strawberry.field(description="The provider's own code (43101, isv.BUSINESS_LIMIT_CONTROL …)")
    reason: str | None


@strawberry.type(description="How one notice is being delivered outside the mini-program (for staff).")
class NoticeDelivery(Node):
    is_type_of = classmethod(lambda cls, obj, _info: isinstance(obj, models.Delivery))
    status: DeliveryStatus
    channel: str | None
    attempts: int
    next_attempt_at: dt.datetime
    last_error_code: str | None
    last_error: str | None
    updated_at: dt.datetime

    @strawberry.field
    async def notice_kind(self, info: strawberry.Info) -> NoticeKind:
        notice = await info.context.loaders.notice.load(self.notice_id)
        return service.NoticeKind(notice.kind)

    @strawberry.field
    async def title(self, info: strawberry.Info) -> str:
        return (await info.context.loaders.notice.load(self.notice_id)).title

    @strawberry.field(description="The person told, masked: name and phone are never shown to staff in clear.")
    async def recipient(self, info: strawberry.Info) -> str:
        notice = await info.context.loaders.notice.load(self.notice_id)
        user = await info.context.loaders.user.load(notice.recipient_id)
        name = (user.display_name[:1] + "*" * max(1, len(user.display_name) - 1)) if user.display_name else "*"
        return f"{name} {mask_phone(user.phone)}" if user.phone else name

    @strawberry.field(description="Every attempt, oldest first.")
    async def attempt_log(self, info: strawberry.Info) -> list[DeliveryAttempt]:
        return await info.context.loaders.attempts_by_delivery.load(self.id)


@strawberry.input
class DeliveryFilter:
    status: DeliveryStatus | None = None
    kind: NoticeKind | None = None
    recipient_id: strawberry.ID | None = strawberry.field(default=None, description="A user's global id (its `Viewer.id`)")


@strawberry.input
class MarkNoticesReadInput:
    notice_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="The notices to mark; omitted = all of the viewer's notices"
    )


@strawberry.type
class MarkNoticesReadPayload:
    marked: int = 0
    unread_count: int = 0
    errors: list[UserError]


@strawberry.input
class ResendNotificationInput:
    delivery_id: strawberry.ID


@strawberry.type
class ResendNotificationPayload:
    delivery: NoticeDelivery | None = None
    errors: list[UserError]


def _ids(global_ids: list[strawberry.ID], type_name: str, field: str) -> list[int]:
    return [pk_of(g, type_name, field) for g in global_ids]


@strawberry.type
class NoticeQuery:
    @strawberry.field(description="Your in-app notices, newest first.")
    async def notices(
        self, info: strawberry.Info, first: int = 20, after: str | None = None, unread_only: bool = False
    ) -> Connection[Notice]:
        ctx = info.context
        try:
            page = await service.list_notices(
                ctx.viewer, first=check_first(first, ctx.settings.page_max), after=after, unread_only=unread_only
            )
        except DomainError as error:
            raise graphql_error(error) from None
        return connection_of(page)

    @strawberry.field(description="How many of your notices are unread.")
    async def unread_notice_count(self, info: strawberry.Info) -> int:
        try:
            return await service.unread_count(info.context.viewer)
        except DomainError as error:
            raise graphql_error(error) from None

    @strawberry.field(description="Staff: the external deliveries of notices, newest first, with every attempt.")
    async def notification_deliveries(
        self,
        info: strawberry.Info,
        first: int = 20,
        after: str | None = None,
        filter: DeliveryFilter | None = None,
    ) -> Connection[NoticeDelivery]:
        ctx = info.context
        f = filter or DeliveryFilter()
        try:
            recipient = pk_of(f.recipient_id, "Viewer", "filter.recipientId") if f.recipient_id else None
            page = await service.list_deliveries(
                ctx.viewer,
                first=check_first(first, ctx.settings.page_max),
                after=after,
                status=DeliveryStatusModel(f.status.value) if f.status else None,
                kind=f.kind.value if f.kind else None,
                recipient_id=recipient,
            )
        except DomainError as error:
            raise graphql_error(error) from None
        return connection_of(page)


@strawberry.type
class NoticeMutation:
    @strawberry.mutation(description="Mark your notices read (all of them when no ids are given). Safe to retry.")
    async def mark_notices_read(
        self, info: strawberry.Info, input: MarkNoticesReadInput | None = None
    ) -> MarkNoticesReadPayload:
        ctx = info.context

        async def action() -> dict:
            ids = _ids(input.notice_ids, "Notice", "noticeIds") if input and input.notice_ids is not None else None
            marked = await service.mark_read(ctx.viewer, ids, ctx.now)
            return {"marked": marked, "unread_count": await service.unread_count(ctx.viewer)}

        return await payload_or_errors(MarkNoticesReadPayload, action)

    @strawberry.mutation(description="Staff: send a failed notice again, on every channel.")
    async def resend_notification(self, info: strawberry.Info, input: ResendNotificationInput) -> ResendNotificationPayload:
        ctx = info.context

        async def action() -> dict:
            delivery_id = pk_of(input.delivery_id, "NoticeDelivery", "deliveryId")
            return {"delivery": await service.resend_delivery(ctx.viewer, delivery_id, ctx.now)}

        return await payload_or_errors(ResendNotificationPayload, action)


__all__ = ["Notice", "NoticeDelivery", "NoticeMutation", "NoticeQuery"]
