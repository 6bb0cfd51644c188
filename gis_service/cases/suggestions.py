"""Suggested teams for dispatch (派遣建议): which teams may take a case, the responsible one
first, each with its open load, its overdue cases and its walking distance to the case.

* Teams that may take the case: the active teams serving the case's unit or a unit above
  it — the dispatch rule (cases/actions.py ``_team_for``), read through
  ``teams.list_teams(unit=...)``.
* Order: the team of the nearest unit first (the case's own unit, else its nearest
  ancestor that has a team), then by fewer open cases, then shorter distance, then id. The
  first is the responsible team (``responsible``). The taxonomy names no team kind per
  category, so the kind does not enter the choice.
* Load: open cases dispatched to the team now (``case_status()`` in OPEN_STATUSES), and of
  those the overdue ones (``case_overdue()``, the one overdue rule, cases/report.sql);
  counted among the cases the viewer may see (auth/scope.py), as every figure is.
* Distance: from the team's base — a point inside its unit (``ST_PointOnSurface``; teams
  carry no address of their own) — to the case, in metres. ``distance_kind`` says how:
  ``network`` walked along the imported walking network by the access engine's definition
  (access/search.py: access leg + streets + egress leg, one-way footways only their way),
  ``straight`` on the spheroid (``ST_Distance`` over geography) when no network is
  imported, when either end lies more than ``MAX_ACCESS_M`` from it, or when the walk is
  longer than :data:`MAX_WALK_M`.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Connection, text

from gis_service.access.engine import MAX_ACCESS_M, AccessEngine
from gis_service.access.store import EngineCache
from gis_service.auth.principal import Principal
from gis_service.auth.scope import case_filter
from gis_service.cases.desk import require_desk
from gis_service.cases.service import visible_case
from gis_service.cases.teams import list_teams
from gis_service.cases.workflow import OPEN_STATUSES
from gis_service.errors import NotFound

#: the longest walk searched on the network (metres): a district's span; farther teams are
#: measured in a straight line
MAX_WALK_M = 20_000.0


def suggest(
    conn: Connection, principal: Principal, case_id: int, access: EngineCache
) -> dict[str, Any]:
    """``{"case_id", "unit_code", "teams": [...]}`` (see the module for each member and the
    order). 403 unless the viewer dispatches (supervisors, admins), 404 outside the
    jurisdiction."""
    require_desk(principal)
    case = visible_case(conn, principal, case_id)
    teams = list_teams(conn, principal, case["unit_code"])
    if not teams:
        return {"case_id": case_id, "unit_code": case["unit_code"], "teams": []}
    scope, params = case_filter(principal, "c")
    figures = {
        r["id"]: r
        for r in conn.execute(
            text(
                f"""
        SELECT t.id, ST_X(b.pt) AS lon, ST_Y(b.pt) AS lat,
               ST_Distance(b.pt::geography, k.geom::geography) AS straight_m,
               (SELECT count(*) FROM cases c
                 WHERE c.team_id = t.id AND c.team_history @> ARRAY[t.id]
                   AND c.team_history <> '{{}}'
                   AND case_status(c) = ANY(:open) AND {scope}) AS open_cases,
               (SELECT count(*) FROM cases c
                 WHERE c.team_id = t.id AND c.team_history @> ARRAY[t.id]
                   AND c.team_history <> '{{}}'
                   AND case_status(c) = ANY(:open) AND case_overdue(c) AND {scope})
                   AS overdue_cases
          FROM team t
          JOIN admin_unit u ON u.code = t.unit_code
          CROSS JOIN LATERAL (SELECT ST_PointOnSurface(u.geom) AS pt) b
          JOIN cases k ON k.id = :case
         WHERE t.id = ANY(:ids)
        """
            ),
            {
                **params,
                "open": [s.value for s in OPEN_STATUSES],
                "case": case_id,
                "ids": [t["id"] for t in teams],
            },
        ).mappings()
    }
    point = (float(case["summary"]["lon"]), float(case["summary"]["lat"]))
    bases = [(figures[t["id"]]["lon"], figures[t["id"]]["lat"]) for t in teams]
    walked = _walks(conn, access, bases, point)
    out = []
    for t, walk in zip(teams, walked, strict=True):
        f = figures[t["id"]]
        kind, metres = ("network", walk) if walk is not None else ("straight", f["straight_m"])
        out.append(
            {
                **t,
                "open_cases": int(f["open_cases"]),
                "overdue_cases": int(f["overdue_cases"]),
                "distance_m": round(float(metres), 1),
                "distance_kind": kind,
            }
        )
    out.sort(key=lambda s: (-len(s["unit_code"]), s["open_cases"], s["distance_m"], s["id"]))
    for i, s in enumerate(out):
        s["responsible"] = i == 0
    return {"case_id": case_id, "unit_code": case["unit_code"], "teams": out}


def _walks(
    conn: Connection,
    access: EngineCache,
    bases: list[tuple[float, float]],
    target: tuple[float, float],
) -> list[float | None]:
    """Walking metres from each base to the target along the network; None where the walk
    is not measured on it (no network, an end off it, farther than MAX_WALK_M)."""
    try:
        engine = access.get(conn)
    except NotFound:  # no walking network imported
        return [None] * len(bases)
    return [_walk(engine, base, target) for base in bases]


def _walk(
    engine: AccessEngine, base: tuple[float, float], target: tuple[float, float]
) -> float | None:
    origin = engine.snap(*base)
    goal = engine.snap(*target)
    if float(origin.leg[0]) > MAX_ACCESS_M or float(goal.leg[0]) > MAX_ACCESS_M:
        return None
    found = engine.search(origin, MAX_WALK_M)
    metres = float(found.distance_to(goal.edge, goal.frac)[0] + goal.leg[0])
    return metres if math.isfinite(metres) and metres <= MAX_WALK_M else None
