"""The seal picture: red, round, star in the centre, name on the upper arc, type below, transparent (DOMAIN.md §7)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from esign.seal_image import SEAL_RED, draw_seal, seal_png

ROOT = Path(__file__).resolve().parents[2]


def is_red(pixel) -> bool:
    r, g, b, a = pixel
    return a > 200 and r > 180 and g < 80 and b < 80


def test_seal_is_red_round_with_star_and_transparent():
    img = draw_seal("珠海市住房和城乡建设局", "行政审批专用章", size=400)
    assert img.mode == "RGBA" and img.size == (400, 400)
    # Transparent corners and background: the stamp shows the text it is pressed on.
    for corner in [(0, 0), (399, 0), (0, 399), (399, 399)]:
        assert img.getpixel(corner)[3] == 0
    # The ring: red at the left, right, top and bottom edges.
    for point in [(6, 200), (393, 200), (200, 6), (200, 393)]:
        assert is_red(img.getpixel(point)), point
    # The star fills the centre.
    assert is_red(img.getpixel((200, 200)))
    # Every opaque pixel is seal red (no black text, no white box); resampling only shifts the shade slightly.
    opaque = [p for p in img.get_flattened_data() if p[3] == 255]
    assert len(opaque) > 400 * 400 * 0.1
    assert all(is_red(p) for p in opaque)
    assert sum(p[0] for p in opaque) / len(opaque) == pytest.approx(SEAL_RED[0], abs=10)


def test_name_on_upper_arc_and_type_below():
    img = draw_seal("珠海市住房和城乡建设局", "行政审批专用章", size=400)
    without_type = draw_seal("珠海市住房和城乡建设局", "", size=400)
    alpha = lambda im, box: sum(p[3] for p in im.crop(box).get_flattened_data())  # noqa: E731
    # The upper band (above the star, inside the ring) holds the name.
    assert alpha(img, (120, 20, 280, 80)) > 0
    # The type line sits below the star: only present when a type is given.
    band = (110, 290, 290, 330)
    assert alpha(img, band) > 0 and alpha(without_type, band) == 0


def test_png_and_command_line(tmp_path):
    png = seal_png("珠海市自然资源局", "专用章", size=300)
    assert Image.open(io.BytesIO(png)).size == (300, 300)
    out = tmp_path / "seal.png"
    done = subprocess.run(
        [sys.executable, "-m", "esign", "seal-image", "珠海市自然资源局", "专用章", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert Image.open(out).mode == "RGBA"
