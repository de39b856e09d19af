"""Command line: ``python -m esign verify FILE.pdf [--ca CA.pem] [--revoked revoked.json]`` and
``python -m esign seal-image NAME TYPE out.png`` and ``python -m esign glyphs [--dir DIR]``.

``verify`` is the offline form of the public verification service (DOMAIN.md §6): it prints the verdict in Chinese
and exits 0 only for a valid signature. The trusted CA defaults to the embedded mode's ``var/esign/platform-ca.pem``.
``revoked.json`` maps seal certificate serial numbers (decimal, or hex with ``0x``) to revocation times (ISO 8601 with
an offset), e.g. ``{"0x5f3a…": "2025-03-01T10:00:00+08:00"}`` — an export of the revoked seals.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from esign.ca import load_certificates
from esign.seal_image import seal_png
from esign.verify import verify_pdf

DEFAULT_CA = Path("var/esign/platform-ca.pem")


def _load_revocations(path: Path) -> dict[int, datetime]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    revoked = {}
    for serial, when in raw.items():
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is None:
            raise SystemExit(f"{path}: revocation time of {serial} has no UTC offset")
        revoked[int(serial, 0)] = moment
    return revoked


def _verify(args: argparse.Namespace) -> int:
    trusted = load_certificates(Path(args.ca).read_bytes())
    revoked = _load_revocations(Path(args.revoked)) if args.revoked else {}
    result = verify_pdf(Path(args.file).read_bytes(), trusted, revoked.get)
    print(result.message)
    print(f"状态：{result.status.value}")
    for label, value in (
        ("证照标识", result.identifier),
        ("签名印章", result.seal_name),
        ("印章所属单位", result.department),
        ("印章证书序列号", f"0x{result.seal_serial:x}" if result.seal_serial is not None else None),
        ("签名时间", result.signed_at.isoformat() if result.signed_at else None),
    ):
        if value:
            print(f"{label}：{value}")
    return 0 if result.valid else 1


def _seal_image(args: argparse.Namespace) -> int:
    Path(args.out).write_bytes(seal_png(args.name, args.type, size=args.size))
    print(args.out)
    return 0


def _glyphs(args: argparse.Namespace) -> int:
    import time

    from esign.fonts import build_glyph_store

    start = time.process_time()
    path = build_glyph_store("serif", Path(args.dir) if args.dir else None)
    print(f"{path} ({path.stat().st_size:,} bytes, {time.process_time() - start:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m esign", description="电子印章与电子证照工具")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="核验已签章的电子证照PDF")
    verify.add_argument("file")
    verify.add_argument("--ca", default=str(DEFAULT_CA), help="受信任的平台根证书 (PEM)")
    verify.add_argument("--revoked", help="已吊销印章列表 (JSON: 序列号 → 吊销时间)")
    verify.set_defaults(run=_verify)
    image = commands.add_parser("seal-image", help="生成印章图片 (PNG)")
    image.add_argument("name", help="单位名称，沿上弧排列")
    image.add_argument("type", help="印章类型，如 行政审批专用章")
    image.add_argument("out")
    image.add_argument("--size", type=int, default=600)
    image.set_defaults(run=_seal_image)
    glyphs = commands.add_parser("glyphs", help="将证照字体的常用字字形一次转换为TrueType并存盘 (GB 2312)")
    glyphs.add_argument("--dir", help="存放目录 (默认: JIANSHEN_CJK_GLYPH_DIR 或 var/esign/glyphs)")
    glyphs.set_defaults(run=_glyphs)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
