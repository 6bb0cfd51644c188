"""The map pages, built with folium on Leaflet served from our own server.

Every page: a title, the data's date, the filters in use, a legend, our offline basemap,
the viewer's jurisdiction applied to every figure and feature. Units travel inline as
simplified GeoJSON (a district has about 2,000); cases always come as vector tiles, so a
page over a million cases stays as light as one over a hundred.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import folium
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import roster_filter, units_inside, units_visible
from gis_service.cases.workflow import Status
from gis_service.maps import queries
from gis_service.maps.assets import MAPS_JS, VECTORGRID_JS, localise
from gis_service.maps.i18n import TEXT, t
from gis_service.units.codes import Level, child_level
from gis_service.vocabulary import sql_list

RATE_BINS = [
    (0.98, "#006d2c"),
    (0.95, "#31a354"),
    (0.90, "#a1d99b"),
    (0.80, "#fdae6b"),
    (0.0, "#de2d26"),
]
NO_DATA = "#cccccc"
# The levels the grid page outlines, top first.
GRID_MAP_LEVELS = (Level.subdistrict, Level.community, Level.grid)
GRID_MAP_LEVELS_SQL = sql_list(GRID_MAP_LEVELS)
SIMPLIFY_DEG = 0.00005  # ≈ 5 m: invisible at the zooms these pages open at


@dataclass
class Page:
    kind: str
    lang: str
    principal: Principal
    data_date: str
    filters: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    #: exported to a file: data inline, no tiles, no links back to the server
    offline: dict[str, Any] | None = None
    #: the filter form's fields: (name, label, [(value, label)], current) — a GET form
    form: list[tuple[str, str, list[tuple[str, str]], str]] = field(default_factory=list)
    #: an outside basemap configured instead of ours (Settings.basemap_url)
    basemap_url: str | None = None
    basemap_note: str = ""

    def text(self, key: str) -> str:
        return t(key, self.lang)

    def labels(self) -> dict[str, str]:
        return {k: t(k, self.lang) for k in TEXT}

    def other_lang_url(self) -> str:
        from urllib.parse import urlencode

        q = {**self.query, "lang": "en" if self.lang == "zh" else "zh"}
        return f"/maps/{self.kind}?{urlencode(q)}"


def rate_colour(rate: float | None) -> str:
    if rate is None:
        return NO_DATA
    return next(c for lo, c in RATE_BINS if rate >= lo)


def new_map(page: Page, bounds: list[list[float]] | None, basemap_style: dict) -> folium.Map:
    m = folium.Map(tiles=None, control_scale=True, zoom_start=13, location=[34.78, 113.68])
    localise(m)
    if bounds:
        m.fit_bounds(bounds)
    root = m.get_root()
    root.header.add_child(folium.Element('<link rel="stylesheet" href="/static/app/maps.css"/>'))
    # in the body, so they load after Leaflet (folium puts its own links in the head)
    root.html.add_child(
        folium.Element(f'<script src="{VECTORGRID_JS}"></script><script src="{MAPS_JS}"></script>')
    )
    root.html.add_child(folium.Element(_title_box(page)))
    style = json.dumps(basemap_style, ensure_ascii=False)
    if page.basemap_url and page.offline is None:
        folium.TileLayer(tiles=page.basemap_url, attr="basemap", name="basemap").add_to(m)
        on_load(m, "window.gisStats.tilesLoaded += 1;")
    elif page.offline is not None:
        layers = json.dumps(page.offline["basemap"], ensure_ascii=False)
        on_load(m, f"gisBasemapInline({m.get_name()}, {layers}, {style});")
    else:
        on_load(m, f"gisBasemap({m.get_name()}, {style});")
    return m


def cases_layer(m: folium.Map, page: Page, query: str, cases_fc: dict | None) -> None:
    """Cases as tiles from the server, or inline in an exported page."""
    labels = json.dumps(page.labels(), ensure_ascii=False)
    if page.offline is not None:
        on_load(
            m,
            f"gisCasesInline({m.get_name()}, "
            f"{json.dumps(cases_fc or {'type': 'FeatureCollection', 'features': []})}, "
            f"{labels});",
        )
    else:
        on_load(
            m,
            f"gisCases({m.get_name()}, {json.dumps(query)}, {labels}, "
            f"gisTimeline({m.get_name()}, {labels}));",
        )


def on_load(m: folium.Map, js: str) -> None:
    """Run after the page's scripts: folium defines the map's variables at render time,
    after anything added to the page before."""
    m.get_root().script.add_child(
        folium.Element(f"window.addEventListener('load', function () {{ {js} }});")
    )


def _title_box(page: Page) -> str:
    rows = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in page.filters.items())
    who = page.principal.display_name or page.principal.username or page.principal.role.value
    return f"""
<div class="gis-title" data-testid="map-title" lang="{page.lang}">
  {_nav(page)}<h1>{html.escape(page.text(page.kind + ".title"))}</h1>
  <p class="gis-date" data-testid="data-date">{page.text("data_as_of")} {page.data_date}</p>
  <ul class="gis-filters" data-testid="filters">{rows}</ul>
  {_form(page)}
  {f'<p class="gis-warn">{html.escape(page.basemap_note)}</p>' if page.basemap_note else ""}
  <p class="gis-who">{page.text("viewer")}: {html.escape(who)} {_links(page)}</p>
</div>"""


def _form(page: Page) -> str:
    """The page's filters as a small form (GET: the URL stays shareable)."""
    if not page.form or page.offline is not None:
        return ""
    fields = []
    for name, label, options, current in page.form:
        if options:
            opts = "".join(
                f'<option value="{html.escape(v)}"'
                f"{' selected' if v == current else ''}>{html.escape(lb)}</option>"
                for v, lb in options
            )
            fields.append(
                f'<label>{html.escape(label)} <select name="{name}" '
                f'data-testid="filter-{name}">{opts}</select></label>'
            )
        else:
            fields.append(
                f'<label>{html.escape(label)} <input type="date" name="{name}" '
                f'value="{html.escape(current)}" data-testid="filter-{name}"></label>'
            )
    keep = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
        for k, v in page.query.items()
        if k in ("lang", "unit") and k not in {f[0] for f in page.form}
    )
    return (
        f'<form class="gis-form" method="get" data-testid="filter-form">{"".join(fields)}'
        f'{keep}<button type="submit">{page.text("filters")}</button></form>'
    )


def _nav(page: Page) -> str:
    """The navigation bar shared with the desk (desk/nav.py); none on offline exports."""
    if page.offline is not None:
        return ""
    from gis_service.desk.nav import nav_bar

    current = page.kind if page.kind in ("coverage", "hotspots", "walks") else "maps"
    return nav_bar(page.principal, page.lang, current, page.other_lang_url())


def _links(page: Page) -> str:
    if page.offline is not None:
        return ""
    return (
        f'· <a href="{page.other_lang_url()}" data-testid="lang-switch">'
        f'{page.text("lang_switch")}</a> · <a href="/maps/logout">'
        f"{page.text('sign_out')}</a>"
    )


def legend(m: folium.Map, title: str, items: list[tuple[str, str]], note: str = "") -> None:
    rows = "".join(
        f'<li><span class="swatch" style="background:{c}"></span>{html.escape(label)}</li>'
        for c, label in items
    )
    extra = f'<p class="note">{html.escape(note)}</p>' if note else ""
    m.get_root().html.add_child(
        folium.Element(
            f'<div class="gis-legend" data-testid="legend"><h2>{html.escape(title)}</h2>'
            f"<ul>{rows}</ul>{extra}</div>"
        )
    )


def finish(m: folium.Map) -> str:
    """The page's HTML. A layer with no features (a viewer whose scope holds none) keeps
    no tooltip or popup: folium checks their fields against the first feature and would
    fail."""
    for layer in list(m._children.values()):
        if isinstance(layer, folium.GeoJson) and not layer.data.get("features", True):
            for key, child in list(layer._children.items()):
                if isinstance(child, folium.GeoJsonTooltip | folium.GeoJsonPopup):
                    del layer._children[key]
    on_load(m, "gisReady();")
    return m.get_root().render()


# ------------------------------------------------------------------ data helpers


def unit_shapes(conn: Connection, codes: list[str]) -> dict[str, dict]:
    rows = conn.execute(
        text(
            "SELECT code, name, level, parent_code, population, "
            "ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :tol), 6)::json AS g "
            "FROM admin_unit WHERE code = ANY(:codes)"
        ),
        {"codes": codes, "tol": SIMPLIFY_DEG},
    )
    return {
        r.code: {
            "name": r.name,
            "level": r.level,
            "parent": r.parent_code,
            "population": r.population,
            "geometry": r.g,
        }
        for r in rows
    }


def bounds_of(conn: Connection, codes: list[str]) -> list[list[float]] | None:
    row = conn.execute(
        text(
            "SELECT ST_YMin(e), ST_XMin(e), ST_YMax(e), ST_XMax(e) FROM (SELECT ST_Extent(geom) "
            "AS e FROM admin_unit WHERE code = ANY(:codes)) x"
        ),
        {"codes": codes},
    ).one()
    return None if row[0] is None else [[row[0], row[1]], [row[2], row[3]]]


def scope_codes(conn: Connection, principal: Principal, unit: str | None) -> list[str]:
    """The units a page opens on: the one asked for, else the viewer's scopes, else the
    districts."""
    if unit:
        return [unit]
    if principal.scopes:
        return list(principal.scopes)
    return [
        r[0]
        for r in conn.execute(
            text(
                "SELECT code FROM admin_unit WHERE level = 'district' AND EXISTS (SELECT 1 FROM "
                "admin_unit c WHERE c.parent_code = admin_unit.code) ORDER BY code"
            )
        )
    ]


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


# ------------------------------------------------------------------ pages


def resolution_page(
    conn: Connection, page: Page, stats: dict[str, Any], style: dict, unit: str | None
) -> str:
    level = stats["level"]
    units = stats["units"]
    shapes = unit_shapes(conn, [u["code"] for u in units])
    features = []
    for u in units:
        shape = shapes.get(u["code"])
        if not shape:
            continue
        props = {
            "code": u["code"],
            "name": u["name"],
            "level": level,
            "colour": rate_colour(u.get("resolution_rate")),
        }
        for k in ("reported", "accepted", "closed", "overdue_now"):
            props[k] = u.get(k, 0)
        for k in ("resolution_rate", "on_time_rate", "rework_rate", "satisfaction_rate"):
            props[k] = _pct(u.get(k))
        features.append(
            {"type": "Feature", "id": u["code"], "geometry": shape["geometry"], "properties": props}
        )
    bounds = bounds_of(conn, [u["code"] for u in units]) or bounds_of(
        conn, scope_codes(conn, page.principal, unit)
    )
    m = new_map(page, bounds, style)
    fields = [
        "name",
        "reported",
        "closed",
        "resolution_rate",
        "on_time_rate",
        "rework_rate",
        "satisfaction_rate",
        "overdue_now",
    ]
    aliases = [page.text(level)] + [page.text(f) for f in fields[1:]]
    layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=page.text(level),
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "color": "#555",
            "weight": 1,
            "fillOpacity": 0.65,
        },
        highlight_function=lambda f: {"weight": 3, "color": "#222"},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases, sticky=True),
    ).add_to(m)
    child = child_level(level)
    q = {k: v for k, v in page.query.items() if k in ("from", "to", "lang")}
    from urllib.parse import urlencode

    if child is not None and child.value != "building":
        target = f"/maps/resolution?{urlencode({**q, 'level': child.value})}&unit="
    else:
        target = f"/maps/cases?{urlencode({k: v for k, v in q.items() if k == 'lang'})}&unit="
    if page.offline is None:
        on_load(
            m,
            f"gisDrill({layer.get_name()}, function (p) {{ return "
            f"{json.dumps(target)} + encodeURIComponent(p.code); }});",
        )
    cases_layer(
        m,
        page,
        "open=true&overdue=true",
        page.offline.get("overdue") if page.offline is not None else None,
    )
    items = [(c, f"≥ {lo * 100:.0f}%") for lo, c in RATE_BINS[:-1]]
    items += [
        (RATE_BINS[-1][1], f"< {RATE_BINS[-2][0] * 100:.0f}%"),
        (NO_DATA, page.text("no_cases")),
        ("#a50f15", page.text("overdue_cases")),
    ]
    legend(
        m,
        page.text("resolution_rate"),
        items,
        page.text("click_drill") if page.offline is None else "",
    )
    return finish(m)


def cases_page(conn: Connection, page: Page, style: dict, unit: str | None, query: str) -> str:
    bounds = bounds_of(conn, scope_codes(conn, page.principal, unit))
    m = new_map(page, bounds, style)
    cases_layer(m, page, query, page.offline.get("cases") if page.offline is not None else None)
    from gis_service.stats.cube import STATUSES

    colours = {
        Status.reported: "#e6550d",
        Status.accepted: "#fd8d3c",
        Status.dispatched: "#fdae6b",
        Status.in_progress: "#6baed6",
        Status.handled: "#3182bd",
        Status.parked: "#9e9ac8",
        Status.closed: "#31a354",
        Status.rejected: "#969696",
        Status.duplicate: "#bdbdbd",
        Status.voided: "#636363",
    }
    items = [(colours[s], page.text("status." + s)) for s in STATUSES]
    items.append(("#fd8d3c", page.text("cluster")))
    legend(m, page.text("cases.legend"), items)
    return finish(m)


def units_page(conn: Connection, page: Page, style: dict, unit: str | None) -> str:
    # the unit asked for (within what the viewer may see), else the viewer's jurisdiction
    if unit:
        where, params = units_visible(page.principal, "u.code")
        where += " AND u.code LIKE :unit_prefix"
        params["unit_prefix"] = unit + "%"
    else:
        where, params = units_inside(page.principal, "u.code")
    staff_where, staff_params = roster_filter(page.principal, "s.unit_code", "s.role")
    params.update(staff_params)
    scope = scope_codes(conn, page.principal, unit)
    rows = (
        conn.execute(
            text(f"""
        SELECT u.code, u.name, u.level, u.population,
               ST_AsGeoJSON(ST_SimplifyPreserveTopology(u.geom, :tol), 6)::json AS g,
               (SELECT json_agg(json_build_object('role', s.role, 'name', s.name,
                                                  'phone', s.phone) ORDER BY s.sort)
                  FROM unit_staff s WHERE s.unit_code = u.code AND {staff_where}) AS staff
        FROM admin_unit u
        WHERE u.level IN {GRID_MAP_LEVELS_SQL} AND {where}
        ORDER BY u.code"""),
            {"tol": SIMPLIFY_DEG, **params},
        )
        .mappings()
        .all()
    )
    m = new_map(page, bounds_of(conn, scope), style)
    colours = {Level.subdistrict: "#54278f", Level.community: "#3182bd", Level.grid: "#31a354"}
    for level in GRID_MAP_LEVELS:
        feats = []
        for r in rows:
            if r["level"] != level:
                continue
            staff = r["staff"] or []
            roster = "".join(
                f"<li>{html.escape(s['name'])} {html.escape(s['phone'] or '')}</li>" for s in staff
            )
            feats.append(
                {
                    "type": "Feature",
                    "id": r["code"],
                    "geometry": r["g"],
                    "properties": {
                        "code": r["code"],
                        "name": r["name"],
                        "population": r["population"] or 0,
                        "roster": f"<ul>{roster}</ul>" if roster else "",
                    },
                }
            )
        if not feats:
            continue
        group = folium.GeoJson(
            {"type": "FeatureCollection", "features": feats},
            name=page.text(level),
            style_function=lambda f, c=colours[level], lv=level: {
                "color": c,
                "weight": {"subdistrict": 3, "community": 2, "grid": 1}[lv],
                "fillOpacity": 0.05 if lv == "grid" else 0.0,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "code"], aliases=[page.text(level), "code"]
            ),
            popup=folium.GeoJsonPopup(
                fields=["name", "population", "roster"],
                aliases=[page.text(level), page.text("population"), page.text("roster")],
            )
            if level == "grid"
            else None,
        )
        group.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    legend(m, page.text("units.title"), [(c, page.text(lv)) for lv, c in colours.items()])
    return finish(m)


def coverage_page(
    conn: Connection,
    page: Page,
    style: dict,
    unit: str | None,
    reach_m: float,
    sites: dict | None,
    circle: str,
    living: list[dict] | None = None,
) -> str:
    where, params = units_inside(page.principal, "b.unit_code")
    if unit:
        where += " AND b.unit_code LIKE :u"
        params["u"] = unit + "%"
    buildings = (
        conn.execute(
            text(f"""
        SELECT b.unit_code, u.name, b.population, b.party_m,
               ST_AsGeoJSON(u.geom, 6)::json AS g
        FROM building_access b JOIN admin_unit u ON u.code = b.unit_code
        WHERE {where} ORDER BY b.unit_code"""),
            params,
        )
        .mappings()
        .all()
    )
    scope = scope_codes(conn, page.principal, unit)
    m = new_map(page, bounds_of(conn, scope), style)
    # one category's quarter-hour area at a time: a district's union has ~140,000 vertices
    circles = conn.execute(
        text(
            "SELECT key, ST_AsGeoJSON(ST_Simplify(geom, :tol), 6)::json AS g "
            "FROM circle_union WHERE key = :key"
        ),
        {"tol": SIMPLIFY_DEG * 2, "key": f"category:{circle}"},
    ).all()
    palette = ["#1b9e77"]
    circle_name = dict(queries.living_categories(conn, page.lang)).get(circle, circle)
    for (key, geom), colour in zip(circles, palette, strict=False):
        folium.GeoJson(
            {"type": "Feature", "geometry": geom, "properties": {"key": key}},
            name=f"{page.text('circles')} · {circle_name}",
            style_function=lambda f, c=colour: {"color": c, "weight": 1, "fillOpacity": 0.12},
        ).add_to(m)
    feats = []
    for b in buildings:
        d = b["party_m"]
        gap = d is None or d > reach_m
        feats.append(
            {
                "type": "Feature",
                "id": b["unit_code"],
                "geometry": b["g"],
                "properties": {
                    "code": b["unit_code"],
                    "name": b["name"],
                    "population": b["population"],
                    "distance": "—" if d is None else f"{d:,.0f}",
                    "gap": gap,
                },
            }
        )
    folium.GeoJson(
        {"type": "FeatureCollection", "features": feats},
        name=page.text("party_distance"),
        style_function=lambda f: {
            "color": "#de2d26" if f["properties"]["gap"] else "#3182bd",
            "weight": 3 if f["properties"]["gap"] else 1,
            "fillOpacity": 0.7,
        },
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "population", "distance"],
            aliases=[page.text("building"), page.text("population"), page.text("party_distance")],
        ),
    ).add_to(m)
    if living:
        shapes = unit_shapes(conn, [u["code"] for u in living])
        feats_lc = [
            {
                "type": "Feature",
                "id": u["code"],
                "geometry": shapes[u["code"]]["geometry"],
                "properties": {
                    "code": u["code"],
                    "name": u["name"],
                    "share": _pct(u["complete_share"]),
                    "colour": rate_colour(u["complete_share"] and 0.8 + 0.2 * u["complete_share"]),
                    "missing": (u["most_missing"] or {}).get(
                        "name_zh" if page.lang == "zh" else "name_en"
                    )
                    or "—",
                },
            }
            for u in living
            if u["code"] in shapes
        ]
        folium.GeoJson(
            {"type": "FeatureCollection", "features": feats_lc},
            name=page.text("complete_share"),
            show=False,
            style_function=lambda f: {
                "fillColor": f["properties"]["colour"],
                "color": "#777",
                "weight": 1,
                "fillOpacity": 0.5,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "share", "missing"],
                aliases=[
                    page.text("community"),
                    page.text("complete_share"),
                    page.text("most_missing"),
                ],
            ),
        ).add_to(m)
    if sites:
        for f in sites["features"]:
            lon, lat = f["geometry"]["coordinates"]
            p = f["properties"]
            folium.CircleMarker(
                [lat, lon],
                radius=9,
                color="#000",
                fill=True,
                fill_color="#ffd92f",
                fill_opacity=1,
                tooltip=f"{page.text('sites')} #{p['rank']}: {page.text('adds')} "
                f"{p['population_added']:,}",
            ).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    gaps = [f for f in feats if f["properties"]["gap"]]
    gap_pop = sum(f["properties"]["population"] for f in gaps)
    legend(
        m,
        page.text("coverage.title"),
        [
            ("#3182bd", f"≤ {reach_m:,.0f} {page.text('m')}"),
            ("#de2d26", f"{page.text('gap')}: {len(gaps):,} · {gap_pop:,}"),
            ("#ffd92f", page.text("sites")),
        ]
        + [
            (c, f"{page.text('circles')} · {circle_name}")
            for _, c in zip(circles, palette, strict=False)
        ],
    )
    return finish(m)


#: ArcGIS Hot Spot Analysis colours per Gi_Bin (hot red, cold blue)
GI_BIN_COLOURS: dict[int, str] = {
    3: "#d62f27",
    2: "#ed7551",
    1: "#fab984",
    0: "#f7f7f2",
    -1: "#c0ccbe",
    -2: "#849eba",
    -3: "#4575b5",
}
SPOT_COLOUR = "#7a0177"


def hotspots_page(
    conn: Connection, page: Page, gi: dict[str, Any], spots: dict[str, Any] | None, style: dict
) -> str:
    """Grids coloured by their Gi* class (gis_service/hotspots/gistar.py) and, for the
    viewers who read cases, the recurring spots (recurrence.py) as circles whose popup
    lists the cases behind each spot, linked to their case pages."""
    codes = [f["properties"]["code"] for f in gi["features"]]
    m = new_map(
        page,
        bounds_of(conn, codes) or bounds_of(conn, scope_codes(conn, page.principal, None)),
        style,
    )
    features = []
    for f in gi["features"]:
        p = f["properties"]
        bin_ = p["gi_bin"]
        features.append(
            {
                **f,
                "properties": {
                    "code": p["code"],
                    "name": p["name"],
                    "cases": p["cases"],
                    "gi_star_z": "—" if p["gi_star_z"] is None else f"{p['gi_star_z']:.2f}",
                    "class": page.text("gi_none" if bin_ is None else f"gi_bin.{bin_}"),
                    "colour": NO_DATA if bin_ is None else GI_BIN_COLOURS[bin_],
                },
            }
        )
    folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=page.text("gi_star"),
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "color": "#555",
            "weight": 1,
            "fillOpacity": 0.7,
        },
        highlight_function=lambda f: {"weight": 3, "color": "#222"},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "cases", "gi_star_z", "class"],
            aliases=[
                page.text("grid"),
                page.text("cases_n"),
                page.text("gi_star_z"),
                page.text("gi_star"),
            ],
            sticky=True,
        ),
    ).add_to(m)
    if spots is not None:
        spot_features = []
        for f in spots["features"]:
            p = f["properties"]
            name = (p["category_name_zh"] if page.lang == "zh" else p["category_name_en"]) or p[
                "category_code"
            ]
            links = "".join(
                f'<li><a href="/desk/cases/{i}">{html.escape(no)}</a></li>'
                for i, no in zip(p["case_ids"], p["case_nos"], strict=True)
            )
            spot_features.append(
                {
                    "type": "Feature",
                    "id": f["id"],
                    "geometry": f["geometry"],
                    "properties": {
                        "category": name,
                        "cases": p["cases"],
                        "open_cases": p["open_cases"],
                        "list": f'<ul data-testid="spot-cases">{links}</ul>',
                        "radius": 6 + min(p["cases"], 20),
                    },
                }
            )
        folium.GeoJson(
            {"type": "FeatureCollection", "features": spot_features},
            name=page.text("spots"),
            marker=folium.CircleMarker(radius=8, fill=True),
            style_function=lambda f: {
                "radius": f["properties"]["radius"],
                "color": SPOT_COLOUR,
                "fillColor": SPOT_COLOUR,
                "fillOpacity": 0.5,
                "weight": 2,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["category", "cases"], aliases=[page.text("category"), page.text("cases_n")]
            ),
            popup=folium.GeoJsonPopup(
                fields=["category", "cases", "open_cases", "list"],
                aliases=[
                    page.text("category"),
                    page.text("cases_n"),
                    page.text("open_cases"),
                    page.text("spots"),
                ],
            ),
        ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    items = [
        (GI_BIN_COLOURS[b], page.text(f"gi_bin.{b}")) for b in sorted(GI_BIN_COLOURS, reverse=True)
    ]
    items.append((NO_DATA, page.text("gi_none")))
    note = gi.get("note") or ""
    if spots is not None:
        items.append((SPOT_COLOUR, page.text("spots")))
        q = spots["parameters"]
        days = (q["to"] - q["from"]).days + 1
        rule = page.text("spots_rule").format(
            radius=f"{q['radius_m']:g}", days=days, n=q["min_cases"]
        )
        note = f"{note} {rule}".strip()
    legend(m, page.text("gi_star"), items, note)
    return finish(m)
