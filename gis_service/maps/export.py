"""``gis-service maps export``: the pages as self-contained HTML files, to send or print.

Each file carries everything inline — Leaflet, its CSS (images as data URIs), our scripts,
the basemap's streets and boundaries, the units and the cases — and asks nothing of any
server. Cases are aggregated to cells when a page would otherwise carry more than
MAX_INLINE_CASES of them (never one giant inline GeoJSON).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.cases import partitions
from gis_service.cases.workflow import OPEN_STATUSES, Status
from gis_service.maps import pages
from gis_service.maps.assets import APP_DIR, VENDOR_DIR
from gis_service.maps.i18n import t
from gis_service.stats.cube import CaseCube
from gis_service.tiles.basemap import Basemap
from gis_service.timezone import local_date, zone_name
from gis_service.units.codes import CODE_LENGTH, Level

MAX_INLINE_CASES = 5000
CELL_M = 250.0  # aggregation cell of exported cases, Web Mercator metres


@dataclass
class Exported:
    files: list[Path]
    size: int

    def summary(self) -> str:
        return f"{len(self.files)} pages, {self.size / 1e6:,.1f} MB"


def inline_assets(html: str) -> str:
    """Replace our /static links by the files' contents."""

    def read(url: str) -> str:
        if url.startswith("/static/vendor/"):
            path = VENDOR_DIR / url.removeprefix("/static/vendor/")
        else:
            path = APP_DIR / url.removeprefix("/static/app/")
        return path.read_text(encoding="utf-8")

    def css(url: str) -> str:
        body = read(url)
        base = (
            (VENDOR_DIR / url.removeprefix("/static/vendor/")).parent
            if url.startswith("/static/vendor/")
            else APP_DIR
        )

        def data_uri(m: re.Match) -> str:
            ref = m.group(1).strip("'\"")
            if ref.startswith("data:"):
                return m.group(0)
            f = base / ref
            if not f.exists():
                return "url()"
            mime = "image/svg+xml" if f.suffix == ".svg" else f"image/{f.suffix[1:]}"
            return f"url(data:{mime};base64,{base64.b64encode(f.read_bytes()).decode()})"

        return re.sub(r"url\(([^)]+)\)", data_uri, body)

    html = re.sub(
        r'<script src="(/static/[^"]+)"></script>',
        lambda m: "<script>" + read(m.group(1)).replace("</script", "<\\/script") + "</script>",
        html,
    )
    return re.sub(
        r'<link rel="stylesheet" href="(/static/[^"]+)"\s*/?>',
        lambda m: "<style>" + css(m.group(1)) + "</style>",
        html,
    )


def basemap_layers(conn: Connection, codes: list[str]) -> dict[str, Any]:
    """Main streets and unit boundaries round the exported units, as GeoJSON."""
    streets = conn.execute(
        text("""
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
            json_build_object('type', 'Feature', 'properties', json_build_object('kind', kind),
                              'geometry', ST_AsGeoJSON(geom, 5)::json)), '[]'))
        FROM walk_edge e
        WHERE kind IN ('primary', 'secondary', 'tertiary', 'bridge', 'residential', 'trunk')
          AND e.geom && (SELECT ST_Expand(ST_Extent(geom), 0.01) FROM admin_unit
                         WHERE code = ANY(:codes))"""),
        {"codes": codes},
    ).scalar()
    bounds = conn.execute(
        text("""
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
            json_build_object('type', 'Feature', 'properties', json_build_object('level', level),
                              'geometry', ST_AsGeoJSON(ST_Boundary(
                                  ST_SimplifyPreserveTopology(geom, 0.0001)), 5)::json)), '[]'))
        FROM admin_unit WHERE level = ANY(:levels)
          AND (code = ANY(:codes) OR starts_with(code, :first) OR starts_with(:first, code))
        """),
        {
            "codes": codes,
            "first": codes[0] if codes else "",
            "levels": [Level.district.value, Level.subdistrict.value],
        },
    ).scalar()
    return {"streets": streets, "boundaries": bounds}


def inline_cases(
    conn: Connection,
    unit: str | None,
    date_from: date,
    date_to: date,
    overdue_only: bool,
    tz: str,
) -> dict[str, Any]:
    """Cases of the unit and period as GeoJSON: points, or counts per cell if too many.

    Days are the district's (``tz``, an IANA zone name from ``timezone.zone_name``): the
    period's first and last days and each case's ``reported`` date are local dates.
    """
    where = [
        "status <> :duplicate",
        "(reported_at AT TIME ZONE :tz)::date BETWEEN :a AND :b",
        # the month partitions of the period only
        partitions.period_sql("id", *partitions.local_days_sql(":a", ":b", ":tz")),
    ]
    if unit:
        where.append("unit_code LIKE :u")
    if overdue_only:
        where.append("case_overdue(cases)")  # the one rule (cases/report.sql)
    cond = " AND ".join(where)
    params = {
        "a": date_from,
        "b": date_to,
        "u": f"{unit}%",
        "cell": CELL_M,
        "tz": tz,
        "duplicate": Status.duplicate.value,
        "open": [s.value for s in OPEN_STATUSES],
    }
    n = conn.execute(text(f"SELECT count(*) FROM cases WHERE {cond}"), params).scalar()
    if n <= MAX_INLINE_CASES:
        sql = f"""SELECT json_build_object('type', 'FeatureCollection', 'features',
            coalesce(json_agg(json_build_object('type', 'Feature', 'id', id,
              'geometry', ST_AsGeoJSON(geom, 6)::json,
              'properties', json_build_object('status', case_status(cases), 'reported',
                  (reported_at AT TIME ZONE :tz)::date,
                  'overdue', case_overdue(cases))
            )), '[]')) FROM cases WHERE {cond}"""
    else:
        sql = f"""SELECT json_build_object('type', 'FeatureCollection', 'features',
            coalesce(json_agg(json_build_object('type', 'Feature',
              'geometry', ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_MakePoint(mx, my), 3857),
                                                    4326), 6)::json,
              'properties', json_build_object('count', n, 'open', o, 'overdue', od,
                                              'aggregated', true))), '[]'))
            FROM (SELECT count(*) AS n, avg(ST_X(p)) AS mx, avg(ST_Y(p)) AS my,
                         count(*) FILTER (WHERE is_open) AS o,
                         count(*) FILTER (WHERE overdue) AS od
                  FROM (SELECT ST_Transform(geom, 3857) AS p,
                               case_status(cases) = ANY(:open) AS is_open,
                               case_overdue(cases) AS overdue
                        FROM cases WHERE {cond}) c
                  GROUP BY ST_SnapToGrid(p, :cell)) g"""
    return conn.execute(text(sql), params).scalar()


def export(
    conn: Connection,
    cube: CaseCube,
    out: Path,
    *,
    unit: str | None,
    date_from: date | None,
    date_to: date | None,
    lang: str,
    now: datetime | None = None,
) -> Exported:
    """Write the pages of ``unit`` (None: everything) for the period into ``out``.

    The period defaults to the 364 days up to today; "today", the pages' data date and
    every case date are the district's (``timezone``; ``now`` is the moment of the export,
    the current one by default).
    """
    from gis_service.stats.resolution import StatsQuery, resolution

    settings = cube.settings
    tz = zone_name(settings)
    today = local_date(settings, now)
    out.mkdir(parents=True, exist_ok=True)
    admin = Principal(role=Role.admin, display_name="export")
    date_to = date_to or today
    date_from = date_from or date_to - timedelta(days=363)
    style = Basemap(conn.engine.url.database or "export").style
    codes = pages.scope_codes(conn, admin, unit)
    base = {"basemap": basemap_layers(conn, codes)}
    level = (
        Level.community
        if unit and len(unit) >= CODE_LENGTH[Level.subdistrict]
        else Level.subdistrict
    ).value
    period = f"{date_from} – {date_to}"
    filters = {t("unit", lang): unit or t("all", lang), t("period", lang): period}
    written = []

    def page(kind: str, extra: dict | None = None) -> pages.Page:
        return pages.Page(
            kind,
            lang,
            admin,
            data_date=today.isoformat(),
            filters=filters,
            offline={**base, **(extra or {})},
        )

    stats = resolution(
        conn, cube, admin, StatsQuery(level=level, date_from=date_from, date_to=date_to, unit=unit)
    )
    overdue = inline_cases(conn, unit, date_from, date_to, overdue_only=True, tz=tz)
    docs = {
        "resolution": pages.resolution_page(
            conn, page("resolution", {"overdue": overdue}), stats, style, unit
        ),
        "cases": pages.cases_page(
            conn,
            page(
                "cases",
                {"cases": inline_cases(conn, unit, date_from, date_to, overdue_only=False, tz=tz)},
            ),
            style,
            unit,
            "",
        ),
        "units": pages.units_page(conn, page("units"), style, unit),
    }
    has_access = conn.execute(text("SELECT EXISTS (SELECT 1 FROM building_access)")).scalar()
    if has_access:
        docs["coverage"] = pages.coverage_page(
            conn, page("coverage"), style, unit, 1000.0, None, "government"
        )
    size = 0
    for name, html in docs.items():
        path = out / f"{name}.html"
        path.write_text(inline_assets(html), encoding="utf-8")
        size += path.stat().st_size
        written.append(path)
    return Exported(written, size)
