"""The certificate's table of fields, drawn from our own line breaking (esign.document._table) instead of fpdf2's
``FPDF.table`` (which lays every cell out twice): the same lines, cells, borders and fill, i.e. the same page."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from fpdf import FPDF
from fpdf.enums import TableCellFillMode

from bench.certificates import _common_hanzi
from esign.document import (
    CELL_FILL,
    FRAME_COLOR,
    LABEL_WIDTH_MM,
    VALUE_WIDTH_MM,
    _break_lines,
    _spaced,
    _table,
)
from esign.fonts import cjk_font, truetype_face
from tests.esign.conftest import construction_permit
from tests.servers import require


def _page(font_path: str | None = None) -> FPDF:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(18, 14, 18)
    face = cjk_font("serif")
    pdf.add_font("cjk", fname=font_path or face.path, collection_font_number=0 if font_path else face.index)
    pdf.add_page()
    return pdf


@pytest.fixture(scope="module")
def page():
    return _page()


def _texts(rng: random.Random, count: int) -> list[str]:
    hanzi = _common_hanzi()
    pieces = [lambda: rng.choice(hanzi), lambda: rng.choice("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-#/()."),
              lambda: " ", lambda: "\u3000", lambda: rng.choice("，。；：（）—"), lambda: "\n"]
    weights = [60, 20, 8, 2, 6, 1]
    return ["".join(rng.choices(pieces, weights)[0]() for _ in range(rng.randint(0, 160))) for _ in range(count)]


def test_lines_are_broken_where_fpdf2_breaks_them(page):
    """Random texts (hanzi, Latin words, spaces, ideographic spaces, punctuation, newlines) at the table's type sizes
    and widths: the lines are fpdf2's ``multi_cell`` lines, character for character."""
    rng = random.Random(4)
    for size in (11.0, 9.5, 8.0):
        page.set_font("cjk", size=size)
        scale = page.font_size_pt * 0.001 / page.k
        for width in (LABEL_WIDTH_MM - 5, VALUE_WIDTH_MM - 5, 20.0):
            for text in _texts(rng, 40):
                expected = page.multi_cell(width + 5, size * 0.5, text, padding=(0, 2.5), dry_run=True,
                                           output="LINES") if text else []
                assert _break_lines(text, page.current_font.cw, scale, width) == expected, (size, width, text)


def _fpdf2_table(pdf: FPDF, rows, line_height: float) -> None:
    """The table as the certificate drew it before (fpdf2's FPDF.table), the reference."""
    with pdf.table(col_widths=(LABEL_WIDTH_MM, VALUE_WIDTH_MM), width=LABEL_WIDTH_MM + VALUE_WIDTH_MM,
                   text_align=("CENTER", "LEFT"), line_height=line_height, padding=(line_height * 0.28, 2.5),
                   first_row_as_headings=False, cell_fill_color=CELL_FILL,
                   cell_fill_mode=TableCellFillMode.COLUMNS, v_align="MIDDLE") as table:
        for label, value in rows:
            row = table.row()
            row.cell(label)
            row.cell(value)


def _draw(draw, rows, size: float, font_path: str) -> tuple[bytes, float]:
    pdf = _page(font_path)
    pdf.set_xy(18, 40)
    pdf.set_font("cjk", size=size)
    pdf.set_draw_color(*FRAME_COLOR)
    pdf.set_line_width(0.3)
    draw(pdf, rows, size * 0.5)
    bottom = pdf.get_y()
    pdf.set_xy(30, bottom + 5)
    pdf.cell(100, 8, "表下")  # what follows the table starts where it did
    return bytes(pdf.output()), bottom


def _poppler(tool: str, *args: str) -> bytes:
    require(shutil.which(tool) is not None, f"{tool} (poppler-utils)")
    return subprocess.run([tool, *args], capture_output=True, check=True, timeout=60).stdout


@pytest.mark.parametrize("size", [11.0, 9.0])
def test_the_table_is_fpdf2s_table_pixel_for_pixel(tmp_path, size):
    rng = random.Random(int(size))
    permit = construction_permit()
    rows = [(_spaced(label, 0) if len(label) > 4 else _spaced(label, 1), value or "—") for label, value in permit.fields]
    rows += [(_spaced(label, 1), text or "—") for label, text in zip(("附加", "备注", "说明", "地址"), _texts(rng, 4))]
    rows += [("很长的标签名称超过一行的宽度", "一行"), ("空", "—")]
    font = tmp_path / "font.ttf"  # the certificate's kind of font: quick to embed (the CFF face takes seconds)
    font.write_bytes(truetype_face("serif").font_for("".join(text for row in rows for text in row) + "表下"))
    ours, ours_bottom = _draw(_table, rows, size, str(font))
    theirs, theirs_bottom = _draw(_fpdf2_table, rows, size, str(font))
    assert ours_bottom == pytest.approx(theirs_bottom, abs=1e-9)
    pages = []
    for name, pdf in (("ours", ours), ("theirs", theirs)):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(pdf)
        pages.append((_poppler("pdftotext", "-layout", str(path), "-"),
                      _poppler("pdftoppm", "-r", "100", "-gray", "-singlefile", str(path))))
        assert "证照编号" in pages[-1][0].decode() and len(pages[-1][1]) > 800_000  # a page with the table's text
    assert pages[0][0] == pages[1][0]  # the same text in the same layout
    ours_pixels, theirs_pixels = pages[0][1], pages[1][1]  # grey PGM pages at 100 dpi, the same size
    different = len(ours_pixels) != len(theirs_pixels) or sum(a != b for a, b in zip(ours_pixels, theirs_pixels))
    assert different == 0  # the same pixels


def test_the_certificates_font_holds_every_character_printed():
    """The small TrueType font of ``document_characters`` (the document's texts and the template's) leaves no printed
    character out: no certificate falls back to the slow CFF rendering. Random certificates, every issue date's
    digits, and the tests' permit."""
    import dataclasses
    import datetime as dt
    import tempfile

    from bench.certificates import documents
    from esign.document import _render, document_characters

    docs = list(documents(6, seed=99)) + [construction_permit()]
    docs += [dataclasses.replace(construction_permit(), issue_date=dt.date(2029, 12, d)) for d in (10, 28)]
    for doc in docs:
        with tempfile.NamedTemporaryFile(suffix=".ttf") as font:
            font.write(truetype_face("serif").font_for(document_characters(doc)))
            font.flush()
            _, missing = _render(doc, font.name, 0)
        assert missing == [], [chr(cp) for cp in missing]
