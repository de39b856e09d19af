"""Global ids (Relay): the type name and the key, base64url-encoded. Pure: used by the schema and by notices, which
put the id of the object a notice is about into the mini-program page it opens."""

from __future__ import annotations

import base64
from typing import Any


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
