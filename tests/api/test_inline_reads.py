"""Short SQLite reads on the event loop's thread, long and busy ones on the reader's thread (api/sqlite_backend.py,
issue #13 item 1). The statements are real and the lock is another real connection's."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from tortoise.connection import connections

from api.sqlite_backend import InlineReader, _OverBudget

sqlite_only = pytest.mark.parametrize("db_backend", ["sqlite"])

LONG = ("SELECT count(*) AS n FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
        "WHERE x < 3000000) SELECT x FROM c)")


class _NoThread:
    async def execute_fetchall(self, *_args):
        raise AssertionError("a short read went to the reader's thread")

    async def close(self):
        pass


@sqlite_only
async def test_a_short_read_runs_inline(world, monkeypatch):
    client = connections.get("default")
    monkeypatch.setattr(client, "_reader", _NoThread())
    _, rows = await client.execute_query('SELECT count(*) AS n FROM "project"')
    assert rows[0]["n"] == len(world.projects)
    assert [dict(r) for r in await client.execute_query_dict('SELECT "code" FROM "project" ORDER BY "id"')] == [
        {"code": p.code} for p in sorted(world.projects.values(), key=lambda p: p.id)
    ]


@sqlite_only
async def test_a_long_read_moves_to_the_readers_thread_and_the_loop_keeps_turning(world):
    client = connections.get("default")
    gaps: list[float] = []
    done = False

    async def ticker():
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    _, rows = await client.execute_query(LONG)
    took = time.perf_counter() - started
    done = True
    await ticking
    assert rows[0]["n"] == 3_000_000
    assert took > 0.05  # long enough to tell: the loop turned meanwhile
    assert len(gaps) > 5 and max(gaps) < 0.05, (took, max(gaps))  # the inline try gave up after its ~2 ms budget
    assert LONG in client._inline._long  # next time straight to the thread
    started = time.perf_counter()
    with pytest.raises(_OverBudget):
        client._inline.read(LONG, None)
    assert time.perf_counter() - started < 0.001


def test_a_locked_database_is_not_waited_for_on_the_loops_thread(tmp_path):
    """In rollback-journal mode a writer's EXCLUSIVE lock stops readers: the inline read gives up at once (its
    reader's thread then waits, up to the busy timeout); once the lock is gone it reads inline again."""
    path = str(tmp_path / "locked.sqlite3")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=DELETE")
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.execute("INSERT INTO t VALUES (1)")
    reader = InlineReader(path)
    assert [tuple(r) for r in reader.read("SELECT x FROM t", None)] == [(1,)]
    setup.execute("BEGIN EXCLUSIVE")
    started = time.perf_counter()
    with pytest.raises(_OverBudget):
        reader.read("SELECT x FROM t", None)
    assert time.perf_counter() - started < 0.05
    setup.execute("ROLLBACK")
    assert [tuple(r) for r in reader.read("SELECT x FROM t", None)] == [(1,)]  # not remembered as long
    with pytest.raises(sqlite3.OperationalError):  # a real error is raised, not hidden
        reader.read("SELECT nothing FROM t", None)
    with pytest.raises(sqlite3.OperationalError):  # read-only
        reader.read("DELETE FROM t", None)
    reader.close()
    setup.close()
