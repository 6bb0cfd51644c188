"""The one coordinate converter: WGS-84 ⇄ GCJ-02 ⇄ BD-09.

Phones report WGS-84 (GPS); Chinese web maps (Amap, Tencent) use GCJ-02, the national
obfuscated datum, and Baidu uses BD-09, a further offset of GCJ-02. We store WGS-84.

Method and accuracy:
- WGS-84 → GCJ-02 is the publicly known forward formula (Krasovsky 1940 ellipsoid,
  a = 6378245 m, e² = 0.00669342162296594323). It reproduces the official offset
  (300–700 m around Zhengzhou) to well under a metre.
- GCJ-02 → WGS-84 has no closed form. We invert the forward formula by fixed-point
  iteration (w ← g − Δ(w)); the offset varies slowly, so it converges geometrically and
  we iterate until the step is below 1e-10° (≈ 0.01 mm), at most 12 rounds. Round trips are
  exact to that tolerance (tests pin it).
- GCJ-02 ⇄ BD-09 uses Baidu's published forward transform; its inverse is refined the same
  way, so BD-09 → WGS-84 is exact to the same tolerance.
- Outside mainland China (the usual bounding box) GCJ-02 equals WGS-84, as on the maps.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
_TOL = 1e-10
_MAX_ROUNDS = 12

Array = NDArray[np.float64]


class CoordSys(StrEnum):
    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


def _in_china(lon: Array, lat: Array) -> NDArray[np.bool_]:
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _gcj_offset(lon: Array, lat: Array) -> tuple[Array, Array]:
    x = lon - 105.0
    y = lat - 35.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    d_lat += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    d_lat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    d_lon += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    d_lon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    inside = _in_china(lon, lat)
    return np.where(inside, d_lon, 0.0), np.where(inside, d_lat, 0.0)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    d_lon, d_lat = _gcj_offset(lon_a, lat_a)
    return lon_a + d_lon, lat_a + d_lat


def _invert(forward, lon: Array, lat: Array, start: tuple[Array, Array]) -> tuple[Array, Array]:
    """Solve forward(w) = target for w by fixed-point iteration from ``start``."""
    w_lon, w_lat = start
    for _ in range(_MAX_ROUNDS):
        f_lon, f_lat = forward(w_lon, w_lat)
        e_lon, e_lat = f_lon - lon, f_lat - lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if max(np.max(np.abs(e_lon), initial=0.0), np.max(np.abs(e_lat), initial=0.0)) < _TOL:
            break
    return w_lon, w_lat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return _invert(wgs84_to_gcj02, lon_a, lat_a, (lon_a.copy(), lat_a.copy()))


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x, y = lon_a - 0.0065, lat_a - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    first = (z * np.cos(theta), z * np.sin(theta))
    return _invert(gcj02_to_bd09, lon_a, lat_a, first)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: ArrayLike, lat: ArrayLike, coord_sys: CoordSys | str) -> tuple[Array, Array]:
    """Any supported system to WGS-84 (what we store)."""
    match CoordSys(coord_sys):
        case CoordSys.wgs84:
            return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        case CoordSys.gcj02:
            return gcj02_to_wgs84(lon, lat)
        case CoordSys.bd09:
            return bd09_to_wgs84(lon, lat)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, coord_sys: CoordSys | str) -> tuple[Array, Array]:
    """WGS-84 to any supported system (for maps drawn on Chinese basemaps)."""
    match CoordSys(coord_sys):
        case CoordSys.wgs84:
            return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        case CoordSys.gcj02:
            return wgs84_to_gcj02(lon, lat)
        case CoordSys.bd09:
            return wgs84_to_bd09(lon, lat)


def point_to_wgs84(lon: float, lat: float, coord_sys: CoordSys | str) -> tuple[float, float]:
    x, y = to_wgs84(lon, lat, coord_sys)
    return float(x), float(y)


def geometry_to_wgs84(geom, coord_sys: CoordSys | str):
    """Convert every vertex of a shapely geometry (vectorised over the whole geometry)."""
    import shapely

    if CoordSys(coord_sys) is CoordSys.wgs84:
        return geom

    def _convert(xy: Array) -> Array:
        x, y = to_wgs84(xy[:, 0], xy[:, 1], coord_sys)
        return np.column_stack([x, y])

    return shapely.transform(geom, _convert)
