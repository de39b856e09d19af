"""Access tokens: JWT, HS256 only, carrying the user, the role and the login session (``sid``).

The algorithm is pinned on decoding (no ``alg: none``, no HS/RS confusion). The role in the token is a hint for
logging only: the user is read together with its session for every request — re-read whenever the database changed
since (api/middleware.py) — so a deactivated user, a changed role or a revoked session (logout, refresh-token replay)
takes effect at once.
"""

from __future__ import annotations

import time
import uuid

import jwt

from api.db import key_max
from api.domain.ids import parse_key
from api.models import User
from api.settings import Settings

ALGORITHM = "HS256"
ISSUER = "jianshen"


class InvalidToken(Exception):
    pass


def issue_access_token(
    settings: Settings, *, user_id: int, role: str, session_id: str, ttl: int | None = None, now: int | None = None
) -> str:
    now = int(time.time()) if now is None else now
    claims = {
        "iss": ISSUER,
        "sub": str(user_id),
        "sid": str(session_id),
        "role": role,
        "typ": "access",
        "iat": now,
        "exp": now + (ttl or settings.access_token_ttl),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> dict:
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "sid"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if claims.get("typ") != "access":
        raise InvalidToken("not an access token")
    # A subject no user row can have (19+ digits, "²") is a bad token, not an overflow when the user is read.
    user_id = parse_key(claims.get("sub"), key_max(User))
    if user_id is None:
        raise InvalidToken("bad subject")
    claims["sub"] = str(user_id)
    try:
        uuid.UUID(str(claims["sid"]))
    except ValueError:
        raise InvalidToken("bad session id") from None
    return claims


class VerifiedTokens:
    """Access tokens already verified by this process, by their text: checking a signature costs ~30 µs and a
    token's claims never change, only its expiry comes. A remembered token is re-checked against the clock on every
    use; an unknown one is verified in full. Bounded: when full it forgets everything and starts again."""

    def __init__(self, settings: Settings, max_entries: int = 10_000) -> None:
        self.settings = settings
        self.max_entries = max_entries
        self._claims: dict[str, dict] = {}

    def decode(self, token: str) -> dict:
        claims = self._claims.get(token)
        if claims is None:
            claims = decode_access_token(self.settings, token)
            if len(self._claims) >= self.max_entries:
                self._claims.clear()
            self._claims[token] = claims
        # PyJWT's own rule (no leeway): a token is expired from its ``exp`` second on.
        if claims["exp"] <= time.time():
            self._claims.pop(token, None)
            raise InvalidToken("Signature has expired")
        return claims
