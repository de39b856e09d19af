"""Who is asking, and what they may see (DESIGN.md §4).

Every object check lives here: the row-level scope of each role, as Tortoise filters the queries apply. Asking for an
object outside one's scope answers exactly like an object that does not exist (``NOT_FOUND``).
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.expressions import Q, Subquery

from api.domain.accounts import READ_ALL_ROLES, Role
from api.domain.codes import region_prefix
from api.domain.errors import DomainError
from api.domain.lifecycle import Party
from api.models import User


@dataclass(frozen=True)
class Viewer:
    user_id: int
    role: Role
    display_name: str
    organization_id: int | None  # an applicant: the organisation it acts for *now*, i.e. while it is authorised
    department_id: int | None
    region_code: str | None
    phone: str | None = None  # verified phone number (shown in clear to its owner only)
    session_id: str | None = None

    @classmethod
    def of(cls, user: User, *, authorized: bool = True, session_id: str | None = None) -> "Viewer":
        """``authorized``: whether an applicant's organisation still authorises its phone (经办人授权, issue #3).

        Without it an applicant acts for nobody: it sees no project, certificate or case of the organisation.
        """
        organization_id = user.organization_id
        if user.role is Role.APPLICANT and not authorized:
            organization_id = None
        return cls(
            user_id=user.id,
            role=user.role,
            display_name=user.display_name,
            organization_id=organization_id,
            department_id=user.department_id,
            region_code=user.region_code,
            phone=user.phone if user.phone_verified_at else None,
            session_id=session_id,
        )

    @property
    def party(self) -> Party | None:
        """The party of the case lifecycle this person acts as."""
        return {
            Role.APPLICANT: Party.APPLICANT,
            Role.WINDOW_CLERK: Party.WINDOW,
            Role.APPROVER: Party.DEPARTMENT,
        }.get(self.role)


NOTHING = Q(id__in=[])


def not_found(what: str = "办件") -> DomainError:
    return DomainError("NOT_FOUND", f"{what}不存在或您无权查看", None)


def require_viewer(viewer: Viewer | None) -> Viewer:
    if viewer is None:
        raise DomainError("UNAUTHENTICATED", "请先登录", None)
    return viewer


def project_scope(viewer: Viewer | None) -> Q:
    """Projects the viewer may see."""
    if viewer is None:
        return NOTHING
    if viewer.role in READ_ALL_ROLES:
        return Q()
    if viewer.role is Role.APPLICANT and viewer.organization_id:
        return Q(organization_id=viewer.organization_id)
    if viewer.role is Role.WINDOW_CLERK and viewer.region_code:
        return Q(region_code__startswith=region_prefix(viewer.region_code))
    if viewer.role is Role.APPROVER and viewer.department_id:
        from api.models import Case

        return Q(id__in=Subquery(Case.filter(department_id=viewer.department_id).values("project_id")))
    return NOTHING


def case_scope(viewer: Viewer | None) -> Q:
    """Cases the viewer may see. An approver sees its own department's cases only, not the whole project."""
    if viewer is None:
        return NOTHING
    if viewer.role in READ_ALL_ROLES:
        return Q()
    if viewer.role is Role.APPLICANT and viewer.organization_id:
        return Q(project__organization_id=viewer.organization_id)
    if viewer.role is Role.WINDOW_CLERK and viewer.region_code:
        return Q(project__region_code__startswith=region_prefix(viewer.region_code))
    if viewer.role is Role.APPROVER and viewer.department_id:
        return Q(department_id=viewer.department_id)
    return NOTHING


def client_key(viewer: Viewer, raw: str | None, *, field: str = "idempotencyKey") -> str | None:
    """A client's own retry key (幂等键), scoped to the person: the same key from two people never collides."""
    if not raw:
        return None
    if len(raw) > 100:
        raise DomainError("INVALID_INPUT", "幂等键不能超过100个字符", field)
    return f"{viewer.user_id}:{raw}"
