"""The one GraphQL schema, assembled from the areas' query and mutation types (DESIGN.md §3)."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types.graphql import OperationType
from strawberry.extensions import (
    AddValidationRules,
    SchemaExtension,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
)

from api import busy
from api.schema import types
from api.schema.context import Context
from api.schema.gate import GatedValidation, Limits, NoIntrospection
from api.schema.trusted import Registry, TrustedDocuments
from api.schema.direct import ExecutionContext as DirectExecutionContext, direct_resolvers, fast_enums
from api.schema.inputs import SCALAR_OVERRIDES, CheckedArguments, check_arguments, is_unexpected, log_errors
from api.schema.accounts import AccountsMutation, AccountsQuery, AgentAuthorization
from api.schema.feedback import FeedbackMutation, FeedbackQuery, FeedbackSubscription
from api.schema import certificates, feedback, notices
from api.schema.certificates import CertificateMutation, CertificateQuery
from api.schema.notices import NoticeMutation, NoticeQuery
from api.schema.mutations import ProgressMutation
from api.schema.queries import ProgressQuery
from api.schema.guides import GuideQuery
from api.schema import conversation
from api.schema.conversation import ConversationMutation, ConversationQuery, ConversationSubscription
from api.schema.supervision import SupervisionQuery
from api.settings import Settings


@strawberry.type
class Query(
    ProgressQuery, AccountsQuery, NoticeQuery, FeedbackQuery, CertificateQuery, GuideQuery, ConversationQuery,
    SupervisionQuery,
):
    pass


@strawberry.type
class Mutation(
    ProgressMutation, AccountsMutation, NoticeMutation, FeedbackMutation, CertificateMutation, ConversationMutation
):
    pass


@strawberry.type
class Subscription(FeedbackSubscription, ConversationSubscription):
    pass


# Types reached only through the Node interface must still be in the schema.
_EXTRA_TYPES = [
    types.Project,
    types.Case,
    types.Application,
    types.Department,
    types.ApprovalItem,
    types.Organization,
    AgentAuthorization,
    notices.Notice,
    notices.NoticeDelivery,
    feedback.Complaint,
    feedback.ComplaintMessage,
    feedback.Rating,
    certificates.Certificate,
    certificates.Seal,
    conversation.ConversationMessage,
    conversation.Consultation,
]

MASKED_MESSAGE = "服务器内部错误，请稍后重试"


# Mask what we did not mean to say: an exception that is not a GraphQLError we raised on purpose.
_is_unexpected = is_unexpected


class JianshenSchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        log_errors(errors, execution_context)  # the client's mistakes at INFO, bugs with their traceback


class BusyAnswer(SchemaExtension):
    """An error raised because the database was busy (api/busy.py) answers SERVICE_BUSY, not the masked internal error.
    Listed after MaskErrors so that it sees the errors first (extensions leave the operation in reverse order)."""

    def on_operation(self):
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors and any(busy.is_busy(error.original_error) for error in errors):
            result.errors = [
                GraphQLError(busy.MESSAGE, nodes=error.nodes, path=error.path, extensions={"code": busy.CODE})
                if busy.is_busy(error.original_error)
                else error
                for error in errors
            ]


class KeepableAnswer(SchemaExtension):
    """Tells the response cache (api/response_cache.py) that an answer may be kept: a query, executed without an
    error, that touched nothing volatile (the context records that as resolvers run). Also names the operation for
    the request log."""

    def on_operation(self):
        yield
        context = self.execution_context.context
        if isinstance(context, Context):
            try:
                name = self.execution_context.operation_name  # the one asked for, or the document's only one
            except Exception:  # noqa: BLE001 - a document that did not parse has no name
                name = None
            context.operation_name = name[:100] if name else None

    def on_execute(self):
        yield
        context = self.execution_context.context
        result = self.execution_context.result
        if isinstance(context, Context):
            context.keepable = (
                self.execution_context.operation_type is OperationType.QUERY
                and result is not None
                and not getattr(result, "errors", None)
                and getattr(result, "data", None) is not None
                and context.volatile is None
            )


def build_schema(settings: Settings) -> strawberry.Schema:
    # Depth, aliases, expanded fields, field-merging pairs and cost are measured by GatedValidation (api/schema/gate.py)
    # in time linear in the document, before graphql-core's rules run; Strawberry's depth and alias limiters re-walked
    # every fragment spread (issue #10). ValidationCache keys its LRU on the rule *classes*: the extra rules are made
    # once per schema, so every request's extension adds the same classes.
    limits = Limits(
        max_fields=settings.graphql_max_fields,
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_field_pairs=settings.graphql_max_field_pairs,
        max_cost=settings.graphql_max_cost,
        page_max=settings.page_max,
    )
    extra_rules = [] if settings.introspection_enabled else [NoIntrospection]
    registry = Registry.load(settings.graphql_extra_documents, required=settings.is_production)
    # Factories: a fresh extension per request. The parser and validation caches are shared module-level LRU caches.
    extensions = [
        # First: in production only the mini-program's documents (and the listed extra ones) run (issue #10).
        lambda: TrustedDocuments(
            registry, enforce=settings.is_production, allow_introspection=settings.introspection_enabled,
            max_tokens=settings.graphql_max_tokens,
        ),
        lambda: ParserCache(maxsize=256),
        lambda: GatedValidation(limits, hide_suggestions=settings.is_production, maxsize=256),
        lambda: AddValidationRules(extra_rules),
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        # Unexpected errors never reach the client: no stack trace, no SQL (DESIGN.md §3).
        lambda: MaskErrors(should_mask_error=_is_unexpected, error_message=MASKED_MESSAGE),
        BusyAnswer,
        KeepableAnswer,
        conversation.ConversationPublishing,  # new conversation messages go live after the operation (issue #11)
        CheckedArguments,  # a subscription over HTTP is the client's mistake; arguments: check_arguments below
    ]
    schema = JianshenSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=_EXTRA_TYPES,
        extensions=extensions,
        scalar_overrides=SCALAR_OVERRIDES,
        execution_context_class=DirectExecutionContext,  # model instances are values, not awaitables
    )
    # Per field, once (issue #13): the fields with arguments check them; those without resolve without Strawberry's
    # per-call wrapper (api/schema/direct.py). No extension above has a ``resolve`` hook: one would run around every
    # field of every answer.
    check_arguments(schema)
    direct_resolvers(schema)
    fast_enums(schema)
    return schema


def export_sdl() -> str:
    return build_schema(Settings()).as_str() + "\n"
