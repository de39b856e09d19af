"""Whether the database changed: one cheap marker per request, for the caches that must never serve stale data.

A *generation* is a value read from the database itself, before a request reads anything else, such that two equal
generations mean that no transaction committed in between, by this process or any other (another API instance, an
arq worker, an operator's ``python -m api calendar load``). What was computed from the database at one generation
is therefore still true while the generation read now is the same; the first commit anywhere ends it.

- SQLite: ``PRAGMA data_version`` on a connection of its own that never writes: it changes whenever another
  connection commits to the file (https://sqlite.org/pragma.html#pragma_data_version). ~3 µs, no thread hop.
- PostgreSQL: ``pg_current_snapshot()`` (xmin:xmax:in-progress xids). A transaction that commits between two reads
  either was in progress at the first (its xid leaves the list) or got its xid after it (xmax moves), so equal
  snapshots mean equal data. One round trip.
- Anything else (an in-memory SQLite database, a busy lock): ``None``, which never equals anything — the caller
  computes afresh.

Scoped per table (issue #13): the generation also carries a *version of each table*, counted by the database itself
in the writing transaction (triggers of migration 0013_scope), so whoever writes — any process, any code path — moves
the versions of exactly the tables it wrote. A kept answer records the tables its request read (``recording_reads``:
every statement the request sent through the ORM's clients, api/sqlite_backend.py and api/pg_backend.py, plus what it
took from a process cache, ``note_read``) and stays good while those tables' versions are unchanged
(``dependencies`` / ``still_valid``). An answer that read a table without a counter (one created after 0010), or
whose reads are unknown, depends on the whole database as before. Conservative on purpose: every table name that
appears in a statement counts as read.

- SQLite: a counter row per table (``jianshen_change``), read on the observing connection only when
  ``data_version`` moved (most requests: no statement).
- PostgreSQL: a sequence per table, read with the snapshot in the same statement. A sequence advances *before* its
  transaction commits; so an answer is kept per table only when, after the versions were read and before its data
  was, no writing transaction was in progress (``settled``): then every advance it saw belongs to a committed
  transaction, whose rows the answer read. Otherwise it depends on the whole database (still correct).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sqlite3
from typing import Hashable, Iterable, Iterator, Mapping, Protocol
from urllib.parse import unquote

from starlette.types import Scope

log = logging.getLogger("jianshen.changes")

SCOPE_KEY = "generation"
COUNTERS = "jianshen_change"  # SQLite: the counters' table; PostgreSQL: the sequences' prefix (migration 0010)
WHOLE = "*"  # a dependency on the whole database


class Generation:
    """``token``: equal ⇒ nothing committed anywhere. ``versions``: a version per counted table (None: not counted)."""

    __slots__ = ("token", "versions")

    def __init__(self, token: Hashable, versions: Mapping[str, int] | None = None) -> None:
        self.token = token
        self.versions = versions

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Generation) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)

    def __repr__(self) -> str:
        return f"Generation({self.token!r})"

    def version_of(self, table: str) -> Hashable:
        """What identifies ``table``'s contents: its version, or the whole generation when it is not counted."""
        if self.versions is not None and table in self.versions:
            return (table, self.versions[table])
        return self


class ChangeMarker(Protocol):
    async def read(self) -> Hashable | None: ...

    async def settled(self) -> bool: ...

    def close(self) -> None: ...


class NoMarker:
    """No cheap marker: every request computes afresh."""

    async def read(self) -> None:
        return None

    async def settled(self) -> bool:
        return False

    def close(self) -> None:
        pass


class SqliteDataVersion:
    """``PRAGMA data_version`` of an observing connection (read-only, autocommit, never waits for a lock), and the
    tables' counters read on the same connection when it moved."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._last: Generation | None = None

    def _connect(self) -> sqlite3.Connection:
        # Read-only and autocommit: it never creates the file and never keeps a lock between reads. timeout=0: while
        # a writer holds the lock to commit, the read fails at once instead of blocking the event loop.
        uri = f"file:{self.path}?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False)

    async def read(self) -> Generation | None:
        try:
            if self._connection is None:
                self._connection = self._connect()
            version = self._connection.execute("PRAGMA data_version").fetchone()[0]
            last = self._last
            if last is not None and last.token == version:
                return last
            # Read after the data version: at least as new as it (a commit in between moves the version again).
            try:
                counters = dict(self._connection.execute(f"SELECT tbl, n FROM {COUNTERS}").fetchall())
            except sqlite3.OperationalError as error:
                if "no such table" not in str(error):
                    raise
                counters = None  # not migrated yet: the whole database
            self._last = Generation(version, counters)
            return self._last
        except sqlite3.Error as error:  # busy (a commit in progress), or the file is not there yet
            log.debug("no data version: %s", error)
            return None

    async def settled(self) -> bool:
        return True  # a counter is visible only with its transaction's rows

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._last = None


class PostgresSnapshot:
    """The current transaction snapshot of the service's own connection pool, and the tables' sequences."""

    def __init__(self, connection_name: str = "default") -> None:
        self.connection_name = connection_name
        self._statement: str | None = None
        self._tables: tuple[str, ...] = ()

    async def _prepare(self, connection) -> None:
        _, rows = await connection.execute_query(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() AND sequencename LIKE $1",
            [f"{COUNTERS}\\_%"],
        )
        self._tables = tuple(sorted(row["sequencename"][len(COUNTERS) + 1 :] for row in rows))
        # last_value + is_called: a new sequence reads (1, false), after its first advance (1, true).
        columns = "".join(
            f', (SELECT last_value + is_called::int FROM "{COUNTERS}_{table}") AS c{n}'
            for n, table in enumerate(self._tables)
        )
        self._statement = f"SELECT pg_current_snapshot()::text AS s{columns}"

    async def read(self) -> Generation | None:
        from tortoise.connection import connections

        try:
            connection = connections.get(self.connection_name)
            if self._statement is None:
                await self._prepare(connection)
            _, rows = await connection.execute_query(self._statement)
        except Exception as error:  # the request itself will meet the database's trouble and say so
            log.debug("no snapshot: %s", error)
            self._statement = None
            return None
        if not rows:
            return None
        row = rows[0]
        versions = {table: row[f"c{n}"] for n, table in enumerate(self._tables)} if self._tables else None
        return Generation(row["s"], versions)

    async def settled(self) -> bool:
        """No writing transaction in progress now (read after the versions, before the answer's data): every
        sequence advance the versions saw belongs to a transaction that has committed."""
        from tortoise.connection import connections

        try:
            _, rows = await connections.get(self.connection_name).execute_query(
                "SELECT pg_current_snapshot()::text AS s"
            )
        except Exception as error:
            log.debug("no snapshot: %s", error)
            return False
        return bool(rows) and rows[0]["s"].rsplit(":", 1)[-1] == ""

    def close(self) -> None:
        pass


def marker_for(database_url: str) -> ChangeMarker:
    if database_url.startswith("sqlite://"):
        path = unquote(database_url.removeprefix("sqlite://").split("?", 1)[0])
        if not path or path == ":memory:":
            return NoMarker()  # another connection would see another database
        return SqliteDataVersion(path)
    if database_url.startswith(("postgres://", "postgresql://", "asyncpg://", "psycopg://")):
        return PostgresSnapshot()
    return NoMarker()


async def generation(marker: ChangeMarker, scope: Scope) -> Hashable | None:
    """The request's generation, read once, at its first use, and kept with the request."""
    state = scope.setdefault("state", {})
    if SCOPE_KEY not in state:
        state[SCOPE_KEY] = await marker.read()
    return state[SCOPE_KEY]


async def count_writes(client, tables: Iterable[str]) -> None:
    """Count the writes to ``tables`` from now on (in a migration: ``schema_editor.client``; the counters' table or
    function are made by migration 0013_scope). SQLite: a row in the counters' table and a trigger per kind of
    write; PostgreSQL: a sequence and a statement trigger advancing it."""
    sqlite = client.capabilities.dialect == "sqlite"
    for table in tables:
        if sqlite:
            await client.execute_query(f"INSERT INTO {COUNTERS} (tbl, n) VALUES ('{table}', 0)")
            for event in ("INSERT", "UPDATE", "DELETE"):
                await client.execute_query(
                    f'CREATE TRIGGER "{COUNTERS}_{table}_{event.lower()}" AFTER {event} ON "{table}" '
                    f"BEGIN UPDATE {COUNTERS} SET n = n + 1 WHERE tbl = '{table}'; END"
                )
        else:
            await client.execute_query(f'CREATE SEQUENCE "{COUNTERS}_{table}"')
            await client.execute_query(
                f'CREATE TRIGGER "{COUNTERS}" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
                f"FOR EACH STATEMENT EXECUTE FUNCTION {COUNTERS}_bump('\"{COUNTERS}_{table}\"')"
            )


# What a request read: the statements it sent and the tables it took from process caches (None: not recording).
_reads: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("jianshen_reads", default=None)


@contextlib.contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Collect what the code run inside reads (tasks it starts share the set: they copy the context)."""
    reads: set[str] = set()
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


def note_read(text: str) -> None:
    """A statement sent, or a table's name for what was taken from a process's cache of it."""
    reads = _reads.get()
    if reads is not None:
        reads.add(text)


class NotesReads:
    """A database client (mixed in first) that notes every statement it is given while a request records."""

    notes_reads = True

    async def execute_query(self, query: str, values: list | None = None):
        note_read(query)
        return await super().execute_query(query, values)  # type: ignore[misc]

    async def execute_query_dict(self, query: str, values: list | None = None):
        note_read(query)
        return await super().execute_query_dict(query, values)  # type: ignore[misc]


def notes_reads(connection_name: str = "default") -> bool:
    """Whether the statements of this connection are noted (else an answer's reads are unknown)."""
    from tortoise.connection import connections

    try:
        return getattr(connections.get(connection_name), "notes_reads", False)
    except Exception:
        return False


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_words_of: dict[str, frozenset[str]] = {}
_model_tables: frozenset[str] | None = None


def model_tables() -> frozenset[str]:
    global _model_tables
    if _model_tables is None:
        from tortoise import Tortoise

        _model_tables = frozenset(
            model._meta.db_table for app in Tortoise.apps.values() for model in app.values()
        )
    return _model_tables


def tables_read(reads: Iterable[str]) -> set[str]:
    """Every table whose name appears in what was read (a column or literal of the same spelling counts too)."""
    tables: set[str] = set()
    known = model_tables()
    for text in reads:
        words = _words_of.get(text)
        if words is None:
            words = frozenset(w.lower() for w in _WORD.findall(text)) & known
            if len(_words_of) < 10_000:
                _words_of[text] = words
        tables |= words
    return tables


def dependencies(current: Hashable, reads: Iterable[str] | None, *, settled: bool = True) -> tuple:
    """What an answer computed at ``current`` after ``reads`` depends on: the versions of the tables it read, or the
    whole generation when a table is not counted, the reads are unknown, or the versions were not ``settled``."""
    versions = current.versions if isinstance(current, Generation) else None
    if versions is not None and reads is not None and settled:
        tables = tables_read(reads)
        if tables <= versions.keys():
            return tuple(sorted((table, versions[table]) for table in tables))
    return ((WHOLE, current.token if isinstance(current, Generation) else current),)


def still_valid(dependencies: tuple, current: Hashable) -> bool:
    token = current.token if isinstance(current, Generation) else current
    versions = current.versions if isinstance(current, Generation) else None
    for table, version in dependencies:
        if table == WHOLE:
            if version != token:
                return False
        elif versions is None or versions.get(table) != version:
            return False
    return True
