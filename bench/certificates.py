"""Benchmark: CPU time to issue one electronic certificate (render the PDF + seal it), per certificate, p50/p99.

    .venv/bin/python bench/certificates.py [-n 100] [--before-ref main] [--no-write]

What ``api.sealing.seal_job`` does (in the sealing child) for each approval, without the database: N different
建筑工程施工许可证 (each with its own holder, address, project and numbers drawn from the 3,755 common characters of
GB 2312 level 1, fixed seed, so the font's glyph cache meets new characters the way a stream of real approvals does),
each rendered and PAdES-signed with the seal's visible stamp. CPU time is ``time.process_time`` around each
certificate (this process only: immune to what else runs on the machine, unlike wall-clock time). The first
certificate of a process (it opens the CJK face) is reported apart from the N. The face reads the machine's glyph
store (``python -m esign glyphs``, which ``make install`` and ``python -m api migrate`` run: JIANSHEN_CJK_GLYPH_DIR,
default var/esign/glyphs) as a server's process does; the table says whether it was there.

``--before-ref REF`` also measures the code of git ref REF (``git archive`` into a temporary folder), its process and
this tree's running at the same time so that both meet the same load of a shared machine, for a before/after table. Figures go to the "certificates" section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- bench/certificates.py writes between these markers -->", "<!-- /bench/certificates.py -->"


def _common_hanzi() -> str:
    chars = []
    for b1 in range(0xB0, 0xD8):  # GB 2312 level 1: 16-55 区
        for b2 in range(0xA1, 0xFF):
            try:
                chars.append(bytes([b1, b2]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return "".join(chars)


def documents(n: int, seed: int = 13):
    """N different certificates: the tests' construction permit with its variable texts drawn at random."""
    from tests.esign.conftest import construction_permit

    rng = random.Random(seed)
    hanzi = _common_hanzi()
    base = construction_permit()

    def words(k: int) -> str:
        return "".join(rng.choice(hanzi) for _ in range(k))

    for i in range(n):
        holder = f"珠海市{words(4)}{rng.choice(['有限公司', '房地产开发有限公司', '建设集团有限公司'])}"
        number = f"4404022025{i:08d}"
        values = {
            "证照编号": number,
            "持证主体": holder,
            "建设单位": holder,
            "工程名称": f"{words(4)}花园{rng.randint(1, 9)}期{rng.randint(1, 12)}#楼",
            "建设地址": f"珠海市香洲区{words(3)}路{rng.randint(1, 999)}号{words(2)}以东",
            "施工单位": f"{words(6)}工程局有限公司",
            "监理单位": f"珠海市{words(4)}工程监理有限公司",
            "项目经理": words(3),
        }
        fields = [(label, values.get(label, value)) for label, value in base.fields]
        yield type(base)(**{**base.__dict__, "fields": fields, "licence_number": number})


def measure(n: int) -> dict:
    """In this process: CPU ms of the first certificate and of each of the next N."""
    from tests.esign.conftest import make_platform

    from esign import render_certificate, sign_pdf

    with tempfile.TemporaryDirectory(prefix="cert-bench-") as tmp:
        plat = make_platform(Path(tmp))
        docs = list(documents(n + 1))
        times = []
        size = 0
        for doc in docs:
            start = time.process_time()
            rendered = render_certificate(doc)
            signed = sign_pdf(rendered.pdf, plat.signer, seal_image_png=plat.seal_image, seal_box=rendered.seal_box)
            times.append((time.process_time() - start) * 1000)
            size = len(signed)
    rest = sorted(times[1:])
    try:  # the code measured may predate the glyph store
        from esign.fonts import truetype_face

        store = getattr(truetype_face("serif"), "_store", None)
    except ImportError:
        store = None
    return {
        "glyph_store": len(store) if store is not None else 0,
        "first_ms": times[0],
        "p50_ms": statistics.median(rest),
        "p99_ms": rest[min(len(rest) - 1, round(0.99 * (len(rest) - 1)))],
        "mean_ms": statistics.fmean(rest),
        "max_ms": rest[-1],
        "n": len(rest),
        "bytes": size,
    }


def measure_side_by_side(refs: list[str | None], n: int) -> list[dict]:
    """The measurement of each git ref (``None``: this tree), each in its own process, all running at the same time:
    on a shared machine CPU time grows with the load (caches, hyper-threads), so rows measured together meet the
    same load and compare, where rows measured one after the other do not."""
    with tempfile.TemporaryDirectory(prefix="cert-bench-ref-") as tmp:
        processes = []
        for i, ref in enumerate(refs):
            code = ROOT
            if ref is not None:
                archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
                code = Path(tmp) / str(i)
                code.mkdir()
                tarfile.open(fileobj=BytesIO(archive)).extractall(code)
            processes.append(subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--measure-only", "-n", str(n), "--code", str(code)],
                stdout=subprocess.PIPE, text=True,
            ))
        outputs = [p.communicate()[0] for p in processes]
        if any(p.returncode for p in processes):
            raise SystemExit("a measurement failed")
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def report(rows: list[tuple[str, dict]], n: int) -> str:
    from bench._report import machine

    lines = "\n".join(
        f"| {name} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['mean_ms']:.1f} | {r['max_ms']:.1f} | "
        f"{r['first_ms']:.0f} | {r['bytes']:,} | {f'{g:,} glyphs' if (g := r.get('glyph_store')) else '—'} |"
        for name, r in rows
    )
    return (
        f"Measured {dt.date.today():%Y-%m-%d} on {machine()}; one process per row, {n} different certificates "
        "each after a first one, CPU time of this process (`time.process_time`) per certificate: render + PAdES seal"
        f"{'; the rows measured at the same time' if len(rows) > 1 else ''}.\n\n"
        "| code | p50 ms | p99 ms | mean ms | max ms | first certificate ms | signed bytes | glyph store |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        f"{lines}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="certificates measured (after the first)")
    parser.add_argument("--before-ref", help="also measure the code of this git ref (e.g. main), for before/after")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/PERFORMANCE.md alone")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)  # the tree whose esign is measured (--before-ref)
    args = parser.parse_args()
    code = Path(args.code).resolve() if args.code else ROOT
    # This file is bench/certificates.py: bench/ off the path, the measured tree first.
    sys.path[:] = [str(code), str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    if args.measure_only:
        print(json.dumps(measure(args.n)))
        return 0
    if args.before_ref:  # both at the same time, each in its own process (see measure_side_by_side)
        before, now = measure_side_by_side([args.before_ref, None], args.n)
        rows = [(f"before: `{args.before_ref}`", before), ("this tree", now)]
    else:
        rows = [("this tree", measure(args.n))]
    text = report(rows, args.n)
    print(text)
    if not args.no_write:
        from bench._report import write_section

        write_section(BEGIN, END, text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
