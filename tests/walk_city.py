"""A hand-made walking place for the walk tests: in grid 41019900100101 of the case test
city, a street running 400 m east from O = (113.010, 34.070) and a cross street at
x = 200 m (−200..200 m), with buildings set at known distances (metres east/north of O):

=========  ==============  =========================================  ===============
building   footprint       nearest network point (its "door")         on the walk east
=========  ==============  =========================================  ===============
…001       40..60, 20..30  (50, 0), 20 m                              visited
…002       140..160,       (150, 0), 20 m                             visited (a stop)
           −30..−20
…003       290..310, 20..30 (300, 0), 20 m                            visited
…004       240..260,       (200, 100) on the cross street, 40 m       not: door 100 m
           95..105                                                    from the street
…005       340..360,       none within 60 m                           not (a jump
           145..155                                                   lands on it)
…006       90..110,        none within 60 m                           not (bad-accuracy
           −155..−145                                                 fixes sit on it)
=========  ==============  =========================================  ===============

The visited set is worked out by hand from docs/walks.md's rule (15 m from the footprint
or the door), not by the code under test.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta
from pathlib import Path

import geopandas as gpd
from shapely.geometry import LineString, box

from tests.conftest import write

GRID = "41019900100101"
O_LON, O_LAT = 113.010, 34.070
M_PER_DEG_LAT = 111_195.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(O_LAT))

FOOTPRINTS = {
    "001": (40, 20, 60, 30),
    "002": (140, -30, 160, -20),
    "003": (290, 20, 310, 30),
    "004": (240, 95, 260, 105),
    "005": (340, 145, 360, 155),
    "006": (90, -155, 110, -145),
}
VISITED_EAST = {GRID + "001", GRID + "002", GRID + "003"}
#: the cross street's x (metres east of O)
CROSS_X = 200.0


def ll(x: float, y: float) -> tuple[float, float]:
    """Metres east/north of O → (lon, lat)."""
    return O_LON + x / M_PER_DEG_LON, O_LAT + y / M_PER_DEG_LAT


def build(settings, folder: Path) -> None:
    """Import the buildings and the two streets (the grid must exist: case_city)."""
    from gis_service.imports.boundaries import BoundaryOptions, import_boundaries
    from gis_service.network.imports import import_network
    from gis_service.units.codes import Level

    shapes = {
        GRID + code: box(*ll(x0, y0), *ll(x1, y1)) for code, (x0, y0, x1, y1) in FOOTPRINTS.items()
    }
    frame = gpd.GeoDataFrame(
        {"code": list(shapes), "name": [f"楼{c[-3:]}" for c in shapes]},
        geometry=list(shapes.values()),
        crs=4326,
    )
    import_boundaries(
        write(frame, folder / "buildings.geojson"),
        BoundaryOptions(level=Level.building),
        settings=settings,
    )
    streets = [
        LineString([ll(-50, 0), ll(200, 0), ll(450, 0)]),
        LineString([ll(200, -200), ll(200, 0), ll(200, 200)]),
    ]
    net = gpd.GeoDataFrame({"highway": ["footway"] * 2}, geometry=streets, crs=4326)
    import_network(write(net, folder / "streets.geojson"), settings=settings)


def noise(i: int, scale: float = 5.0) -> tuple[float, float]:
    """A deterministic wobble of up to ``scale`` metres (phone GPS error)."""
    return scale * math.sin(i * 1.7), scale * math.cos(i * 2.3)


def fix(t: datetime, x: float, y: float, accuracy: float = 8.0) -> dict:
    lon, lat = ll(x, y)
    return {"t": t.isoformat(), "lon": lon, "lat": lat, "accuracy_m": accuracy}


def walk_east(start: datetime) -> list[dict]:
    """The noisy walk: east along the street at 1.3 m/s, a fix every 5 s, with
    * two jumps of 200–300 m (one onto building 005, one onto 004),
    * three fixes of 80 m accuracy lying on building 006,
    * a ten-minute stop at building 002's door, its fixes wandering by 8 m."""
    out: list[dict] = []
    t = start
    x = 0.0
    i = 0
    while x <= 400:
        dx, dy = noise(i)
        out.append(fix(t, x + dx, dy))
        i += 1
        t += timedelta(seconds=5)
        if i == 12:
            out.append(fix(t - timedelta(seconds=2), 350, 150))  # jump onto 005
        if i == 20:
            out.append(fix(t - timedelta(seconds=2), 250, 100))  # jump onto 004
        if i == 25:
            for k in range(3):  # poor accuracy, on 006
                out.append(fix(t - timedelta(seconds=3 - k * 0.5), 100, -150, accuracy=80))
        if abs(x - 150) < 0.7:  # the stop: ten minutes at 002's door
            for k in range(120):
                sx, sy = noise(1000 + k, 8.0)
                out.append(fix(t, 150 + sx, sy))
                t += timedelta(seconds=5)
        x += 6.5
    return out


def doors(settings) -> dict[str, tuple[float, float]]:
    """Each door as metres (east, north) of O, read with walks.sql ``building_doors`` and
    checked against the table above: 001–003 on the street beside their footprints, 004
    on the cross street beside its own, 005 and 006 none. Where along a footprint's side
    parallel to the street the door lies is PostGIS's choice (ST_ClosestPoint), hence
    read, not written here."""
    from sqlalchemy import text

    from gis_service.db.engine import get_engine
    from gis_service.walks.rules import ENTRANCE_MAX_M

    with get_engine(settings).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT code, ST_X(door), ST_Y(door) FROM building_doors("
                "(SELECT ST_Collect(geom) FROM admin_unit WHERE code LIKE :g || '___'), :m) "
                "WHERE door IS NOT NULL"
            ),
            {"g": GRID, "m": ENTRANCE_MAX_M},
        ).all()
    out = {
        code: ((lon - O_LON) * M_PER_DEG_LON, (lat - O_LAT) * M_PER_DEG_LAT)
        for code, lon, lat in rows
    }
    assert set(out) == {GRID + c for c in ("001", "002", "003", "004")}, out
    for code, (x, y) in out.items():
        x0, y0, x1, y1 = FOOTPRINTS[code[-3:]]
        if code.endswith("004"):
            assert abs(x - CROSS_X) < 0.01 and y0 - 0.01 <= y <= y1 + 0.01, (code, x, y)
            out[code] = (CROSS_X, y)
        else:
            assert x0 - 0.01 <= x <= x1 + 0.01 and abs(y) < 0.01, (code, x, y)
            out[code] = (x, 0.0)
    return out


def street_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Walking metres between two points of the streets (the street y = 0 or the cross
    street x = CROSS_X): along one street, or to the crossing and on."""
    (ax, ay), (bx, by) = a, b
    if ay == by == 0 or ax == bx == CROSS_X:
        return abs(ax - bx) + abs(ay - by)
    return abs(ax - CROSS_X) + abs(ay) + abs(bx - CROSS_X) + abs(by)


def best_order(
    start: tuple[float, float], door: dict[str, tuple[float, float]], codes
) -> tuple[list[str], float]:
    """The shortest walk from ``start`` through the doors of ``codes``, ending anywhere,
    by trying every order: (codes in order, metres)."""
    best: tuple[float, list[str]] | None = None
    for perm in itertools.permutations(sorted(codes)):
        pts = [start, *(door[c] for c in perm)]
        length = sum(street_m(p, q) for p, q in itertools.pairwise(pts))
        if best is None or length < best[0] - 1e-9:
            best = (length, list(perm))
    assert best is not None
    return best[1], best[0]
