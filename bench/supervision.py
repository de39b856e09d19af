"""Benchmark: ``caseStats`` over a whole year, with 10,000 and 100,000 generated cases, on SQLite and PostgreSQL.

    .venv/bin/python bench/supervision.py [--sizes 10000,100000] [--no-postgres] [--runs 3] [--no-write]

For each database (a throw-away SQLite file; with PostgreSQL binaries, a throw-away server as the tests start one):
migrate, load the demo (its catalogue, people and templates), then grow the case table with ``load_scale``
(api/scale.py, ``python -m api load-demo --scale N``; its time is given too) to each size in turn and time the service
function the GraphQL query, the exports and the dashboard call (api/services/supervision.py ``case_stats``), as the
demo supervisor, for the year up to today: the first run in the process, then grouped by DEPARTMENT and by MONTH (the
best of ``--runs`` runs each, wall clock and this process's CPU time: on SQLite the database's work is in this
process, on PostgreSQL in the server), and the overdue list's first page. The figures go to docs/PERFORMANCE.md
(target: ≤ 1 s on PostgreSQL, ≤ 2 s on SQLite at 100,000 cases).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import machine, write_section  # noqa: E402

BEGIN, END = "<!-- bench/supervision.py writes between these markers -->", "<!-- /bench/supervision.py -->"


async def measure(database_url: str, workdir: Path, sizes: list[int], runs: int) -> list[dict]:
    from tortoise import Tortoise

    from api.db import config_from_settings, migrate
    from api.demo import load_demo
    from api.domain.timing import SHANGHAI, Light
    from api.models import Case, CaseEvent, User
    from api.scale import load_scale
    from api.services import supervision
    from api.services.access import Viewer
    from api.services.calendar import get_calendar
    from api.settings import Settings

    from tortoise.backends.base.executor import EXECUTOR_CACHE

    EXECUTOR_CACHE.clear()  # Tortoise caches SQL per connection name: the second database of the run is another kind
    settings = Settings(database_url=database_url, upload_dir=workdir / "uploads", esign_dir=workdir / "esign",
                        certificate_dir=workdir / "certificates")
    await migrate(database_url)
    await Tortoise.init(config=config_from_settings(settings))
    rows = []
    try:
        now = dt.datetime.now(SHANGHAI)
        await load_demo(settings, pdf_limit=0)
        viewer = Viewer.of(await User.get(username="demo.supervisor"))
        today = now.date()
        start = today - dt.timedelta(days=365)
        made = 0
        for size in sizes:
            began = time.perf_counter()
            await load_scale(size - made, seed=size, now=now)
            loaded = time.perf_counter() - began
            made = size
            calendar = await get_calendar()
            midnight = supervision.day_start(today)
            row = {"size": size, "cases": await Case.all().count(), "events": await CaseEvent.all().count(),
                   "load_s": loaded}
            for group_by in (supervision.GroupBy.DEPARTMENT, supervision.GroupBy.MONTH):
                best = None
                for run in range(runs + (group_by is supervision.GroupBy.DEPARTMENT)):
                    t, cpu = time.perf_counter(), time.process_time()
                    stats = await supervision.case_stats(
                        viewer, supervision.StatsFilter(start, today), group_by, calendar=calendar, now=midnight,
                        max_days=366, complaint_reply_days=10, complaint_warning_days=2,
                    )
                    elapsed = (time.perf_counter() - t, time.process_time() - cpu)
                    if group_by is supervision.GroupBy.DEPARTMENT and run == 0:
                        row["cold"] = elapsed[0]  # the first run in the process (the database's caches cold)
                        continue
                    best = elapsed if best is None else min(best, elapsed)
                row[group_by.value], row[group_by.value + "_cpu"] = best
                row["decided"] = stats.total.decided
            t = time.perf_counter()
            await supervision.light_cases(
                viewer, supervision.Scope(), Light.RED, first=20, after=None,
                order=supervision.DaysOrder.MOST_URGENT_FIRST, page_max=100, calendar=calendar, now=midnight,
            )
            row["overdue_s"] = time.perf_counter() - t
            rows.append(row)
            print(row, flush=True)
    finally:
        await Tortoise.close_connections()
    return rows


def run_sqlite(sizes: list[int], runs: int) -> list[dict]:
    workdir = Path(tempfile.mkdtemp(prefix="jianshen-bench-stats-"))
    try:
        return asyncio.run(measure(f"sqlite://{workdir / 'bench.sqlite3'}", workdir, sizes, runs))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_postgres(sizes: list[int], runs: int) -> list[dict] | None:
    from tests.servers import PostgresServer, postgres_available

    if not postgres_available():
        print("PostgreSQL binaries not found: skipped")
        return None
    server = PostgresServer.start()
    workdir = Path(tempfile.mkdtemp(prefix="jianshen-bench-stats-pg-"))
    try:
        url = asyncio.run(server.create_database("bench_stats"))
        return asyncio.run(measure(url, workdir, sizes, runs))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def table(name: str, rows: list[dict]) -> str:
    lines = [f"| {name} | cases in the table | events | load-demo --scale of the cases added | "
             "caseStats, first in the process | by department (CPU) | by month (CPU) | overdueCases page |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size']:,} generated | {r['cases']:,} | {r['events']:,} | {r['load_s']:.0f} s | "
                     f"{r['cold']:.2f} s | {r['DEPARTMENT']:.2f} s ({r['DEPARTMENT_cpu']:.2f} s) | "
                     f"{r['MONTH']:.2f} s ({r['MONTH_cpu']:.2f} s) | {r['overdue_s']:.2f} s |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ.setdefault("JIANSHEN_LOG_LEVEL", "WARNING")
    sqlite = None if args.no_sqlite else run_sqlite(sizes, args.runs)
    postgres = None if args.no_postgres else run_postgres(sizes, args.runs)
    text = [f"Measured {dt.date.today().isoformat()} on {machine()}; the year up to today, as the supervisor, best of "
            f"{args.runs}; the cases were received over that year (about 4 events each).", ""]
    if sqlite:
        text += [table("SQLite", sqlite)]
    if postgres:
        text += ["", table("PostgreSQL", postgres)]
    if not sqlite or not postgres:
        args.no_write = True  # the section holds both
    print("\n".join(text))
    if not args.no_write:
        write_section(BEGIN, END, "\n".join(text) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
