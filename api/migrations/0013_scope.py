"""Per-table change counters, bumped by the database itself in the writing transaction (api/changes.py).

Every table present now gets triggers that count its writes, so a kept answer (api/response_cache.py) ends only when a
table it read was written — by this process or any other (an arq worker, a department's pushed event, an operator's
``python -m api calendar load``), whatever the code path, raw SQL included. A table created by a later migration has
no counter: an answer that reads it falls back to the database-wide generation, which is always safe but ends with
every commit — so a migration that creates a table should count it too: ``RunPython`` calling
``api.changes.count_writes(schema_editor.client, ["the_table"])`` (tests/api/test_response_cache_scoped.py checks).

- SQLite: a row per table in ``jianshen_change`` (``tbl``, ``n``), ``n`` bumped by row triggers. Writers are
  serialised by the database, so the counter rows never wait for each other.
- PostgreSQL: a sequence per table, ``jianshen_change_<table>``, advanced by a statement trigger. Sequences take no
  row lock, so two transactions writing the same tables in different orders never deadlock on their counters; the
  reader (api/changes.py) accounts for a sequence advancing before its transaction commits.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

COUNTERS = "jianshen_change"


def _skip(table: str) -> bool:
    return table == COUNTERS or table.startswith(("sqlite_", "tortoise"))


async def _tables(client, dialect: str) -> list[str]:
    if dialect == "sqlite":
        _, rows = await client.execute_query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        names = [row["name"] for row in rows]
    else:
        _, rows = await client.execute_query(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
        names = [row["tablename"] for row in rows]
    return [name for name in names if not _skip(name)]


async def forward(apps, schema_editor) -> None:
    from api.changes import count_writes

    client = schema_editor.client
    dialect = client.capabilities.dialect
    if dialect == "sqlite":
        await client.execute_query(f"CREATE TABLE {COUNTERS} (tbl TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL)")
    else:
        await client.execute_query(
            f"CREATE FUNCTION {COUNTERS}_bump() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM nextval(TG_ARGV[0]::regclass); RETURN NULL; END $$"
        )
    await count_writes(client, await _tables(client, dialect))


async def backward(apps, schema_editor) -> None:
    client = schema_editor.client
    dialect = client.capabilities.dialect
    if dialect == "sqlite":
        _, rows = await client.execute_query(f"SELECT tbl FROM {COUNTERS}")
        for row in rows:
            for event in ("insert", "update", "delete"):
                await client.execute_query(f'DROP TRIGGER IF EXISTS "{COUNTERS}_{row["tbl"]}_{event}"')
        await client.execute_query(f"DROP TABLE {COUNTERS}")
        return
    await client.execute_query(f"DROP FUNCTION {COUNTERS}_bump() CASCADE")  # and every trigger calling it
    _, rows = await client.execute_query(
        "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() AND sequencename LIKE $1",
        [f"{COUNTERS}\\_%"],
    )
    for row in rows:
        await client.execute_query(f'DROP SEQUENCE "{row["sequencename"]}"')


class Migration(migrations.Migration):
    dependencies = [('models', '0012_scale')]

    initial = False

    operations = [ops.RunPython(forward, backward)]
