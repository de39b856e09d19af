"""One row as the lock of a rule that counts or checks before it writes (issue #10: limits that hold under concurrency).

A rule such as "ten complaints a day" or "one authorisation per phone" reads, decides, then writes. Two requests that
read before either writes both pass. Inside a transaction, ``lock_row`` makes the read wait for every other holder of
the same row, the same way on both databases:

- PostgreSQL: the row lock an UPDATE takes (what ``SELECT … FOR UPDATE`` takes), held until commit; a second
  transaction locking the same row waits for the first to end, then reads what it committed.
- SQLite (Tortoise has no ``FOR UPDATE`` there): in one process a transaction already holds the process's only
  connection; between processes, the write takes the database's write lock. It must be the transaction's *first*
  statement: a transaction that read first and writes second cannot wait for another writer (its snapshot is stale,
  SQLITE_BUSY at once); one that writes first waits its turn (the busy timeout), then reads the newest data.

The write changes nothing (``column = column``), but it is a write: it ends the response cache's generation like any
commit, which is right, as the transaction is about to change something anyway.
"""

from __future__ import annotations

from typing import Any

from tortoise.expressions import F
from tortoise.models import Model


async def lock_row(model: type[Model], pk: Any, column: str) -> bool:
    """Lock the row ``pk`` of ``model`` until the current transaction ends; ``column`` is any column of it that is
    not the key. Call it first in the transaction. ``False`` when there is no such row (nothing is locked)."""
    return bool(await model.filter(pk=pk).update(**{column: F(column)}))


async def lock_value(key: str) -> None:
    """Lock a value that has no row of its own (a phone number) until the current transaction ends.

    PostgreSQL: a transaction-level advisory lock on the key's hash (a collision only makes two keys wait for each
    other). SQLite: nothing to do here — a transaction already holds the process's only connection, and between
    processes the caller's next statement must be a write (see above), which waits for the database's write lock."""
    from tortoise.connection import connections

    connection = connections.get("default")  # inside ``in_transaction()``: the transaction's own connection
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query("SELECT pg_advisory_xact_lock(hashtext($1))", [key])
