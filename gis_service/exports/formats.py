"""The export formats, their media types and file names, and the one ``write`` every path
(API, job, CLI) calls.

=========  ===================================================================  ==========
format     media type                                                           written by
=========  ===================================================================  ==========
csv        text/csv; charset=utf-8 (RFC 4180, UTF-8 with a byte-order mark)    tabular.py
xlsx       application/vnd.openxmlformats-officedocument.spreadsheetml.sheet   tabular.py
gpkg       application/geopackage+sqlite3 (OGC GeoPackage 1.4, IANA)           geo.py
geojson    application/geo+json (RFC 7946)                                     geo.py
=========  ===================================================================  ==========
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from gis_service.errors import InvalidInput
from gis_service.exports import geo, tabular
from gis_service.exports.columns import Lang, Table
from gis_service.settings import Settings


class Format(StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    gpkg = "gpkg"
    geojson = "geojson"


MEDIA_TYPES: dict[Format, str] = {
    Format.csv: "text/csv; charset=utf-8",
    Format.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Format.gpkg: "application/geopackage+sqlite3",
    Format.geojson: "application/geo+json",
}
#: the formats that carry geometry
GIS: frozenset[Format] = frozenset({Format.gpkg, Format.geojson})


def format_of(name: str, field: str = "format") -> Format:
    """The format a name asks for (``csv``, ``.xlsx``, ``cases.gpkg``…); 422 naming
    ``field`` otherwise."""
    suffix = name.rsplit(".", 1)[-1].lower()
    try:
        return Format(suffix)
    except ValueError:
        raise InvalidInput(
            f"{name!r}: an export is written as {', '.join(f.value for f in Format)}",
            field=field,
        ) from None


def write(
    table: Table,
    fmt: Format,
    out: Path,
    lang: Lang,
    settings: Settings,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``table`` to ``out`` in ``fmt``; returns the number of rows (features). The
    table's source is closed however it ends; a failed write leaves no file behind."""
    try:
        if fmt is Format.csv:
            return tabular.write_csv(table, out, lang, settings, progress)
        if fmt is Format.xlsx:
            return tabular.write_xlsx(table, out, lang, settings, progress)
        return geo.write_gis(table, out, fmt.value, settings, progress)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    finally:
        table.close()


def content_disposition(filename: str) -> str:
    """``attachment`` with the file's name for every browser (RFC 6266 §4.3): an ASCII
    ``filename`` (other characters as ``_``) and the UTF-8 ``filename*`` (RFC 8187, the
    successor of RFC 5987) that carries a Chinese name."""
    ascii_name = "".join(
        ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\' else "_" for ch in filename
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
