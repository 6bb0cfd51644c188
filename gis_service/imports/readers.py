"""Readers per format, all returning a GeoDataFrame in EPSG:4326 (WGS-84).

Real offices hand over GeoJSON, GeoPackage, Shapefiles whose .dbf is GBK-encoded without a
.cpg, and spreadsheets with WKT or lon/lat columns. Each reader says what it assumed
(encoding, CRS) so the QA report can tell the user.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from gis_service.errors import ImportRejected
from gis_service.geo.bounds import GeometryLimits, excesses
from gis_service.geo.coords import CoordSys, geometry_to_wgs84
from gis_service.imports.fields import pick_column
from gis_service.imports.problems import Problems
from gis_service.settings import get_settings

VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".zip"}
LON_NAMES = ("lon", "lng", "longitude", "x", "经度")
LAT_NAMES = ("lat", "latitude", "y", "纬度")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape")
TEXT_ENCODINGS = ("utf-8-sig", "gb18030")


@dataclass
class ReadResult:
    frame: gpd.GeoDataFrame
    source_crs: str
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class DbfEncoding:
    """How a shapefile's .dbf text is decoded.

    ``encoding`` is what to pass to pyogrio (None: GDAL decodes it by the .cpg or by the
    code page the .dbf header declares); ``label`` is what the QA report shows.
    """

    encoding: str | None
    label: str | None
    note: str | None = None


def _dbf_language_driver(dbf: Path) -> int | None:
    """The dBASE language driver ID (LDID): byte 29 of the .dbf header; 0 declares none."""
    with dbf.open("rb") as f:
        header = f.read(32)
    return header[29] if len(header) >= 32 else None


def dbf_encoding(shp: Path) -> DbfEncoding:
    """How to decode a shapefile's .dbf, preferring what the files declare to a guess.

    1. A .cpg beside it names the encoding: GDAL reads it (label: the .cpg's text).
    2. Else a language driver ID in the .dbf header (e.g. 0x4D = code page 936, GBK) names
       the code page: GDAL maps it (shapelib calls it ``LDID/77``) and decodes the text.
       pyogrio reports a layer whose text GDAL recodes as ``UTF-8``; that is the check
       that GDAL knows this code page.
    3. Only a .dbf declaring nothing (LDID 0, or an ID GDAL does not know) is guessed:
       UTF-8 if the whole body decodes as UTF-8, else GB18030 (a superset of GBK/GB2312,
       which Chinese desktop GIS writes by default).
    """
    cpg = next((p for p in (shp.with_suffix(".cpg"), shp.with_suffix(".CPG")) if p.exists()), None)
    if cpg is not None:
        return DbfEncoding(None, cpg.read_text(errors="replace").strip() or None)
    dbf = next((p for p in (shp.with_suffix(".dbf"), shp.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return DbfEncoding(None, None)
    ldid = _dbf_language_driver(dbf)
    if ldid is None:
        return DbfEncoding(None, None)
    unknown = ""
    if ldid:
        try:
            gdal_recodes = pyogrio.read_info(shp)["encoding"] == "UTF-8"
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError):
            gdal_recodes = False
        if gdal_recodes:
            return DbfEncoding(
                None,
                f"LDID/{ldid}",
                f"no .cpg beside the shapefile: read the .dbf in the code page its header "
                f"declares (dBASE language driver ID 0x{ldid:02X})",
            )
        unknown = f" (its language driver ID 0x{ldid:02X} is not one GDAL knows)"
    guess = _guess_dbf_text(dbf)
    if guess is None:
        return DbfEncoding(None, None)
    return DbfEncoding(
        guess,
        guess,
        f"no .cpg beside the shapefile and no code page in the .dbf header{unknown}: "
        f"read the .dbf as {guess}",
    )


def _guess_dbf_text(dbf: Path) -> str | None:
    raw = dbf.read_bytes()
    header_len = struct.unpack("<H", raw[8:10])[0]
    body = raw[header_len:]
    for guess in ("UTF-8", "GB18030"):
        try:
            body.decode(guess)
        except UnicodeDecodeError:
            continue
        return guess
    return None


def _read_text_table(path: Path) -> tuple[pd.DataFrame, str]:
    last: Exception | None = None
    for enc in TEXT_ENCODINGS:
        try:
            return pd.read_csv(path, encoding=enc, dtype=str, keep_default_na=False), enc
        except UnicodeDecodeError as exc:
            last = exc
    raise ImportRejected(f"{path.name}: text is neither UTF-8 nor GB18030/GBK ({last})")


def _read_csv(
    path: Path, wkt_field: str | None, lon_field: str | None, lat_field: str | None
) -> tuple[gpd.GeoDataFrame, str]:
    df, enc = _read_text_table(path)
    cols = list(df.columns)
    wkt_col = pick_column(cols, wkt_field, WKT_NAMES, "WKT geometry")
    if wkt_col:
        geoms = []
        for i, text in enumerate(df[wkt_col], start=1):
            try:
                geoms.append(shapely.from_wkt(text) if text.strip() else None)
            except shapely.errors.GEOSException as exc:
                raise ImportRejected(
                    f"row {i}: column {wkt_col!r} is not valid WKT ({exc})", feature=i
                ) from exc
        frame = gpd.GeoDataFrame(df.drop(columns=[wkt_col]), geometry=geoms, crs=None)
        return frame, enc
    lon_col = pick_column(cols, lon_field, LON_NAMES, "longitude")
    lat_col = pick_column(cols, lat_field, LAT_NAMES, "latitude")
    if not (lon_col and lat_col):
        raise ImportRejected(
            f"{path.name}: no geometry column; expected a WKT column ({', '.join(WKT_NAMES)}) "
            f"or lon/lat columns ({', '.join(LON_NAMES)} / {', '.join(LAT_NAMES)}); "
            f"columns are {cols}"
        )
    lon = pd.to_numeric(df[lon_col].str.strip(), errors="coerce")
    lat = pd.to_numeric(df[lat_col].str.strip(), errors="coerce")
    bad = np.flatnonzero(~(np.isfinite(lon.to_numpy()) & np.isfinite(lat.to_numpy())))
    problems = Problems()
    for i in bad:
        problems.add(
            int(i) + 1,
            f"{lon_col}/{lat_col} = {df[lon_col].iat[i]!r}/{df[lat_col].iat[i]!r} "
            "is not a finite number",
            field=lon_col if not np.isfinite(lon.iat[i]) else lat_col,
        )
    problems.raise_if_any(path.name)
    frame = gpd.GeoDataFrame(
        df.drop(columns=[lon_col, lat_col]), geometry=gpd.points_from_xy(lon, lat), crs=None
    )
    return frame, enc


def _parse_crs(text: str) -> CRS:
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise ImportRejected(f"--crs {text!r} is not a CRS pyproj knows ({exc})") from exc


def read_vector(
    path: Path,
    *,
    crs: str | None = None,
    coord_sys: CoordSys | str = CoordSys.wgs84,
    layer: str | None = None,
    encoding: str | None = None,
    wkt_field: str | None = None,
    lon_field: str | None = None,
    lat_field: str | None = None,
    limits: GeometryLimits | None = None,
) -> ReadResult:
    """Read any supported file into EPSG:4326, converting GCJ-02/BD-09 to WGS-84.

    Every feature's geometry is held to ``limits`` (default: the settings' import limits,
    ``geo/bounds.py``) right after reading, before any reprojection or repair: past them
    ImportRejected (422) lists each feature at fault with its count and the limit."""
    path = Path(path)
    if not path.exists():
        raise ImportRejected(f"file not found: {path}")
    suffix = path.suffix.lower()
    notes: list[str] = []
    used_encoding = encoding
    if suffix == ".csv":
        frame, used_encoding = _read_csv(path, wkt_field, lon_field, lat_field)
    elif suffix in VECTOR_SUFFIXES:
        read_encoding = encoding
        if suffix == ".shp" and encoding is None:
            dbf = dbf_encoding(path)
            read_encoding, used_encoding = dbf.encoding, dbf.label
            if dbf.note:
                notes.append(dbf.note)
        try:
            frame = pyogrio.read_dataframe(path, layer=layer, encoding=read_encoding)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise ImportRejected(f"{path.name}: cannot read ({exc})") from exc
    else:
        raise ImportRejected(
            f"{path.name}: unsupported format {suffix or '(none)'}; use GeoJSON, GeoPackage, "
            "Shapefile or CSV"
        )

    check_sizes(frame, path.name, limits or GeometryLimits.of(get_settings()))
    _check_finite(frame, path.name)
    if frame.geometry.has_z.any():
        frame = frame.set_geometry(shapely.force_2d(frame.geometry.values), crs=frame.crs)
        notes.append("dropped the heights (Z) of 3-D coordinates: units and points are 2-D")
    declared = frame.crs
    if crs:
        target = _parse_crs(crs)
        if declared is not None and not CRS(declared).equals(target):
            notes.append(f"file declares {CRS(declared).to_string()}; --crs {crs} overrides it")
        frame = frame.set_crs(target, allow_override=True)
    elif declared is None:
        frame = frame.set_crs("EPSG:4326")
        notes.append("no CRS in the file: assumed EPSG:4326 (lon/lat)")
    source_crs = frame.crs.to_string()

    _check_lonlat_plausible(frame, path.name, source_crs)
    if not frame.crs.equals(CRS.from_epsg(4326)):
        frame = frame.to_crs(4326)
    _check_lonlat_plausible(frame, path.name, source_crs)

    if CoordSys(coord_sys) is not CoordSys.wgs84:
        frame = frame.set_geometry(
            [geometry_to_wgs84(g, coord_sys) if g is not None else None for g in frame.geometry],
            crs=4326,
        )
        notes.append(f"converted {CoordSys(coord_sys).value} coordinates to WGS-84")
    return ReadResult(frame=frame, source_crs=source_crs, encoding=used_encoding, notes=notes)


def check_sizes(frame: gpd.GeoDataFrame, name: str, limits: GeometryLimits) -> None:
    """Refuse the file if any feature, or all of them together, are past ``limits``: one
    problem per feature (``field: geometry``, ``count``, ``limit``), nothing written."""
    problems = Problems()
    for e in excesses(frame.geometry.values, limits):
        problems.add(e.feature, e.message, field="geometry", count=e.count, limit=e.limit)
    problems.raise_if_any(name)


def _check_finite(frame: gpd.GeoDataFrame, name: str) -> None:
    """Every coordinate is a finite number: NaN or infinity is a problem of its feature."""
    coords, index = shapely.get_coordinates(frame.geometry.values, return_index=True)
    problems = Problems()
    for i in np.unique(index[~np.isfinite(coords).all(axis=1)]):
        problems.add(
            int(i) + 1,
            "has a coordinate that is not a finite number (NaN or infinity)",
            field="geometry",
        )
    problems.raise_if_any(name)


def _check_lonlat_plausible(frame: gpd.GeoDataFrame, name: str, source_crs: str) -> None:
    if frame.crs is None or not frame.crs.is_geographic or frame.empty:
        return
    geoms = frame.geometry[frame.geometry.notna() & ~frame.geometry.is_empty]
    if geoms.empty:
        return
    minx, miny, maxx, maxy = geoms.total_bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        bounds = ", ".join(f"{v:,.1f}" for v in (minx, miny, maxx, maxy))
        raise ImportRejected(
            f"{name}: coordinates ({bounds}) are not longitude/latitude as {source_crs} says; "
            "the file is probably in a projected CRS: pass --crs EPSG:xxxx"
        )
