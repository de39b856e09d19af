"""Finding the CJK fonts at run time (the PDF and the seal image need Simplified Chinese glyphs).

The font is Debian's ``fonts-noto-cjk`` (scripts/install-system-deps.sh installs it), whose files are OpenType
collections with CFF outlines; Pillow renders them (seal images), and the certificate PDF embeds the glyphs it prints
converted to TrueType outlines (``TrueTypeFace`` below: subsetting the CFF face for each PDF was ~0.4 s of CPU). Nothing is hard-coded to one
machine: ``JIANSHEN_CJK_FONT_DIR`` may point at a folder holding the Noto CJK files; otherwise fontconfig is asked
(``fc-match``), and last the usual font folders are searched.
"""

from __future__ import annotations

import array
import bisect
import functools
import glob
import hashlib
import io
import mmap
import os
import struct
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

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
    """One CJK face, giving small TrueType fonts of chosen characters. Thread-safe (renders run in worker threads).

    With a glyph store (``GlyphStore``) the face's CFF table is not opened at all while every character asked for is
    in the store: the store carries, besides the converted outlines, the cmap of its characters, their advance widths
    and the face's metrics the TrueType font is built with. The CFF face (~20–30 MB in a process: its charset, cmap and
    advances for 65,535 glyphs) is opened the first time a character outside the store is asked about.
    """

    def __init__(self, face: FontFace, *, cache_size: int = GLYPH_CACHE_SIZE, store: GlyphStore | None = None) -> None:
        from collections import OrderedDict

        self.face = face
        self._lock = threading.Lock()
        self._source_lock = threading.Lock()
        self._source: _CffSource | None = None
        # glyph id → (glyf bytes, xMin, points, contours)
        self._cache: OrderedDict[int, tuple[bytes, int, int, int]] = OrderedDict()
        self._cache_size = cache_size
        self._store = store  # the glyphs converted once per machine (``GlyphStore``), read before converting
        self.conversions = 0  # glyphs converted so far (what the cache saved shows in tests and benches)

    @property
    def source_opened(self) -> bool:
        """Whether this face has opened the CFF face (a character outside its store, or no store)."""
        return self._source is not None

    def _cff(self) -> _CffSource:
        source = self._source
        if source is None:
            with self._source_lock:
                source = self._source
                if source is None:
                    source = self._source = _CffSource(self.face)
        return source

    def glyph_id(self, char: str) -> int | None:
        cp = ord(char)
        if self._store is not None:
            covered, gid = self._store.lookup(cp)
            if covered:
                return gid
        return self._cff().cmap.get(cp)

    def _advance(self, gid: int) -> int:
        stored = self._store.advance(gid) if self._store is not None else None
        return self._cff().advances[gid] if stored is None else stored

    def advance(self, char: str) -> int:
        """The advance width of ``char`` in font units (the face's hmtx); ``KeyError`` if the face lacks it."""
        gid = self.glyph_id(char)
        if gid is None:
            raise KeyError(char)
        return self._advance(gid)

    def has(self, char: str) -> bool:
        return self.glyph_id(char) is not None

    def font_for(self, chars: set[str] | str) -> bytes:
        """A TrueType font (bytes) holding .notdef and the glyphs of ``chars`` the face has (others are left out)."""
        from fontTools.fontBuilder import FontBuilder
        from fontTools.ttLib import newTable
        from fontTools.ttLib.tables._g_l_y_f import Glyph

        gid_of = {ord(c): g for c in set(chars) if (g := self.glyph_id(c)) is not None}
        codepoints = sorted(gid_of)
        gids = [0] + sorted(set(gid_of.values()) - {0})
        with self._lock:
            outlines = {g: self._outline(g) for g in gids}
        advances = {g: self._advance(g) for g in gids}
        names = [".notdef"] + [f"g{g}" for g in gids[1:]]
        name_of = dict(zip(gids, names))
        t = self._store.tables if self._store is not None else self._cff().tables
        fb = FontBuilder(t["upem"], isTTF=True)
        fb.setupGlyphOrder(names)
        fb.setupCharacterMap({cp: name_of[gid_of[cp]] for cp in codepoints})
        # FontBuilder.setupGlyf would decompile each glyph to check it: these are compiled quadratic outlines already.
        fb.font["loca"], fb.font["glyf"] = newTable("loca"), newTable("glyf")
        fb.font["glyf"].glyphs = {name_of[g]: Glyph(o[0]) for g, o in outlines.items()}
        fb.font["glyf"].glyphOrder = names
        fb.setupHorizontalMetrics({name_of[g]: (advances[g], outlines[g][1]) for g in gids})
        ascent, descent, line_gap = t["hhea"]
        fb.setupHorizontalHeader(ascent=ascent, descent=descent, lineGap=line_gap,
                                 advanceWidthMax=max(advances.values()))
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
        # A stored glyph is read from the map each time (a bisection and a slice): keeping it in the cache too
        # would copy the store into the process's heap, ~4 MB over a few thousand different characters.
        stored = self._store.get(gid) if self._store is not None else None
        if stored is not None:
            return stored
        cached = self._cache.get(gid)
        if cached is not None:
            self._cache.move_to_end(gid)
            return cached
        return self._keep(gid, self.convert(gid))

    def _keep(self, gid: int, entry: tuple[bytes, int, int, int]) -> tuple[bytes, int, int, int]:
        self._cache[gid] = entry
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry

    def convert(self, gid: int) -> tuple[bytes, int, int, int]:
        """The glyph converted from the CFF charstring now (no cache): glyf bytes, xMin, points, contours."""
        from fontTools.pens.cu2quPen import Cu2QuPen
        from fontTools.pens.ttGlyphPen import TTGlyphPen

        source = self._cff()
        pen = TTGlyphPen(None)
        charstrings, name = source.charstrings, source.charset[gid]
        charstring, _ = charstrings.getItemAndSelector(name)
        # CFF contours run counter-clockwise, TrueType's clockwise: reversed so that the fill rule draws the same.
        charstring.draw(Cu2QuPen(pen, CURVE_TOLERANCE, reverse_direction=True))
        if charstrings.charStringsAreIndexed:  # fontTools keeps each decompiled charstring: not for 65k glyphs
            charstrings.charStringsIndex.items[charstrings.charStrings[name]] = None
        glyph = pen.glyph()
        contours = max(glyph.numberOfContours, 0)
        if contours:
            glyph.recalcBounds(None)
        x_min = glyph.xMin if contours else 0
        points = len(glyph.coordinates) if contours else 0
        self.conversions += 1
        return glyph.compile(None, recalcBBoxes=False), x_min, points, contours


class _CffSource:
    """What the CFF face gives: the cmap, the advances, the metrics and the charstrings to convert (~20–30 MB opened)."""

    def __init__(self, face: FontFace) -> None:
        from fontTools.cffLib import CFFFontSet
        from fontTools.ttLib import TTFont

        src = TTFont(face.path, fontNumber=face.index, lazy=True, recalcTimestamp=False)
        # Kept lean (~8 MB for 65,535 glyphs): the CFF table is read from the file as charstrings are needed (fontTools'
        # Index objects seek and read) instead of from a 22 MB copy in memory; the cmap is kept as code point → glyph
        # id and the advances as an array, read from the raw hmtx (fontTools' hmtx and glyph-name dicts are ~30 MB).
        entry = src.reader.tables["CFF "]
        self.file = open(face.path, "rb")  # noqa: SIM115 - open for the face's (the process's) lifetime
        cff = CFFFontSet()
        cff.decompile(_Window(self.file, entry.offset, entry.length), src, isCFF2=False)
        top = cff.topDictIndex[0]
        self.charset = top.charset  # glyph id → the CFF glyph name
        self.charstrings = top.CharStrings
        src.setGlyphOrder(self.charset)  # the cmap's names come from it (not from fontTools' own CFF load)
        gid = {name: i for i, name in enumerate(self.charset)}
        self.cmap: dict[int, int] = {cp: gid[name] for cp, name in src.getBestCmap().items()}
        del gid
        long_metrics = src["hhea"].numberOfHMetrics
        pairs = array.array("H", src.reader["hmtx"][: 4 * long_metrics])  # (advance, lsb) big-endian pairs
        if sys.byteorder == "little":
            pairs.byteswap()
        advances = pairs[0::2]
        advances.extend([advances[-1]] * (len(self.charset) - long_metrics))  # the last advance repeats (hmtx spec)
        self.advances = advances
        self.tables = {
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


# -- the converted glyphs kept on disk, once per machine -------------------------------------------------------------
#
# Converting a glyph costs ~1 ms of CPU (fontTools' Python charstring interpreter, then cu2qu): a quarter of a
# certificate whose holder, address and people bring new characters. ``python -m esign glyphs`` (run by ``make
# install`` and ``python -m api migrate``) converts the characters of GB 2312 (7,445: the 6,763 hanzi and the symbols)
# with ASCII, Latin-1, the general punctuation and the CJK and full-width punctuation (7,698 characters, 7,671 glyphs)
# once, ~8 s, into a file of ~3 MB under JIANSHEN_CJK_GLYPH_DIR; each process maps it and reads a glyph's bytes instead
# of converting. The file also carries the cmap of those characters, their advance widths and the face's metrics, so
# that a process whose certificates print only stored characters never opens the CFF face (~20–30 MB). The file is keyed
# by the source font's SHA-256, the face index, the curve tolerance, fontTools' version, the file's format and the
# character set, so a changed font or converter is never served stale glyphs: its file is simply not found. A
# character outside the file, or no file at all, is converted as before (the result is the same bytes either way).

GLYPH_DIR_ENV = "JIANSHEN_CJK_GLYPH_DIR"
DEFAULT_GLYPH_DIR = "var/esign/glyphs"
_STORE_MAGIC = b"JSGLYPH2"
# magic, key (SHA-256 of what decides the bytes), glyph count, character count, length of the face's metrics
_STORE_HEADER = struct.Struct("<8s32sIII")
# Then: the glyph ids (uint32, ascending); per glyph: offset (from the data's start), length, xMin, points, contours,
# advance width; the code points of the store's characters (uint32, ascending); their glyph ids (``_NO_GLYPH``: the
# face has none); the face's metrics (``repr`` of a dict of numbers and strings); the glyf data.
_STORE_ENTRY = struct.Struct("<IIhHHH")
_NO_GLYPH = 0xFFFFFFFF
def glyph_dir() -> Path:
    return Path(os.environ.get(GLYPH_DIR_ENV) or DEFAULT_GLYPH_DIR)


@functools.cache
def store_characters() -> str:
    """What a glyph store holds: GB 2312 (levels 1 and 2 and its symbols), ASCII, Latin-1 (¥, ·, …), the general
    punctuation (— the certificate's empty field, ‰, …), CJK and full-width punctuation. A printed character outside
    it makes the process open the CFF face (~20–30 MB), so the page's own characters must all be here (a test checks)."""
    chars = [chr(cp) for cp in range(0x20, 0x7F)] + [chr(cp) for cp in range(0xA0, 0x100)]
    chars += [chr(cp) for cp in range(0x2010, 0x2040)] + [chr(cp) for cp in range(0x3000, 0x3040)]
    chars += [chr(cp) for cp in range(0xFF01, 0xFF5F)]
    for row in range(0xA1, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.append(bytes((row, cell)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return "".join(dict.fromkeys(chars))


@functools.cache
def _font_digest(path: str) -> bytes:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


def store_key(face: FontFace) -> bytes:
    """The SHA-256 of everything that decides a store's content: the font file, the face, the converter, the file's
    format and the characters a machine's store holds (a store made before they changed is rebuilt by ``migrate``)."""
    import fontTools

    return hashlib.sha256(
        b"|".join([_font_digest(face.path), str(face.index).encode(), repr(CURVE_TOLERANCE).encode(),
                   fontTools.version.encode(), _STORE_MAGIC, hashlib.sha256(store_characters().encode()).digest()])
    ).digest()


def store_path(face: FontFace, directory: Path | None = None) -> Path:
    stem = Path(face.path).name.split(".")[0]
    return (directory or glyph_dir()) / f"{stem}-{face.index}-{store_key(face).hex()[:16]}.glyphs"


class GlyphStore:
    """A file of converted glyphs (``build_glyph_store``), memory-mapped: glyph id → (glyf bytes, xMin, points,
    contours), as ``TrueTypeFace.convert`` gives them, and what ``TrueTypeFace`` needs of the face for them (the cmap
    of the store's characters, the advance widths, the face's metrics), so that the CFF face need not be opened.

    The index is two sorted arrays (glyph ids, code points) searched by bisection and the entries read from the map:
    ~60 KB per process instead of ~4 MB of Python dicts and tuples.
    """

    def __init__(self, data: mmap.mmap, gids: array.array, entries: int, codepoints: array.array,
                 cmap_gids: array.array, tables: dict, start: int) -> None:
        self._data, self._gids, self._entries = data, gids, entries
        self._codepoints, self._cmap_gids = codepoints, cmap_gids
        self.tables, self._start = tables, start

    @classmethod
    def open(cls, path: Path, key: bytes) -> GlyphStore | None:
        """The store at ``path`` if it is one, whole, for ``key``; otherwise ``None`` (the glyphs are converted)."""
        import ast

        try:
            with open(path, "rb") as f:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # missing, unreadable, empty
            return None
        try:
            magic, stored_key, count, chars, tables_length = _STORE_HEADER.unpack_from(data, 0)
            if magic != _STORE_MAGIC or stored_key != key:
                raise ValueError
            gids = _uint32s(data, _STORE_HEADER.size, count)
            entries = _STORE_HEADER.size + 4 * count
            codepoints = _uint32s(data, entries + count * _STORE_ENTRY.size, chars)
            cmap_gids = _uint32s(data, entries + count * _STORE_ENTRY.size + 4 * chars, chars)
            tables_at = entries + count * _STORE_ENTRY.size + 8 * chars
            tables = ast.literal_eval(bytes(data[tables_at:tables_at + tables_length]).decode())
            start = tables_at + tables_length
            if not isinstance(tables, dict) or start > len(data):
                raise ValueError
            for i in range(count):
                offset, length = _STORE_ENTRY.unpack_from(data, entries + i * _STORE_ENTRY.size)[:2]
                if start + offset + length > len(data):
                    raise ValueError
        except (struct.error, ValueError, SyntaxError, UnicodeDecodeError, MemoryError):  # truncated or not ours
            data.close()
            return None
        return cls(data, gids, entries, codepoints, cmap_gids, tables, start)

    def __len__(self) -> int:
        return len(self._gids)

    def _entry(self, gid: int) -> tuple[int, int, int, int, int, int] | None:
        i = bisect.bisect_left(self._gids, gid)
        if i == len(self._gids) or self._gids[i] != gid:
            return None
        return _STORE_ENTRY.unpack_from(self._data, self._entries + i * _STORE_ENTRY.size)

    def get(self, gid: int) -> tuple[bytes, int, int, int] | None:
        entry = self._entry(gid)
        if entry is None:
            return None
        offset, length, x_min, points, contours, _ = entry
        offset += self._start
        return self._data[offset:offset + length], x_min, points, contours

    def advance(self, gid: int) -> int | None:
        entry = self._entry(gid)
        return None if entry is None else entry[5]

    def lookup(self, codepoint: int) -> tuple[bool, int | None]:
        """(whether the store was made for this character, the face's glyph id of it or ``None``)."""
        i = bisect.bisect_left(self._codepoints, codepoint)
        if i == len(self._codepoints) or self._codepoints[i] != codepoint:
            return False, None
        gid = self._cmap_gids[i]
        return True, (None if gid == _NO_GLYPH else gid)


def _uint32s(data, offset: int, count: int) -> array.array:
    if offset + 4 * count > len(data):
        raise ValueError
    values = array.array("I", data[offset:offset + 4 * count])
    if sys.byteorder == "big":
        values.byteswap()
    return values


def build_glyph_store(style: str = "serif", directory: Path | None = None, chars: str | None = None) -> Path:
    """Convert ``chars`` (default ``store_characters()``) of the face once and write the store (atomically); an
    existing store of the same key is kept. Returns its path."""
    face = cjk_font(style)
    path = store_path(face, directory)
    if GlyphStore.open(path, store_key(face)) is not None:
        return path
    converter = TrueTypeFace(face, cache_size=0)
    source = converter._cff()  # noqa: SLF001 - the face itself: what the store is made of
    codepoints = sorted({ord(c) for c in (chars or store_characters())})
    cmap_gids = [source.cmap.get(cp, _NO_GLYPH) for cp in codepoints]
    gids = sorted({0} | set(cmap_gids) - {_NO_GLYPH})
    entries, blobs, offset = [], [], 0
    for gid in gids:
        glyf, x_min, points, contours = converter.convert(gid)
        entries.append(_STORE_ENTRY.pack(offset, len(glyf), x_min, points, contours, source.advances[gid]))
        blobs.append(glyf)
        offset += len(glyf)
    tables = repr(source.tables).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # per writer
    tmp.write_bytes(b"".join([
        _STORE_HEADER.pack(_STORE_MAGIC, store_key(face), len(gids), len(codepoints), len(tables)),
        struct.pack(f"<{len(gids)}I", *gids), *entries, struct.pack(f"<{len(codepoints)}I", *codepoints),
        struct.pack(f"<{len(codepoints)}I", *cmap_gids), tables, *blobs,
    ]))
    os.replace(tmp, path)
    for old in path.parent.glob(f"{path.name.rsplit('-', 1)[0]}-*.glyphs"):  # the same face's stores of other keys
        if old != path:
            old.unlink(missing_ok=True)
    return path


_faces: dict[str, TrueTypeFace] = {}
_faces_lock = threading.Lock()


def truetype_face(style: str = "serif") -> TrueTypeFace:
    """The process's ``TrueTypeFace`` of ``style``, made on first use by one thread only, with the machine's glyph
    store when there is one (then the CFF face is opened, ~0.3 s and ~20–30 MB, only for a character outside it)."""
    face = _faces.get(style)
    if face is None:
        with _faces_lock:
            face = _faces.get(style)
            if face is None:
                font = cjk_font(style)
                store = GlyphStore.open(store_path(font), store_key(font))
                face = _faces[style] = TrueTypeFace(font, store=store)
    return face
