"""Real images for upload tests, made with Pillow (with EXIF GPS when asked)."""

from __future__ import annotations

import io
from fractions import Fraction

from PIL import Image


def _rational(value: float) -> tuple[Fraction, Fraction, Fraction]:
    deg = int(value)
    minutes_full = (value - deg) * 60
    minutes = int(minutes_full)
    seconds = Fraction(round((minutes_full - minutes) * 60 * 10000), 10000)
    return Fraction(deg), Fraction(minutes), seconds


def image_bytes(
    fmt: str = "JPEG",
    size: tuple[int, int] = (640, 480),
    gps: tuple[float, float] | None = None,
    seed: int = 0,
) -> bytes:
    """A gradient image (distinct per seed); ``gps`` = (lon, lat) written into EXIF."""
    w, h = size
    img = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    img.putpixel((seed % w, 0), (255, seed % 256, 0))
    exif = Image.Exif()
    if gps is not None:
        lon, lat = gps
        gps_ifd = {
            1: "N" if lat >= 0 else "S",
            2: _rational(abs(lat)),
            3: "E" if lon >= 0 else "W",
            4: _rational(abs(lon)),
        }
        exif[0x8825] = gps_ifd
    out = io.BytesIO()
    img.save(out, fmt, exif=exif.tobytes()) if gps else img.save(out, fmt)
    return out.getvalue()
