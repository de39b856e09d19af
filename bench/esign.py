"""Benchmark: electronic certificates rendered and signed, verified, against raw ECDSA P-256 signatures, in one run.

    .venv/bin/python bench/esign.py [--seconds 3] [--no-write]

Each measurement runs for ``--seconds`` (after one warm-up call) in this one process, and the figures are printed as a
Markdown table and written to the "esign" section of docs/PERFORMANCE.md. The rows:
- render + sign: a 建筑工程施工许可证 with 16 fields, QR code, CJK font subset and embedded, then a PAdES signature with
  the seal's visible stamp (what issuing a certificate costs, without the database);
- render only / sign only: the two halves;
- verify: esign's verifier on a signed certificate (integrity, chain to the platform CA, revocation lookup);
- raw ECDSA P-256: ``cryptography`` signing a 32-byte digest — the floor that the signature itself costs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
# This file is bench/esign.py: drop bench/ from the path so that ``import esign`` is the package, not this script.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from bench._report import machine, write_section  # noqa: E402

BEGIN, END = "<!-- bench/esign.py writes between these markers -->", "<!-- /bench/esign.py -->"


def rate(fn: Callable[[], object], seconds: float) -> tuple[float, int]:
    """(calls per second, calls) of ``fn`` over about ``seconds``, after one warm-up call."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed, calls


def measure(seconds: float) -> tuple[list[tuple[str, float, int]], int]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    from tests.esign.conftest import construction_permit, make_platform  # the same certificate the tests sign

    from esign import render_certificate, sign_pdf, verify_pdf

    with tempfile.TemporaryDirectory(prefix="esign-bench-") as tmp:
        plat = make_platform(Path(tmp))
        doc = construction_permit()
        rendered = render_certificate(doc)
        signed = sign_pdf(rendered.pdf, plat.signer, seal_image_png=plat.seal_image, seal_box=rendered.seal_box)
        trusted = [plat.ca.certificate]
        revoked = {plat.seal.serial_number + 1: dt.datetime.now(dt.timezone.utc)}
        assert verify_pdf(signed, trusted, revoked.get).valid

        def render_and_sign():
            r = render_certificate(doc)
            return sign_pdf(r.pdf, plat.signer, seal_image_png=plat.seal_image, seal_box=r.seal_box)

        key = ec.generate_private_key(ec.SECP256R1())
        digest = os.urandom(32)
        rows = [
            ("certificate render + sign", *rate(render_and_sign, seconds)),
            ("render only", *rate(lambda: render_certificate(doc), seconds)),
            ("sign only (PAdES, seal stamp)", *rate(
                lambda: sign_pdf(rendered.pdf, plat.signer, seal_image_png=plat.seal_image, seal_box=rendered.seal_box),
                seconds,
            )),
            ("verify (esign)", *rate(lambda: verify_pdf(signed, trusted, revoked.get), seconds)),
            ("raw ECDSA P-256 signature", *rate(lambda: key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))), seconds)),
        ]
        size = len(signed)
    return rows, size


def report(rows, size: int, seconds: float) -> str:
    lines = "\n".join(f"| {name} | {per_s:,.1f} | {1000 / per_s:.2f} | {calls} |" for name, per_s, calls in rows)
    return (
        f"Measured {dt.date.today():%Y-%m-%d} on {machine()}; one process, one thread, {seconds:g} s per row after "
        f"one warm-up call. Signed certificate: {size:,} bytes (one A4 page, CJK font subset embedded).\n\n"
        "| operation | per second | ms each | calls |\n| --- | ---: | ---: | ---: |\n"
        f"{lines}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/PERFORMANCE.md alone")
    args = parser.parse_args()
    rows, size = measure(args.seconds)
    text = report(rows, size, args.seconds)
    print(text)
    if not args.no_write:
        write_section(BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
