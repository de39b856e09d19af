"""Queries of approval progress: the viewer, a project by its code, lists of projects and the staff case queue."""

from __future__ import annotations

import strawberry

from api.domain.errors import DomainError
from api.models import Application as ApplicationModel
from api.models import ApprovalItem as ApprovalItemModel
from api.models import Case as CaseModel
from api.models import Department as DepartmentModel
from api.models import Organization as OrganizationModel
from api.models import Project as ProjectModel
from api.services import progress
from api.services.access import case_scope, project_scope
from api.services.applications import check_project_code
from api.domain.ids import from_global_id
from api.schema.base import CURRENT_NAME, Node, graphql_error, node_key
from api.schema.types import (
    Case,
    CaseState,
    Connection,
    Light,
    Project,
    Viewer,
    connection_of,
    prefetch_progress,
)


@strawberry.input
class ProjectFilter:
    light: Light | None = strawberry.field(default=None, description="Projects whose worst running light is this")
    stage: int | None = strawberry.field(default=None, description="Projects whose current stage is this (1–5)")
    search: str | None = strawberry.field(default=None, description="In the code, name or address")


@strawberry.input
class CaseQueueFilter:
    state: list[CaseState] | None = None
    light: Light | None = None


async def _node(info: strawberry.Info, global_id: str):
    """The object of any node type, under the viewer's permissions: the same it could reach another way, else None.
    A test walks the schema and checks that every type with an ``id`` is here (tests/api/test_relay.py)."""
    viewer = info.context.viewer
    kind, _ = from_global_id(global_id)
    kind = CURRENT_NAME.get(kind, kind)  # an id issued under a node type's former name
    pk_int = node_key(global_id, kind)  # out of range: no such row, like any missing one
    if pk_int is None or viewer is None:
        return None
    if kind == "Viewer":  # a person is a node to itself only
        return viewer if pk_int == viewer.user_id else None
    if kind == "Project":
        return await ProjectModel.filter(project_scope(viewer), id=pk_int).first()
    if kind == "Case":
        return await CaseModel.filter(case_scope(viewer), id=pk_int).first()
    if kind == "Application":
        # Visible when one of its cases is.
        case = await CaseModel.filter(case_scope(viewer), application_id=pk_int).first()
        return await ApplicationModel.get_or_none(id=pk_int) if case else None
    if kind == "Department":
        return await DepartmentModel.get_or_none(id=pk_int)
    if kind == "ApprovalItem":
        return await ApprovalItemModel.get_or_none(id=pk_int)
    if kind == "Notice":
        from api.models import Notice

        return await Notice.get_or_none(id=pk_int, recipient_id=viewer.user_id)
    if kind == "NoticeDelivery":
        from api.domain.accounts import READ_ALL_ROLES
        from api.models import Delivery

        return await Delivery.get_or_none(id=pk_int) if viewer.role in READ_ALL_ROLES else None
    if kind in ("Complaint", "ComplaintMessage"):
        from api.models import Complaint, ComplaintMessage
        from api.services.complaints import complaint_scope

        if kind == "Complaint":
            return await Complaint.filter(complaint_scope(viewer), id=pk_int).first()
        # A message of a thread the viewer may read.
        message = await ComplaintMessage.get_or_none(id=pk_int)
        if message is None or not await Complaint.filter(complaint_scope(viewer), id=message.complaint_id).exists():
            return None
        return message
    if kind == "AgentAuthorization":
        from api.models import AgentAuthorization
        from api.services.agents import may_manage

        # The organisation's managers (organizationAgents), and the person whose phone it authorises.
        grant = await AgentAuthorization.get_or_none(id=pk_int)
        if grant is None:
            return None
        if viewer.phone is not None and viewer.phone == grant.phone:
            return grant
        return grant if await may_manage(viewer, grant.organization_id) else None
    if kind == "Rating":
        from api.models import Rating
        from api.services.ratings import rating_scope

        return await Rating.filter(rating_scope(viewer), id=pk_int).first()
    if kind == "Certificate":
        from api.services.certificates import get_certificate

        return await get_certificate(viewer, pk_int)
    if kind == "Seal":
        from api.domain.accounts import Role
        from api.models import Seal

        return await Seal.get_or_none(id=pk_int) if viewer.role is Role.ADMIN else None
    if kind == "ConversationMessage":  # a message of one's own conversation only
        from api.services.conversation import message_for

        return await message_for(viewer, pk_int)
    if kind == "Consultation":
        from api.models import Consultation
        from api.services.consultations import consultation_scope

        return await Consultation.filter(consultation_scope(viewer), id=pk_int).first()
    if kind == "Organization":
        if viewer.role.is_staff or viewer.organization_id == pk_int:
            return await OrganizationModel.get_or_none(id=pk_int)
    return None


@strawberry.type
class ProgressQuery:
    @strawberry.field(description="The person signed in; null when not signed in.")
    def viewer(self, info: strawberry.Info) -> Viewer | None:
        return info.context.viewer

    @strawberry.field(description="Any object by its global id; null when it does not exist or you may not see it.")
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> Node | None:
        return await _node(info, id)

    @strawberry.field(description="A project by its 项目代码; null when it does not exist or you may not see it.")
    async def project(self, info: strawberry.Info, code: str) -> Project | None:
        try:
            code = check_project_code(code, field="code")
        except DomainError as error:
            raise graphql_error(error) from None
        project = await progress.get_project(info.context.viewer, code)
        if project is not None:
            await prefetch_progress(info, project)  # its fields then resolve without awaiting (issue #13)
        return project

    @strawberry.field(
        description="Projects you may see: an applicant its organisation's, an approver those its department "
        "handles, a window clerk those of its region, a supervisor all. Newest first."
    )
    async def projects(
        self,
        info: strawberry.Info,
        first: int = 20,
        after: str | None = None,
        filter: ProjectFilter | None = None,
    ) -> Connection[Project]:
        ctx = info.context
        f = filter or ProjectFilter()
        try:
            page = await progress.list_projects(
                ctx.viewer,
                first=progress.check_first(first, ctx.settings.page_max),
                after=after,
                light=f.light,
                stage=f.stage,
                search=f.search,
                calendar=await ctx.calendar(),
                now=ctx.today_start,  # lights: the date alone
            )
        except DomainError as error:
            raise graphql_error(error) from None
        return connection_of(page)

    @strawberry.field(description="Cases for staff to work on, oldest first: a clerk's region, an approver's department.")
    async def case_queue(
        self,
        info: strawberry.Info,
        first: int = 20,
        after: str | None = None,
        filter: CaseQueueFilter | None = None,
    ) -> Connection[Case]:
        ctx = info.context
        f = filter or CaseQueueFilter()
        try:
            page = await progress.case_queue(
                ctx.viewer,
                first=progress.check_first(first, ctx.settings.page_max),
                after=after,
                states=f.state,
                light=f.light,
                calendar=await ctx.calendar(),
                now=ctx.today_start,  # lights: the date alone
            )
        except DomainError as error:
            raise graphql_error(error) from None
        return connection_of(page)
