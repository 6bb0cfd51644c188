"""The figure tables as exports: the resolution statistics (the monthly table a subdistrict
sends up), the one-kilometre gaps and the quarter-hour living circle.

Each is the API's own answer, computed by its one home — ``stats/resolution.py``
``resolution`` (scoped by the statistics cube's masks), ``access/coverage.py`` ``gaps``
and ``living_circle`` (scoped by ``units_inside``) — turned into rows here; nothing is
counted twice. Rates and shares are :data:`Kind.percent` (numbers 0…1, shown as ``0.0%``
in XLSX). In the GIS formats each row carries its unit's (or building's) boundary from
``admin_unit``; the totals row of the statistics has no place and is left out there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, text

from gis_service.exports.columns import GEOMETRY, Column, Kind, Lang, Row, Table
from gis_service.stats.schemas import Figures

C = Column

#: the resolution figures' headers (stats/resolution.py DEFINITIONS, GB/T 30428 terms);
#: the figures themselves are the answer model's members (stats/schemas.py Figures)
FIGURE_LABELS: dict[str, tuple[str, str]] = {
    "reported": ("上报数", "Reported"),
    "accepted": ("立案数", "Accepted"),
    "rejected": ("不予立案数", "Rejected"),
    "closed": ("结案数", "Closed"),
    "voided": ("作废数", "Voided"),
    "closed_on_time": ("按期结案数", "Closed on time"),
    "closed_on_time_extended": ("延期后按期结案数", "Closed on time after extension"),
    "extended": ("延期数", "Extended"),
    "rework": ("返工数", "Reworked"),
    "rated": ("评价数", "Rated"),
    "satisfied": ("满意数", "Satisfied"),
    "overdue_now": ("当前超期数", "Overdue now"),
    "parked_now": ("当前挂账数", "Parked now"),
    "urges": ("督办数", "Urges"),
    "urges_replied": ("督办已回复", "Urges replied"),
    "urges_unreplied": ("督办未回复", "Urges unreplied"),
    "resolution_rate": ("办结率", "Resolution rate"),
    "on_time_rate": ("按期结案率", "On-time rate"),
    "on_time_rate_extended": ("按期结案率(含延期)", "On-time rate incl. extensions"),
    "rework_rate": ("返工率", "Rework rate"),
    "median_hours_to_close": ("结案时长中位数(小时)", "Median hours to close"),
    "satisfaction_rate": ("满意率", "Satisfaction rate"),
}


def _figure_kind(name: str) -> Kind:
    if name.endswith("_rate") or name.endswith("_rate_extended"):
        return Kind.percent
    if name.startswith("median_"):
        return Kind.number
    return Kind.int


RESOLUTION_COLUMNS: list[Column] = [
    C("code", "单元代码", "Unit code", Kind.text, 16),
    C("name", "单元名称", "Unit", Kind.text, 16),
    *(
        C(name, *FIGURE_LABELS[name], _figure_kind(name))  # KeyError: a figure without a label
        for name in Figures.model_fields
    ),
]


def _unit_shapes(conn: Connection, codes: list[str]) -> dict[str, bytes]:
    rows = conn.execute(
        text("SELECT code, ST_AsBinary(ST_Multi(geom)) FROM admin_unit WHERE code = ANY(:codes)"),
        {"codes": codes},
    )
    return {code: bytes(wkb) for code, wkb in rows}


def _with_shapes(conn: Connection, rows: list[Row], key: str, geometry: bool) -> list[Row]:
    if not geometry:
        return rows
    shapes = _unit_shapes(conn, [r[key] for r in rows])
    return [{**r, GEOMETRY: shapes.get(r[key])} for r in rows]


def resolution_table(
    conn: Connection, answer: dict[str, Any], *, lang: Lang, geometry: bool
) -> Table:
    """``resolution()``'s answer as a table: one row per unit of the level, then (not in
    the GIS formats) the totals."""
    rows: list[Row] = [dict(u) for u in answer["units"]]
    rows = _with_shapes(conn, rows, "code", geometry)
    if not geometry:
        total = "合计" if lang == Lang.zh else "Total"
        rows.append({"code": None, "name": total, **answer["totals"]})
    return Table(
        kind="resolution",
        columns=RESOLUTION_COLUMNS,
        rows=iter(rows),
        total=len(rows),
        geometry_type="MultiPolygon" if geometry else None,
        title="办结率统计" if lang == Lang.zh else "resolution",
    )


GAPS_COLUMNS: list[Column] = [
    C("unit_code", "楼栋代码", "Building code", Kind.text, 19),
    C("name", "楼栋名称", "Building", Kind.text, 16),
    C("population", "常住人口", "Residents", Kind.int),
    C("distance_m", "距最近党群阵地(米)", "To the nearest party centre (m)", Kind.number),
    C("method", "测算方式", "Method", Kind.text),
    C("nearest_party", "最近党群服务阵地", "Nearest party centre", Kind.text, 20),
    C("nearest_kind", "阵地类型", "Its kind", Kind.text),
    C("lon", "经度", "Longitude", Kind.number, 12),
    C("lat", "纬度", "Latitude", Kind.number, 11),
]


def gaps_table(answer: dict[str, Any], *, lang: Lang, geometry: bool) -> Table:
    """``gaps()``' buildings (farther than the reach from every party organisation) as a
    table, the most residents first; in the GIS formats each with its outline."""
    import shapely

    def rows() -> Iterator[Row]:
        for f in answer["features"]:
            p = f["properties"]
            lon, lat = p["point"]
            row = {**p, "lon": lon, "lat": lat}
            if geometry:
                shape = shapely.from_geojson(json.dumps(f["geometry"])) if f["geometry"] else None
                if shape is not None and shape.geom_type == "Polygon":
                    shape = shapely.MultiPolygon([shape])
                row[GEOMETRY] = shapely.to_wkb(shape) if shape is not None else None
            yield row

    return Table(
        kind="gaps",
        columns=GAPS_COLUMNS,
        rows=rows(),
        total=len(answer["features"]),
        geometry_type="MultiPolygon" if geometry else None,
        title="一公里覆盖缺口" if lang == Lang.zh else "gaps",
    )


def living_circle_columns(answer: dict[str, Any], lang: Lang) -> list[Column]:
    """The living circle's columns: the unit, its residents, then one column per everyday
    service (``living_category``, data): the share of residents that reach it (units) or
    the walking distance to it (buildings)."""
    head = [
        C("code", "单元代码", "Unit code", Kind.text, 19),
        C("name", "单元名称", "Unit", Kind.text, 16),
        C("population", "常住人口", "Residents", Kind.int),
    ]
    cats = answer["categories"]
    if answer["level"] == "building":
        return [
            *head,
            C("complete", "生活圈完整", "Complete", Kind.bool),
            C("missing", "缺少的服务", "Missing services", Kind.text, 24),
            *(
                C(f"m_{c['code']}", f"{c['name_zh']}距离(米)", f"{c['name_en']} (m)", Kind.number)
                for c in cats
            ),
        ]
    return [
        *head,
        C("complete_population", "生活圈完整人口", "Residents with all", Kind.int),
        C("complete_share", "生活圈完整率", "Share with all", Kind.percent),
        *(
            C(f"share_{c['code']}", f"{c['name_zh']}覆盖率", f"{c['name_en']} share", Kind.percent)
            for c in cats
        ),
        C("most_missing", "最缺的服务", "Most missing", Kind.text, 14),
    ]


def living_circle_table(
    conn: Connection, answer: dict[str, Any], *, lang: Lang, geometry: bool
) -> Table:
    """``living_circle()``'s units (or buildings) as a table."""
    names = {c["code"]: c[f"name_{lang.value}"] for c in answer["categories"]}
    rows: list[Row] = []
    for u in answer["units"]:
        row: Row = {"code": u["code"], "name": u["name"], "population": u["population"]}
        if answer["level"] == "building":
            sep = "、" if lang == Lang.zh else ", "
            row["complete"] = u["complete"]
            row["missing"] = sep.join(names[c] for c in u["missing"])
            for c, m in (u["distance_m"] or {}).items():
                row[f"m_{c}"] = m
        else:
            row["complete_population"] = u["complete_population"]
            row["complete_share"] = u["complete_share"]
            for c, share in u["category_share"].items():
                row[f"share_{c}"] = share
            worst = u["most_missing"]
            row["most_missing"] = worst[f"name_{lang.value}"] if worst else None
        rows.append(row)
    return Table(
        kind="living_circle",
        columns=living_circle_columns(answer, lang),
        rows=iter(_with_shapes(conn, rows, "code", geometry)),
        total=len(rows),
        geometry_type="MultiPolygon" if geometry else None,
        title="十五分钟生活圈" if lang == Lang.zh else "living circle",
    )
