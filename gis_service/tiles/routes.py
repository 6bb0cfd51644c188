"""``/tiles/{layer}/{z}/{x}/{y}.pbf``: vector tiles with ETag and Cache-Control.

Layers: ``units`` (with their resolution figures; ``level=`` or by zoom), ``cases``
(``status=``, ``category=``, ``open=true``), ``service_points`` (``kind=``,
``category=``) and ``basemap`` (streets, unit boundaries, buildings). Units and cases
follow the viewer's jurisdiction, so they need a sign-in and are cached privately; the
basemap and service points are public.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import text

from gis_service.api import conditional
from gis_service.api.deps import ConnDep, SettingsDep, principal_of
from gis_service.auth.principal import Principal, Role
from gis_service.errors import InvalidInput
from gis_service.tiles import mvt
from gis_service.tiles.cache import TileCache

router = APIRouter(tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"
LAYERS = ("units", "cases", "service_points", "basemap")


def versions_of(conn) -> tuple[int, int, int]:
    row = conn.execute(
        text("SELECT network_version, points_version, units_version FROM access_state")
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def unit_figures(request: Request, conn, level: str) -> dict[str, dict[str, Any]]:
    """Resolution figures of every unit of a level over the last 52 weeks, from the cube;
    kept until the cube's facts change."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from gis_service.stats.resolution import StatsQuery, resolution

    cube = request.app.state.cube
    facts = cube.facts(request.app.state.settings.tile_freshness_seconds)
    # one entry per level, kept until the cube's facts change: a zoom animation asks for
    # tiles of two levels at once, and must not recompute one level's figures per tile
    memo = request.app.state.tile_figures
    held = memo.get(level)
    if held is None or held[0] is not facts:
        settings = request.app.state.settings
        today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
        q = StatsQuery(level=level, date_from=today - timedelta(days=363), date_to=today)
        result = resolution(conn, cube, Principal(role=Role.admin), q)
        held = memo[level] = (facts, {u["code"]: u for u in result["units"]})
    return held[1]


def figures_version(request: Request, level: str) -> int:
    """The cube load the level's held figures were computed from."""
    return request.app.state.tile_figures[level][0].version


@router.get("/tiles/cases/pick", summary="The case drawn nearest a click on the case map")
def pick(
    request: Request,
    settings: SettingsDep,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    z: Annotated[int, Query(ge=0, le=22)],
    status: str | None = None,
    category: str | None = None,
    open: bool = False,
    overdue: bool = False,
) -> Response:
    principal = principal_of(request, settings)
    found = mvt.pick_case(
        request.app.state.case_index,
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
)
def tile(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    layer: Annotated[str, Path(description="units, cases, service_points or basemap")],
    z: int,
    x: int,
    y: int,
    level: Annotated[str | None, Query(pattern="^(district|subdistrict|community|grid)$")] = None,
    status: str | None = None,
    category: str | None = None,
    kind: str | None = None,
    open: Annotated[bool, Query(description="cases: open ones only")] = False,
    overdue: Annotated[bool, Query(description="cases: overdue open ones only")] = False,
) -> Response:
    if layer not in LAYERS:
        raise InvalidInput(f"layer must be one of {', '.join(LAYERS)}", field="layer")
    mvt.check_tile(z, x, y)
    cache: TileCache = request.app.state.tiles
    versions = versions_of(conn)
    if layer in ("basemap", "service_points"):
        key = f"{layer}/{z}/{x}/{y}/{versions}/{kind}/{category}"
        private = False

        def make() -> bytes:
            if layer == "basemap":
                return request.app.state.basemap.tile(conn, z, x, y, versions)
            return mvt.points_tile(conn, z, x, y, kind, category)
    else:
        principal = principal_of(request, settings)
        private = True
        if layer == "units":
            lvl = level or mvt.unit_level_for(z)
            figures = unit_figures(request, conn, lvl)
            key = (
                f"units/{z}/{x}/{y}/{lvl}/{versions[2]}/{figures_version(request, lvl)}/"
                f"{mvt.scope_key(principal)}"
            )

            def make() -> bytes:
                return mvt.units_tile(conn, principal, z, x, y, lvl, figures)
        else:
            index = request.app.state.case_index
            facts = index.facts()
            key = (
                f"cases/{z}/{x}/{y}/{facts.version}/{status}/{category}/{open}/{overdue}/"
                f"{mvt.scope_key(principal)}"
            )

            def make() -> bytes:
                return mvt.cases_tile(
                    conn,
                    index,
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
    body = cache.get(key, make)
    return Response(body, media_type=MVT, headers=headers)


@router.get("/tiles/style.json", summary="The basemap's style (layers, colours, zooms)")
def style(request: Request) -> Response:
    """Public; revalidated by its ETag (the body's hash), 304 when unchanged."""
    return conditional.respond(
        request.headers,
        json.dumps(request.app.state.basemap.style, ensure_ascii=False),
        media_type="application/json",
        headers={"Cache-Control": "public, no-cache"},
    )
