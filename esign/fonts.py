"""Finding the CJK fonts at run time (the PDF and the seal image need Simplified Chinese glyphs).

The font is Debian's ``fonts-noto-cjk`` (scripts/install-system-deps.sh installs it), whose files are TrueType/OpenType
collections with CFF outlines; fpdf2 embeds those (via fontTools) and Pillow renders them. Nothing is hard-coded to one
machine: ``JIANSHEN_CJK_FONT_DIR`` may point at a folder holding the Noto CJK files; otherwise fontconfig is asked
(``fc-match``), and last the usual font folders are searched.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
from dataclasses import dataclass

FONT_DIR_ENV = "JIANSHEN_CJK_FONT_DIR"
_SEARCH_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", os.path.expanduser("~/.local/share/fonts"))
# style → (fontconfig pattern, file name stem of the Noto CJK collection)
_STYLES = {
    "serif": ("Noto Serif CJK SC:style=Regular", "NotoSerifCJK-Regular"),
    "serif-bold": ("Noto Serif CJK SC:style=Bold", "NotoSerifCJK-Bold"),
    "sans": ("Noto Sans CJK SC:style=Regular", "NotoSansCJK-Regular"),
    "sans-bold": ("Noto Sans CJK SC:style=Bold", "NotoSansCJK-Bold"),
}


class FontNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class FontFace:
    path: str
    index: int  # face number inside a .ttc/.otc collection (0 for a single font)


@functools.cache
def cjk_font(style: str = "serif") -> FontFace:
    """The Simplified Chinese face of ``style`` (serif, serif-bold, sans, sans-bold); raises ``FontNotFound``."""
    pattern, stem = _STYLES[style]
    configured = os.environ.get(FONT_DIR_ENV)
    if configured:
        face = _find_in_dirs([configured], stem)
        if face is None:
            raise FontNotFound(f"{FONT_DIR_ENV}={configured} holds no {stem}.ttc/.otf")
        return face
    face = _fc_match(pattern, stem) or _find_in_dirs(_SEARCH_DIRS, stem)
    if face is None:
        raise FontNotFound(f"no {pattern} font found: install fonts-noto-cjk (scripts/install-system-deps.sh)")
    return face


def _fc_match(pattern: str, stem: str) -> FontFace | None:
    if shutil.which("fc-match") is None:
        return None
    try:
        out = subprocess.run(
            ["fc-match", "-f", "%{file}\n%{index}", pattern], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    path, _, index = out.partition("\n")
    # fc-match always answers something (its best fallback, maybe a Latin font): accept only the file asked for.
    if os.path.basename(path).startswith(stem) and os.path.isfile(path):
        return FontFace(path, int(index or 0))
    return None


def _find_in_dirs(dirs, stem: str) -> FontFace | None:
    for d in dirs:
        for ext in ("ttc", "otc", "otf", "ttf"):
            for path in sorted(glob.glob(os.path.join(d, "**", f"{stem}.{ext}"), recursive=True)):
                return FontFace(path, _simplified_chinese_index(path))
    return None


def _simplified_chinese_index(path: str) -> int:
    """The face of a collection whose family name ends in " SC" (Noto CJK collections hold JP, KR, SC, TC, HK)."""
    if not path.endswith((".ttc", ".otc")):
        return 0
    from fontTools.ttLib import TTCollection

    with TTCollection(path, lazy=True) as collection:
        for i, font in enumerate(collection.fonts):
            if font["name"].getDebugName(1).endswith(" SC"):
                return i
    return 0
