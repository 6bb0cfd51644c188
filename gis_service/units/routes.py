"""Routes of the unit hierarchy: thin, the SQL is in service.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from gis_service.api.deps import ConnDep, ViewerDep
from gis_service.api.params import BBoxParams, PageParams, PointParams
from gis_service.api.schemas import GeoJSONResponse, refusals
from gis_service.errors import NotFound
from gis_service.units import service
from gis_service.units.codes import LEVELS, Level
from gis_service.units.schemas import Located, UnitCollection, UnitFeature

router = APIRouter(tags=["units"])
GEOJSON = "application/geo+json"


@router.get(
    "/locate",
    summary="The units that hold a point, district to building",
    response_model=Located,
    responses=refusals(404, 422),
)
def locate(conn: ConnDep, point: Annotated[PointParams, Depends()]) -> JSONResponse:
    """Answered as a plain JSONResponse, skipping response-model encoding: this is the
    hot path of case reporting (benchmarks/locate.py)."""
    lon, lat = point.wgs84()
    chain = service.locate_point(conn, lon, lat)
    if not chain:
        raise NotFound(
            f"no unit holds the point lon={point.lon}, lat={point.lat} ({point.coord_sys.value})",
            wgs84={"lon": lon, "lat": lat},
        )
    by_level: dict[str, Any] = {lvl.value: None for lvl in LEVELS}
    for unit in chain:
        by_level[unit["level"]] = unit
    return JSONResponse(
        {
            "query": {"lon": point.lon, "lat": point.lat, "coord_sys": point.coord_sys.value},
            "wgs84": {"lon": lon, "lat": lat},
            **by_level,
            "chain": chain,
        }
    )


@router.get(
    "/units",
    summary="Units as GeoJSON, filtered and paged",
    response_model=UnitCollection,
    response_class=GeoJSONResponse,
    responses=refusals(422),
)
def list_units(
    request: Request,
    conn: ConnDep,
    page: Annotated[PageParams, Depends()],
    area: Annotated[BBoxParams, Depends()],
    level: Annotated[Level | None, Query()] = None,
    parent: Annotated[str | None, Query(description="Parent unit code")] = None,
    q: Annotated[str | None, Query(description="Part of the name")] = None,
    geometry: Annotated[bool, Query(description="Include geometries")] = True,
) -> JSONResponse:
    fc = service.list_units(
        conn,
        level=level,
        parent=parent,
        bbox=area.parsed(),
        q=q,
        limit=page.limit,
        offset=page.offset,
        geometry=geometry,
    )
    return page.answer(request, fc)


@router.get(
    "/units/{code}",
    summary="One unit with its ancestors, children and roster",
    response_model=UnitFeature,
    response_class=GeoJSONResponse,
    responses=refusals(401, 404, 422),
)
def get_unit(
    conn: ConnDep, viewer: ViewerDep, code: str, geometry: Annotated[bool, Query()] = True
) -> JSONResponse:
    """The roster lists what the viewer may read (auth/scope.py ``roster_filter``): anyone
    sees the grid leader; staff see the whole roster inside and above their scope."""
    return JSONResponse(service.get_unit(conn, viewer, code, geometry), media_type=GEOJSON)
