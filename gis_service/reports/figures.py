"""The figures of a unit's monthly report, each with the ids of the cases behind it.

A month is a calendar month in the district's time (gis_service/timezone.py), and its
cases are the cohort the statistics count: reported in the month, duplicates excluded
(stats/resolution.py). The figures:

* ``table`` — the unit's children at the next handling level (a grid: itself) with the
  standard's rates, from :func:`gis_service.stats.resolution.resolution`; ``totals`` the
  unit's own row.
* ``trend`` — the unit's rates for the twelve months ending with this one.
* ``overdue`` — the month's accepted cases not closed by their deadline: closed late
  (neither ``case_on_time()`` nor ``case_on_time_extended()``) or overdue now
  (``case_overdue()``); ``rework`` — those with ``case_rework()`` (cases/report.sql).
* ``satisfaction`` — the ratings 1–5 of the month's cases, their count and mean.
* ``map`` — the children's outlines as SVG paths (Web Mercator metres, y down) for the
  resolution map; drawn from our own unit geometries, no tiles.

Drill-down keys (``case_ids``): ``totals.<figure>``, ``table.<code>.<figure>``,
``trend.<YYYY-MM>.<figure>`` for the case-counting figures of
``resolution.CASE_FIGURES``; ``overdue``, ``rework`` and ``satisfaction.<1-5>`` for the
lists. A rate drills down to its numerator and denominator (``resolution.RATE_PARTS``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import case_filter
from gis_service.cases import partitions
from gis_service.cases.workflow import Status
from gis_service.errors import InvalidInput, NotFound
from gis_service.settings import Settings
from gis_service.stats.cube import LEVEL_LENGTHS, CaseCube
from gis_service.stats.resolution import CASE_FIGURES, RATE_PARTS, StatsQuery, resolution
from gis_service.timezone import local_iso, local_text, zone_name
from gis_service.units.codes import CodeError, validate

#: YYYY-MM from 2000 (the statistics' epoch, stats/cube.py) to 2999
MONTH = re.compile(r"^(2\d{3})-(0[1-9]|1[0-2])$")
#: how many months the trend shows, this one included
TREND_MONTHS = 12
#: the figures the table, the trend and the diff show (counts and the standard's rates)
SHOWN: tuple[str, ...] = (
    "reported",
    "accepted",
    "closed",
    "closed_on_time",
    "rework",
    "overdue_now",
    "resolution_rate",
    "on_time_rate",
    "rework_rate",
    "satisfaction_rate",
)
RATES = frozenset(RATE_PARTS)


def parse_month(value: str) -> date:
    """``YYYY-MM`` → the month's first day; InvalidInput (field ``month``) otherwise."""
    m = MONTH.match(value or "")
    if not m:
        raise InvalidInput(
            f"month {value!r} is not YYYY-MM between 2000-01 and 2999-12 (e.g. 2026-10)",
            field="month",
        )
    return date(int(m.group(1)), int(m.group(2)), 1)


def add_months(first: date, n: int) -> date:
    k = first.year * 12 + first.month - 1 + n
    return date(k // 12, k % 12 + 1, 1)


def month_range(first: date) -> tuple[date, date]:
    """The month's first and last day (local dates, inclusive)."""
    return first, date.fromordinal(add_months(first, 1).toordinal() - 1)


def unit_of(conn: Connection, code: str) -> dict[str, Any]:
    """The unit (code, name, level) at a handling level; InvalidInput for a malformed
    code or a building, NotFound for a code no unit has."""
    try:
        validate(code)
    except CodeError as exc:
        raise InvalidInput(str(exc), field="unit") from None
    row = (
        conn.execute(text("SELECT code, name, level FROM admin_unit WHERE code = :c"), {"c": code})
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no unit {code}", field="unit")
    if row["level"] not in LEVEL_LENGTHS:
        raise InvalidInput(
            f"{code} is a {row['level']}; reports are made for {', '.join(LEVEL_LENGTHS)} units",
            field="unit",
        )
    return dict(row)


def child_level(level: str) -> str:
    """The handling level below ``level``; a grid's report is by the grid itself."""
    levels = list(LEVEL_LENGTHS)
    i = levels.index(level)
    return levels[i + 1] if i + 1 < len(levels) else level


def compute(
    conn: Connection,
    cube: CaseCube,
    principal: Principal,
    settings: Settings,
    code: str,
    month: str,
    progress: Callable[[str], None] = lambda _s: None,
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The report's figures (JSON-ready) and the case ids behind each (by drill-down
    key). Errors: InvalidInput (month, unit), NotFound (unit)."""
    first = parse_month(month)
    unit = unit_of(conn, code)
    d0, d1 = month_range(first)
    ids: dict[str, list[int]] = {}
    progress("table by unit")
    level = child_level(unit["level"])
    res = resolution(conn, cube, principal, StatsQuery(level, d0, d1, unit=code), case_ids=True)
    own = resolution(
        conn, cube, principal, StatsQuery(unit["level"], d0, d1, unit=code), case_ids=True
    )
    table = []
    for u in res["units"]:
        for name, found in u.pop("case_ids").items():
            ids[f"table.{u['code']}.{name}"] = found
        table.append({k: u[k] for k in ("code", "name", *SHOWN, "rated", "satisfied")})
    totals = _own_row(own, code)
    for name, found in totals.pop("case_ids").items():
        ids[f"totals.{name}"] = found
    progress("trend")
    trend = []
    for back in range(TREND_MONTHS - 1, -1, -1):
        m0, m1 = month_range(add_months(first, -back))
        label = m0.strftime("%Y-%m")
        r = resolution(
            conn, cube, principal, StatsQuery(unit["level"], m0, m1, unit=code), case_ids=True
        )
        row = _own_row(r, code)
        for name, found in row.pop("case_ids").items():
            ids[f"trend.{label}.{name}"] = found
        trend.append({"month": label, **{k: row[k] for k in SHOWN}})
    progress("overdue and reworked cases")
    lists = _case_lists(conn, principal, settings, code, d0, d1)
    for name in ("overdue", "rework"):
        ids[name] = [c["id"] for c in lists[name]]
    satisfaction = _satisfaction(conn, principal, settings, code, d0, d1)
    for score, found in satisfaction.pop("case_ids").items():
        ids[f"satisfaction.{score}"] = found
    progress("map")
    figures = {
        "unit": unit,
        "chain": conn.execute(text("SELECT unit_chain(:c)"), {"c": code}).scalar_one(),
        "month": first.strftime("%Y-%m"),
        "from": d0.isoformat(),
        "to": d1.isoformat(),
        "level": level,
        "computed_at": local_text(datetime.now(UTC), settings),
        "timezone": zone_name(settings),
        "totals": {k: totals[k] for k in (*SHOWN, "rated", "satisfied")},
        "table": table,
        "trend": trend,
        "overdue": lists["overdue"],
        "rework": lists["rework"],
        "satisfaction": satisfaction,
        "map": _map(conn, code, level),
    }
    return figures, ids


def _own_row(result: dict[str, Any], code: str) -> dict[str, Any]:
    """The row of the unit itself in a resolution answer at its own level."""
    return next(u for u in result["units"] if u["code"] == code)


def _cohort(principal: Principal, settings: Settings, code: str, d0: date, d1: date):
    scope, params = case_filter(principal, "c")
    where = (
        "c.unit_code LIKE :unit_prefix AND c.status <> :duplicate "
        "AND (c.reported_at AT TIME ZONE :tz)::date BETWEEN :d0 AND :d1 "
        f"AND {partitions.period_sql('c.id', *partitions.local_days_sql(':d0', ':d1', ':tz'))} "
        f"AND {scope}"
    )
    return where, {
        **params,
        "unit_prefix": code + "%",
        "duplicate": Status.duplicate.value,
        "tz": zone_name(settings),
        "d0": d0,
        "d1": d1,
    }


def _case_lists(
    conn: Connection, principal: Principal, settings: Settings, code: str, d0: date, d1: date
) -> dict[str, list[dict[str, Any]]]:
    where, params = _cohort(principal, settings, code, d0, d1)
    rows = conn.execute(
        text(
            f"""
            SELECT c.id, c.case_no, c.category_code AS category, c.unit_code,
                   cat.name_zh AS category_zh, cat.name_en AS category_en,
                   case_status(c) AS status, c.reported_at, c.deadline_at, c.closed_at,
                   c.rework_count,
                   (c.accepted_at IS NOT NULL AND (case_overdue(c)
                    OR (case_status(c) = :closed AND NOT case_on_time(c)
                        AND NOT case_on_time_extended(c)))) AS overdue,
                   case_rework(c) AS rework
              FROM cases c LEFT JOIN case_category cat ON cat.code = c.category_code
             WHERE {where}
               AND ((c.accepted_at IS NOT NULL AND (case_overdue(c)
                     OR (case_status(c) = :closed AND NOT case_on_time(c)
                         AND NOT case_on_time_extended(c))))
                    OR case_rework(c))
             ORDER BY c.reported_at, c.id
            """
        ),
        {**params, "closed": Status.closed.value},
    ).mappings()
    out: dict[str, list[dict[str, Any]]] = {"overdue": [], "rework": []}
    for r in rows:
        item = {
            "id": r["id"],
            "case_no": r["case_no"],
            "category": r["category"],
            "category_name": {"zh": r["category_zh"], "en": r["category_en"]},
            "unit_code": r["unit_code"],
            "status": r["status"],
            "reported_at": local_iso(r["reported_at"], settings),
            "deadline_at": local_iso(r["deadline_at"], settings),
            "closed_at": local_iso(r["closed_at"], settings),
            "rework_count": r["rework_count"],
        }
        for name in ("overdue", "rework"):
            if r[name]:
                out[name].append(item)
    return out


def _satisfaction(
    conn: Connection, principal: Principal, settings: Settings, code: str, d0: date, d1: date
) -> dict[str, Any]:
    """Ratings 1–5 of the month's cases (the satisfaction rate's ``rated``)."""
    where, params = _cohort(principal, settings, code, d0, d1)
    found = dict(
        conn.execute(
            text(
                f"SELECT c.rating, array_agg(c.id ORDER BY c.id) FROM cases c "
                f"WHERE {where} AND c.rating > 0 GROUP BY c.rating"
            ),
            params,
        ).all()
    )
    dist = {str(s): len(found.get(s, [])) for s in range(1, 6)}
    rated = sum(dist.values())
    mean = round(sum(int(s) * n for s, n in dist.items()) / rated, 2) if rated else None
    return {
        "distribution": dist,
        "rated": rated,
        "mean": mean,
        "case_ids": {str(s): list(found.get(s, [])) for s in range(1, 6)},
    }


def _map(conn: Connection, code: str, level: str) -> dict[str, Any]:
    """The children's outlines as SVG path data in Web Mercator metres (ST_AsSVG: y is
    negated, so the view box starts at −ymax), simplified to a thousandth of the extent."""
    row = conn.execute(
        text(
            """
            SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
              FROM (SELECT ST_Extent(ST_Transform(geom, 3857)) AS e FROM admin_unit
                     WHERE level = :level AND code LIKE :prefix) x
            """
        ),
        {"level": level, "prefix": code + "%"},
    ).first()
    if row is None or row[0] is None:
        return {"view_box": None, "units": []}
    x0, y0, x1, y1 = row
    tol = max(x1 - x0, y1 - y0) / 1000
    units = conn.execute(
        text(
            """
            SELECT code, ST_AsSVG(ST_SimplifyPreserveTopology(ST_Transform(geom, 3857), :tol),
                                  0, 0) AS path
              FROM admin_unit WHERE level = :level AND code LIKE :prefix ORDER BY code
            """
        ),
        {"level": level, "prefix": code + "%", "tol": tol},
    ).mappings()
    pad = max(x1 - x0, y1 - y0) * 0.02
    return {
        "view_box": f"{x0 - pad:.0f} {-y1 - pad:.0f} {x1 - x0 + 2 * pad:.0f} "
        f"{y1 - y0 + 2 * pad:.0f}",
        "units": [dict(u) for u in units],
    }


#: the figures of the report that count cases (each has drill-down ids)
__all__ = ["CASE_FIGURES", "RATE_PARTS", "SHOWN", "compute", "parse_month"]
