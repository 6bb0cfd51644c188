"""What the phone sends about a walk (``XCreate``-like inputs) and what it gets back
(``XPublic`` answers). Times are RFC 3339 with an offset; positions WGS-84 degrees as the
phone's Geolocation API reports them (W3C Geolocation: ``coords.longitude``,
``latitude``, ``accuracy`` in metres, ``speed`` in m/s, ``timestamp``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gis_service.api.schemas import Feature, Geometry, Public
from gis_service.units.codes import CODE_LENGTH, Level
from gis_service.walks.rules import CHUNK_MAX_POINTS, WalkStatus

#: a grid's code (units/codes.py)
GRID_CODE = rf"^[0-9]{{{CODE_LENGTH[Level.grid]}}}$"
#: a unit a grid lies in: the district down to the grid
UNIT_CODE = rf"^[0-9]{{{CODE_LENGTH[Level.district]},{CODE_LENGTH[Level.grid]}}}$"


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class WalkStart(Input):
    """POST /api/v1/walks."""

    grid_code: Annotated[
        str | None,
        Field(
            pattern=GRID_CODE,
            description="The grid walked (14 digits); may be left out by a worker whose "
            "scope is one grid",
            examples=["41019900100101"],
        ),
    ] = None
    client_started_at: Annotated[
        AwareDatetime | None,
        Field(description="The phone's clock at the start: fixes may not be older"),
    ] = None


class Fix(Input):
    """One position the phone measured."""

    t: Annotated[AwareDatetime, Field(description="When it was measured (phone's clock)")]
    lon: Annotated[float, Field(ge=-180, le=180, description="Longitude, WGS-84 degrees")]
    lat: Annotated[float, Field(ge=-90, le=90, description="Latitude, WGS-84 degrees")]
    accuracy_m: Annotated[
        float, Field(gt=0, le=100_000, description="Radius of 68 % confidence, metres")
    ]
    speed_mps: Annotated[float | None, Field(ge=0, le=1000, description="m/s, if known")] = None


class Chunk(Input):
    """POST /api/v1/walks/{id}/points: fixes gathered by the phone, in any order."""

    chunk_id: Annotated[
        str,
        Field(
            pattern=r"^[\x21-\x7e]{1,200}$",
            description="The phone's id for this chunk (1–200 visible ASCII): a retry "
            "with it stores nothing twice",
            examples=["c-000017"],
        ),
    ]
    points: Annotated[list[Fix], Field(min_length=1, max_length=CHUNK_MAX_POINTS)]


class WalkEnd(Input):
    """POST /api/v1/walks/{id}/end (the body may be left out)."""

    client_ended_at: Annotated[
        AwareDatetime | None,
        Field(description="The phone's clock at the end: fixes sent later may not be newer"),
    ] = None


class ChunkStored(Public):
    walk_id: int
    chunk_id: str
    points: int = Field(description="Fixes in the chunk")
    stored: int = Field(description="Of those, new: the others were stored before")
    replayed: bool = Field(description="True: this chunk_id was stored before; nothing new")
    points_received: int = Field(description="Fixes of the walk stored so far")


class WalkSummary(Public):
    id: int
    worker_id: int
    worker_name: str | None
    grid_code: str
    grid_name: str | None
    status: WalkStatus
    started_at: str
    ended_at: str | None
    day: str = Field(description="Local date of the start (GIS_TIMEZONE)")
    points_received: int
    points_kept: int | None
    points_dropped: int | None
    distance_m: float | None = Field(description="Length of the cleaned track, metres")
    duration_s: float = Field(description="Start to end (running: to the last chunk), s")
    buildings_visited: int
    problems: int = Field(description="Cases reported during the walk")
    raw_pruned: bool = Field(description="Raw fixes removed after the retention period")


class WalkList(Public):
    walks: list[WalkSummary]
    total: int


class Visit(Public):
    building_code: str
    name: str | None
    visited_at: str


class WalkProperties(WalkSummary):
    dropped: dict[str, int] = Field(description="Fixes left out of the track, by reason")
    visited: list[Visit]
    case_ids: list[int]


class WalkFeature(Feature[WalkProperties]):
    """The walk as a GeoJSON Feature: the cleaned track (MultiLineString, null before any
    track exists) with the walk's figures as properties."""

    geometry: Geometry | None


class DueBuilding(Public):
    code: str
    name: str | None
    lon: float
    lat: float
    last_visited_at: str | None
    days_since: float | None = Field(description="Days since the last visit; null: never")


class DueBuildings(Public):
    grid_code: str
    days: int
    as_of: str
    buildings_total: int
    due: int
    buildings: list[DueBuilding]


class RouteStop(Public):
    order: int = Field(description="1, 2, …: the walking order")
    code: str = Field(description="The building's code")
    name: str | None
    lon: float = Field(description="The building's door on the walking network, WGS-84")
    lat: float
    leg_m: float = Field(description="Walking distance from the previous stop (or the start), m")
    cumulative_m: float = Field(description="Walking distance from the start, m")
    minutes: float = Field(description="Walking minutes from the start (speed_kmh), no stops")
    last_visited_at: str | None
    days_since: float | None = Field(description="Days since the last visit; null: never")


class RouteLeftOut(Public):
    code: str
    name: str | None
    reason: Literal["no_door", "unreachable", "over_cap"]


class RouteStart(Public):
    lon: float
    lat: float
    access_m: float = Field(description="Straight leg from the position to the network, m")


class DueRouteProperties(Public):
    grid_code: str
    days: int = Field(description="N of the due list")
    as_of: str
    start: RouteStart
    speed_kmh: float = Field(description="The access engine's walking speed")
    method: str = Field(description="The ordering heuristic")
    max_stops: int = Field(description="At most this many stops; the rest are over_cap")
    due: int = Field(description="Buildings on the due list")
    distance_m: float = Field(description="The whole walk, m")
    minutes: float = Field(description="The whole walk at speed_kmh, minutes")
    stops: list[RouteStop]
    left_out: list[RouteLeftOut]
    reason: Literal["no_due_buildings", "no_reachable_door"] | None = Field(
        description="Why there are no stops; null when there are"
    )
    network_version: int


class DueRoute(Feature[DueRouteProperties]):
    """Today's suggested route: the walk along the network (LineString, null without
    stops) from the worker's position through the due buildings' doors."""

    geometry: Geometry | None


class WalkFigures(Public):
    walks: int
    distance_km: float
    duration_h: float
    buildings: int = Field(description="Buildings in the unit")
    buildings_visited: int = Field(description="Distinct buildings visited in the period")
    visited_share_7d: float | None
    visited_share_30d: float | None
    problems: int
    problems_per_km: float | None


class UnitWalkFigures(WalkFigures):
    code: str
    name: str


class WalkStats(Public):
    level: str
    from_: str = Field(alias="from")
    to: str
    unit: str | None
    worker_id: int | None
    definitions: dict[str, str]
    totals: WalkFigures
    units: list[UnitWalkFigures]
