"""The certificate PDF (电子证照版式文件): A4, Chinese, laid out like the paper licence (DOMAIN.md §6).

Rendered with fpdf2; the text is set in Noto Serif CJK SC (Debian's ``fonts-noto-cjk``), embedded as a small TrueType
font of the glyphs the page prints (``esign.fonts.TrueTypeFace``: cheap to subset, unlike the CFF face). The caller
gives the fields in the order the paper licence prints them; this module draws the frame, the title, the table of
fields, the issuing authority line (where the seal goes — its box is returned for the signature's appearance), the QR
code of the public verification page, and the identifier with its check code. The identifier is also put in the
document information (``/Keywords``) so a verifier can read back which certificate a PDF claims to be.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Sequence

import qrcode
from fpdf import FPDF
from fpdf.enums import TableCellStyle
from fpdf.fonts import FontFace
from fpdf.line_break import BREAKING_SPACE_SYMBOLS_STR
from fpdf.util import FloatTolerance

from esign.fonts import cjk_font, truetype_face
from esign.qr import qr_matrix

A4_WIDTH_MM, A4_HEIGHT_MM = 210.0, 297.0
MM = 72 / 25.4  # PDF points per millimetre
SEAL_DIAMETER_MM = 42.0  # GA 241: a round official seal of a government department is 42 mm
FRAME_COLOR = (168, 40, 30)
INK = (20, 20, 20)
LABEL_WIDTH_MM, VALUE_WIDTH_MM = 38.0, 136.0
CELL_FILL = (251, 246, 240)  # the values' column
TABLE_BOTTOM_MM = 210.0  # below: issuing authority, seal and QR code (~45 mm), then the footer from 262 mm
_IDENTIFIER_IN_KEYWORDS = re.compile(r"1\.2\.156\.3005\.2\.[0-9A-Z.]+")


@dataclass(frozen=True)
class CertificateDocument:
    """What is printed. ``fields`` are (label, value) pairs in print order, e.g. ("建设单位", "珠海市某某公司")."""

    title: str  # 建筑工程施工许可证
    licence_number: str  # 证照编号 (the department's number)
    identifier: str  # 证照标识
    check_code: str  # printed as ABCD-2345
    issuer_name: str  # 颁发机构 / 发证机关
    issue_date: date
    verify_url: str  # the public verification page; the QR code points here
    fields: Sequence[tuple[str, str]] = ()
    header: str = "中华人民共和国"
    statement: str = ""  # e.g. 根据《中华人民共和国建筑法》第八条规定，经审查，本建筑工程符合施工条件，准予施工。
    notes: Sequence[str] = field(default_factory=tuple)  # 注意事项, printed small at the bottom


@dataclass(frozen=True)
class RenderedCertificate:
    pdf: bytes
    seal_box: tuple[float, float, float, float]  # where the seal goes: PDF points, origin bottom-left, page 0


def identifier_from_keywords(keywords: str | None) -> str | None:
    """The 证照标识 that ``render_certificate`` wrote into ``/Keywords`` (``None`` if absent)."""
    match = _IDENTIFIER_IN_KEYWORDS.search(keywords or "")
    return match.group(0) if match else None


# Every character the layout below prints besides the document's own text (labels, punctuation, the spacing, the
# issue date's digits, the check code's hyphen). Not the whole of ASCII: each glyph more in the certificate's font is
# built, parsed and subset again for nothing (~50 of ~275 glyphs, ~4 ms); a character missed here would make the page
# render from the CFF face (slow, never wrong), which tests/esign/test_table.py checks does not happen.
_TEMPLATE_TEXT = "编号：发证机关日期年月扫码核验真伪证照标识校验码地址注意事项；。—　 -0123456789"


def document_characters(doc: CertificateDocument) -> set[str]:
    """The characters ``render_certificate`` can print for ``doc`` (a superset: the embedded font holds these)."""
    texts = [doc.title, doc.licence_number, doc.identifier, doc.check_code, doc.issuer_name, doc.verify_url,
             doc.header, doc.statement, *doc.notes, *(text for pair in doc.fields for text in pair), _TEMPLATE_TEXT]
    return set("".join(texts))


def render_certificate(doc: CertificateDocument, *, characters: set[str] | None = None) -> RenderedCertificate:
    """The certificate PDF, its font the TrueType glyphs of just the characters it prints (``TrueTypeFace``):
    ``characters``, by default ``document_characters(doc)``.

    Should a character be missing from that font while the face has it (the character set missed something), the
    page is rendered again from the face's CFF font itself: slower, never wrong.
    """
    face = truetype_face("serif")
    with tempfile.NamedTemporaryFile(prefix="cjk-", suffix=".ttf") as font_file:
        font_file.write(face.font_for(document_characters(doc) if characters is None else characters))
        font_file.flush()
        rendered, missing = _render(doc, font_file.name, 0)
    if any(face.has(chr(cp)) for cp in missing):
        cff = cjk_font("serif")
        rendered, _ = _render(doc, cff.path, cff.index)
    return rendered


def _render(doc: CertificateDocument, font_path: str, font_index: int) -> tuple[RenderedCertificate, list[int]]:
    """The PDF with the font at ``font_path``, and the code points it lacked."""
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(18, 14, 18)
    pdf.add_font("cjk", fname=font_path, collection_font_number=font_index)
    # The subset keeps the font's bounding box (the face's) instead of recomputing it from every glyph outline: a
    # quarter of the rendering time with the CFF font, and the box only guides viewers' line spacing guesses.
    pdf.fonts["cjk"].ttfont.recalcBBoxes = False
    pdf.set_title(f"{doc.header}{doc.title}")
    pdf.set_subject(f"电子证照 {doc.title} {doc.licence_number}")
    pdf.set_keywords(doc.identifier)
    pdf.set_author(doc.issuer_name)
    pdf.set_creator("建审平台 esign")
    pdf.set_lang("zh-CN")
    pdf.set_creation_date(datetime.combine(doc.issue_date, time(0, 0), tzinfo=timezone.utc))
    pdf.add_page()
    pdf.set_text_color(*INK)

    _frame(pdf)
    pdf.set_font("cjk", size=10.5)
    pdf.set_xy(18, 15)
    pdf.cell(174, 6, f"编号：{doc.licence_number}", align="R")

    pdf.set_font("cjk", size=18)
    pdf.set_xy(18, 24)
    pdf.cell(174, 9, _spaced(doc.header, 1), align="C")
    pdf.set_font("cjk", size=28)
    pdf.set_xy(18, 35)
    pdf.set_char_spacing(1.5)
    pdf.cell(174, 14, doc.title, align="C")
    pdf.set_char_spacing(0)

    y = 55.0
    if doc.statement:
        pdf.set_font("cjk", size=12)
        pdf.set_xy(24, y)
        pdf.multi_cell(162, 7, "　　" + doc.statement, align="J")
        y = pdf.get_y() + 3

    # The table of fields: the largest type size with which it still leaves room for the seal block below.
    size, line_height = _fit_table(pdf, doc.fields, top=y, bottom=TABLE_BOTTOM_MM)
    pdf.set_xy(18, y)
    pdf.set_font("cjk", size=size)
    pdf.set_draw_color(*FRAME_COLOR)
    pdf.set_line_width(0.3)
    _table(pdf, [(_spaced(label, 0) if len(label) > 4 else _spaced(label, 1), value or "—")
                 for label, value in doc.fields], line_height)

    if pdf.get_y() > TABLE_BOTTOM_MM + 1:
        raise ValueError("证照字段过多，无法排入一页A4")

    # Issuing authority and date on the right, the seal pressed over them; the QR code on the left.
    issuer_y = pdf.get_y() + 14
    pdf.set_font("cjk", size=13)
    pdf.set_xy(96, issuer_y)
    pdf.cell(90, 8, f"发证机关：{doc.issuer_name}", align="R")
    pdf.set_xy(96, issuer_y + 10)
    pdf.cell(90, 8, f"发证日期：{doc.issue_date.year}年{doc.issue_date.month}月{doc.issue_date.day}日", align="R")
    seal_cx, seal_cy = 186 - 32, issuer_y + 9
    r = SEAL_DIAMETER_MM / 2
    seal_box = ((seal_cx - r) * MM, (A4_HEIGHT_MM - seal_cy - r) * MM, (seal_cx + r) * MM, (A4_HEIGHT_MM - seal_cy + r) * MM)

    qr_size = 30.0
    _qr(pdf, doc.verify_url, 24, issuer_y - 6, qr_size)
    pdf.set_font("cjk", size=8.5)
    pdf.set_xy(24, issuer_y - 6 + qr_size + 1)
    pdf.cell(qr_size, 4, "扫码核验真伪", align="C")

    # Footer: identifier and check code (typed on the verification page), then the notes.
    pdf.set_draw_color(*FRAME_COLOR)
    pdf.line(18, 262, 192, 262)
    pdf.set_font("cjk", size=9)
    pdf.set_xy(18, 264)
    pdf.cell(174, 5, f"证照标识：{doc.identifier}")
    pdf.set_xy(18, 269)
    pdf.cell(174, 5, f"校验码：{doc.check_code[:4]}-{doc.check_code[4:]}　　核验地址：{_verify_root(doc.verify_url)}")
    if doc.notes:
        pdf.set_font("cjk", size=7.5)
        pdf.set_xy(18, 275)
        pdf.multi_cell(174, 3.6, "注意事项：" + "；".join(n.rstrip("；。") for n in doc.notes) + "。")
    out = bytes(pdf.output())
    return RenderedCertificate(pdf=out, seal_box=seal_box), list(pdf.fonts["cjk"].missing_glyphs)


def _table(pdf: FPDF, rows: Sequence[tuple[str, str]], line_height: float) -> None:
    """The fields' table at the current position, drawn as fpdf2's ``FPDF.table`` draws it with
    ``col_widths=(LABEL_WIDTH_MM, VALUE_WIDTH_MM), text_align=("CENTER", "LEFT"), padding=(0.28 × line height, 2.5),
    cell_fill_mode=COLUMNS, v_align="MIDDLE"`` (what this page used): the same cells, borders, fill and lines of text.

    fpdf2's table lays every cell out twice (``multi_cell`` to measure, then to draw) through per-character width
    calls, ~25 % of a certificate; here each cell's lines are broken once (``_break_lines``, fpdf2's word wrapping over
    its own widths of the font) and each line is one ``cell``. Leaves the position below the table at the left margin.
    """
    x, y = pdf.x, pdf.y
    table_width = LABEL_WIDTH_MM + VALUE_WIDTH_MM
    widths = [w / table_width * table_width for w in (LABEL_WIDTH_MM, VALUE_WIDTH_MM)]  # fpdf2's col_ratio × width
    pad_v, pad_h = line_height * 0.28, 2.5
    aligns = ("C", "L")
    border = TableCellStyle(left=True, bottom=True, right=True, top=True)
    fills = (None, FontFace(fill_color=CELL_FILL).fill_color)  # fpdf2's COLUMNS: the odd columns
    widths_of = pdf.current_font.cw  # fpdf2's widths (1/1000 em) by code point
    scale = pdf.font_size_pt * 0.001 / pdf.k
    c_margin, pdf.c_margin = pdf.c_margin, 0  # fpdf2 ignores the cell margin where there is padding
    try:
        for texts in rows:
            lines = [_break_lines(text, widths_of, scale, w - 2 * pad_h) if text else [] for text, w in zip(texts, widths)]
            heights = [len(cell) * line_height + 2 * pad_v if cell else 0.0 for cell in lines]
            row_height = max(heights) or line_height
            cell_x = x
            for cell, height, w, align, fill in zip(lines, heights, widths, aligns, fills):
                border.draw_cell_border(pdf, cell_x, y, cell_x + w, y + row_height, fill_color=fill)
                top = y + (row_height - height) / 2 + pad_v  # v_align MIDDLE
                for k, line in enumerate(cell):
                    pdf.set_xy(cell_x + pad_h, top + k * line_height)
                    pdf.cell(w - 2 * pad_h, line_height, line, align=align)
                cell_x += w
            y += row_height
    finally:
        pdf.c_margin = c_margin
    pdf.set_xy(pdf.l_margin, y)


def _break_lines(text: str, widths_of, scale: float, max_width: float) -> list[str]:
    """``text`` broken into lines no wider than ``max_width`` as fpdf2's ``multi_cell`` (word wrapping) breaks it:
    at the last breaking space of a line that overflows (the space dropped), else before the character that
    overflows; a newline ends a line. ``widths_of``: the font's widths by code point, ``scale``: to document units."""
    lines: list[str] = []
    line: list[str] = []
    width = 0.0
    space = None  # (index in line, index in text) of the line's last breaking space
    i = 0
    text = text.replace("\r", "")
    while i < len(text):
        char = text[i]
        if char == "\n":
            lines.append("".join(line))
            line, width, space = [], 0.0, None
            i += 1
            continue
        char_width = widths_of[ord(char)] * scale
        if width + char_width - max_width > FloatTolerance.TOLERANCE:
            if char in BREAKING_SPACE_SYMBOLS_STR:  # an overflowing space is dropped
                lines.append("".join(line))
                i += 1
            elif space is not None:  # back to the last space
                lines.append("".join(line[:space[0]]))
                i = space[1] + 1
            elif line:
                lines.append("".join(line))
            else:  # a character wider than the cell: on a line of its own (fpdf2 would refuse)
                lines.append(char)
                i += 1
            line, width, space = [], 0.0, None
            continue
        if char in BREAKING_SPACE_SYMBOLS_STR:
            space = (len(line), i)
        line.append(char)
        width += char_width
        i += 1
    if width:
        lines.append("".join(line))
    return lines


def _fit_table(pdf: FPDF, rows: Sequence[tuple[str, str]], *, top: float, bottom: float) -> tuple[float, float]:
    """(type size, line height) for the table: 11 pt when it fits above ``bottom``, smaller when there are many rows."""
    for size in (11.0, 10.5, 10.0, 9.5, 9.0, 8.5, 8.0):
        line_height = size * 0.5
        pdf.set_font("cjk", size=size)
        height = 0.0
        for _, value in rows:
            lines = max(1, math.ceil(pdf.get_string_width(value or "—") / (VALUE_WIDTH_MM - 5.5)))
            height += lines * line_height + 2 * line_height * 0.28 + 0.3
        if top + height <= bottom:
            return size, line_height
    return size, line_height


def _frame(pdf: FPDF) -> None:
    """A double frame like the printed border of a licence."""
    pdf.set_draw_color(*FRAME_COLOR)
    pdf.set_line_width(1.2)
    pdf.rect(8, 8, A4_WIDTH_MM - 16, A4_HEIGHT_MM - 16)
    pdf.set_line_width(0.35)
    pdf.rect(10.5, 10.5, A4_WIDTH_MM - 21, A4_HEIGHT_MM - 21)


def _spaced(text: str, spaces: int) -> str:
    """Spread short Chinese labels like the paper form does (``建设单位`` → ``建 设 单 位``)."""
    return (" " * spaces).join(text) if spaces else text


def _qr(pdf: FPDF, url: str, x: float, y: float, size: float) -> None:
    """The QR code drawn as vector rectangles (sharp at any zoom, a few hundred bytes)."""
    matrix = qr_matrix(url, error_correction=qrcode.constants.ERROR_CORRECT_M)
    module = size / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    for row, bits in enumerate(matrix):
        col = 0
        while col < len(bits):
            if bits[col]:
                start = col
                while col < len(bits) and bits[col]:
                    col += 1
                pdf.rect(x + start * module, y + row * module, (col - start) * module, module, style="F")
            else:
                col += 1


def _verify_root(url: str) -> str:
    """The verification address without the per-certificate part, short enough to type."""
    m = re.match(r"^(https?://[^/]+/verify)", url)
    return m.group(1) if m else url
