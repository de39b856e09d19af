"""Finding the CJK fonts at run time (the PDF and the seal image need Simplified Chinese glyphs).

The font is Debian's ``fonts-noto-cjk`` (scripts/install-system-deps.sh installs it), whose files are OpenType
collections with CFF outlines; Pillow renders them (seal images), and the certificate PDF embeds the glyphs it prints
converted to TrueType outlines (``TrueTypeFace`` below: subsetting the CFF face for each PDF was ~0.4 s of CPU). Nothing is hard-coded to one
machine: ``JIANSHEN_CJK_FONT_DIR`` may point at a folder holding the Noto CJK files; otherwise fontconfig is asked
(``fc-match``), and last the usual font folders are searched.
"""

from __future__ import annotations

import functools
import array
import glob
import io
import os
import shutil
import subprocess
import sys
import threading
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


# -- the embedded font: the face's glyphs as TrueType outlines, only those a document draws ----------------------------
#
# Subsetting the CFF face for every certificate costs ~0.4 s of CPU: fontTools parses the 65,535-glyph face's metrics
# and cmap, then runs every used glyph's charstring through its Python interpreter twice (closure, unused subroutines).
# Instead the face is opened once per process, each glyph the certificates draw is converted once to a TrueType
# outline (cubic → quadratic curves within 1/1000 em, the advance widths unchanged) and kept, and each certificate
# gets a small TrueType font of just its characters, whose subsetting by fpdf2 is cheap (glyf glyphs are copied, not
# interpreted). Same glyphs, same widths, same layout; the PDF's font is "CID TrueType" instead of "CID Type 0C".

CURVE_TOLERANCE = 1.0  # font units (1/1000 em): the largest distance of a quadratic approximation from the CFF curve
GLYPH_CACHE_SIZE = 8192  # converted glyphs kept per face (~0.5 KB each); least recently used out first


class TrueTypeFace:
    """One CJK face, giving small TrueType fonts of chosen characters. Thread-safe (renders run in worker threads)."""

    def __init__(self, face: FontFace, *, cache_size: int = GLYPH_CACHE_SIZE) -> None:
        from collections import OrderedDict

        from fontTools.cffLib import CFFFontSet
        from fontTools.ttLib import TTFont

        self.face = face
        self._lock = threading.Lock()
        src = TTFont(face.path, fontNumber=face.index, lazy=True, recalcTimestamp=False)
        # Kept lean (~8 MB for 65,535 glyphs): the CFF table is read from the file as charstrings are needed (fontTools'
        # Index objects seek and read) instead of from a 22 MB copy in memory; the cmap is kept as code point → glyph
        # id and the advances as an array, read from the raw hmtx (fontTools' hmtx and glyph-name dicts are ~30 MB).
        entry = src.reader.tables["CFF "]
        self._file = open(face.path, "rb")  # noqa: SIM115 - open for the face's (the process's) lifetime
        cff = CFFFontSet()
        cff.decompile(_Window(self._file, entry.offset, entry.length), src, isCFF2=False)
        top = cff.topDictIndex[0]
        self._charset = top.charset  # glyph id → the CFF glyph name
        self._charstrings = top.CharStrings
        src.setGlyphOrder(self._charset)  # the cmap's names come from it (not from fontTools' own CFF load)
        gid = {name: i for i, name in enumerate(self._charset)}
        self._cmap: dict[int, int] = {cp: gid[name] for cp, name in src.getBestCmap().items()}
        del gid
        long_metrics = src["hhea"].numberOfHMetrics
        pairs = array.array("H", src.reader["hmtx"][: 4 * long_metrics])  # (advance, lsb) big-endian pairs
        if sys.byteorder == "little":
            pairs.byteswap()
        advances = pairs[0::2]
        advances.extend([advances[-1]] * (len(self._charset) - long_metrics))  # the last advance repeats (hmtx spec)
        self._advances = advances
        self._tables = {
            "upem": src["head"].unitsPerEm,
            "head_box": (src["head"].xMin, src["head"].yMin, src["head"].xMax, src["head"].yMax),
            "head_dates": (src["head"].created, src["head"].modified, src["head"].fontRevision),
            "hhea": (src["hhea"].ascent, src["hhea"].descent, src["hhea"].lineGap),
            "os2": {
                name: getattr(src["OS/2"], name)
                for name in ("usWeightClass", "usWidthClass", "fsType", "sTypoAscender", "sTypoDescender",
                             "sTypoLineGap", "usWinAscent", "usWinDescent", "sxHeight", "sCapHeight",
                             "yStrikeoutSize", "yStrikeoutPosition", "ulCodePageRange1", "ulCodePageRange2",
                             "ulUnicodeRange1", "ulUnicodeRange2", "ulUnicodeRange3", "ulUnicodeRange4")
                if hasattr(src["OS/2"], name)
            },
            "post": (src["post"].italicAngle, src["post"].underlinePosition, src["post"].underlineThickness,
                     src["post"].isFixedPitch),
            "names": {nid: src["name"].getDebugName(nid) for nid in (0, 1, 2, 3, 4, 5, 6, 7, 13, 14)},
        }
        src.close()
        # glyph id → (glyf bytes, xMin, points, contours)
        self._cache: OrderedDict[int, tuple[bytes, int, int, int]] = OrderedDict()
        self._cache_size = cache_size
        self.conversions = 0  # glyphs converted so far (what the cache saved shows in tests and benches)

    def glyph_id(self, char: str) -> int | None:
        return self._cmap.get(ord(char))

    def advance(self, char: str) -> int:
        """The advance width of ``char`` in font units (the face's hmtx)."""
        return self._advances[self._cmap[ord(char)]]

    def has(self, char: str) -> bool:
        return ord(char) in self._cmap

    def font_for(self, chars: set[str] | str) -> bytes:
        """A TrueType font (bytes) holding .notdef and the glyphs of ``chars`` the face has (others are left out)."""
        from fontTools.fontBuilder import FontBuilder
        from fontTools.ttLib import newTable
        from fontTools.ttLib.tables._g_l_y_f import Glyph

        codepoints = sorted({ord(c) for c in chars} & self._cmap.keys())
        gids = [0] + sorted({self._cmap[cp] for cp in codepoints} - {0})
        with self._lock:
            outlines = {g: self._outline(g) for g in gids}
        names = [".notdef"] + [f"g{g}" for g in gids[1:]]
        name_of = dict(zip(gids, names))
        t = self._tables
        fb = FontBuilder(t["upem"], isTTF=True)
        fb.setupGlyphOrder(names)
        fb.setupCharacterMap({cp: name_of[self._cmap[cp]] for cp in codepoints})
        # FontBuilder.setupGlyf would decompile each glyph to check it: these are compiled quadratic outlines already.
        fb.font["loca"], fb.font["glyf"] = newTable("loca"), newTable("glyf")
        fb.font["glyf"].glyphs = {name_of[g]: Glyph(o[0]) for g, o in outlines.items()}
        fb.font["glyf"].glyphOrder = names
        fb.setupHorizontalMetrics({name_of[g]: (self._advances[g], outlines[g][1]) for g in gids})
        ascent, descent, line_gap = t["hhea"]
        fb.setupHorizontalHeader(ascent=ascent, descent=descent, lineGap=line_gap,
                                 advanceWidthMax=max(self._advances[g] for g in gids))
        names_table = {k: v for k, v in t["names"].items() if v}
        fb.setupNameTable({
            "copyright": names_table.get(0, ""), "familyName": names_table.get(1, ""),
            "styleName": names_table.get(2, "Regular"), "uniqueFontIdentifier": names_table.get(3, ""),
            "fullName": names_table.get(4, ""), "version": names_table.get(5, ""),
            "psName": names_table.get(6, ""), "trademark": names_table.get(7, ""),
            "licenseDescription": names_table.get(13, ""), "licenseInfoURL": names_table.get(14, ""),
        })
        fb.setupOS2(**t["os2"])
        italic, underline_position, underline_thickness, fixed = t["post"]
        fb.setupPost(keepGlyphNames=False, italicAngle=italic, underlinePosition=underline_position,
                     underlineThickness=underline_thickness, isFixedPitch=fixed)
        fb.setupMaxp()
        maxp = fb.font["maxp"]
        maxp.maxPoints = max(o[2] for o in outlines.values())
        maxp.maxContours = max(o[3] for o in outlines.values())
        created, modified, revision = t["head_dates"]
        fb.setupHead(unitsPerEm=t["upem"], created=created, modified=modified, fontRevision=revision)
        head = fb.font["head"]
        head.xMin, head.yMin, head.xMax, head.yMax = t["head_box"]  # the face's box, as the CFF embedding had
        # Nothing recomputed from the outlines at save (that would decompile every glyph): maxp's counts are set above
        # from the cache, the box is the face's.
        fb.font.recalcBBoxes = False
        out = io.BytesIO()
        fb.save(out)
        return out.getvalue()

    def _outline(self, gid: int) -> tuple[bytes, int, int, int]:
        """The glyph's TrueType outline: glyf bytes, xMin (the left side bearing), points, contours. Under the lock."""
        cached = self._cache.get(gid)
        if cached is not None:
            self._cache.move_to_end(gid)
            return cached
        from fontTools.pens.cu2quPen import Cu2QuPen
        from fontTools.pens.ttGlyphPen import TTGlyphPen

        pen = TTGlyphPen(None)
        charstring, _ = self._charstrings.getItemAndSelector(self._charset[gid])
        # CFF contours run counter-clockwise, TrueType's clockwise: reversed so that the fill rule draws the same.
        charstring.draw(Cu2QuPen(pen, CURVE_TOLERANCE, reverse_direction=True))
        if self._charstrings.charStringsAreIndexed:  # fontTools keeps each decompiled charstring: not for 65k glyphs
            self._charstrings.charStringsIndex.items[self._charstrings.charStrings[self._charset[gid]]] = None
        glyph = pen.glyph()
        contours = max(glyph.numberOfContours, 0)
        if contours:
            glyph.recalcBounds(None)
        x_min = glyph.xMin if contours else 0
        points = len(glyph.coordinates) if contours else 0
        entry = (glyph.compile(None, recalcBBoxes=False), x_min, points, contours)
        self.conversions += 1
        self._cache[gid] = entry
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry


class _Window:
    """A read-only file view of ``length`` bytes at ``offset`` of ``file``: one table of a font collection."""

    def __init__(self, file, offset: int, length: int) -> None:
        self._file, self._offset, self._length = file, offset, length
        self._position = 0

    def seek(self, position: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self._length}[whence]
        self._position = base + position
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        end = self._length if size is None or size < 0 else min(self._length, self._position + size)
        self._file.seek(self._offset + self._position)
        data = self._file.read(max(0, end - self._position))
        self._position += len(data)
        return data


_faces: dict[str, TrueTypeFace] = {}
_faces_lock = threading.Lock()


def truetype_face(style: str = "serif") -> TrueTypeFace:
    """The process's ``TrueTypeFace`` of ``style``, opened on first use (~0.3 s, ~8 MB) by one thread only."""
    face = _faces.get(style)
    if face is None:
        with _faces_lock:
            face = _faces.get(style)
            if face is None:
                face = _faces[style] = TrueTypeFace(cjk_font(style))
    return face
