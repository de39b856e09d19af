"""Login sessions and refresh-token rotation (issue #3, DESIGN.md §4).

A sign-in opens a ``LoginSession``; its access tokens carry the session id and die with it. The refresh token is
random, stored only as its SHA-256, and good for one use: refreshing marks it used and issues the next one. Presenting
a used token again means it was copied — the thief or the owner is replaying it — so the whole session is revoked and
both must sign in again (OAuth 2.0 Security BCP, refresh-token rotation with reuse detection).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from api.domain.errors import DomainError
from api.models import LoginSession, RefreshToken, User
from api.services.tokens import issue_access_token
from api.settings import Settings


@dataclass(frozen=True)
class TokenPair:
    user: User
    session_id: str
    access_token: str
    access_expires_at: dt.datetime
    refresh_token: str
    refresh_expires_at: dt.datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_expired() -> DomainError:
    return DomainError("SESSION_EXPIRED", "登录已失效，请重新登录", "refreshToken")


async def _issue(settings: Settings, user: User, session_id: str, now: dt.datetime) -> TokenPair:
    refresh = secrets.token_urlsafe(32)
    refresh_expires = now + dt.timedelta(seconds=settings.refresh_token_ttl)
    await RefreshToken.create(session_id=session_id, token_hash=_hash(refresh), created_at=now, expires_at=refresh_expires)
    access = issue_access_token(
        settings, user_id=user.id, role=user.role.value, session_id=session_id, now=int(now.timestamp())
    )
    return TokenPair(
        user=user,
        session_id=session_id,
        access_token=access,
        access_expires_at=now + dt.timedelta(seconds=settings.access_token_ttl),
        refresh_token=refresh,
        refresh_expires_at=refresh_expires,
    )


async def start_session(settings: Settings, user: User, *, kind: str, now: dt.datetime) -> TokenPair:
    session = await LoginSession.create(id=uuid.uuid4(), user=user, kind=kind, created_at=now)
    return await _issue(settings, user, str(session.id), now)


async def refresh_session(settings: Settings, refresh_token: str, *, now: dt.datetime) -> TokenPair:
    """Rotate: the presented token is used up and a new pair comes back. A reused token revokes the session."""
    row = await RefreshToken.get_or_none(token_hash=_hash(refresh_token or "")).select_related("session__user")
    if row is None:
        raise session_expired()
    session = row.session
    if session.revoked_at is not None or row.expires_at <= now or not session.user.is_active:
        raise session_expired()
    async with in_transaction():
        # Only one of two concurrent refreshes with the same token can win this update.
        won = await RefreshToken.filter(id=row.id, used_at__isnull=True).update(used_at=now)
        if not won:
            await revoke_session(str(session.id), reason="REPLAY", now=now)
        else:
            await LoginSession.filter(id=session.id).update(last_refreshed_at=now)
            pair = await _issue(settings, session.user, str(session.id), now)
    if not won:
        raise session_expired()
    return pair


async def revoke_session(session_id: str, *, reason: str, now: dt.datetime) -> bool:
    return bool(
        await LoginSession.filter(id=session_id, revoked_at__isnull=True).update(revoked_at=now, revoke_reason=reason)
    )


async def logout(viewer, refresh_token: str | None, *, now: dt.datetime) -> None:
    """End the caller's session (from its access token), or the session of ``refresh_token``."""
    if viewer is not None and viewer.session_id:
        await revoke_session(viewer.session_id, reason="LOGOUT", now=now)
        return
    row = await RefreshToken.get_or_none(token_hash=_hash(refresh_token or ""))
    if row is None:
        raise DomainError("UNAUTHENTICATED", "请先登录", None)
    await revoke_session(str(row.session_id), reason="LOGOUT", now=now)
