"""The coordinate converter: exact inverses, the size of the offsets, and China's edge."""

import numpy as np
import pytest
from pyproj import Geod

from gis_service.geo import coords

GEOD = Geod(ellps="WGS84")
rng = np.random.default_rng(7)
LON = rng.uniform(75, 134, 2000)
LAT = rng.uniform(18, 53, 2000)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_round_trip_is_exact_to_a_millimetre(system):
    x, y = coords.from_wgs84(LON, LAT, system)
    back_x, back_y = coords.to_wgs84(x, y, system)
    assert np.max(metres(LON, LAT, back_x, back_y)) < 0.001


def test_gcj02_offset_in_zhengzhou_is_hundreds_of_metres():
    gx, gy = coords.wgs84_to_gcj02(113.68, 34.78)
    offset = metres(113.68, 34.78, gx, gy)
    assert 100 < offset < 700
    assert gx > 113.68  # GCJ-02 shifts Zhengzhou east


def test_bd09_adds_baidus_offset_to_gcj02():
    bx, by = coords.gcj02_to_bd09(116.404, 39.915)
    assert bx - 116.404 == pytest.approx(0.0065, abs=0.001)
    assert by - 39.915 == pytest.approx(0.006, abs=0.001)


def test_outside_china_gcj02_is_wgs84():
    x, y = coords.wgs84_to_gcj02(2.35, 48.85)
    assert (float(x), float(y)) == (2.35, 48.85)
    assert coords.point_to_wgs84(2.35, 48.85, "gcj02") == (2.35, 48.85)


def test_geometry_conversion_moves_every_vertex():
    from shapely.geometry import box

    poly = box(113.6, 34.7, 113.7, 34.8)
    moved = coords.geometry_to_wgs84(poly, "gcj02")
    assert moved.is_valid and len(moved.exterior.coords) == 5
    for (x0, y0), (x1, y1) in zip(poly.exterior.coords, moved.exterior.coords, strict=True):
        x, y = coords.gcj02_to_wgs84(x0, y0)
        assert (x1, y1) == pytest.approx((float(x), float(y)), abs=1e-12)
        assert (x1, y1) != (x0, y0)


def test_unknown_coord_sys_is_refused():
    with pytest.raises(ValueError):
        coords.to_wgs84(113.0, 34.0, "utm")
