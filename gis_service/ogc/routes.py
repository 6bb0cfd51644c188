"""OGC API – Features – Part 1: Core (OGC 17-069r4) at ``/ogc/``, and the TileJSON of
the vector tiles at ``/tiles/{layer}/tilejson.json``.

Thin: parameters are parsed in ogc/params.py, the SQL is in ogc/features.py, the documents
in ogc/documents.py. Every operation refuses a query parameter it does not define and a
bad value with 400 (§7.15.1 Requirements 13 and 14; not our usual 422) in our JSON error
body, naming the parameter (``field``); ``OGCRoute`` makes that so for every error path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute

from gis_service.api.deps import ConnDep, SettingsDep, ViewerDep
from gis_service.api.handlers import error_response, validation_body
from gis_service.api.schemas import GeoJSONResponse, refusals
from gis_service.db.engine import get_engine
from gis_service.errors import GisServiceError
from gis_service.ogc import documents
from gis_service.ogc.collections import COLLECTIONS
from gis_service.ogc.params import (
    CRS84,
    ITEM_PARAMS,
    LIMIT_DEFAULT,
    LIMIT_MAX,
    OTHER_PARAMS,
    check_known,
    parse_items,
)
from gis_service.ogc.schemas import (
    CollectionInfo,
    Collections,
    Conformance,
    LandingPage,
    OGCFeature,
    OGCFeatureCollection,
    TileJSON,
)
from gis_service.ogc.tilejson import TILE_LAYERS


class OGCRoute(APIRoute):
    """Bad input leaves as 400 (OGC 17-069r4 Requirement 13), in our error body."""

    def error_response(self, path_params: dict[str, str], exc: GisServiceError) -> Response:
        """Our body for ``exc``; a 422 is a 400 here. Also used by the request guard."""
        response = error_response(exc)
        if response.status_code == 422:
            response.status_code = 400
        return response

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def ogc_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except GisServiceError as exc:
                return self.error_response(request.path_params, exc)
            except RequestValidationError as exc:
                return JSONResponse(validation_body(list(exc.errors())), status_code=400)

        return ogc_handler


#: every OGC operation may refuse bad input with 400 — the request guard's too (never 422)
REFUSED = refusals(400)
router = APIRouter(tags=["ogc"], route_class=OGCRoute, responses=REFUSED)

F_PARAM = {
    "name": "f",
    "in": "query",
    "required": False,
    "description": "The encoding: json (the only one; GeoJSON for features).",
    "schema": {"type": "string", "enum": ["json"]},
}
CRS_PARAMS = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"OGC API – Features Part 2: only {CRS84} (the default).",
        "schema": {"type": "string", "enum": [CRS84]},
    }
    for name in ("crs", "bbox-crs")
]
ITEMS_QUERY = [
    {
        "name": "bbox",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "description": "Only features whose geometry intersects the box: minx,miny,maxx,"
        "maxy (or 6 numbers with heights, ignored), CRS84 (OGC 17-069r4 §7.15.3).",
        "schema": {
            "type": "array",
            "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
            "items": {"type": "number"},
        },
    },
    {
        "name": "datetime",
        "in": "query",
        "required": False,
        "description": "An RFC 3339 date-time or date, or an interval start/end with .. for "
        "an open end (§7.15.4); on cases the report time, ignored by collections without "
        "time.",
        "schema": {"type": "string"},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": f"Features per page (§7.15.2); above {LIMIT_MAX} served as {LIMIT_MAX}.",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": LIMIT_MAX,
            "default": LIMIT_DEFAULT,
        },
    },
    {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "Paging cursor of the next links: the features after this id.",
        "schema": {"type": "string"},
    },
    {
        "name": "before",
        "in": "query",
        "required": False,
        "description": "Paging cursor of the prev links: the features before this id.",
        "schema": {"type": "string"},
    },
    F_PARAM,
    *CRS_PARAMS,
]


def path_param(name: str, description: str) -> dict[str, Any]:
    """A path parameter, documented here and read from ``request.path_params`` (FastAPI
    would otherwise add a 422 these routes never send: they answer 400)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


COLLECTION_ID = path_param("collectionId", f"One of: {', '.join(COLLECTIONS)}")
FEATURE_ID = path_param("featureId", "The feature's id (units: the code; cases: the id)")
LAYER = path_param("layer", f"One of: {', '.join(TILE_LAYERS)}")
GEOJSON_RESPONSES: dict[int | str, Any] = {
    **refusals(401, 403, 404),
}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _known(request: Request) -> None:
    check_known(request.query_params, OTHER_PARAMS)


def _headers(per_viewer: bool) -> dict[str, str]:
    headers = {"Vary": "Authorization, Cookie", "Content-Crs": f"<{CRS84}>"}
    if per_viewer:
        headers["Cache-Control"] = "private, no-store"
    return headers


def _geojson(body: str, per_viewer: bool) -> Response:
    return Response(body, media_type=documents.GEOJSON, headers=_headers(per_viewer))


@router.get(
    "/ogc/",
    summary="OGC API – Features landing page",
    response_model=LandingPage,
    openapi_extra={"parameters": [F_PARAM]},
)
def landing(request: Request) -> dict[str, Any]:
    """OGC 17-069r4 §7.2: links to the API definition (service-desc), the conformance
    declaration, the collections (data) and the vector tiles' TileJSON documents."""
    _known(request)
    return documents.landing(_base(request))


@router.get(
    "/ogc/conformance",
    summary="OGC API – Features conformance classes",
    response_model=Conformance,
    openapi_extra={"parameters": [F_PARAM]},
)
def conformance(request: Request) -> dict[str, Any]:
    """OGC 17-069r4 §7.4: Core and GeoJSON (our API definition is OpenAPI 3.1, so not
    the OpenAPI 3.0 class)."""
    _known(request)
    return documents.conformance()


@router.get(
    "/ogc/collections",
    summary="The feature collections",
    response_model=Collections,
    response_model_exclude_none=True,
    openapi_extra={"parameters": [F_PARAM]},
)
def collections(request: Request, conn: ConnDep) -> dict[str, Any]:
    """OGC 17-069r4 §7.13: each collection (units of each level, service points, cases,
    gaps) with its extent (CRS84 box; cases also the report times), CRS84, item type
    feature. Not viewer-dependent: who reads which items is decided on the items."""
    _known(request)
    return documents.collections(conn, _base(request))


@router.get(
    "/ogc/collections/{collectionId}",
    summary="One feature collection",
    response_model=CollectionInfo,
    response_model_exclude_none=True,
    responses=refusals(404),
    openapi_extra={"parameters": [COLLECTION_ID, F_PARAM]},
)
def collection(request: Request, conn: ConnDep) -> dict[str, Any]:
    """OGC 17-069r4 §7.14; 404 for an unknown collection."""
    _known(request)
    return documents.collection(conn, _base(request), request.path_params["collectionId"])


@router.get(
    "/ogc/collections/{collectionId}/items",
    summary="A page of a collection's features (GeoJSON)",
    response_model=OGCFeatureCollection,
    response_class=GeoJSONResponse,
    responses=GEOJSON_RESPONSES,
    openapi_extra={"parameters": [COLLECTION_ID, *ITEMS_QUERY]},
)
def items(request: Request, settings: SettingsDep, viewer: ViewerDep) -> Response:
    """OGC 17-069r4 §7.15: the features in id order, ``limit`` at a time, with
    ``numberMatched``, ``numberReturned``, ``timeStamp`` and absolute ``next``/``prev``
    links (keyset paging). ``bbox`` and ``datetime`` filter; any other parameter but
    ``f`` is a 400. Cases: the token's jurisdiction, or the public view without a token
    (auth/scope.py); gaps: planners, supervisors and admins (401/403 otherwise). The page
    is streamed as PostgreSQL builds it, on a connection of its own held until the end."""
    collection_id = request.path_params["collectionId"]
    col = documents.collection_of(collection_id)
    q = parse_items(request.query_params, key_is_int=col.key_is_int)
    conn = get_engine(settings).connect()
    try:
        chunks = documents.items_body(conn, _base(request), collection_id, viewer, q)
    except BaseException:
        conn.close()
        raise

    def body() -> Iterator[bytes]:
        try:
            for chunk in chunks:
                yield chunk.encode("utf-8")
        finally:
            conn.close()

    return StreamingResponse(body(), media_type=documents.GEOJSON, headers=_headers(col.per_viewer))


@router.get(
    "/ogc/collections/{collectionId}/items/{featureId}",
    summary="One feature (GeoJSON)",
    response_model=OGCFeature,
    response_class=GeoJSONResponse,
    responses=GEOJSON_RESPONSES,
    openapi_extra={"parameters": [COLLECTION_ID, FEATURE_ID, F_PARAM, CRS_PARAMS[0]]},
)
def item(request: Request, conn: ConnDep, viewer: ViewerDep) -> Response:
    """OGC 17-069r4 §7.16: one feature with its self and collection links; 404 if there
    is none by that id or the viewer may not read it."""
    check_known(request.query_params, ITEM_PARAMS)
    collection_id, feature_id = (
        request.path_params["collectionId"],
        request.path_params["featureId"],
    )
    col = documents.collection_of(collection_id)
    body = documents.item_body(conn, _base(request), collection_id, feature_id, viewer)
    return _geojson(body, col.per_viewer)


@router.get(
    "/tiles/{layer}/tilejson.json",
    summary="TileJSON 3.0.0 of a vector tile layer",
    response_model=TileJSON,
    responses=refusals(404),
    openapi_extra={"parameters": [LAYER]},
)
def tile_json(request: Request, conn: ConnDep) -> dict[str, Any]:
    """TileJSON 3.0.0 (mapbox/tilejson-spec): the tile URL template, zooms, bounds
    (the coverage) and the layers in the tiles with their fields (ogc/tilejson.py)."""
    check_known(request.query_params, ())
    return documents.tile_document(conn, _base(request), request.path_params["layer"])
