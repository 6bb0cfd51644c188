"""Routes of service points: thin, the SQL is in service.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from gis_service.api.deps import ConnDep
from gis_service.api.params import BBoxParams, PageParams
from gis_service.api.schemas import GeoJSONResponse, refusals
from gis_service.service_points import service
from gis_service.service_points.schemas import PointCollection, PointFeature, ServiceKinds

router = APIRouter(tags=["service points"])
GEOJSON = "application/geo+json"


@router.get(
    "/service-kinds",
    summary="Kinds of service point and the six categories",
    response_model=ServiceKinds,
    response_model_exclude_unset=True,
    responses=refusals(422),
)
def service_kinds(conn: ConnDep) -> dict[str, Any]:
    return service.kinds(conn)


@router.get(
    "/service-points",
    summary="Service points as GeoJSON, filtered and paged",
    response_model=PointCollection,
    response_class=GeoJSONResponse,
    responses=refusals(422),
)
def list_points(
    request: Request,
    conn: ConnDep,
    page: Annotated[PageParams, Depends()],
    area: Annotated[BBoxParams, Depends()],
    kind: Annotated[str | None, Query(examples=["red_home"])] = None,
    category: Annotated[str | None, Query(examples=["health"])] = None,
    unit: Annotated[str | None, Query(description="Within this unit (code)")] = None,
) -> JSONResponse:
    fc = service.list_points(
        conn,
        kind=kind,
        category=category,
        unit=unit,
        bbox=area.parsed(),
        limit=page.limit,
        offset=page.offset,
    )
    return page.answer(request, fc)


@router.get(
    "/service-points/{point_id}",
    summary="One service point",
    response_model=PointFeature,
    response_class=GeoJSONResponse,
    responses=refusals(404, 422),
)
def get_point(conn: ConnDep, point_id: int) -> JSONResponse:
    return JSONResponse(service.get_point(conn, point_id), media_type=GEOJSON)
