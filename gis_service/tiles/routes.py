"""``/tiles/{layer}/{z}/{x}/{y}.pbf``: vector tiles with ETag and Cache-Control.

Layers: ``units`` (with their resolution figures; ``level=`` or by zoom), ``cases``
(``status=``, ``category=``, ``open=true``), ``service_points`` (``kind=``,
``category=``) and ``basemap`` (streets, unit boundaries, buildings). Units and cases
follow the viewer's jurisdiction, so they need a sign-in and are cached privately; the
basemap and service points are public.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from gis_service.api import conditional
from gis_service.api.deps import (
    BasemapDep,
    CaseIndexDep,
    ReadConnDep,
    ServicesDep,
    SettingsDep,
    TileCacheDep,
    principal_of,
)
from gis_service.api.schemas import media, refusals
from gis_service.api.services import Services
from gis_service.auth.principal import Principal
from gis_service.auth.scope import scope_key
from gis_service.errors import InvalidInput
from gis_service.tiles import mvt
from gis_service.tiles.schemas import MapStyle, Picked
from gis_service.units.codes import HANDLING_LEVELS, level_pattern

router = APIRouter(tags=["tiles"], responses=refusals(422))
MVT = "application/vnd.mapbox-vector-tile"
LAYERS = ("units", "cases", "service_points", "basemap")


def versions_of(conn) -> tuple[int, int, int]:
    """(network, points, units) versions: what the basemap and point tiles depend on."""
    from gis_service.access.reach import current_versions

    network, points, units = current_versions(conn)
    return network, points, units


def unit_figures(
    services: Services, conn, level: str, principal: Principal
) -> tuple[int, dict[str, dict[str, Any]]]:
    """Resolution figures of every unit of a level over the last 52 weeks, counted as the
    viewer counts them (``/api/v1/stats/resolution`` with the viewer's jurisdiction: a unit
    above the viewer's scope carries only the viewer's cases), with the cube load they came
    from. Kept per level and jurisdiction until the cube's facts change: a zoom animation
    asks for tiles of two levels at once, and must not recompute one level per tile."""

    from gis_service.stats.resolution import StatsQuery, resolution

    cube = services.cube
    facts = cube.facts(services.settings.tile_freshness_seconds)
    memo: dict = services.tile_figures
    if memo.get("version") != facts.version:  # never hold an old load's arrays
        memo.clear()
        memo["version"] = facts.version
    key = (level, scope_key(principal))
    if key not in memo:
        q = StatsQuery.default_period(services.settings, level)
        result = resolution(conn, cube, principal, q)
        memo[key] = {u["code"]: u for u in result["units"]}
    return facts.version, memo[key]


@router.get(
    "/tiles/cases/pick",
    summary="The case drawn nearest a click on the case map",
    response_model=Picked,
    responses=refusals(401, 403),
)
def pick(
    request: Request,
    conn: ReadConnDep,
    settings: SettingsDep,
    index: CaseIndexDep,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    z: Annotated[int, Query(ge=0, le=22)],
    status: str | None = None,
    category: str | None = None,
    open: bool = False,
    overdue: bool = False,
) -> Response:
    principal = principal_of(request, settings, conn)
    found = mvt.pick_case(
        conn,
        index,
        principal,
        lon,
        lat,
        z,
        status=status,
        category=category,
        open_only=open,
        overdue_only=overdue,
    )
    # nothing there is an ordinary answer, not an error: {"id": null}
    return Response(json.dumps({"id": found}), media_type="application/json")


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.pbf",
    summary="A vector tile (Mapbox Vector Tile)",
    response_class=Response,
    responses={
        200: media("The tile (Mapbox Vector Tile 2.1, protobuf)", MVT),
        304: {"description": "Not modified (If-None-Match)"},
        **refusals(401, 403, 422),
    },
)
def tile(
    request: Request,
    conn: ReadConnDep,
    settings: SettingsDep,
    services: ServicesDep,
    cache: TileCacheDep,
    layer: Annotated[str, Path(description="units, cases, service_points or basemap")],
    z: int,
    x: int,
    y: int,
    level: Annotated[str | None, Query(pattern=level_pattern(HANDLING_LEVELS))] = None,
    status: str | None = None,
    category: str | None = None,
    kind: str | None = None,
    open: Annotated[bool, Query(description="cases: open ones only")] = False,
    overdue: Annotated[bool, Query(description="cases: overdue open ones only")] = False,
) -> Response:
    if layer not in LAYERS:
        raise InvalidInput(f"layer must be one of {', '.join(LAYERS)}", field="layer")
    mvt.check_tile(z, x, y)
    versions = versions_of(conn)
    if layer in ("basemap", "service_points"):
        generation = str(versions)
        key = f"{layer}/{z}/{x}/{y}/{generation}/{kind}/{category}"
        private = False

        def make() -> bytes:
            if layer == "basemap":
                return services.basemap.tile(conn, z, x, y, versions)
            return mvt.points_tile(conn, z, x, y, kind, category)
    else:
        principal = principal_of(request, settings, conn)
        private = True
        if layer == "units":
            lvl = level or mvt.unit_level_for(z)
            figures_at, figures = unit_figures(services, conn, lvl, principal)
            generation = f"{versions[2]}/{figures_at}"
            key = f"units/{z}/{x}/{y}/{lvl}/{generation}/{scope_key(principal)}"

            def make() -> bytes:
                return mvt.units_tile(conn, principal, z, x, y, lvl, figures)
        else:
            state = services.case_index.state()  # the key and the tile from one version
            generation = str(state.facts.version)
            key = (
                f"cases/{z}/{x}/{y}/{generation}/{status}/{category}/{open}/{overdue}/"
                f"{scope_key(principal)}"
            )

            def make() -> bytes:
                return mvt.cases_tile(
                    conn,
                    state,
                    principal,
                    z,
                    x,
                    y,
                    status=status,
                    category=category,
                    open_only=open,
                    overdue_only=overdue,
                )

    etag = cache.etag(key)
    headers = {
        "ETag": etag,
        "Cache-Control": ("private" if private else "public") + ", max-age=0, must-revalidate",
        "Vary": "Authorization, Cookie",
    }
    if conditional.not_modified(request.headers, etag):
        return conditional.not_modified_response(headers)
    body = cache.get(key, make, family=layer, generation=generation)
    return Response(body, media_type=MVT, headers=headers)


@router.get(
    "/tiles/style.json",
    summary="The basemap's style (layers, colours, zooms)",
    response_model=MapStyle,
    responses={304: {"description": "Not modified (If-None-Match)"}},
)
def style(request: Request, basemap: BasemapDep) -> Response:
    """Public; revalidated by its ETag (the body's hash), 304 when unchanged."""
    return conditional.respond(
        request.headers,
        json.dumps(basemap.style, ensure_ascii=False),
        media_type="application/json",
        headers={"Cache-Control": "public, no-cache"},
    )
