"""Load the demo city: real district outlines, and inside 金水区 a generated grid,
roster, service points and walking network. Deterministic for a given seed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import text

from gis_service.db.engine import get_engine, transaction
from gis_service.demo import hierarchy, network, services
from gis_service.demo import walks as demo_walks
from gis_service.demo.cases import CaseHistory, People, generate_case_history, seed_people
from gis_service.demo.plane import Plane, centred_density
from gis_service.geo.coords import CoordSys
from gis_service.imports.boundaries import BoundaryOptions, import_boundaries, import_frame
from gis_service.imports.points import PointOptions, import_points_frame
from gis_service.imports.report import ImportReport, Progress, no_progress
from gis_service.imports.roster import replace_roster
from gis_service.network.store import replace_network
from gis_service.settings import Settings, get_settings, project_root
from gis_service.units.codes import Level

DISTRICTS_FILE = "zhengzhou_districts.geojson"
DEMO_DISTRICT = "410105"  # 金水区
# Where people live most densely: the old town between 经三路 and 花园路, and the newer
# centre to the east (the demo's density peaks; WGS-84 lon, lat, weight, scale in metres).
CENTRES = [(113.672, 34.775, 1.0, 3000.0), (113.730, 34.770, 0.5, 2500.0)]
DENSITY_FLOOR = 0.08


@dataclass
class DemoResult:
    reports: list[ImportReport] = field(default_factory=list)
    units: dict[str, int] = field(default_factory=dict)
    service_points: dict[str, int] = field(default_factory=dict)
    roster: int = 0
    edges: int = 0
    population: int = 0
    people: People | None = None
    cases: CaseHistory | None = None
    walks: demo_walks.WalkSummary | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        units = ", ".join(f"{n} {lvl}" for lvl, n in self.units.items())
        return (
            f"demo loaded in {self.seconds:.1f} s: {units}; {self.population:,} residents; "
            f"{sum(self.service_points.values())} service points; {self.roster} roster entries; "
            f"{self.edges:,} walking edges"
            + (f"; {self.people.summary()}" if self.people else "")
            + (f"; {self.cases.summary()}" if self.cases else "; case history already loaded")
            + (f"; {self.walks.summary()}" if self.walks else "; walks already loaded")
        )


def boundaries_file() -> Path:
    return project_root() / "boundaries" / DISTRICTS_FILE


def import_districts(settings: Settings) -> ImportReport:
    """Import (or refresh) the twelve Zhengzhou outlines, repaired (data/README.md)."""
    return import_boundaries(
        boundaries_file(),
        BoundaryOptions(
            level=Level.district, code_field="code", name_field="name", coord_sys=CoordSys.gcj02
        ),
        settings=settings,
    )


def units_frame(units: list[hierarchy.Unit]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": [u.code for u in units],
            "name": [u.name for u in units],
            "parent_code": [u.parent_code for u in units],
            "population": [u.population for u in units],
            "households": [u.households for u in units],
        },
        geometry=[u.geom for u in units],
        crs=4326,
    )


@dataclass
class City:
    """The demo city as generated, before it is loaded: its metric plane, its units
    (with the roster), its service points by kind and its walking network."""

    plane: Plane
    h: hierarchy.Hierarchy
    services: dict[str, gpd.GeoDataFrame]
    net: network.Network


def import_grid(
    h: hierarchy.Hierarchy, settings: Settings, source: str, progress: Progress = no_progress
) -> list[ImportReport]:
    """Import a generated grid (subdistricts down to buildings, each level's file named
    ``{source}:{level}``) and set its district's residents and households."""
    reports = []
    for level in (Level.subdistrict, Level.community, Level.grid, Level.building):
        progress(f"grid: importing {level.value} units")
        reports.append(
            import_frame(
                units_frame(h.levels[level.value]),
                BoundaryOptions(level=level),
                filename=f"{source}:{level.value}",
                settings=settings,
            )
        )
    district = h.levels["district"][0]
    with transaction(settings) as conn:
        conn.execute(
            text("UPDATE admin_unit SET population = :p, households = :hh WHERE code = :c"),
            {"p": district.population, "hh": district.households, "c": district.code},
        )
    return reports


def generate_city(
    name: str, district: shapely.Geometry, size: hierarchy.DemoSize, seed: int
) -> City:
    """The demo city inside the district's outline (WGS-84), deterministic for a seed:
    what :func:`load_demo` loads (and what benchmarks/walks.py walks again)."""
    rng = np.random.default_rng(seed)
    plane = Plane.around(district.centroid.x, district.centroid.y)
    density = centred_density(
        [(*plane.xy(lon, lat), w, s) for lon, lat, w, s in CENTRES], DENSITY_FLOOR
    )
    h = hierarchy.generate(DEMO_DISTRICT, name, district, density, plane, size, rng)
    points = services.generate(h, rng)
    net = network.generate(h.levels["district"][0].metric, plane, density, rng)
    return City(plane, h, points, net)


def load_demo(
    settings: Settings | None = None,
    *,
    seed: int = 2026,
    size: hierarchy.DemoSize | None = None,
    progress: Progress = no_progress,
    cases: int = 20_000,
) -> DemoResult:
    """Load (or refresh) the demo city. The year of case history is generated only into a
    district that has no cases yet, so running the demo twice does not double it."""
    settings = settings or get_settings()
    size = size or hierarchy.DemoSize()
    started = time.perf_counter()
    result = DemoResult()

    progress("districts: importing and repairing the Zhengzhou outlines")
    result.reports.append(import_districts(settings))
    with get_engine(settings).connect() as conn:
        name, wkb = conn.execute(
            text("SELECT name, ST_AsBinary(geom) FROM admin_unit WHERE code = :c"),
            {"c": DEMO_DISTRICT},
        ).one()
    progress("grid: generating subdistricts, communities, grids and buildings")
    city = generate_city(name, shapely.from_wkb(bytes(wkb)), size, seed)
    h, plane, net = city.h, city.plane, city.net
    result.reports += import_grid(h, settings, "demo", progress)
    result.units = {lvl: len(units) for lvl, units in h.levels.items()}
    result.population = h.levels["district"][0].population

    progress("roster: grid leaders, grid workers and building heads")
    result.roster = replace_roster(h.roster, filename="demo:roster", settings=settings).inserted

    progress("service points")
    for kind, frame in city.services.items():
        report = import_points_frame(
            frame, PointOptions(kind=kind), filename=f"demo:{kind}", settings=settings
        )
        result.reports.append(report)
        result.service_points[kind] = len(frame)

    progress("walking network")
    lon, lat = plane.to_wgs84.transform(net.node_xy[:, 0], net.node_xy[:, 1])
    with transaction(settings) as conn:
        result.edges = replace_network(
            conn,
            net.node_id,
            np.asarray(lon),
            np.asarray(lat),
            net.source,
            net.target,
            net.kind,
            net.name,
        )

    progress("people: service teams and accounts")
    with transaction(settings) as conn:
        result.people = seed_people(conn, DEMO_DISTRICT)
    with transaction(settings) as conn:
        has_cases = conn.execute(
            text("SELECT EXISTS (SELECT 1 FROM cases WHERE unit_code LIKE :d)"),
            {"d": DEMO_DISTRICT + "%"},
        ).scalar()
        if cases and not has_cases:
            progress(f"cases: a year of grid-walk history ({cases:,} cases)")
            result.cases = generate_case_history(
                conn, n=cases, seed=seed, district_code=DEMO_DISTRICT
            )
    with transaction(settings) as conn:
        has_walks = conn.execute(
            text("SELECT EXISTS (SELECT 1 FROM walk WHERE grid_code LIKE :d)"),
            {"d": DEMO_DISTRICT + "%"},
        ).scalar()
        if not has_walks:
            progress(f"walks: a month of grid walks ({demo_walks.DAYS} days)")
            result.walks = demo_walks.generate_walks(
                conn, h, net, plane, seed=seed, tz=settings.timezone
            )
    result.seconds = time.perf_counter() - started
    return result
