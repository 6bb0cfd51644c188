"""``/maps/walks``: the walk map (issue 18 item 4) — walked streets by frequency over a
period, buildings coloured by the days since a walk last passed them, and per grid the
figures of ``GET /api/v1/stats/walks`` (walks/figures.py, the same function).

Who sees what is auth/scope.py's: the figures and the buildings' last visits count only the
walks of ``walk_filter`` over the units of ``units_inside``; the walked streets are drawn
from single walks' tracks, so only for the viewers who read single walks
(``WALK_READERS``: planners get the figures and the buildings, not the streets).
"""

from __future__ import annotations

import html
from datetime import date, timedelta
from typing import Any

import folium
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import WALK_READERS, units_inside, walk_filter
from gis_service.maps.pages import (
    Page,
    bounds_of,
    finish,
    legend,
    new_map,
    scope_codes,
    unit_shapes,
)
from gis_service.units.codes import Level

#: days since the last visit → colour (upper bound inclusive); never visited: NEVER
DAY_BINS: tuple[tuple[float, str, str], ...] = (
    (1.0, "#1a9850", "walk_bin.1"),
    (7.0, "#91cf60", "walk_bin.7"),
    (14.0, "#fee08b", "walk_bin.14"),
    (30.0, "#fc8d59", "walk_bin.30"),
    (float("inf"), "#d73027", "walk_bin.older"),
)
NEVER = ("#7f0000", "walk_bin.never")
#: a building counts as neglected on this page after this many days without a visit
STALE_DAYS = 7.0
#: at most this many street pieces are drawn (the most walked first)
MAX_SEGMENTS = 6000
#: walked streets are counted per piece of track snapped to this grid (degrees, ≈ 20 m)
SEGMENT_GRID_DEG = 0.0002
STREET_COLOUR = "#08306b"


def day_bin(days: float | None) -> tuple[str, str]:
    """(colour, text key) of a building last visited ``days`` ago (None: never)."""
    if days is None:
        return NEVER
    return next((c, k) for hi, c, k in DAY_BINS if days <= hi)


def building_visits(
    conn: Connection, principal: Principal, unit: str, as_of: date, worker: int | None, tz: str
) -> list[dict[str, Any]]:
    """The buildings inside ``unit`` and the viewer's jurisdiction, each with its
    footprint (GeoJSON) and the days from its last visit by a walk the viewer may count
    (``walk_filter``; of ``worker`` if given) to the end of ``as_of`` (None: never)."""
    walks, params = walk_filter(principal)
    inside, in_params = units_inside(principal, "b.code")
    rows = conn.execute(
        text(
            f"""
            SELECT b.code, b.name, b.parent_code AS grid_code,
                   ST_AsGeoJSON(b.geom, 6)::json AS g,
                   extract(epoch FROM (CAST(:as_of AS date) + 1) AT TIME ZONE :tz - last.at)
                       / 86400.0 AS days
              FROM admin_unit b
              LEFT JOIN LATERAL (
                    SELECT max(v.visited_at) AS at FROM walk_visit v
                      JOIN walk w ON w.id = v.walk_id
                     WHERE v.building_code = b.code AND {walks}
                       AND (CAST(:worker AS integer) IS NULL OR w.worker_id = :worker)
                       AND v.visited_at < (CAST(:as_of AS date) + 1) AT TIME ZONE :tz) last
                ON true
             WHERE b.level = :building AND b.code LIKE :unit AND {inside}
             ORDER BY b.code
            """
        ),
        {
            **params,
            **in_params,
            "as_of": as_of,
            "tz": tz,
            "worker": worker,
            "building": Level.building.value,
            "unit": unit + "%",
        },
    ).mappings()
    return [dict(r) for r in rows]


def walked_streets(
    conn: Connection,
    principal: Principal,
    unit: str,
    date_from: date,
    date_to: date,
    worker: int | None,
    tz: str,
) -> list[dict[str, Any]]:
    """Pieces of the cleaned tracks (walk.track, matched to the network) of the walks of
    grids inside ``unit`` started in the period that the viewer may see, snapped to a
    ≈ 20 m grid so that walks along the same street share their pieces; each with the
    number of distinct walks over it, the most walked first (at most MAX_SEGMENTS)."""
    walks, params = walk_filter(principal)
    rows = conn.execute(
        text(
            f"""
            SELECT ST_AsGeoJSON(s.piece, 6)::json AS g, count(DISTINCT s.id) AS walks
              FROM (SELECT w.id,
                           ST_SnapToGrid((ST_DumpSegments(w.track)).geom, :cell) AS piece
                      FROM walk w
                     WHERE w.grid_code LIKE :unit AND {walks} AND w.track IS NOT NULL
                       AND (CAST(:worker AS integer) IS NULL OR w.worker_id = :worker)
                       AND (w.started_at AT TIME ZONE :tz)::date BETWEEN :d_from AND :d_to) s
             WHERE NOT ST_IsEmpty(s.piece) AND ST_NPoints(s.piece) = 2
               AND NOT ST_Equals(ST_StartPoint(s.piece), ST_EndPoint(s.piece))
             GROUP BY s.piece
             ORDER BY walks DESC
             LIMIT :limit
            """
        ),
        {
            **params,
            "cell": SEGMENT_GRID_DEG,
            "unit": unit + "%",
            "worker": worker,
            "tz": tz,
            "d_from": date_from,
            "d_to": date_to,
            "limit": MAX_SEGMENTS,
        },
    ).mappings()
    return [dict(r) for r in rows]


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "—"
    return f"{v * 100:.0f}%" if pct else f"{v:g}"


def walks_page(
    conn: Connection,
    page: Page,
    stats: dict[str, Any],
    buildings: list[dict[str, Any]],
    streets: list[dict[str, Any]] | None,
    style: dict,
    unit: str | None,
) -> str:
    """The map: grids with their walk figures (tooltip), buildings by days since their
    last visit, walked streets (thicker and darker where walked more)."""
    grids = stats["units"]
    shapes = unit_shapes(conn, [g["code"] for g in grids])
    m = new_map(
        page,
        bounds_of(conn, [g["code"] for g in grids])
        or bounds_of(conn, scope_codes(conn, page.principal, unit)),
        style,
    )
    grid_features = []
    for g in grids:
        shape = shapes.get(g["code"])
        if not shape:
            continue
        grid_features.append(
            {
                "type": "Feature",
                "geometry": shape["geometry"],
                "properties": {
                    "code": g["code"],
                    "name": g["name"],
                    "walks": g["walks"],
                    "distance_km": _fmt(g["distance_km"]),
                    "visited_share_7d": _fmt(g["visited_share_7d"], pct=True),
                    "visited_share_30d": _fmt(g["visited_share_30d"], pct=True),
                    "problems_per_km": _fmt(g["problems_per_km"]),
                },
            }
        )
    figure_keys = [
        "name",
        "walks",
        "distance_km",
        "visited_share_7d",
        "visited_share_30d",
        "problems_per_km",
    ]
    folium.GeoJson(
        {"type": "FeatureCollection", "features": grid_features},
        name=page.text("grid"),
        style_function=lambda f: {"fillOpacity": 0.03, "color": "#555", "weight": 1},
        highlight_function=lambda f: {"weight": 3, "color": "#222"},
        tooltip=folium.GeoJsonTooltip(
            fields=figure_keys,
            aliases=[page.text("grid"), *[page.text(k) for k in figure_keys[1:]]],
            sticky=True,
        ),
    ).add_to(m)
    if streets:
        top = max(s["walks"] for s in streets)
        street_features = [
            {
                "type": "Feature",
                "geometry": s["g"],
                "properties": {
                    "walks": int(s["walks"]),
                    "weight": round(1.5 + 5.5 * s["walks"] / top, 1),
                    "opacity": round(0.25 + 0.7 * s["walks"] / top, 2),
                },
            }
            for s in streets
        ]
        folium.GeoJson(
            {"type": "FeatureCollection", "features": street_features},
            name=page.text("walk_streets"),
            style_function=lambda f: {
                "color": STREET_COLOUR,
                "weight": f["properties"]["weight"],
                "opacity": f["properties"]["opacity"],
            },
            tooltip=folium.GeoJsonTooltip(fields=["walks"], aliases=[page.text("walks")]),
        ).add_to(m)
    counts: dict[str, int] = {}
    building_features = []
    for b in buildings:
        days = None if b["days"] is None else float(b["days"])
        colour, key = day_bin(days)
        counts[key] = counts.get(key, 0) + 1
        building_features.append(
            {
                "type": "Feature",
                "geometry": b["g"],
                "properties": {
                    "code": b["code"],
                    "name": b["name"],
                    "days_since": page.text("walk_bin.never") if days is None else f"{days:.1f}",
                    "bin": key,
                    "colour": colour,
                },
            }
        )
    folium.GeoJson(
        {"type": "FeatureCollection", "features": building_features},
        name=page.text("building"),
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "color": f["properties"]["colour"],
            "weight": 2,
            "fillOpacity": 0.8,
        },
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "days_since"],
            aliases=[page.text("building"), page.text("days_since")],
        ),
    ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    items = [(c, f"{page.text(k)} ({counts.get(k, 0)})") for _, c, k in DAY_BINS]
    items.append((NEVER[0], f"{page.text(NEVER[1])} ({counts.get(NEVER[1], 0)})"))
    if streets:
        items.append((STREET_COLOUR, page.text("walk_streets")))
    stale = sum(b["days"] is None or float(b["days"]) > STALE_DAYS for b in buildings)
    totals = stats["totals"]
    note = page.text("walk_note").format(
        km=_fmt(totals["distance_km"]),
        s7=_fmt(totals["visited_share_7d"], pct=True),
        s30=_fmt(totals["visited_share_30d"], pct=True),
        ppk=_fmt(totals["problems_per_km"]),
    )
    legend(m, page.text("days_since"), items, note)
    m.get_root().html.add_child(
        folium.Element(
            f'<div hidden data-testid="walk-summary" data-grids="{len(grid_features)}" '
            f'data-buildings="{len(buildings)}" data-stale="{stale}" '
            f'data-streets="{len(streets or [])}" '
            f'data-codes="{html.escape(" ".join(b["code"] for b in buildings))}"></div>'
        )
    )
    return finish(m)


def default_period(today: date, date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """The period of walks/figures.py: the 30 days ending ``to`` (default today)."""
    from gis_service.walks.figures import DEFAULT_DAYS

    last = date_to or today
    return date_from or last - timedelta(days=DEFAULT_DAYS - 1), last


def reads_walks(principal: Principal) -> bool:
    return principal.role in WALK_READERS
