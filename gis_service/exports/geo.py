"""Layers GIS clients open: GeoPackage and GeoJSON, written by GDAL (through pyogrio).

The rows go to GDAL as Arrow record batches of ``BATCH`` rows (``pyogrio.write_arrow``
reads the stream batch by batch), so a million cases never sit in memory. Geometries are
WKB in EPSG:4326 (WGS 84, longitude/latitude: what the database stores). GeoJSON is
written as RFC 7946 (GDAL's ``RFC7946=YES``: no ``crs`` member, coordinates in WGS 84
with 7 decimals). The field types follow the columns' kinds (columns.py): date-times keep
their instant (GeoJSON with the district's offset, ``GIS_TIMEZONE``; GeoPackage in UTC as
its standard asks), shares are numbers 0…1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gis_service.exports.columns import GEOMETRY, Column, Kind, Row, Table
from gis_service.settings import Settings
from gis_service.timezone import local_now

#: rows per Arrow record batch handed to GDAL
BATCH = 10_000
CRS = "EPSG:4326"
GEOMETRY_FIELD = "geometry"

DRIVERS = {"gpkg": "GPKG", "geojson": "GeoJSON"}
LAYER_OPTIONS: dict[str, dict[str, str]] = {"geojson": {"RFC7946": "YES"}}


def _arrow_type(kind: Kind, tz: str) -> Any:
    import pyarrow as pa

    return {
        Kind.text: pa.string(),
        Kind.int: pa.int64(),
        Kind.number: pa.float64(),
        Kind.date: pa.date32(),
        Kind.datetime: pa.timestamp("s", tz=tz),
        Kind.percent: pa.float64(),
        Kind.bool: pa.bool_(),
    }[kind]


def _batches(table: Table, schema: Any, progress: Callable[[int], None] | None) -> Iterator[Any]:
    import pyarrow as pa

    cols: list[Column] = table.columns
    names = [c.name for c in cols]
    n = 0
    chunk: list[Row] = []

    def batch(rows: list[Row]) -> Any:
        arrays = [
            pa.array([r.get(name) for r in rows], type=schema.field(name).type) for name in names
        ]
        arrays.append(pa.array([r.get(GEOMETRY) for r in rows], type=pa.binary()))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    for row in table.rows:
        chunk.append(row)
        if len(chunk) == BATCH:
            n += len(chunk)
            yield batch(chunk)
            chunk = []
            if progress:
                progress(n)
    if chunk or n == 0:
        n += len(chunk)
        yield batch(chunk)
    if progress:
        progress(n)


def district_offset(settings: Settings) -> str:
    """The district's UTC offset now as ``+08:00``: GDAL reads an Arrow timestamp's zone
    only as UTC or a fixed offset, not an IANA name."""
    z = local_now(settings).strftime("%z")
    return f"{z[:3]}:{z[3:]}"


def write_gis(
    table: Table,
    out: Path,
    fmt: str,
    settings: Settings,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``table`` (rows carrying ``GEOMETRY``) to ``out`` as ``fmt`` (``gpkg`` or
    ``geojson``), one layer named after the table; returns the number of features."""
    import pyarrow as pa
    from pyogrio import write_arrow

    # GeoPackage stores date-times in UTC ("Z", GeoPackage 1.4 §1.1.1.1.1); GeoJSON keeps
    # the district's offset, as our API writes times
    tz = "UTC" if fmt == "gpkg" else district_offset(settings)

    fields = [pa.field(c.name, _arrow_type(c.kind, tz)) for c in table.columns]
    fields.append(
        pa.field(GEOMETRY_FIELD, pa.binary(), metadata={"ARROW:extension:name": "ogc.wkb"})
    )
    schema = pa.schema(fields)
    written = 0

    def counted(n: int) -> None:
        nonlocal written
        written = n
        if progress:
            progress(n)

    reader = pa.RecordBatchReader.from_batches(schema, _batches(table, schema, counted))
    write_arrow(
        reader,
        out,
        layer=table.kind,
        driver=DRIVERS[fmt],
        geometry_name=GEOMETRY_FIELD,
        geometry_type=table.geometry_type or "Unknown",
        crs=CRS,
        layer_options=LAYER_OPTIONS.get(fmt),
    )
    return written
