"""Pillow helpers shared by the report's pictures (:mod:`.chart`, :mod:`.figures`,
:mod:`.removed_grid`): the default font at a size, a canvas drawn at :data:`SCALE` times
the final size and scaled down, text fitted to a width or turned on its side, markers."""

from __future__ import annotations

SCALE = 2
"""Drawn at twice the size and scaled down: smooth lines and text without an
anti-aliasing API."""


def font(size: int, scale: int = SCALE):
    """Pillow's default font at ``size * scale`` pixels; Pillow < 10.1 has one small
    bitmap font, whatever the size."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size * scale)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def canvas(width: int, height: int):
    """A white RGB image ``SCALE`` times ``width`` x ``height``, and its ImageDraw."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width * SCALE, height * SCALE), "white")
    return image, ImageDraw.Draw(image)


def finish(image, width: int, height: int):
    """A :func:`canvas` image scaled down to ``width`` x ``height``."""
    from PIL import Image

    return image.resize((width, height), Image.LANCZOS)


def fit_text(draw, text: str, font, width: float, *, min_chars: int = 4) -> str:
    """``text`` cut short with "..." until it is at most ``width`` wide (or at most
    ``min_chars`` characters long)."""
    while draw.textlength(text, font=font) > width and len(text) > min_chars:
        text = text[:-4] + "..."
    return text


def text_width(text: str, font) -> float:
    """Width of ``text`` in ``font`` in pixels, without a canvas to draw on."""
    from PIL import Image, ImageDraw

    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=font)


def vertical_text(text: str, font, colour="black", height: int = 20):
    """``text`` on a white strip ``height`` (x SCALE) high, turned to read upwards."""
    from PIL import Image, ImageDraw

    label = Image.new("RGB", (int(text_width(text, font)) + 4 * SCALE, height * SCALE), "white")
    ImageDraw.Draw(label).text((2 * SCALE, height * SCALE // 2), text, fill=colour, font=font,
                               anchor="lm")
    return label.rotate(90, expand=True)


def marker(draw, kind: str, x: float, y: float, r: float, colour) -> None:
    """A filled ``circle``, ``square``, ``triangle``, ``down`` (triangle) or diamond
    (anything else) of radius ``r`` at (x, y), outlined in white."""
    box = [x - r, y - r, x + r, y + r]
    if kind == "circle":
        draw.ellipse(box, fill=colour, outline="white", width=SCALE)
    elif kind == "square":
        draw.rectangle([x - r * 0.85, y - r * 0.85, x + r * 0.85, y + r * 0.85], fill=colour,
                       outline="white", width=SCALE)
    elif kind == "triangle":
        draw.polygon([(x, y - r * 1.1), (x + r, y + r * 0.8), (x - r, y + r * 0.8)], fill=colour,
                     outline="white")
    elif kind == "down":
        draw.polygon([(x, y + r * 1.1), (x + r, y - r * 0.8), (x - r, y - r * 0.8)], fill=colour,
                     outline="white")
    else:
        draw.polygon([(x, y - r * 1.2), (x + r, y), (x, y + r * 1.2), (x - r, y)], fill=colour,
                     outline="white")
