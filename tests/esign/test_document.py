"""The certificate PDF: A4, Chinese text with an embedded CJK font, the fields, the QR code, identifier and check code."""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from api.domain.certificates import format_check_code
from esign import render_certificate
from esign.document import identifier_from_keywords
from tests.esign.conftest import IDENTIFIER, construction_permit
from tests.servers import require


@pytest.fixture(scope="module")
def rendered():
    return render_certificate(construction_permit())


def poppler(tool: str, *args: str) -> str:
    require(shutil.which(tool) is not None, f"{tool} (poppler-utils)")
    return subprocess.run([tool, *args], capture_output=True, text=True, check=True, timeout=60).stdout


def test_a4_with_identifier_in_metadata(rendered):
    reader = PdfFileReader(io.BytesIO(rendered.pdf))
    pages = reader.root["/Pages"]
    box = pages["/Kids"][0].get("/MediaBox") or pages["/MediaBox"]  # fpdf2 puts it on the page tree
    width, height = (float(v) for v in list(box)[2:])
    assert round(width) == 595 and round(height) == 842  # A4 in points
    info = reader.trailer["/Info"]
    assert identifier_from_keywords(str(info["/Keywords"])) == IDENTIFIER
    assert "建筑工程施工许可证" in str(info["/Title"])


def test_cjk_font_embedded(tmp_path, rendered):
    path = tmp_path / "c.pdf"
    path.write_bytes(rendered.pdf)
    fonts = poppler("pdffonts", str(path)).splitlines()[2:]
    assert fonts, "no font"
    for line in fonts:
        assert "CJK" in line and " yes yes yes " in line, line  # embedded, subset, with a ToUnicode map


def test_text_is_the_licence(tmp_path, rendered):
    doc = construction_permit()
    path = tmp_path / "c.pdf"
    path.write_bytes(rendered.pdf)
    text = poppler("pdftotext", "-layout", str(path), "-").replace(" ", "")
    for expected in ["中华人民共和国", "建筑工程施工许可证", "发证机关：珠海市住房和城乡建设局", "发证日期：2025年6月1日",
                     IDENTIFIER, format_check_code(doc.check_code), "扫码核验真伪"]:
        assert expected.replace(" ", "") in text, expected
    for label, value in doc.fields:
        assert value.replace(" ", "") in text, label


def test_seal_box_is_over_the_issuer_line(tmp_path, rendered):
    # pdftotext -bbox gives word boxes (origin top-left); the seal's box (origin bottom-left) must cover 发证机关.
    path = tmp_path / "c.pdf"
    path.write_bytes(rendered.pdf)
    html = poppler("pdftotext", "-bbox", str(path), "-")
    line = next(l for l in html.splitlines() if "发证机关" in l)
    y_min = float(line.split('yMin="')[1].split('"')[0])
    x_max = float(line.split('xMax="')[1].split('"')[0])
    x1, y1, x2, y2 = rendered.seal_box
    top_down = (842 - y2, 842 - y1)
    assert top_down[0] < y_min < top_down[1]
    assert x2 > x_max - 60 and x2 - x1 == pytest.approx(42 * 72 / 25.4)


def test_many_fields_still_fit_one_page(tmp_path):
    doc = construction_permit()
    long_fields = list(doc.fields) + [(f"附加信息{i}", "很长的内容" * 12) for i in range(3)]
    rendered = render_certificate(type(doc)(**{**doc.__dict__, "fields": long_fields}))
    path = tmp_path / "long.pdf"
    path.write_bytes(rendered.pdf)
    assert re.search(r"^Pages:\s+1$", poppler("pdfinfo", str(path)), re.M)
    text = poppler("pdftotext", str(path), "-")
    assert "发证机关" in text and IDENTIFIER in text.replace(" ", "")


def test_too_many_fields_refused():
    doc = construction_permit()
    fields = list(doc.fields) * 3
    with pytest.raises(ValueError):
        render_certificate(type(doc)(**{**doc.__dict__, "fields": fields}))


# -- the embedded font: the TrueType glyphs of the characters printed, converted once per process (issue #13, item 4) --


def _embedded_font(pdf: bytes):
    """The font program embedded in the PDF, as a fontTools font, and its descendant font's subtype."""
    from fontTools.ttLib import TTFont

    reader = PdfFileReader(io.BytesIO(pdf))
    page = reader.root["/Pages"]["/Kids"][0]
    (font,) = [f.get_object() for f in page["/Resources"]["/Font"].values()]
    descendant = font["/DescendantFonts"][0].get_object()
    descriptor = descendant["/FontDescriptor"].get_object()
    return TTFont(io.BytesIO(descriptor["/FontFile2"].data)), str(descendant["/Subtype"])


def test_embedded_font_is_the_truetype_subset_of_the_printed_characters(tmp_path, rendered):
    from esign.document import document_characters
    from esign.fonts import truetype_face

    font, subtype = _embedded_font(rendered.pdf)
    assert subtype == "/CIDFontType2" and "glyf" in font and "CFF " not in font  # TrueType outlines, not the CFF face
    assert font["name"].getDebugName(1) == "Noto Serif CJK SC"
    # Exactly the glyphs of the characters printed (+ .notdef): the page's text, every one of them, and nothing else.
    path = tmp_path / "c.pdf"
    path.write_bytes(rendered.pdf)
    printed = set(poppler("pdftotext", str(path), "-")) - set(" \n\f")
    face = truetype_face("serif")
    assert printed <= document_characters(construction_permit())
    embedded = {chr(cp) for cp in font.getBestCmap()}
    spaces = {" ", "\u3000"}  # spacing (pdftotext prints both as layout, not as characters)
    assert embedded - spaces == printed - spaces
    # Same advance widths as the CFF face's (so the same layout): every printed character, against fontTools' reading.
    from fontTools.ttLib import TTFont

    source = TTFont(face.face.path, fontNumber=face.face.index, lazy=True)
    source_cmap, source_hmtx = source.getBestCmap(), source["hmtx"].metrics
    cmap, hmtx = font.getBestCmap(), font["hmtx"].metrics
    for char in printed:
        assert hmtx[cmap[ord(char)]][0] == face.advance(char) == source_hmtx[source_cmap[ord(char)]][0], char


def test_text_extracts_as_with_the_cff_face(tmp_path, rendered):
    """The page's text (pdftotext -layout) is character for character what the CFF face's embedding gave."""
    from esign.document import _render
    from esign.fonts import cjk_font

    cff = cjk_font("serif")
    before, _ = _render(construction_permit(), cff.path, cff.index)
    texts = []
    for name, pdf in (("cff.pdf", before.pdf), ("tt.pdf", rendered.pdf)):
        path = tmp_path / name
        path.write_bytes(pdf)
        texts.append(poppler("pdftotext", "-layout", str(path), "-"))
    assert texts[0] == texts[1]
    assert "CID Type 0C" in poppler("pdffonts", str(tmp_path / "cff.pdf"))
    assert "CID TrueType" in poppler("pdffonts", str(tmp_path / "tt.pdf"))


def test_a_character_outside_the_set_falls_back_to_the_cff_face(tmp_path):
    """Should the character set miss a printed character, the page is rendered from the CFF face: never a tofu box."""
    doc = construction_permit()
    rendered = render_certificate(doc, characters=set(doc.title))  # 发证机关 … are not in the set
    path = tmp_path / "c.pdf"
    path.write_bytes(rendered.pdf)
    assert "CID Type 0C" in poppler("pdffonts", str(path))
    assert "发证机关" in poppler("pdftotext", str(path), "-").replace(" ", "")


def test_glyphs_are_converted_once_per_process():
    from esign.fonts import truetype_face

    face = truetype_face("serif")
    render_certificate(construction_permit())
    converted = face.conversions
    render_certificate(construction_permit())
    assert face.conversions == converted


def test_glyph_cache_is_bounded_and_evicts_least_recently_used():
    from esign.fonts import TrueTypeFace, cjk_font

    face = TrueTypeFace(cjk_font("serif"), cache_size=8)
    first = face.font_for("建筑施工许可证书号")  # 9 glyphs + .notdef through a cache of 8
    assert face.conversions == 10 and len(face._cache) == 8  # noqa: SLF001
    kept = list(face._cache)  # noqa: SLF001 - least recently used first
    face.font_for(chr(next(cp for cp, g in face._cff().cmap.items() if g == kept[-1])))  # noqa: SLF001 - the newest: kept
    assert face.conversions == 11  # only .notdef (the oldest, evicted) again
    assert len(face._cache) == 8  # noqa: SLF001
    # What comes out of an evicting cache is what a fresh face gives (the cache changes the cost, not the font).
    assert face.font_for("建筑施工许可证书号") == first == TrueTypeFace(cjk_font("serif")).font_for("建筑施工许可证书号")


def test_concurrent_renders_in_threads_give_the_sequential_pdfs():
    """PDFs are made in worker threads (asyncio.to_thread): the shared face and its glyph cache give each thread the
    PDF it would get alone, byte for byte, including while glyphs are being converted for the others."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.certificates import documents
    from esign.fonts import TrueTypeFace, _faces, cjk_font

    docs = list(documents(8, seed=1313))
    _faces["serif"] = TrueTypeFace(cjk_font("serif"))  # a cold cache: the threads convert while the others read
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda d: render_certificate(d).pdf, docs))
    sequential = [render_certificate(d).pdf for d in docs]
    assert concurrent == sequential
