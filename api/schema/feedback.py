"""GraphQL of suggestions, complaints and ratings (issue #6): queries, mutations and the live thread subscription."""

from __future__ import annotations

import datetime as dt
from typing import AsyncGenerator

import strawberry

from api import models
from api.domain import feedback as rules
from api.domain.codes import mask_mobile
from api.domain.errors import DomainError
from api.models.feedback import Complaint as ComplaintModel
from api.models.feedback import ComplaintMessage as MessageModel
from api.models.feedback import Rating as RatingModel
from api.services import complaints as complaint_service
from api.services import ratings as rating_service
from api.services.progress import check_first, page_of
from api.schema.base import Node, UserError, graphql_error, payload_or_errors, pk_of
from api.schema.types import Connection, Department, Light, connection_of

ComplaintKind = strawberry.enum(rules.ComplaintKind, description="SUGGESTION 建议 · COMPLAINT 投诉")
ComplaintCategory = strawberry.enum(rules.ComplaintCategory, description="问题类型")
ComplaintState = strawberry.enum(rules.ComplaintState, description="诉求状态")
BadRatingReason = strawberry.enum(rules.BadRatingReason, description="差评原因")
FollowUpStep = strawberry.enum(rules.FollowUpStep, description="差评回访整改的步骤")


def _mask_name(name: str) -> str:
    return (name[:1] + "*" * max(1, len(name) - 1)) if name else "*"


async def _person(info: strawberry.Info, user_id: int) -> str:
    """A person as staff see them: masked (DOMAIN.md §8); in clear only to themself."""
    viewer = info.context.viewer
    user = await info.context.loaders.user.load(user_id)
    if user is None:
        return "*"
    if viewer is not None and viewer.user_id == user_id:
        return user.display_name
    return _mask_name(user.display_name)


@strawberry.type(description="One message of a complaint's thread.")
class ComplaintMessage(Node):
    is_type_of = classmethod(lambda cls, obj, _info: isinstance(obj, MessageModel))
    text: str
    from_filer: bool
    created_at: dt.datetime

    @strawberry.field
    async def author_name(self, info: strawberry.Info) -> str:
        if not self.from_filer:
            complaint = await ComplaintModel.get(id=self.complaint_id).only("id", "department_id")
            department = await info.context.loaders.department.load(complaint.department_id)
            return department.name if department else "承办部门"
        return await _person(info, self.author_id)

    @strawberry.field
    def image_upload_ids(self) -> list[str]:
        return [i["uploadId"] for i in self.images or []]


@strawberry.type(description="A suggestion or complaint (建议和投诉) and its thread.")
class Complaint(Node):
    is_type_of = classmethod(lambda cls, obj, _info: isinstance(obj, ComplaintModel))
    kind: ComplaintKind
    category: ComplaintCategory
    text: str
    project_code: str | None
    created_at: dt.datetime
    replied_at: dt.datetime | None
    closed_at: dt.datetime | None
    satisfied: bool | None
    flagged_for_review: bool = strawberry.field(description="内容安全检测为“疑似”，需人工复核")

    @strawberry.field(description="The state now (a reply unanswered past the auto-close period has closed it).")
    def state(self, info: strawberry.Info) -> ComplaintState:
        ctx = info.context
        return complaint_service.effective_state(self, ctx.settings, ctx.now)

    @strawberry.field
    def category_label(self) -> str:
        return rules.ComplaintCategory(self.category).label

    @strawberry.field
    def state_label(self, info: strawberry.Info) -> str:
        ctx = info.context
        return complaint_service.effective_state(self, ctx.settings, ctx.now).label

    @strawberry.field
    async def filer_name(self, info: strawberry.Info) -> str:
        return await _person(info, self.filer_id)

    @strawberry.field(description="Contact phone: in clear to the filer, masked to staff.")
    def contact_phone(self, info: strawberry.Info) -> str | None:
        if self.contact_phone is None:
            return None
        viewer = info.context.viewer
        return self.contact_phone if viewer and viewer.user_id == self.filer_id else mask_mobile(self.contact_phone)

    @strawberry.field
    async def department(self, info: strawberry.Info) -> Department | None:
        if self.department_id is None:
            return None
        return await info.context.loaders.department.load(self.department_id)

    @strawberry.field(description="Working days left to reply in this round; negative when late; null once replied.")
    async def reply_remaining_days(self, info: strawberry.Info) -> int | None:
        if self.state not in (rules.ComplaintState.SUBMITTED, rules.ComplaintState.ASSIGNED,
                              rules.ComplaintState.REOPENED):
            return None
        ctx = info.context
        return complaint_service.complaint_timing(self, ctx.settings, await ctx.calendar(), ctx.now).remaining

    @strawberry.field(description="The reply clock's light (same rules as cases).")
    async def light(self, info: strawberry.Info) -> Light | None:
        ctx = info.context
        return complaint_service.complaint_timing(self, ctx.settings, await ctx.calendar(), ctx.now).light

    @strawberry.field(description="The thread, oldest first.")
    async def messages(
        self, info: strawberry.Info, first: int = 50, after: str | None = None
    ) -> Connection[ComplaintMessage]:
        try:
            first = check_first(first, info.context.settings.page_max)
            page = await page_of(MessageModel.filter(complaint_id=self.id), first, after, newest_first=False)
        except DomainError as error:
            raise graphql_error(error) from None
        return connection_of(page)


@strawberry.type(description="A service rating (好差评).")
class Rating(Node):
    is_type_of = classmethod(lambda cls, obj, _info: isinstance(obj, RatingModel))
    level: int
    comment: str
    created_at: dt.datetime
    contact_due: dt.date | None
    contacted_at: dt.datetime | None
    rectify_due: dt.date | None
    rectified_at: dt.datetime | None
    rectification: str | None
    result: str | None
    result_reported_at: dt.datetime | None
    rater_satisfied: bool | None
    deadline_provisional: bool
    appeal_status: str = strawberry.field(description="NONE · PENDING · UPHELD · REJECTED")

    @strawberry.field
    def level_label(self) -> str:
        return rules.RatingLevel(self.level).label

    @strawberry.field
    def reasons(self) -> list[BadRatingReason]:
        return [rules.BadRatingReason(r) for r in self.reasons]

    @strawberry.field
    async def rater_name(self, info: strawberry.Info) -> str:
        return await _person(info, self.rater_id)

    @strawberry.field(description="A follow-up step of this 差评 is past its deadline.")
    def overdue(self, info: strawberry.Info) -> bool:
        return rating_service.is_overdue(self, info.context.now)


@strawberry.type
class RatingDistributionEntry:
    level: int
    count: int


@strawberry.type(description="评价统计")
class RatingStats:
    count: int
    distribution: list[RatingDistributionEntry]
    good_rate: float | None = strawberry.field(description="好评率: levels 3–5 / all (upheld appeals excluded)")
    bad_count: int
    rectified_rate: float | None = strawberry.field(description="差评整改率")
    overdue_follow_ups: int


# -- inputs and payloads -----------------------------------------------------------------------------------------


@strawberry.input
class FileComplaintInput:
    kind: ComplaintKind
    category: ComplaintCategory
    text: str
    image_upload_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    project_code: str | None = None
    department_id: strawberry.ID | None = None
    contact_phone: str | None = None
    idempotency_key: str | None = None


@strawberry.type
class ComplaintPayload:
    complaint: Complaint | None = None
    duplicate: bool = False
    errors: list[UserError]


@strawberry.input
class AssignComplaintInput:
    complaint_id: strawberry.ID
    department_id: strawberry.ID
    request_id: str | None = None


@strawberry.input
class ReplyComplaintInput:
    complaint_id: strawberry.ID
    text: str
    request_id: str | None = None


@strawberry.input
class CloseComplaintInput:
    complaint_id: strawberry.ID
    satisfied: bool
    request_id: str | None = None


@strawberry.input
class ReopenComplaintInput:
    complaint_id: strawberry.ID
    reason: str
    request_id: str | None = None


@strawberry.input
class PostComplaintMessageInput:
    complaint_id: strawberry.ID
    text: str
    image_upload_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    request_id: str | None = None


@strawberry.type
class ComplaintMessagePayload:
    message: ComplaintMessage | None = None
    duplicate: bool = False
    errors: list[UserError]


@strawberry.input
class RateServiceInput:
    case_id: strawberry.ID | None = None
    complaint_id: strawberry.ID | None = None
    level: int
    reasons: list[BadRatingReason] = strawberry.field(default_factory=list)
    comment: str | None = None


@strawberry.type
class RatingPayload:
    rating: Rating | None = None
    duplicate: bool = False
    errors: list[UserError]


@strawberry.input
class RecordRatingFollowUpInput:
    rating_id: strawberry.ID
    step: FollowUpStep
    note: str


@strawberry.input
class ConfirmRatingResultInput:
    rating_id: strawberry.ID
    satisfied: bool


@strawberry.input
class AppealRatingInput:
    rating_id: strawberry.ID
    reason: str


@strawberry.input
class DecideRatingAppealInput:
    rating_id: strawberry.ID
    upheld: bool
    note: str


@strawberry.input
class RatingStatsFilter:
    department_id: strawberry.ID | None = None
    item_code: str | None = None
    from_: dt.datetime | None = strawberry.field(default=None, name="from")
    to: dt.datetime | None = None


@strawberry.input
class ComplaintFilter:
    state: ComplaintState | None = None
    overdue_only: bool = False


# -- root fields -------------------------------------------------------------------------------------------------


def _complaint_pk(global_id: str, field: str = "complaintId") -> int:
    return pk_of(global_id, "Complaint", field)


@strawberry.type
class FeedbackQuery:
    @strawberry.field(description="One complaint; null when it does not exist or you may not see it.")
    async def complaint(self, info: strawberry.Info, id: strawberry.ID) -> Complaint | None:
        try:
            return await complaint_service.get_complaint(info.context.viewer, _complaint_pk(id, "id"))
        except DomainError:
            return None

    @strawberry.field(description="Complaints you may see (yours; your department's; all for dispatchers), newest first.")
    async def complaints(
        self, info: strawberry.Info, first: int = 20, after: str | None = None, filter: ComplaintFilter | None = None
    ) -> Connection[Complaint]:
        ctx = info.context
        f = filter or ComplaintFilter()
        try:
            page = await complaint_service.list_complaints(
                ctx.viewer, first=check_first(first, ctx.settings.page_max), after=after,
                state=rules.ComplaintState(f.state.value) if f.state else None, overdue_only=f.overdue_only,
                settings=ctx.settings, calendar=await ctx.calendar(), now=ctx.now,
            )
        except DomainError as error:
            raise graphql_error(error) from None
        return connection_of(page)

    @strawberry.field(description="Ratings you may see; `overdueOnly` lists 差评 whose follow-up is late.")
    async def ratings(
        self, info: strawberry.Info, first: int = 20, after: str | None = None, overdue_only: bool = False
    ) -> Connection[Rating]:
        ctx = info.context
        try:
            first = check_first(first, ctx.settings.page_max)
            query = RatingModel.filter(rating_service.rating_scope(ctx.viewer))
            if overdue_only:
                late = [r.id for r in await query.filter(level__lte=2) if rating_service.is_overdue(r, ctx.now)]
                query = RatingModel.filter(id__in=late)
            page = await page_of(query, first, after, newest_first=True)
        except DomainError as error:
            raise graphql_error(error) from None
        return connection_of(page)

    @strawberry.field(description="Staff: rating statistics per department and item.")
    async def rating_stats(self, info: strawberry.Info, filter: RatingStatsFilter | None = None) -> RatingStats:
        ctx = info.context
        f = filter or RatingStatsFilter()
        try:
            department = pk_of(f.department_id, "Department", "filter.departmentId") if f.department_id else None
            result = await rating_service.stats(
                ctx.viewer, department_id=department, item_code=f.item_code, since=f.from_, until=f.to, now=ctx.now
            )
        except DomainError as error:
            raise graphql_error(error) from None
        return RatingStats(
            count=result.count,
            distribution=[RatingDistributionEntry(level=k, count=v) for k, v in sorted(result.distribution.items())],
            good_rate=result.good_rate, bad_count=result.bad_count, rectified_rate=result.rectified_rate,
            overdue_follow_ups=result.overdue_follow_ups,
        )


@strawberry.type
class FeedbackMutation:
    @strawberry.mutation(description="File a suggestion or complaint (checked by WeChat content security).")
    async def file_complaint(self, info: strawberry.Info, input: FileComplaintInput) -> ComplaintPayload:
        ctx = info.context

        async def action() -> dict:
            department = pk_of(input.department_id, "Department", "departmentId") if input.department_id else None
            filed = await complaint_service.file_complaint(
                ctx.viewer, kind=rules.ComplaintKind(input.kind.value),
                category=rules.ComplaintCategory(input.category.value), text=input.text,
                image_ids=list(input.image_upload_ids), project_code=input.project_code, department_id=department,
                contact_phone=input.contact_phone, idempotency_key=input.idempotency_key, settings=ctx.settings,
                check_text=ctx.content_check, now=ctx.now,
            )
            return {"complaint": filed.complaint, "duplicate": filed.duplicate}

        return await payload_or_errors(ComplaintPayload, action)

    async def _act(self, info, complaint_id, action, **kwargs) -> ComplaintPayload:
        ctx = info.context

        async def run() -> dict:
            complaint, duplicate = await complaint_service.act(
                ctx.viewer, _complaint_pk(complaint_id), action, settings=ctx.settings, now=ctx.now, **kwargs
            )
            return {"complaint": complaint, "duplicate": duplicate}

        return await payload_or_errors(ComplaintPayload, run)

    @strawberry.mutation(description="Dispatchers: assign (or re-assign) a complaint to a department.")
    async def assign_complaint(self, info: strawberry.Info, input: AssignComplaintInput) -> ComplaintPayload:
        try:
            department = pk_of(input.department_id, "Department", "departmentId")
        except DomainError as error:
            return ComplaintPayload(errors=[UserError.of(error)])
        return await FeedbackMutation._act(self, info, input.complaint_id, rules.ComplaintAction.ASSIGN,
                                           department_id=department, request_id=input.request_id)

    @strawberry.mutation(description="The handling department replies (the filer is notified).")
    async def reply_complaint(self, info: strawberry.Info, input: ReplyComplaintInput) -> ComplaintPayload:
        return await FeedbackMutation._act(self, info, input.complaint_id, rules.ComplaintAction.REPLY,
                                           text=input.text, request_id=input.request_id)

    @strawberry.mutation(description="The filer closes a replied complaint, saying whether satisfied.")
    async def close_complaint(self, info: strawberry.Info, input: CloseComplaintInput) -> ComplaintPayload:
        return await FeedbackMutation._act(self, info, input.complaint_id, rules.ComplaintAction.CLOSE,
                                           satisfied=input.satisfied, request_id=input.request_id)

    @strawberry.mutation(description="The filer is not satisfied with the reply: the department handles it again.")
    async def reopen_complaint(self, info: strawberry.Info, input: ReopenComplaintInput) -> ComplaintPayload:
        return await FeedbackMutation._act(self, info, input.complaint_id, rules.ComplaintAction.REOPEN,
                                           text=input.reason, request_id=input.request_id)

    @strawberry.mutation(description="Post to a complaint's thread (the filer or the handling department).")
    async def post_complaint_message(
        self, info: strawberry.Info, input: PostComplaintMessageInput
    ) -> ComplaintMessagePayload:
        ctx = info.context

        async def action() -> dict:
            message, duplicate = await complaint_service.post_message(
                ctx.viewer, _complaint_pk(input.complaint_id), text=input.text,
                image_ids=list(input.image_upload_ids), request_id=input.request_id, settings=ctx.settings,
                broker=ctx.broker, now=ctx.now,
            )
            return {"message": message, "duplicate": duplicate}

        return await payload_or_errors(ComplaintMessagePayload, action)

    @strawberry.mutation(description="Rate a decided case or a closed complaint (一事一评, by the person served).")
    async def rate_service(self, info: strawberry.Info, input: RateServiceInput) -> RatingPayload:
        ctx = info.context

        async def action() -> dict:
            rating, duplicate = await rating_service.rate_service(
                ctx.viewer,
                case_id=pk_of(input.case_id, "Case", "caseId") if input.case_id else None,
                complaint_id=_complaint_pk(input.complaint_id) if input.complaint_id else None,
                level=input.level, reasons=[r.value for r in input.reasons], comment=input.comment,
                settings=ctx.settings, calendar=await ctx.calendar(), now=ctx.now,
            )
            return {"rating": rating, "duplicate": duplicate}

        return await payload_or_errors(RatingPayload, action)

    @strawberry.mutation(description="The rated department records a follow-up step of a 差评.")
    async def record_rating_follow_up(self, info: strawberry.Info, input: RecordRatingFollowUpInput) -> RatingPayload:
        ctx = info.context
        step = rules.FollowUpStep(input.step.value)
        return await _on_rating(
            input.rating_id, lambda rid: rating_service.record_follow_up(ctx.viewer, rid, step, input.note, now=ctx.now)
        )

    @strawberry.mutation(description="The rater says whether the reported result satisfies them.")
    async def confirm_rating_result(self, info: strawberry.Info, input: ConfirmRatingResultInput) -> RatingPayload:
        viewer = info.context.viewer
        return await _on_rating(input.rating_id, lambda rid: rating_service.confirm_result(viewer, rid, input.satisfied))

    @strawberry.mutation(description="The rated department appeals a mistaken or malicious rating (申诉).")
    async def appeal_rating(self, info: strawberry.Info, input: AppealRatingInput) -> RatingPayload:
        viewer = info.context.viewer
        return await _on_rating(input.rating_id, lambda rid: rating_service.appeal(viewer, rid, input.reason))

    @strawberry.mutation(description="A supervisor decides an appeal; an upheld one leaves the statistics.")
    async def decide_rating_appeal(self, info: strawberry.Info, input: DecideRatingAppealInput) -> RatingPayload:
        ctx = info.context
        return await _on_rating(
            input.rating_id,
            lambda rid: rating_service.decide_appeal(ctx.viewer, rid, input.upheld, input.note, ctx.now),
        )


async def _on_rating(global_id: str, call) -> RatingPayload:
    """One step on one rating: its id read from the input, the service called, the result or its refusal as payload."""

    async def action() -> dict:
        return {"rating": await call(pk_of(global_id, "Rating", "ratingId"))}

    return await payload_or_errors(RatingPayload, action)


async def _may_still_read(viewer, complaint_id: int) -> bool:
    from api.services.agents import load_viewer

    if viewer is None or viewer.session_id is None:
        return False
    current = await load_viewer(viewer.user_id, viewer.session_id)
    if current is None:
        return False
    try:
        await complaint_service.get_complaint(current, complaint_id)
    except DomainError:
        return False
    return True


@strawberry.type
class FeedbackSubscription:
    @strawberry.subscription(description="New messages of a complaint's thread, as they are posted.")
    async def complaint_messages(
        self, info: strawberry.Info, complaint_id: strawberry.ID
    ) -> AsyncGenerator[ComplaintMessage, None]:
        ctx = info.context
        try:
            complaint = await complaint_service.get_complaint(ctx.viewer, _complaint_pk(complaint_id))
        except DomainError as error:
            raise graphql_error(error) from None
        async with ctx.broker.subscribe(complaint_service.thread_channel(complaint.id)) as queue:
            while True:
                event = await queue.get()
                message = await MessageModel.get_or_none(id=event.get("messageId"), complaint_id=complaint.id)
                if message is None:
                    continue
                # The viewer was read when the subscription began: before each message, check again that the
                # person may still read the thread (logged out, deactivated, no longer the department's). If not,
                # the subscription ends (the client gets `complete`) instead of delivering to a stale viewer.
                if not await _may_still_read(ctx.viewer, complaint.id):
                    return
                yield message


__all__ = ["Complaint", "ComplaintMessage", "FeedbackMutation", "FeedbackQuery", "FeedbackSubscription", "Rating",
           "models"]
