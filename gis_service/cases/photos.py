"""Case photos: validated by decoding, stored content-addressed on disk, served without EXIF.

An upload is trusted only after Pillow has decoded every pixel, so a text file named .jpg or
a truncated JPEG is refused whatever its name or content type says. The GPS position in the
EXIF is read first (it may pre-fill the case location), then the image is re-encoded without
any metadata: photos are public evidence and must not leak where or on what phone they were
taken. Files are named by the SHA-256 of the uploaded bytes, so a retried upload dedupes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageOps

from gis_service.errors import InvalidInput, NotFound, TooLarge, UnsupportedMedia

FORMATS = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "WEBP": ("image/webp", ".webp"),
}
EXTENSIONS = dict(FORMATS.values())  # mime -> extension
THUMB_PX = 320
MAX_PIXELS = 40_000_000  # refuse decompression bombs with a clear error

# Many phones write JPEGs with an embedded preview that Pillow reports as MPO: still a JPEG.
_ALIASES = {"MPO": "JPEG"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MB = 1024 * 1024


@dataclass(frozen=True)
class StoredPhoto:
    sha256: str  # of the uploaded bytes, so a retried upload of the same file dedupes
    mime: str
    width: int  # after EXIF orientation is applied
    height: int
    bytes: int  # size of the stored (stripped) copy
    exif_lon: float | None
    exif_lat: float | None


def check_size(n: int, max_bytes: int) -> None:
    """Refuse before decoding anything, naming the limit so the user knows what to send."""
    if n > max_bytes:
        raise TooLarge(
            f"photo is {n / _MB:.1f} MB; the limit is {max_bytes / _MB:g} MB",
            size=n,
            max_bytes=max_bytes,
        )


# a checked upload: its metadata, the stripped copy to serve, its JPEG thumbnail
Processed = tuple[StoredPhoto, bytes, bytes]


def process(data: bytes, max_bytes: int) -> Processed:
    """Validate an upload; return its metadata, the stripped copy to serve and a JPEG thumb."""
    check_size(len(data), max_bytes)
    if not data:
        raise InvalidInput("the photo is empty", field="file")
    img = _decode(data)
    fmt = _ALIASES.get(img.format or "", img.format or "")
    mime = FORMATS[fmt][0]
    lon, lat = _gps(img)
    img = _upright(img)
    stored = _encode(img, fmt)
    meta = StoredPhoto(
        sha256=hashlib.sha256(data).hexdigest(),
        mime=mime,
        width=img.width,
        height=img.height,
        bytes=len(stored),
        exif_lon=lon,
        exif_lat=lat,
    )
    return meta, stored, _thumbnail(img)


def path_for(root: Path, sha256: str, ext: str, thumb: bool = False) -> Path:
    """root/ab/cd/<sha>.<ext> (thumbs <sha>.thumb.jpg): two levels keep directories small."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
    name = f"{sha256}.thumb.jpg" if thumb else f"{sha256}.{ext.lstrip('.')}"
    return root / sha256[:2] / sha256[2:4] / name


def save(root: Path, meta: StoredPhoto, stored: bytes, thumb: bytes) -> None:
    """Write both files atomically; an existing file already holds the same content."""
    ext = EXTENSIONS[meta.mime]
    # The thumb goes first so that a stored photo always has its thumbnail.
    _write_once(path_for(root, meta.sha256, ext, thumb=True), thumb)
    _write_once(path_for(root, meta.sha256, ext), stored)


def read(root: Path, sha256: str, mime: str, thumb: bool = False) -> Path:
    """The path of a stored photo (or its thumb); NotFound also for malformed names."""
    ext = EXTENSIONS.get(mime)
    if ext is None or not _SHA256.fullmatch(sha256):
        raise NotFound(f"no photo {sha256}")
    path = path_for(root, sha256, ext, thumb=thumb)
    if not path.is_file():
        raise NotFound(f"no photo {sha256}" + (" thumbnail" if thumb else ""))
    return path


def _decode(data: bytes) -> Image.Image:
    """Open and fully decode: headers alone do not prove that the pixels are there."""
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"image has too many pixels ({exc})", max_pixels=MAX_PIXELS) from None
    except Exception as exc:  # any decoder failure on untrusted bytes means "not an image"
        raise InvalidInput(f"not a JPEG, PNG or WebP image ({exc})", field="file") from None
    fmt = _ALIASES.get(img.format or "", img.format or "")
    if fmt not in FORMATS:
        raise UnsupportedMedia(
            f"{img.format or 'this'} images are not accepted; send JPEG, PNG or WebP",
            format=img.format,
        )
    if img.width * img.height > MAX_PIXELS:
        raise TooLarge(
            f"image is {img.width}x{img.height} pixels; at most {MAX_PIXELS:,} are accepted",
            max_pixels=MAX_PIXELS,
        )
    try:
        img.load()
    except Exception as exc:
        raise InvalidInput(f"the {fmt} image cannot be decoded ({exc})", field="file") from None
    return img


def _gps(img: Image.Image) -> tuple[float | None, float | None]:
    """(lon, lat) in decimal degrees from the EXIF GPS IFD; (None, None) if absent or odd.

    Phones record WGS-84. A wrong pre-filled location is worse than none, so anything
    unexpected (missing refs, zero denominators, out of range, the 0,0 of no fix) is ignored.
    """
    try:
        gps = img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        lat = _degrees(
            gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "NS"
        )
        lon = _degrees(
            gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "EW"
        )
    except Exception:  # garbage EXIF must not make a good photo fail
        return None, None
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
        return None, None
    return lon, lat


def _degrees(value: Any, ref: Any, hemispheres: str) -> float | None:
    """Degrees, minutes, seconds (rationals) and a ref letter -> signed decimal degrees."""
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    ref = str(ref or "").strip("\x00 ").upper()[:1]
    if not ref or ref not in hemispheres:
        return None
    parts = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [float(p) for p in parts]
    if not all(math.isfinite(x) and x >= 0 for x in numbers):
        return None
    degrees = sum(x / 60**i for i, x in enumerate(numbers))
    return -degrees if ref == hemispheres[1] else degrees


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, since the stripped copy can no longer carry it."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # unreadable EXIF: the orientation is unknown, keep the pixels as sent
        return img


def _encode(img: Image.Image, fmt: str) -> bytes:
    """Re-encode keeping only the colour profile and PNG transparency: no EXIF, XMP, comments."""
    img.info = {k: v for k, v in img.info.items() if k in ("icc_profile", "transparency")}
    options: dict[str, Any] = {"icc_profile": img.info.get("icc_profile")}
    if fmt == "JPEG":
        options.update(quality=90, optimize=True)
    elif fmt == "PNG":
        options.update(optimize=True)
    else:
        options.update(quality=90)
    if options["icc_profile"] is None:
        del options["icc_profile"]
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def _thumbnail(img: Image.Image) -> bytes:
    """A JPEG, long side THUMB_PX (smaller images are not enlarged), alpha flattened on white."""
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        rgb = Image.new("RGB", img.size, "white")
        rgb.paste(rgba, mask=rgba.getchannel("A"))
    else:
        rgb = img.convert("RGB")
    rgb.thumbnail((THUMB_PX, THUMB_PX))
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def _write_once(path: Path, data: bytes) -> None:
    """Content-addressed, so an existing file is already right; readers never see half a file."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
