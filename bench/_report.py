"""What every benchmark writes with its figures: the machine, and its own marked section of docs/PERFORMANCE.md.

Shared by the bench/*.py scripts.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

PERFORMANCE_MD = Path(__file__).resolve().parent.parent / "docs" / "PERFORMANCE.md"


def machine() -> str:
    """``2 cores (Intel(R) Xeon(R) …), Python 3.11.7``: the figures mean nothing without it."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def write_section(begin: str, end: str, text: str, path: Path = PERFORMANCE_MD) -> None:
    """Replace what stands between the markers ``begin`` and ``end``; other sections (other people's) stay as they are."""
    current = path.read_text(encoding="utf-8")
    if begin not in current or end not in current:
        raise SystemExit(f"{path} lacks the markers {begin} … {end}")
    before, rest = current.split(begin, 1)
    _, after = rest.split(end, 1)
    path.write_text(f"{before}{begin}\n{text}{end}{after}", encoding="utf-8")
