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


def test_a_read_that_only_outlasts_the_wall_clock_is_not_remembered_as_long(tmp_path):
    """A read held up without using the CPU (here a SQL function that sleeps, as a descheduled process or a page read
    from disk would) moves to the thread once it passes the wall-time ceiling, but is not sent there next time: only
    a read that used up its CPU budget is. Before, a busy machine's preemption demoted the hottest statements for the
    rest of the process's life."""
    path = str(tmp_path / "slow.sqlite3")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x INTEGER)")
    reader = InlineReader(path, budget=0.002, ceiling=0.01)
    reader.read("SELECT x FROM t", None)  # connects
    pauses: list[float] = []
    reader._connection.create_function("pause", 1, lambda s: pauses.append(s) or time.sleep(s) or 0)
    slow = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
            "SELECT sum(CASE WHEN x % 100 = 0 THEN pause(0.004) ELSE x END) FROM c")
    cpu, started = time.thread_time(), time.perf_counter()
    with pytest.raises(_OverBudget):
        reader.read(slow, None)
    assert time.perf_counter() - started >= 0.01 and time.thread_time() - cpu < 0.002
    assert 1 <= len(pauses) < 20  # interrupted part way (of 20 pauses), once past the ceiling
    assert slow not in reader._long
    pauses.clear()
    with pytest.raises(_OverBudget):  # tried inline again (not sent straight to the thread)
        reader.read(slow, None)
    assert pauses
    busy = ("SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
            "SELECT x FROM c)")
    with pytest.raises(_OverBudget):
        reader.read(busy, None)
    assert busy in reader._long  # used up its CPU budget: straight to the thread from now on
    reader.close()
    setup.close()
