"""Photo validation and storage without the database: real images made with Pillow."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from gis_service.cases import photos
from gis_service.errors import InvalidInput, NotFound, TooLarge, UnsupportedMedia

MAX = 10 * 1024 * 1024
GPS = ExifTags.GPS


def gradient(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A picture that is clearly not blank, so encoders have something to do."""
    img = Image.new("RGB", (width, height))
    img.putdata(
        [(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)]
    )
    return img.convert(mode)


def dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 10000)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10000)


def phone_exif(lat: float, lon: float, orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestPhone"
    exif[ExifTags.IFD.GPSInfo] = {
        GPS.GPSLatitudeRef: "N" if lat >= 0 else "S",
        GPS.GPSLatitude: dms(abs(lat)),
        GPS.GPSLongitudeRef: "E" if lon >= 0 else "W",
        GPS.GPSLongitude: dms(abs(lon)),
    }
    return exif


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def phone_jpeg() -> bytes:
    """Like a phone photo taken in portrait: stored landscape with orientation 6 and GPS."""
    exif = phone_exif(34.7466, 113.6253)
    return encode(gradient(2000, 1500), "JPEG", exif=exif, quality=90)


def test_jpeg_gps_orientation_thumb_and_hash(phone_jpeg: bytes) -> None:
    # Sanity of the fixture itself: the GPS really is in the upload.
    assert Image.open(io.BytesIO(phone_jpeg)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    meta, stored, thumb = photos.process(phone_jpeg, MAX)

    assert meta.mime == "image/jpeg"
    assert (meta.width, meta.height) == (1500, 2000)  # orientation 6 rotates by 90°
    assert meta.exif_lat == pytest.approx(34.7466, abs=1e-6)
    assert meta.exif_lon == pytest.approx(113.6253, abs=1e-6)
    assert meta.sha256 == hashlib.sha256(phone_jpeg).hexdigest()
    assert meta.sha256 != hashlib.sha256(stored).hexdigest()
    assert meta.bytes == len(stored)

    served = Image.open(io.BytesIO(stored))
    assert served.format == "JPEG"
    assert served.size == (1500, 2000)
    exif = served.getexif()
    assert len(exif) == 0
    assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert "exif" not in served.info
    assert b"TestPhone" not in stored

    small = Image.open(io.BytesIO(thumb))
    assert small.format == "JPEG"
    assert small.mode == "RGB"
    assert small.size == (240, 320)  # long side THUMB_PX, aspect kept, portrait like the photo


def test_orientation_moves_pixels() -> None:
    """Rotating must move the content, not only swap the reported size."""
    img = Image.new("RGB", (200, 100), "white")
    img.paste((255, 0, 0), (0, 0, 20, 20))  # red mark top-left as stored
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # display rotated 90° clockwise
    meta, stored, _ = photos.process(encode(img, "PNG", exif=exif), MAX)
    served = Image.open(io.BytesIO(stored)).convert("RGB")
    assert (meta.width, meta.height) == (100, 200)
    assert served.getpixel((95, 5)) == (255, 0, 0)  # now top-right
    assert served.getpixel((5, 5)) == (255, 255, 255)
    assert served.getexif().get(ExifTags.Base.Orientation) is None


def test_southern_western_hemispheres_are_negative() -> None:
    data = encode(gradient(64, 48), "JPEG", exif=phone_exif(-33.8568, -70.6483, orientation=1))
    meta, _, _ = photos.process(data, MAX)
    assert meta.exif_lat == pytest.approx(-33.8568, abs=1e-6)
    assert meta.exif_lon == pytest.approx(-70.6483, abs=1e-6)
    assert (meta.width, meta.height) == (64, 48)


@pytest.mark.parametrize(
    "gps",
    [
        {},  # no fix
        {GPS.GPSLatitude: (IFDRational(34, 1),), GPS.GPSLongitude: (IFDRational(113, 1),)},
        {
            GPS.GPSLatitudeRef: "N",
            GPS.GPSLatitude: (IFDRational(34, 0), IFDRational(1, 1)),
            GPS.GPSLongitudeRef: "E",
            GPS.GPSLongitude: (IFDRational(113, 1),),
        },
        {
            GPS.GPSLatitudeRef: "N",
            GPS.GPSLatitude: (IFDRational(0, 1),),
            GPS.GPSLongitudeRef: "E",
            GPS.GPSLongitude: (IFDRational(0, 1),),
        },
        {
            GPS.GPSLatitudeRef: "N",
            GPS.GPSLatitude: (IFDRational(95, 1),),
            GPS.GPSLongitudeRef: "E",
            GPS.GPSLongitude: (IFDRational(113, 1),),
        },
        {
            GPS.GPSLatitudeRef: "Q",
            GPS.GPSLatitude: (IFDRational(34, 1),),
            GPS.GPSLongitudeRef: "E",
            GPS.GPSLongitude: (IFDRational(113, 1),),
        },
    ],
    ids=["empty", "no-refs", "zero-denominator", "null-island", "out-of-range", "bad-ref"],
)
def test_odd_gps_is_ignored_not_fatal(gps: dict[int, object]) -> None:
    exif = Image.Exif()
    exif[ExifTags.IFD.GPSInfo] = gps
    meta, stored, _ = photos.process(encode(gradient(40, 30), "JPEG", exif=exif), MAX)
    assert (meta.exif_lon, meta.exif_lat) == (None, None)
    assert meta.mime == "image/jpeg"
    assert len(stored) == meta.bytes > 0


def test_garbage_exif_block_is_ignored() -> None:
    data = encode(gradient(40, 30), "JPEG", exif=b"Exif\x00\x00this is not a TIFF header")
    meta, stored, _ = photos.process(data, MAX)
    assert (meta.exif_lon, meta.exif_lat) == (None, None)
    assert (meta.width, meta.height) == (40, 30)
    assert b"not a TIFF" not in stored


def test_png_with_alpha_keeps_alpha_and_thumb_is_flattened_on_white() -> None:
    img = gradient(400, 200, "RGBA")
    img.paste((0, 0, 0, 0), (0, 0, 400, 100))  # top half fully transparent
    exif = phone_exif(34.7466, 113.6253, orientation=1)
    data = encode(img, "PNG", exif=exif)
    meta, stored, thumb = photos.process(data, MAX)

    assert meta.mime == "image/png"
    assert (meta.width, meta.height) == (400, 200)
    assert meta.exif_lat == pytest.approx(34.7466, abs=1e-6)
    served = Image.open(io.BytesIO(stored))
    assert served.format == "PNG"
    assert served.mode == "RGBA"
    assert served.getpixel((10, 10))[3] == 0
    assert len(served.getexif()) == 0

    small = Image.open(io.BytesIO(thumb))
    assert small.format == "JPEG"
    assert small.size == (320, 160)
    r, g, b = small.getpixel((160, 20))
    assert min(r, g, b) >= 250  # transparent became white, not black


def test_webp_accepted_and_stripped() -> None:
    data = encode(
        gradient(300, 500),
        "WEBP",
        exif=phone_exif(34.7466, 113.6253, 1),
        xmp=b"<x:xmpmeta>secret</x:xmpmeta>",
        quality=80,
    )
    meta, stored, thumb = photos.process(data, MAX)
    assert meta.mime == "image/webp"
    assert (meta.width, meta.height) == (300, 500)
    assert meta.exif_lon == pytest.approx(113.6253, abs=1e-6)
    served = Image.open(io.BytesIO(stored))
    assert served.format == "WEBP"
    assert len(served.getexif()) == 0
    assert "xmp" not in served.info
    assert b"secret" not in stored
    assert Image.open(io.BytesIO(thumb)).size == (192, 320)


def test_jpeg_xmp_and_comment_are_stripped() -> None:
    data = encode(
        gradient(100, 80),
        "JPEG",
        xmp=b"<x:xmpmeta>secret-xmp</x:xmpmeta>",
        comment=b"secret-comment",
    )
    _, stored, _ = photos.process(data, MAX)
    assert b"secret-xmp" in data and b"secret-comment" in data
    assert b"secret-xmp" not in stored
    assert b"secret-comment" not in stored


def test_small_image_thumb_is_not_enlarged() -> None:
    _, _, thumb = photos.process(encode(gradient(120, 90), "PNG"), MAX)
    assert Image.open(io.BytesIO(thumb)).size == (120, 90)


def test_mpo_from_a_phone_counts_as_jpeg() -> None:
    data = encode(gradient(200, 100), "MPO", save_all=True, append_images=[gradient(50, 25)])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    meta, stored, _ = photos.process(data, MAX)
    assert meta.mime == "image/jpeg"
    assert Image.open(io.BytesIO(stored)).format == "JPEG"
    assert (meta.width, meta.height) == (200, 100)


def test_text_file_named_jpg_is_rejected(tmp_path: Path) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_text("hello, this is not a photo\n")
    with pytest.raises(InvalidInput) as err:
        photos.process(fake.read_bytes(), MAX)
    assert err.value.extra == {"field": "file"}
    assert "not a JPEG, PNG or WebP image" in err.value.message


def test_empty_upload_is_rejected() -> None:
    with pytest.raises(InvalidInput) as err:
        photos.process(b"", MAX)
    assert err.value.extra == {"field": "file"}


def test_truncated_jpeg_is_rejected(phone_jpeg: bytes) -> None:
    half = phone_jpeg[: len(phone_jpeg) // 2]
    assert Image.open(io.BytesIO(half)).format == "JPEG"  # the header alone looks fine
    with pytest.raises(InvalidInput) as err:
        photos.process(half, MAX)
    assert err.value.extra == {"field": "file"}
    assert "JPEG" in err.value.message and "truncated" in err.value.message


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_unsupported(fmt: str) -> None:
    with pytest.raises(UnsupportedMedia) as err:
        photos.process(encode(gradient(30, 20), fmt), MAX)
    assert err.value.message.startswith(f"{fmt} images are not accepted")
    assert err.value.extra == {"format": fmt}


def test_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(photos, "MAX_PIXELS", 100 * 100)
    photos.process(encode(gradient(100, 100), "PNG"), MAX)  # exactly the limit is fine
    with pytest.raises(TooLarge) as err:
        photos.process(encode(gradient(101, 100), "PNG"), MAX)
    assert "101x100" in err.value.message


def test_check_size() -> None:
    photos.check_size(MAX, MAX)  # at the limit is accepted
    with pytest.raises(TooLarge) as err:
        photos.check_size(MAX + 1, MAX)
    assert err.value.message == "photo is 10.0 MB; the limit is 10 MB"
    assert err.value.extra == {"size": MAX + 1, "max_bytes": MAX}


def test_process_checks_size_before_decoding(phone_jpeg: bytes) -> None:
    with pytest.raises(TooLarge):
        photos.process(phone_jpeg, len(phone_jpeg) - 1)


def test_path_for_layout(tmp_path: Path) -> None:
    sha = "ab" + "cd" + "e" * 60
    assert photos.path_for(tmp_path, sha, ".jpg") == tmp_path / "ab" / "cd" / f"{sha}.jpg"
    assert photos.path_for(tmp_path, sha, "png") == tmp_path / "ab" / "cd" / f"{sha}.png"
    assert photos.path_for(tmp_path, sha, ".png", thumb=True) == (
        tmp_path / "ab" / "cd" / f"{sha}.thumb.jpg"
    )
    with pytest.raises(ValueError):
        photos.path_for(tmp_path, "../../etc/passwd", ".jpg")


def test_save_is_idempotent_and_read_finds_files(tmp_path: Path, phone_jpeg: bytes) -> None:
    root = tmp_path / "photos"
    meta, stored, thumb = photos.process(phone_jpeg, MAX)
    photos.save(root, meta, stored, thumb)

    sha = meta.sha256
    main = root / sha[:2] / sha[2:4] / f"{sha}.jpg"
    small = root / sha[:2] / sha[2:4] / f"{sha}.thumb.jpg"
    assert main.read_bytes() == stored
    assert small.read_bytes() == thumb
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == sorted(
        [main.name, small.name]
    )  # no temporary files left behind
    mtime = main.stat().st_mtime_ns

    photos.save(root, meta, b"different bytes", b"other thumb")  # same hash: nothing rewritten
    assert main.read_bytes() == stored
    assert small.read_bytes() == thumb
    assert main.stat().st_mtime_ns == mtime
    assert len([p for p in root.rglob("*") if p.is_file()]) == 2

    assert photos.read(root, sha, "image/jpeg") == main
    assert photos.read(root, sha, "image/jpeg", thumb=True) == small


def test_read_missing_or_malformed_is_not_found(tmp_path: Path) -> None:
    sha = "0" * 64
    with pytest.raises(NotFound):
        photos.read(tmp_path, sha, "image/jpeg")
    with pytest.raises(NotFound):
        photos.read(tmp_path, "../" + sha, "image/jpeg")
    with pytest.raises(NotFound):
        photos.read(tmp_path, sha, "image/gif")
