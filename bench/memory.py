"""Benchmark: the memory of an API process (embedded mode) at rest and while it seals a backlog of certificates.

    .venv/bin/python bench/memory.py [-n 100] [--before-ref main ...] [--no-write]

1. migrates a throw-away SQLite database and loads the demo (its PDFs all sealed);
2. starts ``python -m api serve`` (embedded mode: no Redis, SQLite, the process seals the PDFs itself, or in a child
   process it starts; the certificate sweep every second) on a free port, sends a few GraphQL requests and reads
   /proc/PID/status (VmRSS, VmHWM) once it is at rest;
3. writes ``-n`` certificates without their PDF (copies of the demo's, each with its own identifier and number, the way
   a burst of approvals leaves them) and samples VmRSS of the server and of its children every 50 ms while they seal
   them, until all have their PDF; then reads VmHWM (the peak RSS of a process's whole life) and RSS once more at
   rest. The memory sealing costs is the server's and its child's together.

Figures go to the "memory" section of docs/PERFORMANCE.md. Issue #13's targets: ≤ 150 MB at rest, ≤ 250 MB sealing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from bench._report import machine, write_section  # noqa: E402
from bench.progress import free_port, isolated, stop, wait_for_port  # noqa: E402

BEGIN, END = "<!-- bench/memory.py writes between these markers -->", "<!-- /bench/memory.py -->"
AT_REST_MB, SEALING_MB = 150, 250


def status_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid``, MB (MiB)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the server's sealing child)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def pages(pid: int) -> set[int]:
    """The physical pages (frame numbers, /proc/PID/pagemap; root only) that ``pid`` has resident."""
    from array import array

    frames: set[int] = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if start >= 1 << 47:  # [vsyscall]
                continue
            pagemap.seek(start // 4096 * 8)
            entries = array("Q", pagemap.read((end - start) // 4096 * 8))
            frames.update(e & ((1 << 55) - 1) for e in entries if e >> 63)
    return frames


def together_mb(pids: list[int]) -> float:
    """The memory of these processes together, MiB: each physical page once, however many of them map it (the
    libraries the server and its child both load: libpython, libcrypto, cryptography's, …)."""
    frames: set[int] = set()
    for pid in pids:
        try:
            frames |= pages(pid)
        except OSError:
            continue  # exited meanwhile
    return len(frames) * 4096 / 2**20


def family_mb(pid: int) -> tuple[float, float, dict[int, float]]:
    """VmRSS of ``pid`` and of its children added, the children's alone, and each child's VmHWM (MiB)."""
    total = status_mb(pid)["VmRSS"]
    child_rss, hwm = 0.0, {}
    for child in children(pid):
        try:
            figures = status_mb(child)
        except (OSError, KeyError):
            continue  # exited (or a zombie: no VmRSS) between the listing and the read
        child_rss += figures["VmRSS"]
        hwm[child] = figures["VmHWM"]
    return total + child_rss, child_rss, hwm


async def _with_db(database_url: str, settings_kwargs: dict, fn):
    from tortoise import Tortoise

    from api.db import config_from_settings
    from api.settings import Settings

    settings = Settings(database_url=database_url, **settings_kwargs)
    await Tortoise.init(config=config_from_settings(settings))
    try:
        return await fn(settings)
    finally:
        await Tortoise.close_connections()


async def prepare(database_url: str, paths: dict) -> str:
    from api.db import migrate
    from api.demo import load_demo

    await migrate(database_url)

    async def load(settings):
        return (await load_demo(settings, pdf_limit=None))["APPLICANT"]

    return await _with_db(database_url, paths, load)


async def add_backlog(database_url: str, paths: dict, n: int) -> list[int]:
    """``n`` certificates without a PDF, copied from the demo's sealed ones (new identifier and number each)."""
    from api.models import Certificate

    async def add(settings):
        sealed = await Certificate.filter(pdf_path__isnull=False).order_by("id").values()
        ids = []
        for i in range(n):
            row = dict(sealed[i % len(sealed)])
            for key in ("id", "pdf_path", "pdf_sha256", "signed_at", "seal_id", "pdf_pending_reason", "superseded_by_id"):
                row.pop(key, None)
            row["identifier"] = f"{row['identifier']}.B{i:04d}"
            row["number"] = f"{row['number']}B{i:04d}"
            ids.append((await Certificate.create(**row)).id)
        return ids

    return await _with_db(database_url, paths, add)


async def sealed_count(database_url: str, paths: dict, ids: list[int]) -> int:
    from api.models import Certificate

    async def count(settings):
        return await Certificate.filter(id__in=ids, pdf_path__isnull=False).count()

    return await _with_db(database_url, paths, count)


def graphql(port: int, token: str, query: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def run(n: int, timeout: float, code: Path = ROOT) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="jianshen-memory-"))
    process = None
    try:
        database_url = f"sqlite://{workdir}/bench.sqlite3"
        env_paths = isolated(workdir)
        paths = {key.removeprefix("JIANSHEN_").lower(): value for key, value in env_paths.items()}
        token = asyncio.run(prepare(database_url, paths))
        env = {**os.environ, "JIANSHEN_DATABASE_URL": database_url, "JIANSHEN_CERTIFICATE_SWEEP_SECONDS": "1", **env_paths}
        env.pop("JIANSHEN_REDIS_URL", None)  # embedded mode
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=code, env={**env, "PYTHONPATH": str(code)}, stdout=subprocess.DEVNULL,
            stderr=(workdir / "serve.log").open("wb"),
        )
        wait_for_port(port, process, timeout=180.0)  # a loaded shared machine starts a server slowly
        for _ in range(20):  # a little traffic: what a process at rest has been through
            graphql(port, token, "{ me { id } }")
        time.sleep(2)  # the start-up sweep and the traffic settled
        rest = status_mb(process.pid)

        ids = asyncio.run(add_backlog(database_url, paths, n))
        start, peak_rss, peak_total, peak_child, peak_together, done = time.monotonic(), 0.0, 0.0, 0.0, 0.0, 0
        child_hwm: dict[int, float] = {}
        next_count = start
        while done < n:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}: see {workdir / 'serve.log'}")
            peak_rss = max(peak_rss, status_mb(process.pid)["VmRSS"])
            total, child_rss, hwm = family_mb(process.pid)
            peak_total, peak_child = max(peak_total, total), max(peak_child, child_rss)
            child_hwm.update({pid: max(mb, child_hwm.get(pid, 0.0)) for pid, mb in hwm.items()})
            if time.monotonic() >= next_count:  # each second: the pages of server and child counted once
                peak_together = max(peak_together, together_mb([process.pid, *children(process.pid)]))
                done = asyncio.run(sealed_count(database_url, paths, ids))
                next_count = time.monotonic() + 1.0
            if time.monotonic() - start > timeout:
                raise SystemExit(f"only {done} of {n} sealed after {timeout} s")
            time.sleep(0.05)
        sealing_s = time.monotonic() - start
        end = status_mb(process.pid)
        peak_together = max(peak_together, together_mb([process.pid, *children(process.pid)]))
        time.sleep(2)
        after = status_mb(process.pid)
        after_total = family_mb(process.pid)[0]
        while children(process.pid) and time.monotonic() - start - sealing_s < 120:  # the child's idle exit
            time.sleep(0.2)
        child_gone_s = time.monotonic() - start - sealing_s
        idle = family_mb(process.pid)[0]
        return {
            "rest_rss": rest["VmRSS"], "rest_hwm": rest["VmHWM"], "peak_rss": peak_rss, "hwm": end["VmHWM"],
            "peak_child": peak_child, "peak_total": peak_total, "peak_together": peak_together,
            # the server's peak while sealing and its largest child's (children run one after another, never two at
            # once; the server's own VmHWM may be its start-up's); without a child, the server's VmHWM
            "hwm_total": peak_rss + max(child_hwm.values()) if child_hwm else end["VmHWM"], "children": len(child_hwm),
            "after_rss": after["VmRSS"], "after_total": after_total, "idle_total": idle, "child_gone_s": child_gone_s,
            "seconds": sealing_s, "n": n,
        }
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def run_ref(ref: str, n: int, timeout: float) -> dict:
    """The same measurement with the server of git ref ``ref`` (``git archive`` into a temporary folder)."""
    import tarfile
    from io import BytesIO

    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory(prefix="jianshen-memory-ref-") as tmp:
        tarfile.open(fileobj=BytesIO(archive)).extractall(tmp)
        if "glyphs" in (Path(tmp) / "esign" / "__main__.py").read_text():
            # The ref's glyph store, in its own folder (``var/esign/glyphs`` of the server's working directory): what
            # ``make install`` or ``migrate`` leaves for its server; a store of another format is not this one's.
            subprocess.run([sys.executable, "-m", "esign", "glyphs"], cwd=tmp, env={**os.environ, "PYTHONPATH": tmp},
                           check=True, capture_output=True)
        return run(n, timeout, Path(tmp))


def report(rows: list[tuple[str, dict]]) -> str:
    def verdict(value, target):
        return "meets" if value <= target else "**misses**"

    r = rows[-1][1]
    lines = "\n".join(
        f"| {label} | {x['rest_rss']:.0f} | {x['peak_rss']:.0f} | {x.get('peak_child', 0):.0f} | "
        f"{x.get('peak_total', x['peak_rss']):.0f} | {x.get('peak_together', 0):.0f} | {x['hwm']:.0f} | "
        f"{x.get('hwm_total', x['hwm']):.0f} | "
        f"{x['after_rss']:.0f} | {x.get('after_total', x['after_rss']):.0f} | "
        f"{x.get('idle_total', x['after_rss']):.0f} ({x.get('child_gone_s', 0):.0f} s) | {x['seconds']:.0f} |"
        for label, x in rows
    )
    return (
        f"Measured {dt.date.today():%Y-%m-%d} on {machine()}; `python -m api serve`, embedded mode (SQLite, no Redis), "
        f"the demo loaded; {r['n']} certificates without their PDF written at once and sealed by the process's own sweep "
        "(sealing time is wall-clock, under the load of other work on the machine). RSS from /proc/PID/status, MiB; "
        "\"child\": the server's sealing child process (api/sealing.py), if any; \"each page once\": the physical "
        "pages resident in the server and its child (/proc/PID/pagemap, sampled each second and at the end), a page "
        "both map (libpython, libcrypto, …) counted once; VmHWM is the peak of a process's life, \"server + child\" "
        "the server's peak RSS while sealing and its largest child's VmHWM added.\n\n"
        "| code | at rest (VmRSS) | peak while sealing: server (VmRSS, 50 ms samples) | child | server + child | "
        "server + child, each page once | VmHWM after sealing: server | server + child | at rest 2 s after sealing: server | "
        "server + child | once no child is left (s after sealing) | sealing s |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        f"{lines}\n\n"
        f"Targets ({rows[-1][0]}): at rest ≤ {AT_REST_MB} MB ({verdict(r['rest_rss'], AT_REST_MB)} it; after sealing: "
        f"{verdict(r['after_rss'], AT_REST_MB)} it), while sealing ≤ {SEALING_MB} MB "
        f"({verdict(r.get('peak_together', r['hwm']), SEALING_MB)} it by server + child, each page once; "
        f"{verdict(r.get('hwm_total', r['hwm']), SEALING_MB)} it by their RSS added, which counts the pages they "
        "share twice).\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="certificates in the backlog")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds of sealing")
    parser.add_argument("--before-ref", action="append", default=[],
                        help="also measure the server of this git ref (e.g. main), for before/after; may be repeated")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/PERFORMANCE.md alone")
    args = parser.parse_args()
    rows = []
    for ref in args.before_ref:
        rows.append((f"before: `{ref}`", run_ref(ref, args.n, args.timeout)))
    rows.append(("this tree", run(args.n, args.timeout)))
    text = report(rows)
    print(text)
    print(json.dumps(rows))
    if not args.no_write:
        write_section(BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
