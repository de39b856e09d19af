"""Signing in: WeChat login, phone binding, staff passwords (issue #3, DOMAIN.md §11, DESIGN.md §4).

WeChat failures come from ``miniapp`` as typed exceptions and leave here as ``DomainError`` with the same stable code
and Chinese message (errors-as-data, never a 500). The WeChat ``session_key`` is kept only AES-GCM-encrypted under a
key derived from the service's secret key; it never leaves the server.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from api.domain.accounts import Role, password_problem
from api.domain.codes import is_valid_mobile
from api.domain.errors import DomainError
from api.models import StaffLoginThrottle, User
from api.services.access import Viewer, require_viewer
from api.services.agents import adopt_authorization
from api.services.locks import lock_value
from api.services.sessions import TokenPair, start_session
from api.settings import Settings
from miniapp import MiniProgram, WeChatError

HASHER = PasswordHasher()
# Verified against when the username does not exist, so both answers take the same time.
_DUMMY_HASH = HASHER.hash("not-a-password-of-anyone-9f4c")
NEW_USER_NAME = "微信用户"


def wechat_error(error: WeChatError, field: str = "code") -> DomainError:
    return DomainError(error.code, error.message, field)


# -- session_key at rest ---------------------------------------------------------------------------------------------


def _session_key_cipher(settings: Settings) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"jianshen wechat session_key").derive(
        settings.secret_key.encode()
    )
    return AESGCM(key)


def seal_session_key(settings: Settings, session_key: str) -> str:
    nonce = os.urandom(12)
    sealed = _session_key_cipher(settings).encrypt(nonce, session_key.encode(), b"session_key")
    return "v1:" + base64.urlsafe_b64encode(nonce + sealed).decode()


def open_session_key(settings: Settings, sealed: str) -> str:
    raw = base64.urlsafe_b64decode(sealed.removeprefix("v1:"))
    return _session_key_cipher(settings).decrypt(raw[:12], raw[12:], b"session_key").decode()


# -- WeChat ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    tokens: TokenPair
    is_new_user: bool


async def login_with_wechat(settings: Settings, wechat: MiniProgram, code: str, *, now: dt.datetime) -> Login:
    try:
        session = await wechat.code_to_session(code)
    except WeChatError as error:
        raise wechat_error(error) from None
    sealed = seal_session_key(settings, session.session_key)
    try:
        return await _sign_in(settings, session, sealed, now)
    except IntegrityError:
        # The same new openid signed in by another process at the same instant (SQLite, where the lock below is
        # the process's own): its account exists now, so this second try finds it.
        return await _sign_in(settings, session, sealed, now)


async def _sign_in(settings: Settings, session, sealed: str, now: dt.datetime) -> Login:
    async with in_transaction():
        # Two logins of one new openid at once (wx.login called twice): one account, found by the second.
        await lock_value(f"openid:{session.openid}")
        user = await User.get_or_none(openid=session.openid)
        is_new = user is None
        if user is None:
            user = await User.create(
                display_name=NEW_USER_NAME, role=Role.CITIZEN, openid=session.openid, unionid=session.unionid,
                wechat_session_key=sealed,
            )
        else:
            if not user.is_active:
                raise DomainError("ACCOUNT_DISABLED", "该账号已停用，请联系管理员", None)
            user.wechat_session_key = sealed
            user.unionid = session.unionid or user.unionid
            await user.save(update_fields=["wechat_session_key", "unionid"])
        tokens = await start_session(settings, user, kind="WECHAT", now=now)
    return Login(tokens, is_new)


async def bind_phone(viewer: Viewer | None, wechat: MiniProgram, code: str, *, now: dt.datetime) -> User:
    """Bind the number WeChat verified. A number belongs to one account: binding it elsewhere unbinds it here."""
    viewer = require_viewer(viewer)
    user = await User.get(id=viewer.user_id)
    if not user.openid:
        raise DomainError("PERMISSION_DENIED", "仅微信登录的用户可以绑定手机号", "code")
    try:
        info = await wechat.phone_number(code)
    except WeChatError as error:
        raise wechat_error(error) from None
    if info.country_code != "86" or not is_valid_mobile(info.pure_phone):
        raise DomainError("INVALID_PHONE", "仅支持中国大陆手机号码", "code")
    async with in_transaction():
        # Two accounts binding the same number at once: one after the other, so the last one keeps it (issue #10).
        await lock_value(f"phone:{info.pure_phone}")
        await User.filter(phone=info.pure_phone).exclude(id=user.id).update(phone=None, phone_verified_at=None)
        user.phone, user.phone_verified_at = info.pure_phone, now
        await user.save(update_fields=["phone", "phone_verified_at"])
        await adopt_authorization(user)
    return user


# -- staff -------------------------------------------------------------------------------------------------------------


def invalid_credentials() -> DomainError:
    return DomainError("INVALID_CREDENTIALS", "用户名或密码错误", None)


def _locked(until: dt.datetime, now: dt.datetime) -> DomainError:
    minutes = max(1, -(-int((until - now).total_seconds()) // 60))
    return DomainError("LOGIN_LOCKED", f"登录失败次数过多，请 {minutes} 分钟后再试", None)


async def staff_login(settings: Settings, username: str, password: str, *, now: dt.datetime) -> TokenPair:
    """Password sign-in of staff. Whether or not ``username`` exists, the answers and their cost are the same:
    the password is always verified (against a dummy hash when needed) and failures lock the *username* out.

    Each attempt is counted *before* its password is checked (``_count_guess``), so however many requests arrive at
    once, at most ``staff_login_max_failures`` passwords are ever checked per lock-out window (issue #10)."""
    username = (username or "").strip().lower()[:64]
    if not username or not password:
        raise invalid_credentials()
    guess = await _count_guess(settings, username, now)
    user = await User.get_or_none(username=username, is_active=True)
    stored = user.password_hash if user and user.role.is_staff and user.password_hash else _DUMMY_HASH
    ok = await asyncio.to_thread(_verify, stored, password) and stored is not _DUMMY_HASH
    if not ok:
        if guess >= settings.staff_login_max_failures:
            raise _locked(now + dt.timedelta(seconds=settings.staff_login_lockout_seconds), now)
        raise invalid_credentials()
    # A success resets the count (guesses still being checked were counted before it and are forgotten with it).
    await StaffLoginThrottle.filter(username=username).update(failures=0, locked_until=None)
    assert user is not None
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(HASHER.hash, password)
        await user.save(update_fields=["password_hash"])
    return await start_session(settings, user, kind="STAFF", now=now)


async def _count_guess(settings: Settings, username: str, now: dt.datetime) -> int:
    """Take one of the username's guesses of the window, atomically; its number (1 = the first since the last
    success or lock-out). The guess that reaches the limit locks the username at once, before its password is
    checked, so a crash while checking cannot leave the count full and the username unlocked. A locked username
    raises ``LOGIN_LOCKED`` here and its password is never checked.

    One transaction whose first statement writes (``api/services/locks.py``): on PostgreSQL the row lock of the
    counting UPDATE is held until the read-back, on SQLite the write lock; no other attempt counts in between."""
    limit = settings.staff_login_max_failures
    async with in_transaction():
        await StaffLoginThrottle.bulk_create([StaffLoginThrottle(username=username)], ignore_conflicts=True)
        await StaffLoginThrottle.filter(username=username, locked_until__lte=now).update(failures=0, locked_until=None)
        counted = await StaffLoginThrottle.filter(username=username, locked_until__isnull=True).update(
            failures=F("failures") + 1
        )
        throttle = await StaffLoginThrottle.get(username=username)
        locked_until = throttle.locked_until
        if counted and throttle.failures >= limit:
            locked_until = now + dt.timedelta(seconds=settings.staff_login_lockout_seconds)
            await StaffLoginThrottle.filter(id=throttle.id).update(locked_until=locked_until)
    # Refused outside the transaction, which must commit: the count and the lock are what a refusal leaves behind.
    if not counted or throttle.failures > limit:  # > : the limit was lowered meanwhile, this guess is over it
        assert locked_until is not None
        raise _locked(locked_until, now)
    return throttle.failures


def _verify(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_password(password: str) -> str:
    """The argon2 hash of a password that meets the policy (a ``DomainError`` otherwise)."""
    problem = password_problem(password)
    if problem:
        raise DomainError("WEAK_PASSWORD", problem, "password")
    return HASHER.hash(password)


async def set_password(user: User, password: str) -> None:
    user.password_hash = await asyncio.to_thread(hash_password, password)
    await user.save(update_fields=["password_hash"])
