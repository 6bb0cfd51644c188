"""Walk figures per unit and period (GET /api/v1/stats/walks), from the daily figures
(``walk_day``) and the visits (``walk_visit``), counting only the walks the viewer may
see (auth/scope.py ``walk_filter``) over the units they may see (``units_visible``).

Definitions (the period is ``from``..``to``, local dates, inclusive):
  walks              walks started in the period
  distance_km        length of their cleaned tracks (walks/cleaning.py, walks.sql)
  duration_h         their time, start to end
  buildings          buildings in the unit
  buildings_visited  distinct buildings of the unit the walks passed in the period
  visited_share_7d   share of the unit's buildings passed in the 7 days ending on ``to``
  visited_share_30d  the same over the 30 days ending on ``to``
  problems           cases reported during those walks (cases.walk_id)
  problems_per_km    problems / distance_km
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import require_role, units_inside, units_visible, walk_filter
from gis_service.errors import InvalidInput
from gis_service.settings import Settings
from gis_service.timezone import local_date
from gis_service.units.codes import CODE_LENGTH, Level

DEFINITIONS = {
    line.split()[0]: " ".join(line.split()[1:])
    for line in __doc__.split("\n\n")[1].splitlines()[1:]
    if line.strip()
}
#: the default period: the 30 days ending today
DEFAULT_DAYS = 30

#: the figures of every unit in one pass over the period's daily figures (``d``) and
#: visits (``v``): each summed by the unit holding it — its code's first ``:len``
#: characters (0: everything, the totals) — among the codes matching ``:unit``; then
#: ``{units}`` (rows with ``code``) joined to them
FIGURES_SQL = """
    , fd AS (
        SELECT left(d.grid_code, :len) AS code, sum(d.walks) AS walks,
               sum(d.distance_m) AS distance_m, sum(d.duration_s) AS duration_s,
               sum(d.problems) AS problems
          FROM d WHERE d.grid_code LIKE :unit GROUP BY 1),
    fv AS (
        SELECT left(v.building_code, :len) AS code,
               count(DISTINCT v.building_code) FILTER (WHERE v.day BETWEEN :d_from AND :d_to)
                   AS buildings_visited,
               count(DISTINCT v.building_code) FILTER (WHERE v.day > :d_to - 7) AS visited_7d,
               count(DISTINCT v.building_code) FILTER (WHERE v.day > :d_to - 30) AS visited_30d
          FROM v WHERE v.building_code LIKE :unit GROUP BY 1),
    fb AS (
        SELECT left(b.code, :len) AS code, count(*) AS buildings
          FROM admin_unit b
         WHERE b.level = :building AND b.code LIKE :unit AND {buildings} GROUP BY 1)
    SELECT u.*,
           coalesce(fd.walks, 0) AS walks, coalesce(fd.distance_m, 0) AS distance_m,
           coalesce(fd.duration_s, 0) AS duration_s, coalesce(fd.problems, 0) AS problems,
           coalesce(fb.buildings, 0) AS buildings,
           coalesce(fv.buildings_visited, 0) AS buildings_visited,
           coalesce(fv.visited_7d, 0) AS visited_7d, coalesce(fv.visited_30d, 0) AS visited_30d
      FROM ({units}) u
      LEFT JOIN fd ON fd.code = u.code
      LEFT JOIN fv ON fv.code = u.code
      LEFT JOIN fb ON fb.code = u.code
     ORDER BY u.code
"""


def walk_stats(
    conn: Connection,
    principal: Principal,
    settings: Settings,
    *,
    level: Level,
    date_from: date | None,
    date_to: date | None,
    unit: str | None,
    worker: int | None,
) -> dict[str, Any]:
    """The figures (``WalkStats``) per unit of ``level`` (inside ``unit`` if given) and in
    total. 403 for roles that neither walk nor plan; 422 for from after to, or a unit
    below the level."""
    require_role(
        principal,
        Role.admin,
        Role.supervisor,
        Role.planner,
        Role.grid_worker,
        what="walk figures",
    )
    last = date_to or local_date(settings)
    first = date_from or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput("from is after to", field="from")
    if unit is not None and len(unit) > CODE_LENGTH[level]:
        raise InvalidInput(f"unit {unit} lies below the {level} level", field="unit")
    walks, params = walk_filter(principal, "w.grid_code", "w.worker_id")
    days, day_params = walk_filter(principal, "wd.grid_code", "wd.worker_id")
    visible, vis_params = units_visible(principal, "u.code")
    inside, in_params = units_inside(principal, "b.code")
    params.update(day_params, **vis_params, **in_params)
    params.update(
        d_from=first,
        d_to=last,
        tz=settings.timezone,
        level=level.value,
        unit=(unit or "") + "%",
        worker=worker,
        building=Level.building.value,
    )
    ctes = f"""
        WITH d AS (
            SELECT * FROM walk_day wd
             WHERE wd.day BETWEEN :d_from AND :d_to AND {days}
               AND (CAST(:worker AS integer) IS NULL OR wd.worker_id = :worker)),
        v AS (
            SELECT v.building_code, (v.visited_at AT TIME ZONE :tz)::date AS day
              FROM walk_visit v
              JOIN walk w ON w.id = v.walk_id AND w.district_code = v.district_code
             WHERE {walks}
               AND (CAST(:worker AS integer) IS NULL OR w.worker_id = :worker)
               AND (v.visited_at AT TIME ZONE :tz)::date
                   BETWEEN least(:d_from, :d_to - 29) AND :d_to)
    """
    units_sql = (
        "SELECT u.code, u.name FROM admin_unit u "
        f"WHERE u.level = :level AND u.code LIKE :unit AND {visible}"
    )
    per_unit = conn.execute(
        text(ctes + FIGURES_SQL.format(units=units_sql, buildings="TRUE")),
        {**params, "len": CODE_LENGTH[level]},
    ).mappings()
    units = [{"code": r["code"], "name": r["name"], **_figures(r)} for r in per_unit]
    totals = conn.execute(
        text(ctes + FIGURES_SQL.format(units="SELECT '' AS code", buildings=inside)),
        {**params, "len": 0},
    ).mappings()
    return {
        "level": level.value,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "unit": unit,
        "worker_id": worker,
        "definitions": DEFINITIONS,
        "totals": _figures(totals.one()),
        "units": units,
    }


def _share(n: int, total: int) -> float | None:
    return round(n / total, 4) if total else None


def _figures(r: Any) -> dict[str, Any]:
    km = float(r["distance_m"]) / 1000.0
    return {
        "walks": int(r["walks"]),
        "distance_km": round(km, 3),
        "duration_h": round(float(r["duration_s"]) / 3600.0, 3),
        "buildings": int(r["buildings"]),
        "buildings_visited": int(r["buildings_visited"]),
        "visited_share_7d": _share(int(r["visited_7d"]), int(r["buildings"])),
        "visited_share_30d": _share(int(r["visited_30d"]), int(r["buildings"])),
        "problems": int(r["problems"]),
        "problems_per_km": round(int(r["problems"]) / km, 3) if km > 0 else None,
    }
