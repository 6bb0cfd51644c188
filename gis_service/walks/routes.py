"""Routes of the grid walks (巡查, issue 18): thin; the work is in service.py and
figures.py, the rules in rules.py, cleaning.py and walks.sql. docs/walks.md has the
contract the phone builds on."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from gis_service.api.deps import AccessDep, ConnDep, PrincipalDep, SettingsDep
from gis_service.api.schemas import GeoJSONResponse, refusals
from gis_service.units.codes import HANDLING_LEVELS, Level, level_pattern
from gis_service.walks import due_route as route_of
from gis_service.walks import figures, service
from gis_service.walks.rules import WalkStatus
from gis_service.walks.schemas import (
    GRID_CODE,
    UNIT_CODE,
    Chunk,
    ChunkStored,
    DueBuildings,
    DueRoute,
    WalkEnd,
    WalkFeature,
    WalkList,
    WalkStart,
    WalkStats,
)

router = APIRouter(tags=["walks"])
WalkId = Annotated[int, Path(gt=0, description="Walk id")]


@router.post(
    "/walks",
    summary="Start a grid walk (巡查)",
    status_code=201,
    response_model=WalkFeature,
    responses={
        200: {"model": WalkFeature, "description": "A retry with the same Idempotency-Key"},
        201: {"description": "The new walk, running"},
        **refusals(401, 403, 409, 422),
    },
)
def start_walk(
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    body: WalkStart,
    idempotency_key: Annotated[
        str | None,
        Header(description="Any unique string per walk; a retry never starts a second one"),
    ] = None,
) -> JSONResponse:
    """Grid workers, supervisors and admins walk grids inside their jurisdiction. The
    answer is the walk as GET /walks/{id} gives it (Location names it). 409 when the
    walker's other walk still runs (``walk_id`` names it); 422 ``idempotency_key_reused``
    for a key sent before with another body."""
    with conn.begin():
        walk_id, created = service.start(conn, principal, body, idempotency_key)
        feature = service.get(conn, principal, walk_id, settings)
    return JSONResponse(
        jsonable_encoder(feature),
        status_code=201 if created else 200,
        headers={"Location": f"/api/v1/walks/{walk_id}"},
    )


@router.post(
    "/walks/{walk_id}/points",
    summary="Upload a chunk of positions of a walk",
    response_model=ChunkStored,
    responses=refusals(401, 403, 404, 409, 422),
)
async def add_points(
    principal: PrincipalDep, settings: SettingsDep, walk_id: WalkId, body: Chunk
) -> JSONResponse:
    """``{"chunk_id", "points": [{"t", "lon", "lat", "accuracy_m", "speed_mps"?}]}``, at
    most rules.CHUNK_MAX_POINTS fixes, in any order. A retry with the same chunk_id stores
    nothing (``replayed``: true); a fix another chunk stored already is skipped
    (``stored`` counts the new ones). A chunk with any bad fix is refused whole (422,
    ``errors`` names each: ``points[i].t`` before the start / after the end or now,
    ``points[i].lon``/``lat`` outside the district). Only the walk's worker uploads
    (403); a chunk made wholly after the walk ended: 409."""
    stored = await service.add_chunk_async(settings, principal, walk_id, body)
    return JSONResponse(stored)


@router.post(
    "/walks/{walk_id}/end",
    summary="End a walk: its track, visits and figures are computed",
    response_model=WalkFeature,
    response_class=GeoJSONResponse,
    responses=refusals(401, 403, 404, 422),
)
def end_walk(
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    walk_id: WalkId,
    body: Annotated[WalkEnd | None, Body()] = None,
) -> JSONResponse:
    """Idempotent: ending an ended walk changes nothing and answers it again. Chunks of
    fixes made before the end may still arrive afterwards (an offline phone)."""
    with conn.begin():
        service.end(conn, principal, walk_id, body, settings)
        feature = service.get(conn, principal, walk_id, settings)
    return GeoJSONResponse(jsonable_encoder(feature))


@router.get(
    "/walks/{walk_id}",
    summary="One walk: its cleaned track as GeoJSON, figures and buildings visited",
    response_model=WalkFeature,
    response_class=GeoJSONResponse,
    responses=refusals(401, 403, 404, 422),
)
def get_walk(
    conn: ConnDep, principal: PrincipalDep, settings: SettingsDep, walk_id: WalkId
) -> JSONResponse:
    """A Feature: ``geometry`` the cleaned track (MultiLineString, WGS-84; null with
    fewer than two kept fixes), ``properties`` the WalkSummary figures (distance_m in
    metres, duration_s in seconds), ``dropped`` (fixes left out, by reason),
    ``visited`` (buildings with the time first passed) and ``case_ids``. Grid workers
    read their own walks, supervisors those of their units' grids, admins all; 404 for
    others' walks, 403 for planners and other roles."""
    with conn.begin():
        feature = service.get(conn, principal, walk_id, settings)
    return GeoJSONResponse(jsonable_encoder(feature))


@router.get(
    "/walks",
    summary="Walks you may see, newest first",
    response_model=WalkList,
    responses=refusals(401, 403, 422),
)
def list_walks(
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    worker: Annotated[int | None, Query(gt=0, description="A worker's user id")] = None,
    grid: Annotated[
        str | None, Query(pattern=UNIT_CODE, description="Walks of grids in this unit")
    ] = None,
    date_from: Annotated[date | None, Query(alias="from", description="First day (local)")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last day, inclusive")] = None,
    status: Annotated[WalkStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """``{"walks": [WalkSummary], "total"}`` — the same scope as GET /walks/{id}."""
    result = service.list_walks(
        conn,
        principal,
        settings,
        worker=worker,
        grid=grid,
        date_from=date_from,
        date_to=date_to,
        status=status,
        limit=limit,
        offset=offset,
    )
    return JSONResponse(jsonable_encoder(result))


@router.get(
    "/grids/{code}/due-buildings",
    summary="The grid's buildings not visited for N days",
    response_model=DueBuildings,
    responses=refusals(401, 403, 404, 422),
)
def due_buildings(
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    code: Annotated[str, Path(pattern=GRID_CODE, description="Grid code")],
    days: Annotated[
        int | None,
        Query(
            ge=0,
            le=3650,
            description="N; default the district's (GIS_WALK_DUE_DAYS_BY_DISTRICT), "
            "else GIS_WALK_DUE_DAYS",
        ),
    ] = None,
) -> JSONResponse:
    """Buildings no walk passed in the last ``days`` days, never-visited first then the
    longest ago, with their label point (lon/lat) for the map and the phone's route."""
    with conn.begin():
        result = service.due_buildings(conn, principal, settings, code, days)
    return JSONResponse(jsonable_encoder(result))


@router.get(
    "/grids/{code}/due-route",
    summary="Today's suggested route: from a position through the due buildings' doors",
    response_model=DueRoute,
    response_class=GeoJSONResponse,
    responses=refusals(401, 403, 404, 422),
)
def due_route(
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    access: AccessDep,
    code: Annotated[str, Path(pattern=GRID_CODE, description="Grid code")],
    lon: Annotated[float, Query(ge=-180, le=180, description="Start: longitude, WGS-84")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Start: latitude, WGS-84")],
    days: Annotated[
        int | None,
        Query(ge=0, le=3650, description="N of the due list (the same default)"),
    ] = None,
) -> JSONResponse:
    """A GeoJSON Feature: ``geometry`` the walk along the walking network (LineString,
    WGS-84; null without stops), ``properties.stops`` the due buildings' doors in walking
    order with ``leg_m``, ``cumulative_m`` (metres) and ``minutes`` (at ``speed_kmh``),
    ``left_out`` the due buildings not routed and why (``no_door``, ``unreachable``,
    ``over_cap``), ``reason`` why there are no stops (``no_due_buildings``,
    ``no_reachable_door``). Order: nearest neighbour + 2-opt + Or-opt on the network
    distances, at most rules.ROUTE_MAX_STOPS stops (walks/due_route.py; docs/walks.md).
    Scope: the due list's. 404 no such grid or no network; 403 outside the jurisdiction;
    422 a position outside the grid's district (``field`` lon/lat) or farther than
    300 m from every path (``outside_coverage``)."""
    with conn.begin():
        result = route_of.due_route(conn, access, principal, settings, code, lon, lat, days)
    return GeoJSONResponse(jsonable_encoder(result))


@router.get(
    "/stats/walks",
    summary="Walk figures per unit: distance, time, buildings visited, shares, problems/km",
    response_model=WalkStats,
    tags=["statistics"],
    responses=refusals(401, 403, 422),
)
def walk_stats(
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    level: Annotated[str, Query(pattern=level_pattern(HANDLING_LEVELS))] = Level.grid,
    date_from: Annotated[date | None, Query(alias="from", description="First day (local)")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last day, inclusive")] = None,
    unit: Annotated[str | None, Query(pattern=UNIT_CODE)] = None,
    worker: Annotated[int | None, Query(gt=0, description="One worker's walks")] = None,
) -> JSONResponse:
    """Defaults to the 30 days ending today (local). Definitions: walks/figures.py (and
    ``definitions`` in the answer)."""
    result = figures.walk_stats(
        conn,
        principal,
        settings,
        level=Level(level),
        date_from=date_from,
        date_to=date_to,
        unit=unit,
        worker=worker,
    )
    return JSONResponse(jsonable_encoder(result))
