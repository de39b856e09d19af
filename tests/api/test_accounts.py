"""WeChat login, sessions and tokens through the real ASGI app and the fake WeChat server (issue #3)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import warnings

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.app import create_app
from api.models import LoginSession, RefreshToken, User
from api.services.accounts import open_session_key
from api.services.tokens import issue_access_token
from api.settings import Settings
from tests.api.accounts import data, login, settings, viewer  # noqa: F401 - ``settings`` is a fixture
from tests.fakes.wechat import LOGIN

LOGIN_DOC = "LoginWithWechat"


async def test_first_login_creates_a_citizen_and_a_second_finds_it(client, fake_wechat, settings):
    code = fake_wechat.issue_login_code("o-zhang", unionid="u-zhang")
    session_key = fake_wechat.session_key_of(code)
    first = (await data(client, LOGIN_DOC, {"input": {"code": code}}))["loginWithWechat"]
    assert first["errors"] == [] and first["isNewUser"] is True
    assert first["viewer"]["role"] == "CITIZEN" and first["viewer"]["phone"] is None
    assert first["accessToken"] and first["refreshToken"] and first["accessTokenExpiresAt"]
    status, body = await viewer(client, first["accessToken"])
    assert status == 200 and body["data"]["viewer"]["id"] == first["viewer"]["id"]

    second = await login(client, fake_wechat, "o-zhang")
    assert second["isNewUser"] is False and second["viewer"]["id"] == first["viewer"]["id"]
    assert await User.filter(openid="o-zhang").count() == 1

    # The session_key is stored only encrypted, and never sent to the phone.
    user = await User.get(openid="o-zhang")
    assert user.wechat_session_key and session_key not in user.wechat_session_key
    assert open_session_key(settings, user.wechat_session_key) != session_key  # the second login's key replaced it
    assert session_key not in json.dumps(first) and session_key not in json.dumps(second)


@pytest.mark.parametrize(
    ("errcode", "code"),
    [(45011, "WECHAT_RATE_LIMITED"), (40226, "WECHAT_RISKY_USER"), (-1, "WECHAT_UNAVAILABLE")],
)
async def test_wechat_refusals_are_clear_errors(client, fake_wechat, errcode, code):
    fake_wechat.fail_next(LOGIN, errcode)
    payload = (await data(client, LOGIN_DOC, {"input": {"code": fake_wechat.issue_login_code()}}))["loginWithWechat"]
    assert [e["code"] for e in payload["errors"]] == [code]
    assert payload["errors"][0]["message"] and payload["accessToken"] is None
    assert await User.all().count() == await User.filter(openid__isnull=True).count()  # nobody was created


async def test_unknown_and_reused_codes(client, fake_wechat):
    unknown = (await data(client, LOGIN_DOC, {"input": {"code": "made-up"}}))["loginWithWechat"]
    assert unknown["errors"] == [
        {"field": "code", "code": "WECHAT_CODE_INVALID", "message": "微信授权码无效或已使用，请重新授权"}
    ]
    code = fake_wechat.issue_login_code()
    assert (await data(client, LOGIN_DOC, {"input": {"code": code}}))["loginWithWechat"]["errors"] == []
    reused = (await data(client, LOGIN_DOC, {"input": {"code": code}}))["loginWithWechat"]
    assert reused["errors"][0]["code"] == "WECHAT_CODE_INVALID"


async def test_refresh_rotates_and_a_replay_revokes_the_session(client, fake_wechat):
    first = await login(client, fake_wechat)
    second = (await data(client, "RefreshSession", {"input": {"refreshToken": first["refreshToken"]}}))[
        "refreshSession"
    ]
    assert second["errors"] == [] and second["refreshToken"] != first["refreshToken"]
    assert second["viewer"]["id"] == first["viewer"]["id"]
    assert (await viewer(client, second["accessToken"]))[0] == 200

    # The used refresh token presented again: a copy is in someone's hands. The whole session ends.
    replay = (await data(client, "RefreshSession", {"input": {"refreshToken": first["refreshToken"]}}))[
        "refreshSession"
    ]
    assert [e["code"] for e in replay["errors"]] == ["SESSION_EXPIRED"] and replay["accessToken"] is None
    for token in (first["accessToken"], second["accessToken"]):
        status, body = await viewer(client, token)
        assert status == 401 and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    after = (await data(client, "RefreshSession", {"input": {"refreshToken": second["refreshToken"]}}))[
        "refreshSession"
    ]
    assert after["errors"][0]["code"] == "SESSION_EXPIRED"
    session = await LoginSession.get(user__openid__isnull=False)
    assert session.revoke_reason == "REPLAY"
    # Refresh tokens are stored only as hashes.
    assert not await RefreshToken.filter(token_hash=first["refreshToken"]).exists()


async def test_an_expired_refresh_token_is_refused(client, fake_wechat, clock, settings):
    first = await login(client, fake_wechat)
    clock.set(clock.now + dt.timedelta(seconds=settings.refresh_token_ttl + 1))
    late = (await data(client, "RefreshSession", {"input": {"refreshToken": first["refreshToken"]}}))["refreshSession"]
    assert late["errors"][0]["code"] == "SESSION_EXPIRED"


async def test_logout_ends_the_session(client, fake_wechat):
    mine, other = await login(client, fake_wechat), await login(client, fake_wechat)
    out = (await data(client, "Logout", token=mine["accessToken"]))["logout"]
    assert out == {"errors": [], "ok": True}
    assert (await viewer(client, mine["accessToken"]))[0] == 401
    refresh = (await data(client, "RefreshSession", {"input": {"refreshToken": mine["refreshToken"]}}))
    assert refresh["refreshSession"]["errors"][0]["code"] == "SESSION_EXPIRED"
    assert (await viewer(client, other["accessToken"]))[0] == 200  # other sessions go on
    # With an expired access token, the refresh token names the session to end.
    out = (await data(client, "Logout", {"input": {"refreshToken": other["refreshToken"]}}))["logout"]
    assert out["ok"] is True and (await viewer(client, other["accessToken"]))[0] == 401


def _b64(part: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


async def test_bad_tokens_are_refused(client, fake_wechat, settings):
    good = (await login(client, fake_wechat))["accessToken"]
    claims = jwt.decode(good, options={"verify_signature": False})
    header, payload, signature = good.split(".")

    expired = issue_access_token(
        settings, user_id=int(claims["sub"]), role="CITIZEN", session_id=claims["sid"], now=int(time.time()) - 3600
    )
    tampered = ".".join([header, _b64({**claims, "sub": str(int(claims["sub"]) + 1)}), signature])
    alg_none = ".".join([_b64({"alg": "none", "typ": "JWT"}), payload, ""])
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs256 = jwt.encode(claims, private, algorithm="RS256")
    # HS/RS confusion: an HMAC made with a public key as the secret (what a server that trusts "alg" would accept).
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{payload}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    hs_with_public_key = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with warnings.catch_warnings():  # PyJWT warns that the key is short for SHA-512: it is the point
        warnings.simplefilter("ignore")
        hs512 = jwt.encode(claims, settings.secret_key, algorithm="HS512")
    wrong_key = jwt.encode(claims, "another-secret-key-of-at-least-32-characters", algorithm="HS256")
    unknown_session = issue_access_token(
        settings, user_id=int(claims["sub"]), role="CITIZEN", session_id="00000000-0000-4000-8000-000000000000"
    )
    no_session = jwt.encode({k: v for k, v in claims.items() if k != "sid"}, settings.secret_key, algorithm="HS256")

    assert (await viewer(client, good))[0] == 200
    for name, token in {
        "expired": expired, "tampered": tampered, "alg-none": alg_none, "rs256": rs256,
        "hs-with-public-key": hs_with_public_key, "hs512": hs512, "wrong-key": wrong_key,
        "unknown-session": unknown_session, "no-session": no_session,
    }.items():
        status, body = await viewer(client, token)
        assert status == 401, name
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", name


async def test_a_token_of_another_type_or_issuer_is_refused(client, fake_wechat, settings):
    """Signed with our key but not one of our access tokens: another ``typ`` (a refresh or an id token, say) or
    another ``iss`` (another service sharing the key) must not open a session."""
    good = (await login(client, fake_wechat))["accessToken"]
    claims = jwt.decode(good, options={"verify_signature": False})
    assert (claims["typ"], claims["iss"]) == ("access", "jianshen")

    def signed(**changes) -> str:
        changed = {k: v for k, v in {**claims, **changes}.items() if v is not None}
        return jwt.encode(changed, settings.secret_key, algorithm="HS256")

    assert (await viewer(client, signed()))[0] == 200  # the same claims, re-signed: still good
    for name, token in {
        "typ-refresh": signed(typ="refresh"), "typ-id": signed(typ="id"), "typ-Access": signed(typ="Access"),
        "no-typ": signed(typ=None), "iss-other": signed(iss="jianshen-staging"), "iss-empty": signed(iss=""),
        "no-iss": signed(iss=None),
    }.items():
        status, body = await viewer(client, token)
        assert status == 401, name
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", name


async def test_development_login_works_only_in_development(database_url, tmp_path):
    for env, expected in [("development", None), ("production", "WECHAT_NOT_CONFIGURED")]:
        settings = Settings(
            env=env, database_url=database_url, upload_dir=tmp_path / "uploads",
            secret_key="a-production-secret-of-at-least-32-characters",
            esign_kek="a-production-seal-kek-of-at-least-32-characters", esign_dir=tmp_path / "esign",
            certificate_check_secret="a-production-check-code-secret-of-32-characters",
            public_base_url="https://js.example",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            import httpx

            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                payload = (await data(client, LOGIN_DOC, {"input": {"code": "dev:wang"}}))["loginWithWechat"]
        codes = [e["code"] for e in payload["errors"]]
        if expected is None:
            assert codes == [] and payload["viewer"]["role"] == "CITIZEN"
        else:
            assert codes == [expected] and payload["accessToken"] is None
