"""The certificate font's glyphs converted once per machine (esign.fonts.GlyphStore): the same bytes as converting,
no conversion for a stored glyph, the conversion for any other, and a file that is not the right store ignored."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from esign import render_certificate
from esign.document import document_characters
from esign.fonts import (
    GlyphStore,
    TrueTypeFace,
    _faces,
    build_glyph_store,
    cjk_font,
    store_characters,
    store_key,
    store_path,
)
from tests.esign.conftest import construction_permit

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def permit_store(tmp_path_factory):
    """A store of the tests' permit's characters (the whole GB 2312 store takes ~8 s: `python -m esign glyphs`)."""
    directory = tmp_path_factory.mktemp("glyphs")
    chars = "".join(sorted(document_characters(construction_permit())))
    path = build_glyph_store("serif", directory, chars)
    return path, chars


def test_stored_glyphs_are_the_converted_ones_and_are_not_converted_again(permit_store, monkeypatch):
    path, chars = permit_store
    font = cjk_font("serif")
    store = GlyphStore.open(path, store_key(font))
    stored, converting = TrueTypeFace(font, store=store), TrueTypeFace(font)
    assert store is not None and len(store) == len({0} | {converting.glyph_id(c) for c in chars} - {None})
    assert stored.font_for(chars) == converting.font_for(chars)
    assert stored.conversions == 0 and converting.conversions == len(store)
    # The whole certificate, through the process's face: byte for byte the PDF of the converting face.
    monkeypatch.setitem(_faces, "serif", stored)
    with_store = render_certificate(construction_permit()).pdf
    monkeypatch.setitem(_faces, "serif", converting)
    assert with_store == render_certificate(construction_permit()).pdf
    assert stored.conversions == 0


def _font_file_descriptors(font) -> int:
    """How many of this process's open files are the CFF font file (a face that opened it keeps it open)."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += fd.readlink() == Path(font.path).resolve()
        except OSError:  # the listing's own descriptor, gone
            pass
    return count


def test_with_the_store_the_cff_face_is_never_opened(permit_store, monkeypatch):
    """A process whose printed characters are all in the store reads nothing of the 65,535-glyph CFF face (~30 MB:
    its cmap, advances and charset): the store carries the cmap, the advances and the face's metrics."""
    path, chars = permit_store
    font = cjk_font("serif")
    before = _font_file_descriptors(font)
    face = TrueTypeFace(font, store=GlyphStore.open(path, store_key(font)))
    monkeypatch.setitem(_faces, "serif", face)
    pdf = render_certificate(construction_permit()).pdf
    assert all(face.has(c) for c in chars) and face.advance("建") > 0
    assert not face.source_opened and _font_file_descriptors(font) == before
    monkeypatch.setitem(_faces, "serif", TrueTypeFace(font))
    assert pdf == render_certificate(construction_permit()).pdf


def test_a_character_outside_the_store_is_converted(permit_store, monkeypatch):
    """A character outside GB 2312 (a rare name character) opens the CFF face: converted, same font, same PDF."""
    import dataclasses

    path, chars = permit_store
    font = cjk_font("serif")
    face = TrueTypeFace(font, store=GlyphStore.open(path, store_key(font)))
    outside = "丂"  # U+4E02: GBK, not GB 2312 (nor the permit)
    assert outside not in chars and outside not in store_characters()
    assert face.font_for("建") == TrueTypeFace(font).font_for("建") and not face.source_opened
    assert face.has(outside) and face.source_opened
    assert face.advance(outside) == TrueTypeFace(font).advance(outside)
    assert face.font_for(outside + "建") == TrueTypeFace(font).font_for(outside + "建")
    assert face.conversions == 1
    # The whole certificate with that character in the holder's name: the PDF of a face without a store.
    permit = construction_permit()
    doc = dataclasses.replace(permit, fields=[(label, value + outside) for label, value in permit.fields])
    monkeypatch.setitem(_faces, "serif", TrueTypeFace(font, store=GlyphStore.open(path, store_key(font))))
    with_store = render_certificate(doc).pdf
    assert _faces["serif"].source_opened
    monkeypatch.setitem(_faces, "serif", TrueTypeFace(font))
    assert with_store == render_certificate(doc).pdf


def test_the_machines_store_holds_every_character_the_page_itself_prints():
    """The layout's own text (labels, —, digits) and the tests' permit (¥ …) are in the store `make install` builds:
    otherwise every certificate would open the CFF face, ~30 MB in the sealing child."""
    from esign.document import _TEMPLATE_TEXT

    held = set(store_characters())
    assert set(_TEMPLATE_TEXT) <= held
    assert document_characters(construction_permit()) <= held


def test_a_character_the_face_lacks_is_known_from_the_store(tmp_path):
    """A store character the face has no glyph for is recorded as such: asking about it opens no CFF face."""
    font = cjk_font("serif")
    lacking = "\U000F0000"  # private use: not in the face
    path = build_glyph_store("serif", tmp_path, "建" + lacking)
    face = TrueTypeFace(font, store=GlyphStore.open(path, store_key(font)))
    assert not face.has(lacking) and face.has("建") and not face.source_opened
    assert face.font_for("建" + lacking) == TrueTypeFace(font).font_for("建" + lacking)
    assert not face.source_opened


def test_a_file_that_is_not_this_fonts_whole_store_is_ignored(permit_store, tmp_path):
    path, _ = permit_store
    font = cjk_font("serif")
    data = path.read_bytes()
    assert GlyphStore.open(path, bytes(32)) is None  # another font file, face or converter
    for name, content in [("truncated", data[: len(data) - 7]), ("index cut", data[:40]), ("empty", b""),
                          ("garbage", b"not a store at all" * 10)]:
        bad = tmp_path / name
        bad.write_bytes(content)
        assert GlyphStore.open(bad, store_key(font)) is None, name
    assert GlyphStore.open(tmp_path / "missing", store_key(font)) is None


def test_the_store_is_named_by_the_font_and_converter(tmp_path):
    font = cjk_font("serif")
    path = store_path(font, tmp_path)
    assert path.parent == tmp_path and store_key(font).hex()[:16] in path.name
    assert store_path(type(font)(font.path, font.index + 1), tmp_path) != path


def test_concurrent_builders_leave_one_whole_store(tmp_path):
    """migrate and make install may run at once (or two migrate containers): each writes a temporary file and renames
    it, so readers only ever see a whole store."""
    font = cjk_font("serif")
    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = set(pool.map(lambda _: build_glyph_store("serif", tmp_path, "建设工程"), range(4)))
    (path,) = paths
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert len(GlyphStore.open(path, store_key(font))) == 5  # .notdef and the four characters


def test_a_stale_store_of_the_face_is_replaced(tmp_path):
    font = cjk_font("serif")
    stale = store_path(font, tmp_path).with_name(store_path(font, tmp_path).name.rsplit("-", 1)[0] + "-0000.glyphs")
    stale.write_bytes(b"an older font's store")
    path = build_glyph_store("serif", tmp_path, "建")
    assert sorted(tmp_path.iterdir()) == [path]


def test_cli_builds_into_the_directory(tmp_path):
    # The CLI builds the whole GB 2312 set; the test gives it a store already made to show it keeps an up-to-date
    # one (no conversion: instant) and names the file.
    path = build_glyph_store("serif", tmp_path, "建")
    done = subprocess.run([sys.executable, "-m", "esign", "glyphs", "--dir", str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert str(path) in done.stdout and path.read_bytes()[:8] == b"JSGLYPH2"


def test_migrate_keeps_the_machines_store_in_the_configured_directory(tmp_path):
    """`python -m api migrate` (the deployment step; `make demo` runs it) builds the store where
    JIANSHEN_CJK_GLYPH_DIR says, or keeps it when up to date (here: made beforehand, so the test converts nothing)."""
    import os

    directory = tmp_path / "glyphs"
    path = build_glyph_store("serif", directory, "建")
    env = {**os.environ, "JIANSHEN_DATABASE_URL": f"sqlite://{tmp_path / 'db.sqlite3'}",
           "JIANSHEN_CJK_GLYPH_DIR": str(directory)}
    done = subprocess.run([sys.executable, "-m", "api", "migrate"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"certificate glyphs: {path}" in done.stdout
    assert sorted(directory.iterdir()) == [path]
