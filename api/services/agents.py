"""经办人授权 (acting for a company, issue #3): an organisation authorises a verified phone number as its agent.

An applicant acts for an organisation only while an active authorisation of its *verified* phone number exists; the
check runs on every request (``viewer_of``), so a withdrawal takes effect at the very next request. The organisation's
admin agents (``is_admin``) and the platform's ADMIN authorise and withdraw agents. A citizen needs no organisation.
"""

from __future__ import annotations

import datetime as dt

from tortoise.expressions import RawSQL
from tortoise.transactions import in_transaction

from api.domain.accounts import Role
from api.domain.codes import is_valid_mobile
from api.domain.errors import DomainError
from api.models import AgentAuthorization, Organization, User
from api.services.access import Viewer, not_found, require_viewer
from api.services.locks import lock_row


def active(**filters) -> "object":
    return AgentAuthorization.filter(revoked_at__isnull=True, **filters)


# The same check inside the middleware's one query for the user and its session (a correlated subquery).
AUTHORIZED_SQL = RawSQL(
    '(SELECT COUNT(*) FROM "agent_authorization" WHERE "agent_authorization"."organization_id" = '
    '"app_user"."organization_id" AND "agent_authorization"."phone" = "app_user"."phone" '
    'AND "agent_authorization"."revoked_at" IS NULL AND "app_user"."phone_verified_at" IS NOT NULL)'
)


async def load_viewer(user_id: int, session_id: str) -> Viewer | None:
    """The viewer of an access token, in one query: the user if active, its session if live, its authorisation."""
    user = (
        await User.filter(
            id=user_id, is_active=True, login_sessions__id=session_id, login_sessions__revoked_at__isnull=True
        )
        .annotate(authorizations=AUTHORIZED_SQL)
        .first()
    )
    if user is None:
        return None
    return Viewer.of(user, authorized=bool(user.authorizations), session_id=session_id)


async def is_authorized(user: User) -> bool:
    """Whether an applicant's organisation authorises its verified phone now (one small indexed query)."""
    if user.role is not Role.APPLICANT or not user.organization_id or not (user.phone and user.phone_verified_at):
        return False
    return await active(organization_id=user.organization_id, phone=user.phone).exists()


async def viewer_of(user: User, *, session_id: str | None = None) -> Viewer:
    authorized = user.role is not Role.APPLICANT or await is_authorized(user)
    return Viewer.of(user, authorized=authorized, session_id=session_id)


async def adopt_authorization(user: User) -> None:
    """A person without an organisation whose verified phone an organisation authorises becomes its applicant."""
    if user.role not in (Role.CITIZEN, Role.APPLICANT) or not (user.phone and user.phone_verified_at):
        return
    if user.role is Role.APPLICANT and user.organization_id and await is_authorized(user):
        return
    grant = await active(phone=user.phone).order_by("granted_at", "id").first()
    if grant is not None:
        user.role, user.organization_id = Role.APPLICANT, grant.organization_id
        await user.save(update_fields=["role", "organization_id"])


async def may_manage(viewer: Viewer, organization_id: int) -> bool:
    if viewer.role is Role.ADMIN:
        return True
    return (
        viewer.role is Role.APPLICANT
        and viewer.organization_id == organization_id
        and viewer.phone is not None
        and await active(organization_id=organization_id, phone=viewer.phone, is_admin=True).exists()
    )


async def _managed_organization(viewer: Viewer | None, organization_id: int) -> Organization:
    viewer = require_viewer(viewer)
    organization = await Organization.get_or_none(id=organization_id)
    if organization is None or not await may_manage(viewer, organization_id):
        raise not_found("单位")
    return organization


async def list_agents(viewer: Viewer | None, organization_id: int) -> list[AgentAuthorization]:
    await _managed_organization(viewer, organization_id)
    return await active(organization_id=organization_id).order_by("granted_at", "id")


async def authorize_agent(
    viewer: Viewer | None, organization_id: int, *, phone: str, name: str, is_admin: bool, now: dt.datetime
) -> AgentAuthorization:
    organization = await _managed_organization(viewer, organization_id)
    phone, name = (phone or "").strip(), (name or "").strip()
    if not is_valid_mobile(phone):
        raise DomainError("INVALID_PHONE", "请输入正确的11位手机号码", "phone")
    if not name or len(name) > 100:
        raise DomainError("REQUIRED", "请填写经办人姓名", "name")
    async with in_transaction():
        # The organisation's row is the lock of "one authorisation per phone": two grants of the same phone at once
        # find the first one's row instead of both creating one (issue #10, api/services/locks.py).
        await lock_row(Organization, organization.id, "name")
        existing = await active(organization_id=organization.id, phone=phone).first()
        if existing is not None:
            existing.agent_name, existing.is_admin = name, is_admin
            await existing.save(update_fields=["agent_name", "is_admin"])
            grant = existing
        else:
            grant = await AgentAuthorization.create(
                organization=organization, phone=phone, agent_name=name, is_admin=is_admin,
                granted_by_id=viewer.user_id, granted_at=now,  # type: ignore[union-attr]
            )
        for user in await User.filter(phone=phone, phone_verified_at__isnull=False, is_active=True):
            await adopt_authorization(user)
    return grant


async def revoke_agent(viewer: Viewer | None, authorization_id: int, *, now: dt.datetime) -> AgentAuthorization:
    # Another organisation's authorisation answers exactly like a missing one (DESIGN.md §4): one check, one message.
    viewer = require_viewer(viewer)
    grant = await AgentAuthorization.get_or_none(id=authorization_id)
    if grant is None or not await may_manage(viewer, grant.organization_id):
        raise not_found("授权")
    if grant.revoked_at is None:
        grant.revoked_at, grant.revoked_by_id = now, viewer.user_id  # type: ignore[union-attr]
        await grant.save(update_fields=["revoked_at", "revoked_by_id"])
    return grant
