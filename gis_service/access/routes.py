"""Access routes: walking isochrones, the nearest service, reach, living circles, siting.

Thin: parameters in, the engine (access/engine.py) and the SQL (access/*.py) do the work.
Isochrones and the nearest service are public like the service points; figures about
residents need a planner's, supervisor's or admin's sign-in and follow their scopes.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from gis_service.access import coverage, service
from gis_service.access.bounds import Deadline, statement_timeout
from gis_service.access.engine import MAX_ACCESS_M
from gis_service.access.jobs import AccessJobs
from gis_service.access.reach import PARTY_REACH_M, SEARCH_LIMIT_M
from gis_service.access.schemas import (
    Circles,
    Gaps,
    Isochrones,
    JobStatus,
    LivingCircle,
    Nearest,
    Reach,
    Siting,
    SitingCreate,
)
from gis_service.access.store import EngineCache
from gis_service.api.deps import (
    AccessDep,
    AccessJobsDep,
    ConnDep,
    NetworkDep,
    PrincipalDep,
    SettingsDep,
)
from gis_service.api.params import PointParams
from gis_service.api.schemas import GeoJSONResponse, refusals
from gis_service.auth.principal import Principal
from gis_service.errors import InvalidInput
from gis_service.geo.bounds import GeometryLimits
from gis_service.geo.coords import CoordSys
from gis_service.memory import release
from gis_service.service_points.service import check_vocab
from gis_service.settings import Settings
from gis_service.units.codes import HANDLING_LEVELS, level_pattern

#: a long computation answers 202 with where to ask again (access/jobs.py)
PENDING = {202: {"model": JobStatus, "description": "Still computing: ask status_url"}}
router = APIRouter(prefix="/access", tags=["access"], responses=refusals(422))
GEOJSON = "application/geo+json"
#: figures about residents: a planner's, supervisor's or admin's sign-in, then maybe a job
RESIDENTS = {**refusals(401, 403, 404, 503), **PENDING}
#: the walking parameters every access route and export takes, with their one set of bounds
ReachParam = Annotated[float, Query(gt=0, le=SEARCH_LIMIT_M)]
WalkMinutesParam = Annotated[float, Query(gt=0, le=service.MAX_WALK_MINUTES)]
WalkSpeedParam = Annotated[float, Query(gt=0, le=service.MAX_SPEED_KMH)]


def _json(body: Any, media_type: str = "application/json") -> Response:
    """The body as compact UTF-8 JSON: orjson (an isochrone's coordinates in a tenth of
    json's time, 0.55 → 0.05 ms for 5/10/15 minutes), json for what orjson refuses."""
    try:
        text = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # orjson.JSONEncodeError: e.g. keys that are not strings
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(text, media_type=media_type)


def parse_minutes(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 0 < v <= 60 for v in values) or len(values) > 6:
        raise InvalidInput(
            f"minutes: {text!r} is not a list of 1–6 contours of 0–60 minutes, e.g. minutes=5,10,15"
        )
    return values


@router.get(
    "/isochrone",
    summary="Walking isochrones: the ground reachable on foot within "
    "each number of minutes, as GeoJSON polygons",
    response_model=Isochrones,
    response_class=GeoJSONResponse,
    responses=refusals(404),
)
def isochrone(
    network: NetworkDep,
    point: Annotated[PointParams, Depends()],
    minutes: Annotated[str, Query(description="Contours in minutes, comma-separated")] = "15",
    speed_kmh: WalkSpeedParam = service.DEFAULT_SPEED_KMH,
    walk_off_m: Annotated[
        float,
        Query(ge=0, le=500, description="Ground this far from a reached street counts as reached"),
    ] = service.DEFAULT_WALK_OFF_M,
    resolution_m: Annotated[
        float | None,
        Query(
            ge=1, le=100, description="Grid on which the outline is traced (default: ~1/256 of it)"
        ),
    ] = None,
    max_access_m: Annotated[
        float,
        Query(gt=0, le=5000, description="Farther from every street, a plain circle is returned"),
    ] = MAX_ACCESS_M,
    generalize: Annotated[
        float | None,
        Query(
            ge=0,
            le=service.MAX_GENERALIZE_M,
            description="Simplification tolerance of the outline in metres, as Douglas-"
            "Peucker's (Valhalla's name): no vertex moves farther; default one grid cell, 0 "
            "the traced outline as it is",
        ),
    ] = None,
    polygons: Annotated[
        bool, Query(description="Polygons (true) or their rings as MultiLineStrings (false)")
    ] = True,
    denoise: Annotated[
        float,
        Query(
            ge=0,
            le=1,
            description="Drop rings (islands and holes) smaller than this share of the "
            "largest island (Valhalla's name; 1 keeps only the largest, without holes)",
        ),
    ] = 0.0,
) -> Response:
    lon, lat = point.wgs84()
    body = service.isochrone(
        network,
        lon,
        lat,
        parse_minutes(minutes),
        speed_kmh,
        walk_off_m,
        resolution_m,
        max_access_m,
        generalize=generalize,
        polygons=polygons,
        denoise=denoise,
    )
    return _json(body, GEOJSON)


@router.get(
    "/nearest",
    summary="The nearest service point by walking distance",
    response_model=Nearest,
    response_class=GeoJSONResponse,
    responses=refusals(404),
)
def nearest(
    conn: ConnDep,
    access: AccessDep,
    point: Annotated[PointParams, Depends()],
    kind: Annotated[str | None, Query(examples=["party_org"])] = None,
    category: Annotated[str | None, Query(examples=["health"])] = None,
    max_m: Annotated[float, Query(gt=0, le=20000, description="Search this far")] = 5000,
    path: Annotated[bool, Query(description="Include the walked line")] = False,
    max_access_m: Annotated[float, Query(gt=0, le=5000)] = MAX_ACCESS_M,
) -> Response:
    lon, lat = point.wgs84()
    body = service.nearest(
        conn,
        access.get(conn),
        lon,
        lat,
        kind=kind,
        category=category,
        max_m=max_m,
        with_path=path,
        max_access_m=max_access_m,
    )
    return _json(body, GEOJSON)


def _in_job(access: EngineCache, jobs: AccessJobs, settings, name: str, work) -> Any:
    """Run ``work(conn, engine, progress)`` in one transaction as the named job; answer
    when it is done, or 202 with its status URL if it takes longer than the wait."""
    from gis_service.access.refresh import in_job

    return in_job(access, jobs, settings, name, work, settings.import_wait_seconds)


def _fresh(access: EngineCache, jobs: AccessJobs, settings, principal: Principal) -> list[int]:
    """Check the viewer may see figures about residents, then recompute building
    distances first if the network, points or units changed (never for a refused
    viewer)."""
    from gis_service.access import reach as reach_mod

    coverage.require_figure_reader(principal)
    from gis_service.db.engine import get_engine

    with get_engine(settings).connect() as conn:
        if (current := reach_mod.fresh_versions(conn)) is not None:
            return current
    return _in_job(
        access,
        jobs,
        settings,
        "buildings",
        lambda conn, engine, progress: reach_mod.compute(conn, engine, progress),
    ).versions


LEVEL = level_pattern(HANDLING_LEVELS)


@router.get(
    "/reach",
    summary="The one-kilometre reach of party organisations per unit: "
    "residents within the walking distance, and those without",
    response_model=Reach,
    responses=RESIDENTS,
)
def reach(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    access: AccessDep,
    jobs: AccessJobsDep,
    level: Annotated[str, Query(pattern=LEVEL)] = "community",
    max_m: ReachParam = PARTY_REACH_M,
    unit: Annotated[str | None, Query(description="Only units inside this one")] = None,
) -> Response:
    versions = _fresh(access, jobs, settings, principal)
    statement_timeout(conn, settings.analysis_max_seconds)
    return _json(coverage.reach(conn, principal, versions, level=level, max_m=max_m, unit=unit))


@router.get(
    "/gaps",
    summary="Buildings farther than the reach from every party "
    "organisation, with their residents (GeoJSON)",
    response_model=Gaps,
    response_class=GeoJSONResponse,
    responses=RESIDENTS,
)
def gaps(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    access: AccessDep,
    jobs: AccessJobsDep,
    max_m: ReachParam = PARTY_REACH_M,
    unit: Annotated[str | None, Query(description="Only buildings inside this unit")] = None,
) -> Response:
    versions = _fresh(access, jobs, settings, principal)
    statement_timeout(conn, settings.analysis_max_seconds)
    return _json(coverage.gaps(conn, principal, versions, max_m=max_m, unit=unit), GEOJSON)


@router.get(
    "/living-circle",
    summary="Quarter-hour living circle: which of the six "
    "everyday services each building reaches on foot",
    response_model=LivingCircle,
    responses=RESIDENTS,
)
def living_circle(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    access: AccessDep,
    jobs: AccessJobsDep,
    level: Annotated[str, Query(pattern=level_pattern())] = "community",
    minutes: WalkMinutesParam = 15,
    speed_kmh: WalkSpeedParam = service.DEFAULT_SPEED_KMH,
    unit: Annotated[str | None, Query(description="Only units inside this one")] = None,
) -> Response:
    versions = _fresh(access, jobs, settings, principal)
    statement_timeout(conn, settings.analysis_max_seconds)
    return _json(
        coverage.living_circle(
            conn,
            principal,
            versions,
            level=level,
            within_m=service.metres(minutes, speed_kmh),
            unit=unit,
        )
    )


@router.get(
    "/circles",
    summary="Quarter-hour service circles (walking, cached), per point "
    "or united per category and per kind",
    response_model=Circles,
    response_class=GeoJSONResponse,
    responses={**refusals(503), **PENDING},
)
def circles(
    conn: ConnDep,
    settings: SettingsDep,
    access: AccessDep,
    jobs: AccessJobsDep,
    category: Annotated[str | None, Query(examples=["health"])] = None,
    kind: Annotated[str | None, Query(examples=["red_home"])] = None,
    union: Annotated[bool, Query(description="One area per category / kind")] = False,
) -> Response:
    from gis_service.access import circles as circles_mod

    check_vocab(conn, kind, category)
    if circles_mod.stale_count(conn) or (union and not circles_mod.unions_current(conn)):
        _in_job(access, jobs, settings, "circles", circles_mod.refresh)
    statement_timeout(conn, settings.analysis_max_seconds)
    return Response(
        circles_mod.circles_geojson(conn, category=category, kind=kind, union=union),
        media_type=GEOJSON,
    )


@router.get(
    "/jobs/{name}",
    summary="Status of a long access computation",
    response_model=JobStatus,
    responses=refusals(404),
)
def job_status(jobs: AccessJobsDep, name: str) -> Response:
    from gis_service.errors import NotFound

    job = jobs.get(name)
    if job is None:
        raise NotFound(f"no access job {name!r} has run in this process")
    return _json(job.public())


#: siting: a planner's sign-in; 404 without a walking network
SITING = refusals(401, 403, 404)


def _site(
    access: EngineCache,
    conn,
    settings: Settings,
    principal: Principal,
    body: SitingCreate,
    coord_sys: CoordSys,
) -> Response:
    from gis_service.access import siting

    coverage.require_figure_reader(principal)
    check_vocab(conn, body.kind, body.category)
    deadline = Deadline(settings.analysis_max_seconds)
    cands = (
        siting.candidates_from_geojson(body.candidates, coord_sys, GeometryLimits.of(settings))
        if body.candidates is not None
        else None
    )
    try:
        answer = siting.site(
            conn,
            access.get(conn),
            kind=body.kind,
            category=body.category,
            k=body.k,
            max_m=body.max_m,
            candidates=cands,
            viewer=principal,
            max_pairs=settings.siting_max_pairs,
            deadline=deadline,
        )
    finally:
        release()  # the coverage matrix and HiGHS's model are freed: return their pages
    return _json(answer, GEOJSON)


@router.get(
    "/siting",
    summary="The k sites that bring the most uncovered residents within "
    "walking reach (maximal covering, solved exactly)",
    response_model=Siting,
    response_class=GeoJSONResponse,
    responses=SITING,
)
def siting_get(
    conn: ConnDep,
    settings: SettingsDep,
    access: AccessDep,
    principal: PrincipalDep,
    kind: Annotated[str | None, Query(examples=["party_org"])] = None,
    category: Annotated[str | None, Query(examples=["health"])] = None,
    k: Annotated[int, Query(ge=1, le=50)] = 3,
    max_m: ReachParam = PARTY_REACH_M,
) -> Response:
    body = SitingCreate(kind=kind, category=category, k=k, max_m=max_m)
    return _site(access, conn, settings, principal, body, CoordSys.wgs84)


@router.post(
    "/siting",
    summary="Siting among supplied candidate points",
    response_model=Siting,
    response_class=GeoJSONResponse,
    responses=SITING,
)
def siting_post(
    conn: ConnDep,
    settings: SettingsDep,
    access: AccessDep,
    principal: PrincipalDep,
    body: SitingCreate,
    coord_sys: CoordSys = CoordSys.wgs84,
) -> Response:
    return _site(access, conn, settings, principal, body, coord_sys)
