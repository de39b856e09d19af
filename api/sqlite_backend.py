"""Tortoise's SQLite client, made so that a write waiting for the database never stalls the process (issue #10, item 9).

Tortoise's client has one connection per process, guarded by one asyncio lock that a transaction holds from BEGIN to
COMMIT. When another process holds SQLite's write lock, a transaction's first write waits in SQLite's busy handler —
holding that lock — and every other request of the process, reads included, queued behind it. Three changes:

- **Reads outside a transaction go to a second connection** (read-only by ``PRAGMA query_only``, its own lock). In WAL
  mode (Tortoise's default) readers never wait for a writer, so reads flow while a write waits. A read inside a
  transaction stays on the transaction's connection, where it sees the transaction's own writes.
- **A transaction takes the write lock at BEGIN** (``BEGIN IMMEDIATE``), where SQLite can wait for it; a deferred
  transaction asking for it at its first write after a read is refused at once.
- **Short reads run on the event loop's own thread** (issue #13 item 1): a read through aiosqlite's thread costs two
  thread hops and, on a busy process, waits for the GIL — more than the statement itself (a progress request's eight
  reads take ~0.4 ms in SQLite and cost ~3 ms through the thread). A read outside a transaction first runs inline, on
  a third, read-only connection that never waits for a lock (``timeout=0``) and is interrupted by SQLite's progress
  handler once it has used ``INLINE_READ_BUDGET_S`` of the thread's CPU, or ``INLINE_READ_CEILING_S`` of wall time;
  then — and when the database is busy — it runs again on the reader's thread, as before. A statement that used up its
  CPU budget goes straight to the thread next time. One that only met the wall-time ceiling does not: the process was
  descheduled (another process had the core), and that says nothing about the statement — counting it demoted the
  progress query's hottest statements for the rest of a process's life on a busy machine. So the event loop is never
  held by a read for longer than the budget of CPU or the ceiling of wall time, whatever its size.
- **Every wait is bounded** by ``busy_timeout`` (``JIANSHEN_DB_BUSY_TIMEOUT_MS``): SQLite's own wait for the lock, and
  the wait for this process's write connection (a queue of transactions behind one that waits). Past it the write
  fails with "database is locked" or :class:`api.busy.DatabaseBusy`, which the service answers SERVICE_BUSY
  (api/busy.py) — having changed nothing.

Used as the Tortoise ``engine`` for ``sqlite://`` file URLs (api/db.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import OrderedDict
from typing import Any, Sequence

import aiosqlite
from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
    translate_exceptions,
)
from tortoise.connection import get_connections
from tortoise.exceptions import OperationalError

from api.busy import DatabaseBusy
from api.changes import NotesReads, note_read

DEFAULT_BUSY_TIMEOUT_MS = 5000
INLINE_READ_BUDGET_S = 0.002  # the most CPU a read may use on the event loop's thread before it moves to the reader's
INLINE_READ_CEILING_S = 0.010  # the most wall time, whatever the CPU (a descheduled process, a page read from disk)
LONG_READS_KEPT = 256  # statements known to outlast the budget (by text), least recently seen out first


class BoundedLock(asyncio.Lock):
    """The write connection's lock: waiting for it longer than the busy timeout means the database is busy."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    async def acquire(self) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                return await super().acquire()
        except TimeoutError:
            raise DatabaseBusy(f"the write connection stayed busy for {self.timeout:g} s") from None


class OwnRowCount:
    """``execute_query`` counting the rows the statement itself changed (``SELECT changes()``, asked only when
    something changed), not Tortoise's difference of ``total_changes``, which also counts the rows the change
    counters' triggers update (migration 0013_scope): a one-row conditional UPDATE must still report 1. (Reading
    ``rowcount`` from a cursor of aiosqlite's instead left the write lock held after some statements: seen in
    tests/certificates/test_busy.py.) Every statement is noted for the response cache (api/changes.py)."""

    @translate_exceptions
    async def execute_query(self, query: str, values: list | None = None) -> tuple[int, Sequence[dict]]:
        note_read(query)
        query = query.replace("\x00", "'||CHAR(0)||'")  # as Tortoise does for NUL in literals
        async with self.acquire_connection() as connection:  # type: ignore[attr-defined]
            self.log.debug("%s: %s", query, values)  # type: ignore[attr-defined]
            start = connection.total_changes
            rows = await connection.execute_fetchall(query, values)
            if connection.total_changes == start:
                return len(rows), rows
            count = (await connection.execute_fetchall("SELECT changes()"))[0][0]  # without the triggers' rows
            return count or len(rows), rows


class ImmediateTransaction(OwnRowCount, NotesReads, SqliteTransactionWrapper):
    """A transaction that takes the write lock at BEGIN. A deferred one reads first and asks for the lock at its first
    write, where SQLite refuses at once ("database is locked", without waiting) if another process holds it, since
    waiting there could deadlock; and two such transactions could both read, then one overwrite what the other read.
    BEGIN IMMEDIATE waits for the lock (up to the busy timeout) before the transaction has read anything."""

    async def begin(self) -> None:
        try:
            await self._connection.commit()  # as Tortoise does: end any implicit transaction first
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise OperationalError(exc) from exc


class TransactionContextReleasingOnFailure(SqliteTransactionContext):
    """Tortoise's context leaves the write connection's lock held forever when BEGIN fails (``__aexit__`` does not run
    after a failed ``__aenter__``); a BEGIN IMMEDIATE that meets a busy database must give it back."""

    async def __aenter__(self):
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
            try:
                await self.connection.begin()
            except BaseException:
                get_connections().reset(self.token)
                raise
        except BaseException:
            self._trxlock.release()
            raise
        return self.connection


def _is_read(query: str) -> bool:
    return query.lstrip()[:6].upper() == "SELECT"


class _OverBudget(Exception):
    """The inline read did not finish within its budget, or met a busy database: run it on the reader's thread."""


class InlineReader:
    """A read-only connection used on the event loop's thread for reads that finish within ``budget`` seconds."""

    def __init__(self, path: str, budget: float = INLINE_READ_BUDGET_S, ceiling: float = INLINE_READ_CEILING_S) -> None:
        self.path = path
        self.budget = budget
        self.ceiling = max(ceiling, budget)
        self._connection: sqlite3.Connection | None = None
        self._cpu_deadline = 0.0
        self._wall_deadline = 0.0
        self._spent = False  # the last interrupted read used up its CPU budget (not just the wall-time ceiling)
        self._long: OrderedDict[str, None] = OrderedDict()

    def _connect(self) -> sqlite3.Connection:
        # timeout=0: a read never waits for a lock on the event loop's thread (in WAL mode readers do not wait for
        # writers anyway); check_same_thread=False: a test may drive the client from another loop's thread.
        connection = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA query_only=ON")
        connection.set_progress_handler(self._over_budget, 2000)
        return connection

    def _over_budget(self) -> int:
        if time.thread_time() > self._cpu_deadline:
            self._spent = True
            return 1  # non-zero interrupts the statement
        return time.perf_counter() > self._wall_deadline

    def read(self, query: str, values: list | None) -> list[sqlite3.Row]:
        """The rows, or :class:`_OverBudget` when the statement must run on the reader's thread instead."""
        if query in self._long:
            self._long.move_to_end(query)
            raise _OverBudget
        if self._connection is None:
            self._connection = self._connect()
        self._spent = False
        self._cpu_deadline = time.thread_time() + self.budget
        self._wall_deadline = time.perf_counter() + self.ceiling
        try:
            cursor = self._connection.execute(query, values or ())
            try:
                return cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.OperationalError as error:
            text = str(error)
            if text == "interrupted":
                if self._spent:
                    self._long[query] = None
                    if len(self._long) > LONG_READS_KEPT:
                        self._long.popitem(last=False)
                raise _OverBudget from None
            if "locked" in text or "busy" in text:
                raise _OverBudget from None
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class ReadApartSqliteClient(OwnRowCount, SqliteClient):
    notes_reads = True  # every statement is noted for the response cache (api/changes.py)

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        kwargs.setdefault("busy_timeout", DEFAULT_BUSY_TIMEOUT_MS)  # becomes PRAGMA busy_timeout on each connection
        super().__init__(file_path, **kwargs)
        self.busy_timeout_ms = int(self.pragmas["busy_timeout"])
        self._lock = BoundedLock(self.busy_timeout_ms / 1000)
        self._reader: aiosqlite.Connection | None = None
        self._reader_lock = asyncio.Lock()
        # Another connection to ":memory:" would be another, empty database.
        self._reads_apart = file_path not in ("", ":memory:") and not file_path.startswith("file::memory:")
        self._inline = InlineReader(self.filename) if self._reads_apart else None

    async def create_connection(self, with_db: bool) -> None:
        await super().create_connection(with_db)
        if self._reads_apart and self._reader is None:
            reader = await aiosqlite.connect(self.filename, isolation_level=None)
            reader._conn.row_factory = sqlite3.Row
            for pragma in (f"busy_timeout={self.busy_timeout_ms}", "query_only=ON"):
                await (await reader.execute(f"PRAGMA {pragma}")).close()
            if self._reader is None:
                self._reader = reader
            else:  # another task connected meanwhile
                await reader.close()

    def _in_transaction(self) -> TransactionContext:
        return TransactionContextReleasingOnFailure(ImmediateTransaction(self), self._lock)

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        await super().close()

    async def execute_query(self, query: str, values: list | None = None) -> tuple[int, Sequence[dict]]:
        if not (self._reads_apart and _is_read(query)):
            return await super().execute_query(query, values)  # noted there
        note_read(query)
        rows = await self._read(query, values)
        return len(rows), rows

    async def execute_query_dict(self, query: str, values: list | None = None) -> list[dict]:
        note_read(query)
        if not (self._reads_apart and _is_read(query)):
            return await super().execute_query_dict(query, values)
        return list(map(dict, await self._read(query, values)))

    @translate_exceptions
    async def _read(self, query: str, values: list | None) -> list[sqlite3.Row]:
        query = query.replace("\x00", "'||CHAR(0)||'")  # as Tortoise does for NUL in literals
        self.log.debug("%s: %s", query, values)
        if self._inline is not None:
            try:
                return self._inline.read(query, values)
            except _OverBudget:
                pass
        if self._reader is None:
            await self.create_connection(with_db=True)
        async with self._reader_lock:
            return list(await self._reader.execute_fetchall(query, values))


client_class = ReadApartSqliteClient
