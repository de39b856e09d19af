"""Cookie sessions of the staff web pages (the dashboard, issue #14 §2; DESIGN.md §3b).

Signing in goes through ``staff_login`` (argon2, the username's lock-out) and opens the same server-side
``LoginSession`` an access token names; the cookie carries ``<user id>.<session id>.<HMAC>`` and nothing else, so
signing out (``revoke_session``) ends it everywhere at once, and a cookie is good for at most
``dashboard_session_seconds`` after sign-in whatever the browser keeps.

CSRF: every form carries a token the server derives with its secret key — from the session id once signed in, and
before that from a random value kept in a separate cookie (a signed double-submit cookie), so a page of another site
can neither read nor forge it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets

from api.models import LoginSession
from api.services.access import Viewer
from api.services.accounts import staff_login
from api.services.agents import load_viewer
from api.services.sessions import revoke_session
from api.settings import Settings

SESSION_COOKIE = "jianshen_dashboard"
LOGIN_COOKIE = "jianshen_login"  # the random value behind the sign-in form's CSRF token
KIND = "STAFF"  # staff_login's session kind: the same sessions as staffLogin's tokens


def _mac(settings: Settings, purpose: str, value: str) -> str:
    digest = hmac.new(settings.secret_key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


async def sign_in(settings: Settings, username: str, password: str, *, now: dt.datetime) -> str:
    """The session cookie's value for a staff member's username and password (``staff_login``'s DomainErrors)."""
    pair = await staff_login(settings, username, password, now=now)
    value = f"{pair.user.id}.{pair.session_id}"
    return f"{value}.{_mac(settings, 'session', value)}"


def session_id_of(settings: Settings, cookie: str | None) -> tuple[int, str] | None:
    """(user id, session id) of a cookie the server wrote, None for anything else."""
    if not cookie or len(cookie) > 200:
        return None
    user_id, _, rest = cookie.partition(".")
    session_id, _, mac = rest.partition(".")
    if not user_id.isdigit() or len(user_id) > 18 or not session_id:
        return None
    if not _same(mac, _mac(settings, "session", f"{user_id}.{session_id}")):
        return None
    return int(user_id), session_id


async def viewer_of(settings: Settings, cookie: str | None, *, now: dt.datetime) -> Viewer | None:
    """Who holds the cookie: None when it is not ours, its session was revoked or is older than allowed, or its
    user is disabled."""
    ids = session_id_of(settings, cookie)
    if ids is None:
        return None
    user_id, session_id = ids
    oldest = now - dt.timedelta(seconds=settings.dashboard_session_seconds)
    live = await LoginSession.filter(
        id=session_id, user_id=user_id, kind=KIND, revoked_at__isnull=True, created_at__gt=oldest
    ).exists()
    return await load_viewer(user_id, session_id) if live else None


async def sign_out(settings: Settings, cookie: str | None, *, now: dt.datetime) -> None:
    ids = session_id_of(settings, cookie)
    if ids is not None:
        await revoke_session(ids[1], reason="LOGOUT", now=now)


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def login_csrf_token(settings: Settings, nonce: str) -> str:
    return _mac(settings, "login-csrf", nonce)


def session_csrf_token(settings: Settings, cookie: str) -> str:
    return _mac(settings, "session-csrf", cookie)


def login_csrf_ok(settings: Settings, nonce: str | None, token: str | None) -> bool:
    return bool(nonce) and len(nonce) <= 100 and _same(token, login_csrf_token(settings, nonce))


def session_csrf_ok(settings: Settings, cookie: str | None, token: str | None) -> bool:
    return bool(cookie) and _same(token, session_csrf_token(settings, cookie))
