"""Answers to GraphQL queries, kept while they would be computed the same (docs/PERFORMANCE.md).

The mini-program asks the same thing again and again (a project manager's progress page on every open and pull-to-
refresh) while the data behind it changes a few times a day. An answer is a function of four things only:

1. the database — the answer is kept with what it depends on (api/changes.py): the versions of the tables its request
   read, taken at the generation the request started at, and served only while a new request reads the same versions
   of those tables: a commit, by any process, ends exactly the answers that read a table it wrote. An answer that read
   a table without a counter depends on the whole generation, as every answer did before (issue #13);
2. who asks — the viewer (user, session, role, organisation, authorisation: itself read at the same generation) is
   part of the key, so an answer is never served to another person or to a withdrawn agent;
3. the date — working-day clocks and lights change at midnight (Asia/Shanghai), so the date is part of the state;
4. the request's bytes — the document, the operation name and the variables, as sent, with the content type.

Everything else a resolver might depend on (the moment itself, the HTTP request, WeChat, the broker, the rate
limiter) marks the answer volatile when touched (api/schema/context.py), and it is not kept. Only queries are kept,
only answers without errors, only from 200 responses. Bounded in bytes; the whole store is dropped when the date
moves on (or, with a generation that has no table versions, when it moves on), since nothing in it can be served
again; an answer whose tables were written is found out of date when next asked for.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable

from api.changes import Generation, dependencies as answer_dependencies, still_valid

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
        self._entries: OrderedDict[Hashable, tuple[Entry, tuple]] = OrderedDict()  # with what it depends on
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
        old = self._state
        if old is None or state[1] != old[1] or (generation != old[0] and not _scoped(generation)):
            self.clear()
        self._state = state
        return state

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def get(self, state: tuple[Hashable, dt.date] | None, key: Hashable) -> Entry | None:
        if state is None or self._state is None or state[1] != self._state[1]:
            self.misses += 1
            return None
        kept = self._entries.get(key)
        if kept is None or not still_valid(kept[1], state[0]):
            self.misses += 1
            return None
        entry = kept[0]
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(
        self, state: tuple[Hashable, dt.date] | None, key: Hashable, entry: Entry, reads: set[str] | None = None,
        *, settled: bool = True,
    ) -> bool:
        """Keep an answer computed in ``state`` after reading ``reads`` (api.changes.recording_reads; None:
        unknown, so it depends on the whole generation). Refused when a newer date has been seen since its request
        began, or a newer generation and the answer depends on the whole generation (it could never be served), or
        when it alone would not fit. An answer that a commit overtook mid-computation is kept with the versions its
        request began at, which the tables written have left: never served."""
        size = len(entry.body) + _key_size(key)
        if state is None or self._state is None or state[1] != self._state[1] or size > self.max_bytes:
            return False
        depends_on = answer_dependencies(state[0], reads, settled=settled)
        if any(table == "*" for table, _ in depends_on) and state[0] != self._state[0]:
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old[0].body) + _key_size(key)
        self._entries[key] = (entry, depends_on)
        self._bytes += size
        while self._bytes > self.max_bytes:
            evicted_key, (evicted, _) = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body) + _key_size(evicted_key)
        return True


def _scoped(generation: Hashable) -> bool:
    return isinstance(generation, Generation) and generation.versions is not None


def _key_size(key: Hashable) -> int:
    return sum(len(part) for part in key if isinstance(part, (bytes, str))) if isinstance(key, tuple) else 0
