"""Global ids (Relay): the type name and the key, base64url-encoded. Pure: used by the schema and by notices, which
put the id of the object a notice is about into the mini-program page it opens.

Every key a client sends — in a global id, a cursor, a token's subject, a download link — is read by ``parse_key``:
ASCII digits of at most 19 characters within the database's integer range, or nothing. A key no row can have is the
client's mistake, never an overflow in the database driver or Python's 4,300-digit conversion limit."""

from __future__ import annotations

import base64
import re
from typing import Any

INT_MAX = 2**31 - 1  # an INT column (PostgreSQL int4): most tables' keys
BIGINT_MAX = 2**63 - 1  # a BIGINT column; SQLite's INTEGER
_KEY = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() also accepts "²" and "١٢٣"


def to_global_id(type_name: str, pk: Any) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def from_global_id(global_id: str) -> tuple[str, str]:
    """(type name, key); ("", "") for anything malformed."""
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return "", ""
    type_name, _, pk = raw.partition(":")
    return type_name, pk


def parse_key(text: Any, max_value: int = BIGINT_MAX) -> int | None:
    """The integer key written in ``text``, or None unless it is 0…``max_value`` in ASCII digits."""
    if not isinstance(text, str) or _KEY.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= max_value else None


def key_of(global_id: Any, type_name: str, max_value: int = BIGINT_MAX) -> int | None:
    """The key of a global id of ``type_name``; None for a malformed id, another type's or an out-of-range key."""
    if not isinstance(global_id, str):
        return None
    kind, pk = from_global_id(global_id)
    return parse_key(pk, max_value) if kind == type_name else None
