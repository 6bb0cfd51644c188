"""The whole city for benchmarks: all twelve Zhengzhou county-level divisions, each with a
generated four-level grid like the demo's 金水区, and five years of case history — about ten
million cases (issue 19 item 6). Not part of ``make demo``: it takes tens of minutes and
several GB of disk.

What is generated, per division (the real, repaired outline from
``boundaries/zhengzhou_districts.geojson``):

- the grid (subdistricts, communities, grids, building units), the roster, the service
  points, and the demo's teams and accounts, all sized by the division's population;
- cases: ``cases_total`` spread over the divisions by population and over ``years`` years
  (``generate_case_history``: the same seasons, hours, categories and workflow as the demo),
  with timelines for the most recent ``timeline_years`` only (older cases keep their
  workflow timestamps, which is all the statistics and tiles read; a timeline costs about
  six rows a case).

Populations: the city total is the issue's 12.6 M (Zhengzhou, seventh census); 金水区 keeps
the seed article's 1.415 M; the rest is spread over the other eleven divisions by area, an
urban district's square kilometre weighing ``URBAN_WEIGHT`` times a county's. These are
generated figures for load, not census figures per division.

The walking network is generated only for 金水区 (by the ordinary demo, which runs first):
access computations run per district, and one district's network is what they need; a
city's lattice would be millions of edges nobody reads in the benchmarks this serves.

Idempotent: a division that already has grids keeps them, and a division's cases are
generated only when it has none.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from pyproj import Geod
from sqlalchemy import text

from gis_service.db.engine import get_engine, transaction
from gis_service.demo import hierarchy, services
from gis_service.demo.cases import drop_foreign_keys, generate_case_history, seed_people
from gis_service.demo.plane import Plane, centred_density
from gis_service.demo.run import (
    CENTRES,
    DEMO_DISTRICT,
    DENSITY_FLOOR,
    boundaries_file,
    import_districts,
    import_grid,
    load_demo,
)
from gis_service.imports.points import PointOptions, import_points_frame
from gis_service.imports.report import Progress, no_progress
from gis_service.imports.roster import replace_roster
from gis_service.settings import Settings, get_settings

CITY_POPULATION = 12_600_000  # Zhengzhou, seventh census (issue 19)
CITY_CASES = 10_000_000
URBAN_WEIGHT = 10.0
# 金水区 as the seed article sizes it: residents per subdistrict, community, grid, building.
SEED = hierarchy.DemoSize()
URBAN_CODES = ("410102", "410103", "410104", "410105", "410106", "410108")


@dataclass
class CityResult:
    divisions: dict[str, int] = field(default_factory=dict)  # code -> residents
    grids: int = 0
    cases: int = 0
    events: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"city loaded in {self.seconds:.0f} s: {len(self.divisions)} divisions, "
            f"{sum(self.divisions.values()):,} residents, {self.grids:,} grids; "
            f"{self.cases:,} cases and {self.events:,} timeline events written"
        )


def populations(areas_km2: dict[str, float]) -> dict[str, int]:
    """Residents per division code: 金水区 the seed's 1.415 M, the rest of CITY_POPULATION
    by area, urban districts weighing URBAN_WEIGHT per km² (module docstring)."""
    rest = {c: a * (URBAN_WEIGHT if c in URBAN_CODES else 1.0) for c, a in areas_km2.items()}
    rest.pop(DEMO_DISTRICT, None)
    total = sum(rest.values())
    out = {c: round((CITY_POPULATION - SEED.population) * w / total) for c, w in rest.items()}
    if DEMO_DISTRICT in areas_km2:
        out[DEMO_DISTRICT] = SEED.population
    return out


def size_for(population: int) -> hierarchy.DemoSize:
    """The seed district's grid scaled to ``population`` (at least 3 subdistricts)."""
    f = population / SEED.population
    return hierarchy.DemoSize(
        subdistricts=max(3, round(SEED.subdistricts * f)),
        communities=max(12, round(SEED.communities * f)),
        grids=max(30, round(SEED.grids * f)),
        buildings=max(60, round(SEED.buildings * f)),
        population=population,
    )


def check_divisions(codes: list[str]) -> None:
    """ValueError naming every code that is not one of the outlines file's divisions."""
    with boundaries_file().open(encoding="utf-8") as f:
        known = {feat["properties"]["code"] for feat in json.load(f)["features"]}
    unknown = sorted(set(codes) - known)
    if unknown:
        raise ValueError(
            f"not a division of the city: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


def _divisions(settings: Settings) -> dict[str, tuple[str, shapely.Geometry]]:
    with get_engine(settings).connect() as conn:
        rows = conn.execute(
            text("SELECT code, name, ST_AsBinary(geom) FROM admin_unit WHERE level = 'district'")
        ).all()
    return {code: (name, shapely.from_wkb(bytes(wkb))) for code, name, wkb in rows}


GRIDS_SQL = "SELECT EXISTS (SELECT 1 FROM admin_unit WHERE level = 'grid' AND code LIKE :p)"
CASES_SQL = "SELECT EXISTS (SELECT 1 FROM cases WHERE unit_code LIKE :p)"


def _has(settings: Settings, sql: str, code: str) -> bool:
    with get_engine(settings).connect() as conn:
        return bool(conn.execute(text(sql), {"p": code + "%"}).scalar())


def load_ground(
    settings: Settings, code: str, name: str, outline: shapely.Geometry, population: int, seed: int
) -> int:
    """Generate and import one division's grid, roster, service points and teams; return
    its number of grids."""
    rng = np.random.default_rng([seed, int(code)])
    plane = Plane.around(outline.centroid.x, outline.centroid.y)
    cx, cy = outline.centroid.x, outline.centroid.y
    density = centred_density(
        [(*plane.xy(lon, lat), w, s) for lon, lat, w, s in CENTRES]
        + [(*plane.xy(cx, cy), 0.6, 4000.0)],
        DENSITY_FLOOR,
    )
    h = hierarchy.generate(code, name, outline, density, plane, size_for(population), rng)
    import_grid(h, settings, f"city:{code}")
    replace_roster(h.roster, filename=f"city:{code}:roster", settings=settings)
    for kind, frame in services.generate(h, rng).items():
        import_points_frame(
            frame, PointOptions(kind=kind), filename=f"city:{code}:{kind}", settings=settings
        )
    with transaction(settings) as conn:
        seed_people(conn, code)
    return len(h.levels["grid"])


def load_city(
    settings: Settings | None = None,
    *,
    seed: int = 2026,
    cases_total: int = CITY_CASES,
    years: int = 5,
    timeline_years: int = 1,
    only: list[str] | None = None,
    progress: Progress = no_progress,
) -> CityResult:
    """Load the city (module docstring): ``cases_total`` ≥ 0 cases over ``years`` ≥ 1 years
    ending at the start of today, each division's share by population. ``only``: these
    division codes alone (still with their city-wide share). ValueError names a year count
    out of range or a code that is not one of the city's divisions."""
    if years < 1 or not 0 <= timeline_years <= years:
        raise ValueError("years must be ≥ 1 and timeline_years between 0 and years")
    check_divisions(only or [])
    settings = settings or get_settings()
    started = time.perf_counter()
    result = CityResult()
    progress("districts: importing and repairing the Zhengzhou outlines")
    import_districts(settings)
    divisions = _divisions(settings)
    geod = Geod(ellps="WGS84")
    areas = {c: abs(geod.geometry_area_perimeter(g)[0]) / 1e6 for c, (_n, g) in divisions.items()}
    pops = populations(areas)
    total_pop = sum(pops.values())
    if only:
        divisions = {c: divisions[c] for c in only}
    result.divisions = {c: pops[c] for c in divisions}
    if DEMO_DISTRICT in divisions:
        progress("金水区: the ordinary demo (grid, network, a month of walks)")
        load_demo(settings, seed=seed, progress=progress, cases=0)
    for code in sorted(divisions):
        name, outline = divisions[code]
        if _has(settings, GRIDS_SQL, code):
            continue
        progress(f"{name}: generating the grid for {pops[code]:,} residents")
        result.grids += load_ground(settings, code, name, outline, pops[code], seed)

    end = datetime.now(ZoneInfo(settings.timezone)).date()
    for k, code in enumerate(sorted(divisions)):
        name = divisions[code][0]
        if _has(settings, CASES_SQL, code):
            continue
        n = round(cases_total * pops[code] / total_pop)
        recent = round(n * timeline_years / years)
        older = n - recent
        with transaction(settings) as conn:
            restore = drop_foreign_keys(conn, ["cases", "case_event"])
            # (cases, timelines, the period's last day, its length in days): the older
            # years without timelines, then the recent ones with them
            spans = [
                (older, False, end - timedelta(days=365 * timeline_years), years - timeline_years),
                (recent, True, end, timeline_years),
            ]
            for part, (count, events, until, span) in enumerate(spans):
                if not count:
                    continue
                progress(f"{name}: {count:,} cases over {span} year(s), timelines {events}")
                h = generate_case_history(
                    conn,
                    n=count,
                    seed=seed + 100 * k + part,
                    district_code=code,
                    events=events,
                    end=until,
                    days=365 * span,
                    tz=settings.timezone,
                    bulk=False,
                    progress=progress,
                )
                result.cases += h.cases
                result.events += h.events
            progress(f"{name}: checking the foreign keys")
            for stmt in restore:
                conn.execute(text(stmt))
    result.seconds = time.perf_counter() - started
    return result
