"""The generated four-level grid inside one real district outline.

Sized like the seed article (004): 17 subdistricts, 160 communities, about 571 grids and
1,276 building units, about 1.415 M residents, denser in the old town.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from gis_service.demo import names
from gis_service.demo.plane import Density, Plane, allocate, as_multipolygon, partition
from gis_service.units.codes import child_code

# Persons per household in Zhengzhou's urban districts (7th census: about 2.6).
PERSONS_PER_HOUSEHOLD = 2.6


@dataclass(frozen=True)
class DemoSize:
    subdistricts: int = 17
    communities: int = 160
    grids: int = 571
    buildings: int = 1276
    population: int = 1_415_000


@dataclass
class Unit:
    code: str
    name: str
    parent_code: str | None
    geom: MultiPolygon  # WGS-84
    metric: BaseGeometry  # the same ground on the plane
    population: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def households(self) -> int:
        return round(self.population / PERSONS_PER_HOUSEHOLD)


@dataclass
class Hierarchy:
    plane: Plane
    density: Density
    levels: dict[str, list[Unit]]
    roster: list[dict[str, Any]]


def _to_wgs84(plane: Plane, cell: BaseGeometry, parent_wgs: BaseGeometry) -> MultiPolygon:
    """Back to WGS-84, clipped to the parent's own vertices so that borders coincide."""
    clipped = as_multipolygon(plane.lonlat(cell).intersection(parent_wgs))
    return MultiPolygon([p for p in clipped.geoms if p.area > 1e-12])


def _weights(cells: list[BaseGeometry], density: Density) -> np.ndarray:
    out = []
    for c in cells:
        minx, miny, maxx, maxy = c.bounds
        xs, ys = np.meshgrid(np.arange(minx, maxx, 100.0) + 50, np.arange(miny, maxy, 100.0) + 50)
        inside = shapely.contains_xy(c, xs.ravel(), ys.ravel())
        w = density(xs.ravel()[inside], ys.ravel()[inside]).sum() if inside.any() else 0.0
        out.append(
            max(float(w), float(density(*[np.array([c.centroid.x]), np.array([c.centroid.y])])[0]))
        )
    return np.array(out)


def _split(
    plane: Plane,
    parents: list[Unit],
    total: int,
    minimum: int,
    rng: np.random.Generator,
    density: Density,
    name_for,
) -> list[Unit]:
    counts = allocate(total, _weights([p.metric for p in parents], density), minimum)
    children: list[Unit] = []
    for parent, n in zip(parents, counts, strict=True):
        cells = partition(parent.metric, int(n), rng, density)
        for i, (cell, voronoi_cell) in enumerate(cells, start=1):
            geom = _to_wgs84(plane, voronoi_cell, parent.geom)
            if geom.is_empty:
                continue
            code = child_code(parent.code, i)
            children.append(Unit(code, name_for(parent, i, rng), parent.code, geom, cell))
    return children


def _community_namer():
    used: set[str] = set()

    def name_for(parent: Unit, i: int, rng: np.random.Generator) -> str:
        for _ in range(200):
            stem = names.COMMUNITY_STEMS[int(rng.integers(len(names.COMMUNITY_STEMS)))]
            suffix = names.COMMUNITY_SUFFIXES[int(rng.integers(len(names.COMMUNITY_SUFFIXES)))]
            name = f"{stem}{suffix}社区"
            if name not in used:
                used.add(name)
                return name
        return f"{parent.name.removesuffix('街道')}第{i}社区"

    return name_for


def _place_compounds(grid: BaseGeometry, count: int, rng: np.random.Generator) -> list[Polygon]:
    """Residential compounds (楼院) as street-aligned rectangles inside the grid."""
    inner = grid.buffer(-12)
    if inner.is_empty:
        inner = grid.buffer(-2)
    placed: list[Polygon] = []
    minx, miny, maxx, maxy = grid.bounds
    for _ in range(count):
        for attempt in range(400):
            shrink = 1.0 if attempt < 200 else 0.5
            w = float(rng.uniform(60, 160)) * shrink
            h = float(rng.uniform(50, 130)) * shrink
            x = float(rng.uniform(minx, maxx - w))
            y = float(rng.uniform(miny, maxy - h))
            rect = box(x, y, x + w, y + h)
            if inner.contains(rect) and not any(rect.distance(p) < 8 for p in placed):
                placed.append(rect)
                break
        else:
            c = inner.representative_point() if not inner.is_empty else grid.representative_point()
            rect = box(c.x - 10, c.y - 10, c.x + 10, c.y + 10).intersection(grid)
            placed.append(rect)
    placed.sort(key=lambda r: (-round(r.centroid.y, -1), r.centroid.x))
    return placed


def _person(rng: np.random.Generator) -> str:
    surname = names.SURNAMES[int(rng.integers(len(names.SURNAMES)))]
    given = "".join(
        names.GIVEN[int(rng.integers(len(names.GIVEN)))] for _ in range(int(rng.integers(1, 3)))
    )
    return surname + given


def _phone(rng: np.random.Generator) -> str:
    return f"1{int(rng.choice([37, 38, 39, 55, 58, 86, 89]))}{int(rng.integers(0, 10**8)):08d}"


def generate(
    district_code: str,
    district_name: str,
    district_wgs: BaseGeometry,
    density: Density,
    plane: Plane,
    size: DemoSize,
    rng: np.random.Generator,
) -> Hierarchy:
    district = Unit(
        district_code,
        district_name,
        None,
        as_multipolygon(district_wgs),
        plane.metric(district_wgs),
    )
    sub_names = iter(names.SUBDISTRICTS)
    subdistricts = _split(
        plane,
        [district],
        size.subdistricts,
        1,
        rng,
        density,
        lambda p, i, r: next(sub_names, f"第{i}街道"),
    )
    communities = _split(plane, subdistricts, size.communities, 4, rng, density, _community_namer())
    grids = _split(
        plane,
        communities,
        size.grids,
        2,
        rng,
        density,
        lambda p, i, r: f"{p.name.removesuffix('社区')}第{i}网格",
    )

    counts = allocate(size.buildings, _weights([g.metric for g in grids], density), 1)
    buildings: list[Unit] = []
    for grid, n in zip(grids, counts, strict=True):
        for i, rect in enumerate(_place_compounds(grid.metric, int(n), rng), start=1):
            geom = _to_wgs84(plane, rect, grid.geom)
            if geom.is_empty:
                continue
            buildings.append(
                Unit(child_code(grid.code, i), f"{grid.name}{i}号院", grid.code, geom, rect)
            )

    _spread_population(buildings, size.population, density, rng)
    by_code = {u.code: u for u in [district, *subdistricts, *communities, *grids]}
    for b in buildings:
        code = b.parent_code
        while code:
            by_code[code].population += b.population
            code = by_code[code].parent_code

    roster: list[dict[str, Any]] = []
    for g in grids:
        roster.append(
            {
                "unit_code": g.code,
                "role": "grid_leader",
                "name": _person(rng),
                "phone": _phone(rng),
                "sort": 0,
            }
        )
        for k in range(int(rng.integers(1, 3))):
            roster.append(
                {
                    "unit_code": g.code,
                    "role": "grid_worker",
                    "name": _person(rng),
                    "phone": _phone(rng),
                    "sort": k + 1,
                }
            )
    for b in buildings:
        roster.append(
            {
                "unit_code": b.code,
                "role": "building_head",
                "name": _person(rng),
                "phone": _phone(rng),
                "sort": 0,
            }
        )
    return Hierarchy(
        plane=plane,
        density=density,
        levels={
            "district": [district],
            "subdistrict": subdistricts,
            "community": communities,
            "grid": grids,
            "building": buildings,
        },
        roster=roster,
    )


def _spread_population(
    buildings: list[Unit], total: int, density: Density, rng: np.random.Generator
) -> None:
    cx = np.array([b.metric.centroid.x for b in buildings])
    cy = np.array([b.metric.centroid.y for b in buildings])
    weight = density(cx, cy) * rng.lognormal(0.0, 0.35, len(buildings))
    pops = allocate(total, weight, 50)
    for b, p in zip(buildings, pops, strict=True):
        b.population = int(p)
