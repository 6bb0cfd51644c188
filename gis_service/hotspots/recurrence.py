"""Recurring spots (反复发生点位): the same problem reported again and again at one place,
which needs its cause treated (源头治理), not another dispatch.

The rule (docs/hotspots.md):
  A recurring spot is a density cluster of cases of one category (the leaf category, so
  "a blocked drain" and "an overflowing bin" at one gate are two spots) reported within
  the period asked for, found by DBSCAN (PostGIS ``ST_ClusterDBSCAN``) with
  ``eps = radius_m`` metres and ``minpoints = min_cases``: each case of a spot lies within
  ``radius_m`` of another case of it, and the spot holds at least one case with
  ``min_cases - 1`` others within ``radius_m``.
  Defaults: ``radius_m`` 30 m (about twice a phone's GPS error, 5–15 m, so two reports of
  one manhole fall together while the next courtyard's do not), ``min_cases`` 3 (twice is
  a coincidence, three times a pattern), period the last 90 days (a season: long enough
  to see a pattern, short enough that a treated cause drops out).
  Cases that are not a problem found on the ground do not count: duplicates (they are the
  same report twice), rejected and voided cases (:data:`NOT_RECURRENCES`).
  Distances are measured in the UTM zone of the district (metres, not degrees).

DBSCAN chains: reports every 25 m along a street form one long spot. Each spot therefore
reports its ``extent_m`` (the largest distance of a case from the spot's centre) so a
supervisor sees a street-long pattern for what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, text

from gis_service.access.graph import utm_crs
from gis_service.auth.principal import Principal
from gis_service.auth.scope import case_filter, require_case_reader
from gis_service.cases import partitions
from gis_service.cases.categories import within_sql
from gis_service.cases.workflow import OPEN_STATUSES, Status
from gis_service.errors import InvalidInput
from gis_service.settings import Settings
from gis_service.timezone import local_date, zone

#: statuses whose cases are not a problem found on the ground, so never a recurrence
NOT_RECURRENCES: tuple[str, ...] = (Status.duplicate, Status.rejected, Status.voided)

DEFAULT_RADIUS_M = 30.0
DEFAULT_MIN_CASES = 3
DEFAULT_PERIOD_DAYS = 90
MAX_RADIUS_M = 500.0
MAX_PERIOD_DAYS = 366 * 2


@dataclass
class SpotQuery:
    """What to look for; :meth:`check` names the first wrong value (field and bound)."""

    date_from: date
    date_to: date
    radius_m: float = DEFAULT_RADIUS_M
    min_cases: int = DEFAULT_MIN_CASES
    category: str | None = None
    unit: str | None = None

    @classmethod
    def default_period(
        cls, settings: Settings, date_from: date | None, date_to: date | None, **rest: Any
    ) -> SpotQuery:
        """The last :data:`DEFAULT_PERIOD_DAYS` days ending today (district time) or on
        ``date_to``."""
        last = date_to or local_date(settings)
        first = date_from or last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        return cls(date_from=first, date_to=last, **rest)

    def check(self) -> None:
        if self.date_from > self.date_to:
            raise InvalidInput("from is after to", field="from")
        if (self.date_to - self.date_from).days >= MAX_PERIOD_DAYS:
            raise InvalidInput(f"the period is longer than {MAX_PERIOD_DAYS} days", field="from")
        if not 0 < self.radius_m <= MAX_RADIUS_M:
            raise InvalidInput(f"radius_m must be in (0, {MAX_RADIUS_M:g}] m", field="radius_m")
        if self.min_cases < 2:
            raise InvalidInput("min_cases must be at least 2", field="min_cases")


SPOTS_SQL = """
WITH sel AS (
    SELECT c.id, c.case_no, c.category_code, case_status(c) AS status, c.reported_at,
           c.unit_code, c.geom,
           ST_Transform(c.geom, :srid) AS p
      FROM cases c
     WHERE {where}
), clustered AS (
    SELECT sel.*,
           ST_ClusterDBSCAN(p, eps := :radius, minpoints := :min_cases)
               OVER (PARTITION BY category_code) AS cid
      FROM sel
), spot AS (
    SELECT category_code, cid, count(*) AS cases,
           ST_Centroid(ST_Collect(p)) AS centre,
           min(reported_at) AS first_reported_at, max(reported_at) AS last_reported_at,
           array_agg(id ORDER BY reported_at, id) AS case_ids,
           array_agg(case_no ORDER BY reported_at, id) AS case_nos,
           array_agg(DISTINCT unit_code ORDER BY unit_code) AS unit_codes,
           count(*) FILTER (WHERE status = ANY(CAST(:open AS text[]))) AS open_cases,
           array_agg(p) AS points
      FROM clustered
     WHERE cid IS NOT NULL
     GROUP BY category_code, cid
    HAVING count(*) >= :min_cases
)
SELECT s.category_code, k.name_zh AS category_name_zh, k.name_en AS category_name_en,
       s.cases, s.open_cases, s.first_reported_at, s.last_reported_at,
       s.case_ids, s.case_nos, s.unit_codes,
       round((SELECT max(ST_Distance(s.centre, q)) FROM unnest(s.points) AS q)::numeric, 1)
           AS extent_m,
       ST_AsGeoJSON(ST_Transform(s.centre, 4326), 6)::json AS geometry
  FROM spot s
  LEFT JOIN case_category k ON k.code = s.category_code
 ORDER BY s.cases DESC, s.last_reported_at DESC, s.category_code
 LIMIT :limit
"""


def _district_srid(conn: Connection) -> int:
    """The EPSG code of the UTM zone at the centre of the units (metres for DBSCAN)."""
    lon, lat = conn.execute(
        text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) AS c "
            "FROM admin_unit WHERE level = 'district') d"
        )
    ).one()
    if lon is None:  # no units loaded: any zone gives no spots
        return 32650
    return int(utm_crs(lon, lat).to_epsg())


def recurring_spots(
    conn: Connection, settings: Settings, principal: Principal, q: SpotQuery, limit: int = 500
) -> dict[str, Any]:
    """The recurring spots of the module's rule among the cases the viewer may read.

    Returns ``{"type": "FeatureCollection", "features": [...], "parameters": {...}}``: one
    Point feature per spot (its centre, WGS-84) with properties category_code,
    category_name_zh/en, cases, open_cases, first/last_reported_at, extent_m (metres),
    case_ids, case_nos (oldest first) and unit_codes; most cases first, at most ``limit``.
    Raises Forbidden for viewers who do not read cases (planners see the hotspot figures,
    not the cases), InvalidInput (422) for a bad parameter.
    """
    require_case_reader(principal)
    q.check()
    cond, params = case_filter(principal, "c")
    tz = zone(settings)
    where = [cond, "c.reported_at >= :t0", "c.reported_at < :t1"]
    where.append(partitions.period_sql("c.id", ":t0", ":t1"))  # its month partitions only
    where.append("c.status <> ALL(CAST(:not_recurrences AS text[]))")
    params.update(
        t0=datetime.combine(q.date_from, time.min, tz),
        t1=datetime.combine(q.date_to + timedelta(days=1), time.min, tz),
        not_recurrences=[str(s) for s in NOT_RECURRENCES],
    )
    if q.category:
        c_cond, c_params = within_sql("c.category_code", q.category)
        where.append(c_cond)
        params.update(c_params)
    if q.unit:
        where.append("c.unit_code LIKE :spot_unit")
        params["spot_unit"] = q.unit + "%"
    params.update(
        srid=_district_srid(conn),
        radius=q.radius_m,
        min_cases=q.min_cases,
        open=[str(s) for s in OPEN_STATUSES],
        limit=limit,
    )
    rows = conn.execute(text(SPOTS_SQL.format(where=" AND ".join(where))), params).mappings()
    features = []
    for i, r in enumerate(rows, start=1):
        props = {k: v for k, v in r.items() if k != "geometry"}
        props["extent_m"] = float(props["extent_m"] or 0.0)
        features.append(
            {"type": "Feature", "id": i, "geometry": r["geometry"], "properties": props}
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "parameters": {
            "from": q.date_from,
            "to": q.date_to,
            "radius_m": q.radius_m,
            "min_cases": q.min_cases,
            "category": q.category,
            "unit": q.unit,
        },
    }
