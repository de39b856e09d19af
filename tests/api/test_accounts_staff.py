"""Staff sign-in: argon2, the password policy, lock-out that reveals nothing (issue #3)."""

from __future__ import annotations

import datetime as dt

import pytest

from api.domain.accounts import password_problem
from api.domain.errors import DomainError
from api.services.accounts import hash_password, set_password
from tests.api.accounts import data, viewer

PASSWORD = "Window-2026"


async def staff_login(client, username: str, password: str) -> dict:
    return (await data(client, "StaffLogin", {"input": {"username": username, "password": password}}))["staffLogin"]


@pytest.fixture
async def clerk(world):
    user = world.users["clerk"]
    user.username = "wang.clerk"
    await user.save(update_fields=["username"])
    await set_password(user, PASSWORD)
    return user


@pytest.mark.parametrize(
    ("password", "ok"),
    [("Abcdefg1", True), ("abcdefg1!", True), ("ABC-1234", True), ("Abc-12", False), ("abcdefgh1", False),
     ("abcdefghijk", False), ("12345678", False)],
)
def test_password_policy(password, ok):
    assert (password_problem(password) is None) is ok
    if not ok:
        with pytest.raises(DomainError) as raised:
            hash_password(password)
        assert raised.value.code == "WEAK_PASSWORD"


async def test_staff_login_gives_a_working_token_pair(client, clerk):
    payload = await staff_login(client, "Wang.Clerk ", PASSWORD)
    assert payload["errors"] == [] and payload["viewer"]["role"] == "WINDOW_CLERK"
    assert (await viewer(client, payload["accessToken"]))[0] == 200
    assert clerk.password_hash.startswith("$argon2")
    refreshed = (await data(client, "RefreshSession", {"input": {"refreshToken": payload["refreshToken"]}}))
    assert refreshed["refreshSession"]["errors"] == []


async def test_lock_out_after_five_failures_the_same_for_an_unknown_username(client, clerk, clock, world):
    async def answers(username: str) -> list[tuple[str, str]]:
        out = []
        for _ in range(6):
            errors = (await staff_login(client, username, "Wrong-pass-1"))["errors"]
            out.append((errors[0]["code"], errors[0]["message"]))
        return out

    existing, unknown = await answers("wang.clerk"), await answers("nobody.here")
    assert existing == unknown
    assert [code for code, _ in existing] == ["INVALID_CREDENTIALS"] * 4 + ["LOGIN_LOCKED"] * 2
    assert existing[0][1] == "用户名或密码错误" and "15 分钟" in existing[4][1]

    # Locked: even the right password is refused, with the same answer.
    assert (await staff_login(client, "wang.clerk", PASSWORD))["errors"][0]["code"] == "LOGIN_LOCKED"
    clock.set(clock.now + dt.timedelta(minutes=15, seconds=1))
    assert (await staff_login(client, "wang.clerk", PASSWORD))["errors"] == []


async def test_a_wechat_user_cannot_sign_in_as_staff(client, world):
    applicant = world.users["applicant"]
    applicant.username = "zhang.agent"
    await applicant.save(update_fields=["username"])
    await set_password(applicant, PASSWORD)
    assert (await staff_login(client, "zhang.agent", PASSWORD))["errors"][0]["code"] == "INVALID_CREDENTIALS"
