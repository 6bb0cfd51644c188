"""Generated service points: where the demo's red homes, outlets and party organisations are.

Counts from the seeds (000, 004): 21 red homes and 273 convenience outlets in Jinshui;
party organisations follow the people (a branch in most grids of the old town, fewer at the
edge, so that the one-kilometre reach has real gaps to find).
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
from shapely.geometry import Point

from gis_service.demo.hierarchy import Hierarchy, Unit
from gis_service.demo.plane import sample_points
from gis_service.units.codes import CODE_LENGTH, Level

community_length = CODE_LENGTH[Level.community]

HOURS = {
    "convenience_outlet": "07:00-22:00",
    "health_station": "08:00-20:00",
    "police_post": "00:00-24:00",
}
DEFAULT_HOURS = "08:30-12:00,14:30-18:00"


def _near(unit: Unit, rng: np.random.Generator, spread: float = 40.0) -> tuple[float, float]:
    c = unit.metric.representative_point()
    return c.x + float(rng.uniform(-spread, spread)), c.y + float(rng.uniform(-spread, spread))


def generate(h: Hierarchy, rng: np.random.Generator) -> dict[str, gpd.GeoDataFrame]:
    subs = h.levels["subdistrict"]
    comms = h.levels["community"]
    grids = h.levels["grid"]
    buildings = h.levels["building"]
    by_parent: dict[str, list[Unit]] = {}
    for b in buildings:
        by_parent.setdefault(b.parent_code or "", []).append(b)
    comm_buildings: dict[str, list[Unit]] = {}
    for b in buildings:
        comm_buildings.setdefault(b.code[:community_length], []).append(b)
    names = {u.code: u.name for u in [*subs, *comms, *grids]}
    out: dict[str, list[dict[str, Any]]] = {}

    def add(kind: str, name: str, xy: tuple[float, float], address: str) -> None:
        n = len(out.setdefault(kind, [])) + 1
        out[kind].append(
            {
                "id": f"demo:{kind}:{n:04d}",
                "name": name,
                "address": address,
                "opening_hours": HOURS.get(kind, DEFAULT_HOURS),
                "phone": f"0371-6{int(rng.integers(0, 10**7)):07d}",
                "xy": xy,
            }
        )

    def busiest(units: list[Unit]) -> Unit:
        return max(units, key=lambda u: u.population)

    for s in subs:
        members = [b for b in buildings if b.code.startswith(s.code)]
        add(
            "party_service_center",
            f"{s.name}党群服务中心",
            _near(busiest(members), rng),
            f"{s.name}{int(rng.integers(1, 300))}号",
        )
        add(
            "volunteer_studio",
            f"{s.name}党员志愿服务工作室",
            _near(members[int(rng.integers(len(members)))], rng),
            f"{s.name}",
        )
    for c in comms:
        members = comm_buildings.get(c.code, [])
        if not members:
            continue
        add(
            "community_center",
            f"{c.name}服务中心",
            _near(busiest(members), rng),
            f"{c.name}{int(rng.integers(1, 200))}号",
        )
        if rng.uniform() < 0.45:
            add(
                "health_station",
                f"{c.name}卫生服务站",
                _near(members[int(rng.integers(len(members)))], rng),
                c.name,
            )
        if rng.uniform() < 0.35:
            add(
                "police_post",
                f"{c.name}警务室",
                _near(members[int(rng.integers(len(members)))], rng),
                c.name,
            )
    pops = np.array([c.population for c in comms], dtype=float)
    for idx in rng.choice(len(comms), size=21, replace=False, p=pops / pops.sum()):
        c = comms[int(idx)]
        members = comm_buildings.get(c.code) or []
        if members:
            add("red_home", f"{c.name}红色家园", _near(busiest(members), rng), c.name)
    for idx in rng.choice(len(comms), size=11, replace=False, p=pops / pops.sum()):
        c = comms[int(idx)]
        members = comm_buildings.get(c.code) or []
        if members:
            add(
                "love_supermarket",
                f"{c.name}爱心超市",
                _near(members[int(rng.integers(len(members)))], rng),
                c.name,
            )

    gx = np.array([g.metric.representative_point().x for g in grids])
    gy = np.array([g.metric.representative_point().y for g in grids])
    dens = h.density(gx, gy)
    dens = dens / dens.max()
    for g, d in zip(grids, dens, strict=True):
        members = by_parent.get(g.code, [])
        if members and rng.uniform() < 0.15 + 0.8 * float(d) ** 0.7:
            add(
                "party_org",
                f"{g.name}党支部",
                _near(members[0], rng, 25.0),
                names[g.code[:community_length]],
            )
    district = h.levels["district"][0]
    for x, y in sample_points(district.metric, 273, rng, h.density):
        add(
            "convenience_outlet",
            f"便民网点{len(out.get('convenience_outlet', [])) + 1:03d}",
            (float(x), float(y)),
            district.name,
        )

    frames: dict[str, gpd.GeoDataFrame] = {}
    for kind, rows in out.items():
        pts = [h.plane.lonlat(Point(r.pop("xy"))) for r in rows]
        frames[kind] = gpd.GeoDataFrame(rows, geometry=pts, crs=4326)
    return frames
