"""Request and answer models of the access routes (walking isochrones, reach, siting)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gis_service.access.reach import PARTY_REACH_M
from gis_service.api.schemas import Feature, FeatureCollection, Geometry, Public, Versions
from gis_service.geo.bounds import GEOMETRY_INPUT


class SitingCreate(BaseModel):
    """POST /access/siting: what to site and among which candidates."""

    kind: str | None = Field(None, examples=["party_org"])
    category: str | None = Field(None, examples=["health"])
    k: int = Field(3, ge=1, le=50)
    max_m: float = Field(PARTY_REACH_M, gt=0, le=3000)
    candidates: dict | None = Field(
        None,
        description="GeoJSON FeatureCollection of candidate points (id or "
        "properties.id names each); default: every network node. Held to the geometry "
        "limits (vertices, parts; 422 geometry_too_large)",
        json_schema_extra={GEOMETRY_INPUT: "geojson"},
    )


class IsochroneProperties(Public):
    minutes: float
    distance_m: float
    method: str
    walk_off_m: float | None = None
    resolution_m: float | None = None
    generalize_m: float | None = None
    denoise: float | None = None
    speed_kmh: float | None = None
    area_m2: float | None = None


class Origin(Public):
    lon: float
    lat: float
    access_m: float | None
    max_access_m: float


class Isochrones(FeatureCollection[IsochroneProperties]):
    origin: Origin
    network_version: int | None


class NearestProperties(Public):
    id: int
    name: str
    kind: str
    categories: list[str]
    address: str | None
    distance_m: float
    method: str
    access_m: float | None = None
    egress_m: float | None = None
    straight_m: float | None = None
    path: Geometry | None = None


class Nearest(Feature[NearestProperties]):
    network_version: int | None = None


class Derived(Public):
    """Figures made from the stored building distances: their versions and method."""

    versions: Versions
    computed_at: str | None
    definition: str


class UnitReach(Public):
    code: str
    name: str
    buildings: int
    population: int
    covered_population: int
    covered_share: float | None
    uncovered_buildings: int
    uncovered_population: int
    median_distance_m: float | None
    max_distance_m: float | None
    straight_line_buildings: int


class ReachTotal(Public):
    population: int
    covered_population: int
    covered_share: float | None
    uncovered_buildings: int
    uncovered_population: int


class Reach(Derived):
    level: str
    max_m: float
    units: list[UnitReach]
    total: ReachTotal


class GapProperties(Public):
    unit_code: str
    name: str | None
    population: int | None
    distance_m: float | None
    method: str | None
    nearest_party: str | None
    nearest_kind: str | None
    point: list[float] | None


class Gaps(FeatureCollection[GapProperties]):
    max_m: float
    numberMatched: int
    uncovered_population: int
    versions: Versions
    computed_at: str | None
    definition: str


class CategoryRef(Public):
    code: str
    name_zh: str
    name_en: str | None


class MostMissing(Public):
    category: str
    name_zh: str
    name_en: str | None
    population_missing: int


class UnitCircle(Public):
    code: str
    name: str
    population: int
    complete_population: int
    complete_share: float | None
    category_share: dict[str, float | None]
    most_missing: MostMissing | None


class BuildingCircle(Public):
    """At level=building: which categories the building reaches within ``within_m``,
    which it misses, and the walking distance to each (null: none within reach)."""

    code: str
    name: str
    population: int | None
    within: list[str]
    missing: list[str]
    complete: bool
    distance_m: dict[str, float | None]


class LivingCircle(Derived):
    """Per unit of ``level`` the share of residents reaching each category (units), or at
    level=building each building's categories (BuildingCircle)."""

    level: str
    within_m: float
    categories: list[CategoryRef]
    units: list[UnitCircle] | list[BuildingCircle]


class CircleProperties(Public):
    method: str | None = None
    distance_m: float | None = None
    area_m2: float | None = None


class Circles(FeatureCollection[CircleProperties]):
    """Service circles: one area per point, or per category and kind (union=true)."""


class JobStatus(Public):
    """A long access computation (access/jobs.py): ``started_at``/``finished_at`` are Unix
    seconds."""

    job: str
    status: str
    step: str | None
    started_at: float | None
    finished_at: float | None
    error: str | None
    summary: str | None
    status_url: str


class SiteProperties(Public):
    rank: int
    candidate: Any
    population_added: int
    buildings_added: int


class Siting(FeatureCollection[SiteProperties]):
    kind: str | None
    category: str | None
    k: int
    max_m: float
    uncovered_buildings: int
    uncovered_population: int
    population_covered: int
    population_coverable: int
    candidates: str
    method: str
