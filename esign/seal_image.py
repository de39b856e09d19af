"""The picture of a seal: a red round Chinese official seal (DOMAIN.md §7).

Laid out like a physical 公章 (GA 241 style): a thick outer ring, a five-pointed star in the centre, the department's
name along the upper arc with each character turned to face the centre, and the seal's type (e.g. 行政审批专用章) on a
straight line below the star. The background is transparent so the stamp shows the text it is pressed on. The image
is only the appearance of the signature: the legal force is the signature itself (规程 12.1).
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw, ImageFont

from esign.fonts import cjk_font

SEAL_RED = (230, 0, 18, 255)
DEFAULT_SIZE = 600  # pixels across; stamped at ~42 mm this is ~360 dpi


def _font(size: int) -> ImageFont.FreeTypeFont:
    face = cjk_font("sans-bold")
    return ImageFont.truetype(face.path, size=size, index=face.index)


def _star_points(cx: float, cy: float, outer: float) -> list[tuple[float, float]]:
    inner = outer * math.sin(math.radians(18)) / math.sin(math.radians(54))  # regular five-pointed star
    points = []
    for k in range(10):
        r = outer if k % 2 == 0 else inner
        a = math.radians(-90 + 36 * k)
        points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return points


def _glyph(ch: str, font: ImageFont.FreeTypeFont, width_ratio: float) -> Image.Image:
    """One character as an RGBA tile, narrowed horizontally like the condensed characters of a real seal."""
    left, top, right, bottom = font.getbbox(ch)
    size = font.size
    tile = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text(((size - (right - left)) / 2 - left, (size - (bottom - top)) / 2 - top), ch, font=font, fill=SEAL_RED)
    return tile.resize((max(1, round(size * width_ratio)), size), Image.LANCZOS)


def draw_seal(name: str, seal_type: str = "", size: int = DEFAULT_SIZE) -> Image.Image:
    """The seal as an RGBA image of ``size`` × ``size`` pixels."""
    if not name:
        raise ValueError("印章名称不能为空")
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    c = size / 2
    ring = size * 0.034
    draw.ellipse((ring / 2, ring / 2, size - ring / 2, size - ring / 2), outline=SEAL_RED, width=round(ring))

    star_r = size * 0.165
    draw.polygon(_star_points(c, c, star_r), fill=SEAL_RED)

    # The name along the upper arc. Fewer characters are spread over a smaller arc so they are not far apart; many
    # characters shrink so that the arc never passes ~250° (the lower part belongs to the type line and the code).
    n = len(name)
    span = min(240.0, max(120.0, 24.0 * n))
    step = span / n
    char_size = round(min(size * 0.15, 2 * math.pi * size * 0.34 * step / 360 * 1.25))
    radius = size / 2 - ring - size * 0.02 - char_size / 2
    font = _font(char_size)
    for i, ch in enumerate(name):
        theta = -90 - span / 2 + step * (i + 0.5)  # degrees; screen coordinates (y down), -90 is the top
        tile = _glyph(ch, font, 0.78).rotate(-(theta + 90), resample=Image.BICUBIC, expand=True)
        x = c + radius * math.cos(math.radians(theta)) - tile.width / 2
        y = c + radius * math.sin(math.radians(theta)) - tile.height / 2
        img.alpha_composite(tile, (round(x), round(y)))

    if seal_type:
        type_size = round(min(size * 0.095, size * 0.6 / len(seal_type)))
        type_font = _font(type_size)
        tiles = [_glyph(ch, type_font, 0.85) for ch in seal_type]
        total = sum(t.width for t in tiles)
        x = c - total / 2
        y = c + size * 0.265 - type_size / 2
        for tile in tiles:
            img.alpha_composite(tile, (round(x), round(y)))
            x += tile.width
    # One ink: every pixel is seal red and only the alpha channel draws. Resampling leaves no off-shades, and in the
    # PDF the colour plane compresses to almost nothing (the stamp costs ~30 KB instead of ~80 KB).
    ink = Image.new("RGBA", img.size, SEAL_RED)
    ink.putalpha(img.getchannel("A"))
    return ink


def seal_png(name: str, seal_type: str = "", size: int = DEFAULT_SIZE) -> bytes:
    """The seal image as PNG bytes (what is stored with the seal and shown to admins)."""
    out = io.BytesIO()
    draw_seal(name, seal_type, size).save(out, format="PNG", optimize=True)
    return out.getvalue()
