"""Answers to GraphQL queries, kept while they would be computed the same (docs/PERFORMANCE.md).

The mini-program asks the same thing again and again (a project manager's progress page on every open and pull-to-
refresh) while the data behind it changes a few times a day. An answer is a function of four things only:

1. the database — the answer is kept with the *generation* its request started at (api/changes.py) and served only
   while the generation read by a new request is the same: the first commit anywhere, by any process, ends it;
2. who asks — the viewer (user, session, role, organisation, authorisation: itself read at the same generation) is
   part of the key, so an answer is never served to another person or to a withdrawn agent;
3. the date — working-day clocks and lights change at midnight (Asia/Shanghai), so the date is part of the state;
4. the request's bytes — the document, the operation name and the variables, as sent, with the content type.

Everything else a resolver might depend on (the moment itself, the HTTP request, WeChat, the broker, the rate
limiter) marks the answer volatile when touched (api/schema/context.py), and it is not kept. Only queries are kept,
only answers without errors, only from 200 responses. Bounded in bytes; the whole store is dropped when the
generation or the date moves on, since nothing in it can be served again.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable

MAX_KEY_BYTES = 64 * 1024  # requests larger than this are never kept (the mini-program's are ~1 KB)


@dataclass(frozen=True)
class Entry:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    operation: str | None = None  # for the request log


class ResponseCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._state: tuple[Hashable, dt.date] | None = None
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def observe(self, generation: Hashable | None, today: dt.date) -> tuple[Hashable, dt.date] | None:
        """The state a request starts in; the store follows the newest state seen. ``None``: nothing can be kept."""
        if generation is None:
            return None
        state = (generation, today)
        if state != self._state:
            self._state = state
            self.clear()
        return state

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def get(self, state: tuple[Hashable, dt.date] | None, key: Hashable) -> Entry | None:
        if state is None or state != self._state:
            self.misses += 1
            return None
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, state: tuple[Hashable, dt.date] | None, key: Hashable, entry: Entry) -> bool:
        """Keep an answer computed in ``state``. Refused when a newer generation or date has been seen since its
        request began (it could never be served), or when it alone would not fit. An answer that a commit overtook
        mid-computation is kept under the old generation, which no later request can read again: never served."""
        size = len(entry.body) + _key_size(key)
        if state is None or state != self._state or size > self.max_bytes:
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body) + _key_size(key)
        self._entries[key] = entry
        self._bytes += size
        while self._bytes > self.max_bytes:
            evicted_key, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body) + _key_size(evicted_key)
        return True


def _key_size(key: Hashable) -> int:
    return sum(len(part) for part in key if isinstance(part, (bytes, str))) if isinstance(key, tuple) else 0
