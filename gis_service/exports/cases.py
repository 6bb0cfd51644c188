"""The case export: every column people ask for, one row per case, in report order.

Which cases: the case list's filters (``desk.DeskFilters``, parsed by the desk's
``QueueFilters``: the list's filters and a queue tab), cut to the viewer's jurisdiction by
``auth/scope.py`` ``case_filter`` — the anonymous viewer gets the public view (public
categories, neither rejected nor duplicate) and, as everywhere, each row passes through
``public_fields`` (the description and address are empty in the public view).

The rules are the loop's own: the status now is ``case_status()``, overdue
``case_overdue()``, closed on time ``case_on_time()`` (only for a closed case), rework
``case_rework()`` (cases/report.sql); the labels of statuses and priorities are
cases/workflow.py's, those of categories the taxonomy's (``case_category``); the unit
chain is the case's unit code cut at each level's length (units/codes.py).

Rows come from a server-side cursor (``stream_results``): an export of a million cases
holds one batch in memory, whatever the format.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import case_filter, public_fields, public_view, require_case_reader
from gis_service.cases.service import CaseFilters
from gis_service.cases.workflow import PRIORITY_LABELS, STATUS_LABELS, Priority, Status
from gis_service.errors import InvalidInput
from gis_service.exports.columns import GEOMETRY, Column, Kind, Lang, Row, Table
from gis_service.units.codes import CODE_LENGTH, Level

#: rows fetched per round trip of the server-side cursor
BATCH = 2000

C = Column
COLUMNS: list[Column] = [
    C("case_no", "案件编号", "Case number", Kind.text, 16),
    C("status", "状态", "Status", Kind.text, 10),
    C("priority", "优先级", "Priority", Kind.text, 8),
    C("domain", "大类", "Domain", Kind.text, 12),
    C("category", "小类", "Sub-category", Kind.text, 16),
    C("category_code", "类别代码", "Category code", Kind.text, 22),
    C("description", "问题描述", "Description", Kind.text, 40),
    C("address", "地址", "Address", Kind.text, 24),
    C("subdistrict_code", "街道代码", "Subdistrict code", Kind.text, 11),
    C("subdistrict", "街道", "Subdistrict", Kind.text, 14),
    C("community_code", "社区代码", "Community code", Kind.text, 14),
    C("community", "社区", "Community", Kind.text, 14),
    C("grid_code", "网格代码", "Grid code", Kind.text, 16),
    C("grid", "网格", "Grid", Kind.text, 14),
    C("unit_code", "所在单元代码", "Unit code", Kind.text, 19),
    C("handling_level", "处置层级", "Handling level", Kind.text),
    C("reported_at", "上报时间", "Reported", Kind.datetime),
    C("accepted_at", "立案时间", "Accepted", Kind.datetime),
    C("dispatched_at", "派遣时间", "Dispatched", Kind.datetime),
    C("handled_at", "处置时间", "Handled", Kind.datetime),
    C("closed_at", "结案时间", "Closed", Kind.datetime),
    C("deadline_at", "处置时限", "Deadline", Kind.datetime),
    C("team", "处置队伍", "Team", Kind.text, 16),
    C("assignee", "处置人", "Assignee", Kind.text, 10),
    C("overdue", "超期", "Overdue", Kind.bool),
    C("on_time", "按期结案", "Closed on time", Kind.bool),
    C("rework", "返工", "Rework", Kind.bool),
    C("rework_count", "返工次数", "Reworks", Kind.int),
    C("rating", "评价", "Rating", Kind.int),
    C("lon", "经度", "Longitude", Kind.number, 12),
    C("lat", "纬度", "Latitude", Kind.number, 11),
]

_LEVEL_NAMES = {lvl.value: lvl for lvl in Level}


def _chain_joins() -> str:
    joins = []
    for alias, level in (("sd", Level.subdistrict), ("cm", Level.community), ("gr", Level.grid)):
        n = CODE_LENGTH[level]
        joins.append(
            f"LEFT JOIN admin_unit {alias} ON length(c.unit_code) >= {n} "
            f"AND {alias}.code = left(c.unit_code, {n})"
        )
    return "\n".join(joins)


SELECT = f"""
SELECT c.id, c.case_no, case_status(c) AS status, c.priority, c.category_code,
       cat.name_zh AS category_zh, cat.name_en AS category_en,
       dom.name_zh AS domain_zh, dom.name_en AS domain_en,
       c.description, c.address, c.unit_code, c.handling_level,
       sd.code AS subdistrict_code, sd.name AS subdistrict,
       cm.code AS community_code, cm.name AS community,
       gr.code AS grid_code, gr.name AS grid,
       c.reported_at, c.accepted_at, c.dispatched_at, c.handled_at, c.closed_at,
       c.deadline_at, t.name AS team, a.display_name AS assignee,
       case_overdue(c) AS overdue,
       CASE WHEN c.closed_at IS NOT NULL THEN case_on_time(c) END AS on_time,
       case_rework(c) AS rework, c.rework_count, c.rating,
       ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat{{geometry}}
  FROM cases c
  LEFT JOIN case_category cat ON cat.code = c.category_code
  LEFT JOIN case_category dom ON dom.code = split_part(c.category_code, '.', 1)
  {_chain_joins()}
  LEFT JOIN team t ON t.id = c.team_id
  LEFT JOIN app_user a ON a.id = c.assignee_id
 WHERE {{where}}
 ORDER BY c.id
"""


def check_filters(principal: Principal, filters: CaseFilters) -> None:
    """403 for viewers that read no single cases (planners); in the public view, 422 for
    the filters that would search what the public view hides (the text search over
    descriptions and addresses) or who reported (``auth/scope.py`` PUBLIC_HIDDEN_FIELDS)."""
    require_case_reader(principal, public_view_too=True)
    if public_view(principal):
        if filters.q:
            raise InvalidInput(
                "q searches descriptions and addresses, which the public view does not show",
                field="q",
            )
        if filters.reporter_id is not None:
            raise InvalidInput("the public view does not show who reported", field="reporter_id")


def _where(principal: Principal, filters: CaseFilters, tz: str) -> tuple[str, dict[str, Any]]:
    scope, params = case_filter(principal, "c")
    where, fparams = filters.sql(tz)
    return " AND ".join([scope, *where]), {**params, **fparams}


def count(conn: Connection, principal: Principal, filters: CaseFilters, *, tz: str) -> int:
    """How many cases the export holds (the list's ``numberMatched`` for the same filters)."""
    check_filters(principal, filters)
    cond, params = _where(principal, filters, tz)
    return int(conn.execute(text(f"SELECT count(*) FROM cases c WHERE {cond}"), params).scalar())


def _row(r: dict[str, Any], lang: Lang, principal: Principal, geometry: bool) -> Row:
    zh = lang == Lang.zh
    status, priority = r["status"], r["priority"]
    out = {
        **r,
        "status": STATUS_LABELS[Status(status)][0 if zh else 1] if status else None,
        "priority": PRIORITY_LABELS[Priority(priority)][0 if zh else 1] if priority else None,
        "domain": r["domain_zh"] if zh else r["domain_en"],
        "category": r["category_zh"] if zh else r["category_en"],
        "handling_level": r["handling_level"] if not zh else _level_zh(r["handling_level"]),
    }
    if geometry:
        wkb = out.pop("wkb")
        out[GEOMETRY] = bytes(wkb) if wkb is not None else None
    return public_fields(principal, out)


def _level_zh(level: str | None) -> str | None:
    from gis_service.units.codes import LEVEL_NAMES_ZH

    return LEVEL_NAMES_ZH.get(_LEVEL_NAMES[level], level) if level else None


def table(
    conn: Connection,
    principal: Principal,
    filters: CaseFilters,
    *,
    tz: str,
    lang: Lang,
    geometry: bool,
    total: int | None = None,
) -> Table:
    """The export's :class:`Table`, rows streamed from ``conn`` (a connection of its own:
    the cursor stays open while the rows are written). ``geometry``: rows carry the point
    as WKB for the GIS formats. The query runs here, so a refusal comes before a byte."""
    check_filters(principal, filters)
    cond, params = _where(principal, filters, tz)
    geom = ", ST_AsBinary(c.geom) AS wkb" if geometry else ""
    result = (
        conn.execution_options(stream_results=True, yield_per=BATCH)
        .execute(text(SELECT.format(geometry=geom, where=cond)), params)
        .mappings()
    )

    def rows() -> Iterator[Row]:
        for r in result:
            yield _row(dict(r), lang, principal, geometry)

    return Table(
        kind="cases",
        columns=COLUMNS,
        rows=rows(),
        total=total,
        geometry_type="Point" if geometry else None,
        title="案件" if lang == Lang.zh else "cases",
    )
