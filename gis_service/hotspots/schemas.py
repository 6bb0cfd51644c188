"""Answer models of the recurring spots and the Gi* hotspots (docs/hotspots.md)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from gis_service.api.schemas import FeatureCollection, Public


class SpotParameters(Public):
    from_: date = Field(alias="from")
    to: date
    radius_m: float = Field(description="DBSCAN eps, metres")
    min_cases: int = Field(description="DBSCAN minpoints: cases a spot needs at least")
    category: str | None
    unit: str | None


class SpotProperties(Public):
    category_code: str
    category_name_zh: str | None
    category_name_en: str | None
    cases: int
    open_cases: int = Field(description="Of them still open now (cases/workflow.py OPEN)")
    first_reported_at: datetime
    last_reported_at: datetime
    extent_m: float = Field(description="Largest distance of a case from the spot's centre")
    case_ids: list[int] = Field(description="The cases behind the spot, oldest first")
    case_nos: list[str]
    unit_codes: list[str] = Field(description="The units the spot's cases were located in")


class RecurringSpots(FeatureCollection[SpotProperties]):
    """One Point feature per recurring spot (its centre), most cases first."""

    parameters: SpotParameters


class HotspotParameters(Public):
    from_: date = Field(alias="from")
    to: date
    category: str | None
    unit: str | None
    weights: str
    permutations: int
    seed: int


class HotspotProperties(Public):
    code: str
    name: str
    cases: int = Field(description="Cases counted in the grid (the statistics' rule)")
    gi_star_z: float | None = Field(description="Getis-Ord Gi* z-score (esda.G_Local, star)")
    p_value: float | None = Field(description="Two-sided p under the normal approximation")
    p_sim: float | None = Field(description="One-sided pseudo p from 999 permutations")
    gi_bin: int | None = Field(
        description="ArcGIS Gi_Bin: ±3/±2/±1 = hot/cold at 99/95/90 % confidence, 0 none"
    )


class Hotspots(FeatureCollection[HotspotProperties]):
    """One Polygon feature per grid of the study area."""

    parameters: HotspotParameters
    note: str | None = Field(description="Why there is no statistic, when there is none")
