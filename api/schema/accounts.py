"""Accounts (issue #3): WeChat login, sessions, phone binding, staff sign-in, agent authorisations, subscribe consents.

Resolvers are thin: each calls a service of ``api/services/{accounts,sessions,agents,consents}.py``; expected failures
(a bad WeChat code, a locked username, a dead refresh token) come back as ``errors`` in the payload.
"""

from __future__ import annotations

import datetime as dt

import strawberry

from api.domain.codes import mask_mobile
from api.domain.errors import DomainError
from api.models import AgentAuthorization as AgentAuthorizationModel
from api.services import accounts, agents, consents, sessions
from api.schema.base import Node, UserError, graphql_error, payload_or_errors, pk_of
from api.schema.types import Organization, SubscribeConsent, Viewer, _backed_by

SubscribeResult = strawberry.enum(
    consents.SubscribeResult, description="What wx.requestSubscribeMessage reported for a template."
)


@strawberry.type(description="经办人授权: an organisation authorises a verified phone number to act for it.")
class AgentAuthorization(Node):
    is_type_of = _backed_by(AgentAuthorizationModel)
    agent_name: str
    is_admin: bool = strawberry.field(description="May authorise and withdraw the organisation's agents")
    granted_at: dt.datetime
    revoked_at: dt.datetime | None

    @strawberry.field(description="Masked (138****1234) except to the number's owner")
    def phone(self, info: strawberry.Info) -> str:
        viewer = info.context.viewer
        return self.phone if viewer is not None and viewer.phone == self.phone else mask_mobile(self.phone)

    @strawberry.field
    async def organization(self, info: strawberry.Info) -> Organization:
        return await info.context.loaders.organization.load(self.organization_id)


@strawberry.type(description="A signed-in session: a short-lived access token and a one-use refresh token.")
class SessionPayload:
    access_token: str | None = None
    access_token_expires_at: dt.datetime | None = None
    refresh_token: str | None = strawberry.field(
        default=None, description="Good for one refreshSession; keep it secret (wx.setStorage)"
    )
    refresh_token_expires_at: dt.datetime | None = None
    viewer: Viewer | None = None
    is_new_user: bool = strawberry.field(default=False, description="True on the first WeChat login of this person")
    errors: list[UserError]


@strawberry.type
class LogoutPayload:
    ok: bool = False
    errors: list[UserError]


@strawberry.type
class BindPhonePayload:
    viewer: Viewer | None = None
    errors: list[UserError]


@strawberry.type
class AgentAuthorizationPayload:
    authorization: AgentAuthorization | None = None
    errors: list[UserError]


@strawberry.type
class SubscribeConsentPayload:
    consents: list[SubscribeConsent] = strawberry.field(default_factory=list)
    errors: list[UserError]


@strawberry.input
class LoginWithWechatInput:
    code: str = strawberry.field(description="The code of wx.login()")


@strawberry.input
class RefreshSessionInput:
    refresh_token: str


@strawberry.input
class LogoutInput:
    refresh_token: str | None = strawberry.field(
        default=None, description="Ends this token's session when the access token has expired already"
    )


@strawberry.input
class BindPhoneInput:
    code: str = strawberry.field(description="The code of the getPhoneNumber button (single use, 5 minutes)")


@strawberry.input
class StaffLoginInput:
    username: str
    password: str


@strawberry.input
class AuthorizeAgentInput:
    organization_id: strawberry.ID
    phone: str
    name: str
    is_admin: bool = False


@strawberry.input
class RevokeAgentInput:
    authorization_id: strawberry.ID


@strawberry.input
class SubscribeConsentResult:
    template_id: str
    result: SubscribeResult


@strawberry.input
class RecordSubscribeConsentInput:
    results: list[SubscribeConsentResult]


async def _session_values(pair: sessions.TokenPair, *, is_new_user: bool = False) -> dict:
    return {
        "access_token": pair.access_token,
        "access_token_expires_at": pair.access_expires_at,
        "refresh_token": pair.refresh_token,
        "refresh_token_expires_at": pair.refresh_expires_at,
        "viewer": await agents.viewer_of(pair.user, session_id=pair.session_id),
        "is_new_user": is_new_user,
    }


@strawberry.type
class AccountsQuery:
    @strawberry.field(description="The organisation's active agents; for its admin agents and platform admins.")
    async def organization_agents(self, info: strawberry.Info, organization_id: strawberry.ID) -> list[AgentAuthorization]:
        try:
            return await agents.list_agents(info.context.viewer, pk_of(organization_id, "Organization", "organizationId"))
        except DomainError as error:
            raise graphql_error(error) from None


@strawberry.type
class AccountsMutation:
    @strawberry.mutation(description="Sign in with the code of wx.login(); creates the account on first use.")
    async def login_with_wechat(self, info: strawberry.Info, input: LoginWithWechatInput) -> SessionPayload:
        ctx = info.context

        async def action() -> dict:
            login = await accounts.login_with_wechat(ctx.settings, ctx.wechat, input.code, now=ctx.now)
            return await _session_values(login.tokens, is_new_user=login.is_new_user)

        return await payload_or_errors(SessionPayload, action)

    @strawberry.mutation(description="A new token pair for a refresh token, which is used up; reusing one ends the session.")
    async def refresh_session(self, info: strawberry.Info, input: RefreshSessionInput) -> SessionPayload:
        ctx = info.context

        async def action() -> dict:
            return await _session_values(await sessions.refresh_session(ctx.settings, input.refresh_token, now=ctx.now))

        return await payload_or_errors(SessionPayload, action)

    @strawberry.mutation(description="End the session: its access and refresh tokens stop working at once.")
    async def logout(self, info: strawberry.Info, input: LogoutInput | None = None) -> LogoutPayload:
        ctx = info.context

        async def action() -> dict:
            await sessions.logout(ctx.viewer, input.refresh_token if input else None, now=ctx.now)
            return {"ok": True}

        return await payload_or_errors(LogoutPayload, action)

    @strawberry.mutation(description="Bind the phone number WeChat verified (the code of the getPhoneNumber button).")
    async def bind_phone(self, info: strawberry.Info, input: BindPhoneInput) -> BindPhonePayload:
        ctx = info.context

        async def action() -> dict:
            user = await accounts.bind_phone(ctx.viewer, ctx.wechat, input.code, now=ctx.now)
            return {"viewer": await agents.viewer_of(user, session_id=ctx.viewer.session_id)}

        return await payload_or_errors(BindPhonePayload, action)

    @strawberry.mutation(description="Staff sign-in with a username and password (locked for a while after 5 failures).")
    async def staff_login(self, info: strawberry.Info, input: StaffLoginInput) -> SessionPayload:
        ctx = info.context

        async def action() -> dict:
            return await _session_values(
                await accounts.staff_login(ctx.settings, input.username, input.password, now=ctx.now)
            )

        return await payload_or_errors(SessionPayload, action)

    @strawberry.mutation(description="经办人授权: authorise a phone number to act for the organisation.")
    async def authorize_agent(self, info: strawberry.Info, input: AuthorizeAgentInput) -> AgentAuthorizationPayload:
        ctx = info.context

        async def action() -> dict:
            grant = await agents.authorize_agent(
                ctx.viewer, pk_of(input.organization_id, "Organization", "organizationId"),
                phone=input.phone, name=input.name, is_admin=input.is_admin, now=ctx.now,
            )
            return {"authorization": grant}

        return await payload_or_errors(AgentAuthorizationPayload, action)

    @strawberry.mutation(description="Withdraw an authorisation: the agent loses access at its next request.")
    async def revoke_agent(self, info: strawberry.Info, input: RevokeAgentInput) -> AgentAuthorizationPayload:
        ctx = info.context

        async def action() -> dict:
            grant_id = pk_of(input.authorization_id, "AgentAuthorization", "authorizationId")
            return {"authorization": await agents.revoke_agent(ctx.viewer, grant_id, now=ctx.now)}

        return await payload_or_errors(AgentAuthorizationPayload, action)

    @strawberry.mutation(description="Record what wx.requestSubscribeMessage returned; each accept allows one notice.")
    async def record_subscribe_consent(
        self, info: strawberry.Info, input: RecordSubscribeConsentInput
    ) -> SubscribeConsentPayload:
        ctx = info.context

        async def action() -> dict:
            results = [(r.template_id, consents.SubscribeResult(r.result.value)) for r in input.results]
            return {"consents": await consents.record_consents(ctx.viewer, results)}

        return await payload_or_errors(SubscribeConsentPayload, action)


__all__ = ["AccountsMutation", "AccountsQuery", "AgentAuthorization"]
