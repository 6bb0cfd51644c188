"""The workload board and the shift view of the command desk (issue 15 item 6).

Both are cut to the viewer's jurisdiction by ``auth/scope.py`` ``case_filter`` (the rule
the queue uses) and use the one definitions that exist: status and overdue are
``case_status()`` / ``case_overdue()``, on time and rework are ``case_on_time()``,
``case_on_time_extended()`` and ``case_rework()`` (all in cases/report.sql; the statistics'
cube loads the same functions), and each rate is the statistics' own (stats/resolution.py
``_rate``: closed on time / closed, rounded to 4 places, none without a closed case).

The board (:func:`board`), over a period (:data:`PERIODS`, in the district's time,
``GIS_TIMEZONE``; weeks start on Monday, ISO 8601):

per team (the teams the viewer may dispatch to — whose unit lies inside the jurisdiction
or above it, ``units_visible`` — and any other team holding a case of it):
  open                    its open cases (``team_id`` is the team, status open now)
  overdue                 of those, overdue now (``case_overdue()``)
  handled                 its cases handled in the period (``handled_at``: the last time)
  closed                  its cases closed in the period
  closed_on_time          of those, closed by the original deadline (``case_on_time()``)
  closed_on_time_extended of those, closed after it but by the extended one
  rework                  of those, failed a check at least once (``case_rework()``)
  on_time_rate            closed_on_time / closed (as stats/resolution.py)
  on_time_rate_extended   (closed_on_time + closed_on_time_extended) / closed
  rework_rate             rework / closed

per grid worker (active accounts with a scope unit inside the jurisdiction):
  reports                 cases they reported in the period
  awaiting_check          handled cases in their grids waiting for the check (verify)
  oldest_handled_at       when the longest-waiting of those was handled

Every figure counts only cases the viewer may see, so a team that also works in another
subdistrict shows a subdistrict supervisor only that supervisor's cases.

The shift view (:func:`shift`): what arrived since the viewer's last shift, urged cases
without a reply, and the cases likely to miss their deadline (:func:`likely_late`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import case_filter, units_inside, units_visible
from gis_service.cases import partitions
from gis_service.cases.desk import require_desk
from gis_service.cases.workflow import OPEN_STATUSES, Action, Status
from gis_service.settings import Settings
from gis_service.stats.resolution import _rate
from gis_service.timezone import local_now, zone
from gis_service.units.codes import CODE_LENGTH

#: period → (中文, English): the board's periods, each from its start in the district's
#: time until now; ``week`` (the default) starts on Monday 00:00
PERIODS: dict[str, tuple[str, str]] = {
    "week": ("本周", "This week"),
    "month": ("本月", "This month"),
    "quarter": ("本季度", "This quarter"),
}
#: the board's figures and their definitions (the module's tables), for the answer
DEFINITIONS: dict[str, str] = {
    line.split()[0]: " ".join(line.split()[1:])
    for block in __doc__.split("\n\n")[3:5]
    for line in block.splitlines()
    if line.startswith("  ") and line[2] != " "
}

#: the shift view: the last shift started when the previous sign-in did, counting as
#: previous only a sign-in this many hours before the current one (sign-ins closer
#: together — the phone and the desk, a browser restarted — belong to one shift) ...
SHIFT_GAP_HOURS = 4
#: ... and without one (a first sign-in, or one that ended over a day ago and was pruned:
#: auth/sessions.py), this many hours ago
SHIFT_FALLBACK_HOURS = 12
#: the prediction: this percentile of dispatched → handled hours ...
PREDICT_QUANTILE = 0.8
#: ... over the closed cases of the last this many days ...
PREDICT_HISTORY_DAYS = 90
#: ... and only from at least this many of them (the team's, else the category's)
PREDICT_MIN_CASES = 3
#: cases listed at most in each list of the shift view (``total`` counts them all)
SHIFT_LIST_MAX = 200


def period_start(settings: Settings, period: str, now: datetime | None = None) -> datetime:
    """The first moment of ``period`` (``PERIODS``) that holds ``now``, in the district's
    time: Monday 00:00 of this week (ISO 8601 weeks), the 1st of this month, of this
    quarter. An aware datetime; KeyError for an unknown period."""
    here = local_now(settings, now)
    day = here.date()
    if period == "week":
        first = day - timedelta(days=day.weekday())
    elif period == "month":
        first = day.replace(day=1)
    elif period == "quarter":
        first = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    else:
        raise KeyError(period)
    return datetime.combine(first, time(0), tzinfo=zone(settings))


def _statuses(*statuses: Status) -> list[str]:
    return [s.value for s in statuses]


TEAMS_SQL = """
WITH f AS (
    SELECT c.team_id,
           count(*) FILTER (WHERE c.status = ANY(:open)) AS open,
           count(*) FILTER (WHERE c.status = ANY(:open) AND case_overdue(c)) AS overdue,
           count(*) FILTER (WHERE c.handled_at >= :start) AS handled,
           count(*) FILTER (WHERE {closed}) AS closed,
           count(*) FILTER (WHERE {closed} AND case_on_time(c)) AS closed_on_time,
           count(*) FILTER (WHERE {closed} AND case_on_time_extended(c))
               AS closed_on_time_extended,
           count(*) FILTER (WHERE {closed} AND case_rework(c)) AS rework
      FROM cases c
     WHERE {scope} AND c.team_id IS NOT NULL
       AND (c.status = ANY(:open) OR c.handled_at >= :start OR c.closed_at >= :start)
     GROUP BY c.team_id
)
SELECT t.id, t.name, t.kind, t.unit_code, t.active,
       coalesce(f.open, 0) AS open, coalesce(f.overdue, 0) AS overdue,
       coalesce(f.handled, 0) AS handled, coalesce(f.closed, 0) AS closed,
       coalesce(f.closed_on_time, 0) AS closed_on_time,
       coalesce(f.closed_on_time_extended, 0) AS closed_on_time_extended,
       coalesce(f.rework, 0) AS rework
  FROM team t LEFT JOIN f ON f.team_id = t.id
 WHERE f.team_id IS NOT NULL OR (t.active AND {teams})
 ORDER BY coalesce(f.overdue, 0) DESC, coalesce(f.open, 0) DESC, t.id
"""

WORKERS_SQL = """
WITH workers AS (
    SELECT u.id, u.username, u.display_name, u.scopes FROM app_user u
     WHERE u.role = :grid_worker AND u.active
       AND EXISTS (SELECT 1 FROM unnest(u.scopes) s WHERE {inside})
), reports AS (
    SELECT c.reporter_id, count(*) AS n FROM cases c
     WHERE c.reported_at >= :start AND {period} AND {scope} GROUP BY c.reporter_id
), waiting AS (
    -- a case's unit codes up its chain (its code cut at each level's length) joined to
    -- the workers' scope codes: a hash join, not a prefix test per pair
    SELECT g.id, count(DISTINCT c.id) AS n, min(c.handled_at) AS oldest
      FROM cases c
     CROSS JOIN LATERAL unnest(CAST(:code_lengths AS integer[])) AS cut(n)
      JOIN (SELECT w.id, unnest(w.scopes) AS code FROM workers w) g
        ON g.code = left(c.unit_code, cut.n)
     WHERE c.status = :handled AND case_status(c) = :handled AND {scope}
     GROUP BY g.id
)
SELECT w.id, w.username, w.display_name, w.scopes,
       coalesce(r.n, 0) AS reports, coalesce(h.n, 0) AS awaiting_check,
       h.oldest AS oldest_handled_at
  FROM workers w
  LEFT JOIN reports r ON r.reporter_id = w.id
  LEFT JOIN waiting h ON h.id = w.id
 ORDER BY coalesce(h.n, 0) DESC, coalesce(r.n, 0) DESC, w.username
"""


def board(
    conn: Connection, principal: Principal, settings: Settings, period: str = "week"
) -> dict[str, Any]:
    """The workload board of the viewer's jurisdiction over ``period`` (see the module):
    ``{"period", "from", "to", "timezone", "definitions", "teams": [...],
    "grid_workers": [...]}``, times as aware datetimes. Teams sorted by overdue, then open;
    grid workers by cases awaiting their check, then reports. 403 for roles other than
    dispatchers (supervisors and admins)."""
    require_desk(principal)
    now = datetime.now(UTC)
    start = period_start(settings, period, now)
    scope, params = case_filter(principal, "c")
    teams, tparams = units_visible(principal, "t.unit_code")
    inside, iparams = units_inside(principal, "s")
    closed = "(c.status = :closed AND case_status(c) = :closed AND c.closed_at >= :start)"
    params.update(
        **tparams,
        **iparams,
        start=start,
        open=_statuses(*OPEN_STATUSES),
        closed=Status.closed.value,
        handled=Status.handled.value,
        grid_worker=Role.grid_worker.value,
        code_lengths=sorted(set(CODE_LENGTH.values())),
    )
    rows = [
        dict(r)
        for r in conn.execute(
            text(TEAMS_SQL.format(scope=scope, teams=teams, closed=closed)), params
        ).mappings()
    ]
    if rows:
        closed_n = np.array([r["closed"] for r in rows])
        on_time = np.array([r["closed_on_time"] for r in rows])
        extended = np.array([r["closed_on_time_extended"] for r in rows])
        rework = np.array([r["rework"] for r in rows])
        rates = zip(
            _rate(on_time, closed_n),
            _rate(on_time + extended, closed_n),
            _rate(rework, closed_n),
            strict=True,
        )
        for row, (a, b, c) in zip(rows, rates, strict=True):
            row.update(on_time_rate=a, on_time_rate_extended=b, rework_rate=c)
    workers = [
        {**r, "scopes": list(r["scopes"] or [])}
        for r in conn.execute(
            text(
                WORKERS_SQL.format(
                    scope=scope,
                    inside=inside,
                    period=partitions.period_sql("c.id", ":start", None),
                )
            ),
            params,
        ).mappings()
    ]
    return {
        "period": period,
        "from": start,
        "to": now,
        "timezone": zone(settings).key,
        "definitions": DEFINITIONS,
        "teams": rows,
        "grid_workers": workers,
    }


# --------------------------------------------------------------------- the shift view


def last_shift_start(conn: Connection, principal: Principal) -> datetime | None:
    """When the viewer's previous shift began: the ``created_at`` of their latest sign-in
    (``auth_session``, any kind, ended or not) opened at least ``SHIFT_GAP_HOURS`` before
    the current one (the request's session; now for a principal without one). None
    without such a sign-in: a first one, or a previous one already pruned (sessions are
    deleted a day after they end, auth/sessions.py ``KEEP_ENDED``)."""
    if principal.user_id is None:
        return None
    return conn.execute(
        text(
            "SELECT max(s.created_at) FROM auth_session s "
            "WHERE s.user_id = :uid AND s.id IS DISTINCT FROM :sid "
            "AND s.created_at < coalesce((SELECT cur.created_at FROM auth_session cur "
            "WHERE cur.id = :sid), now()) - make_interval(hours => :gap)"
        ),
        {"uid": principal.user_id, "sid": principal.session_id, "gap": SHIFT_GAP_HOURS},
    ).scalar_one()


HISTORY_SQL = """
hist AS (
    SELECT c.team_id, c.category_code,
           extract(epoch FROM c.handled_at - c.dispatched_at) / 3600.0 AS hours
      FROM cases c
     WHERE {scope} AND c.status = :closed AND case_status(c) = :closed
       AND c.closed_at >= now() - make_interval(days => :days)
       AND c.dispatched_at IS NOT NULL AND c.handled_at >= c.dispatched_at
       AND c.team_id IS NOT NULL
),
by_team AS MATERIALIZED (
    SELECT team_id, category_code, count(*) AS n,
           percentile_cont(:q) WITHIN GROUP (ORDER BY hours) AS hours
      FROM hist GROUP BY team_id, category_code
),
by_category AS MATERIALIZED (
    SELECT category_code, count(*) AS n,
           percentile_cont(:q) WITHIN GROUP (ORDER BY hours) AS hours
      FROM hist GROUP BY category_code
)"""

LIKELY_LATE_SQL = (
    "WITH "
    + HISTORY_SQL
    + """,
running AS (
    SELECT c.id, c.deadline_at, c.dispatched_at,
           CASE WHEN bt.n >= :min_n THEN 'team' WHEN bc.n >= :min_n THEN 'category' END
               AS basis,
           CASE WHEN bt.n >= :min_n THEN bt.hours WHEN bc.n >= :min_n THEN bc.hours END
               AS hours,
           CASE WHEN bt.n >= :min_n THEN bt.n WHEN bc.n >= :min_n THEN bc.n END AS n
      FROM cases c
      LEFT JOIN by_team bt ON bt.team_id = c.team_id AND bt.category_code = c.category_code
      LEFT JOIN by_category bc ON bc.category_code = c.category_code
     WHERE {scope} AND c.status = ANY(:working) AND case_status(c) = ANY(:working)
       AND c.deadline_at IS NOT NULL AND c.dispatched_at IS NOT NULL AND NOT case_overdue(c)
),
predicted AS (
    SELECT r.*, greatest(now(), r.dispatched_at + make_interval(secs => r.hours * 3600))
               AS predicted_at
      FROM running r WHERE r.basis IS NOT NULL
)
SELECT case_summary(c)::jsonb || jsonb_build_object(
           'predicted_at', p.predicted_at, 'basis', p.basis,
           'quantile_hours', round(p.hours::numeric, 2), 'history_cases', p.n,
           'dispatched_at', p.dispatched_at) AS item,
       count(*) OVER () AS total
  FROM predicted p JOIN cases c ON c.id = p.id
 WHERE p.predicted_at > p.deadline_at
 ORDER BY p.deadline_at, p.id
 LIMIT :limit
"""
)


def likely_late(conn: Connection, principal: Principal) -> tuple[int, list[dict[str, Any]]]:
    """Open cases of the viewer's jurisdiction likely to miss their deadline, before they
    do: (how many, the first ``SHIFT_LIST_MAX`` by deadline).

    The method: for each dispatched or in-progress case whose deadline has not passed,
    its finish is predicted as ``dispatched_at`` plus the ``PREDICT_QUANTILE`` (80th)
    percentile (``percentile_cont``, linear interpolation) of dispatched → handled hours
    over its team's closed cases of its category (the exact sub-category) closed in the
    last ``PREDICT_HISTORY_DAYS`` (90) days; with fewer than ``PREDICT_MIN_CASES`` of
    those, over the category's closed cases of every team; with fewer still, no
    prediction and the case is not listed. A prediction already past is taken as now
    (the case is still open). A case is listed when its predicted finish is after its
    deadline; each item is the case's summary plus ``predicted_at``, ``basis`` (``team``
    or ``category``), ``quantile_hours`` and ``history_cases`` (how many cases the
    percentile came from). Dispatched → handled is the last round of work: a failed check
    dispatches again (cases/actions.py). The history is the viewer's jurisdiction's only
    (``case_filter``), so no figure leaks cases from outside it."""
    scope, params = case_filter(principal, "c")
    params.update(
        closed=Status.closed.value,
        working=_statuses(Status.dispatched, Status.in_progress),
        days=PREDICT_HISTORY_DAYS,
        q=PREDICT_QUANTILE,
        min_n=PREDICT_MIN_CASES,
        limit=SHIFT_LIST_MAX,
    )
    rows = conn.execute(text(LIKELY_LATE_SQL.format(scope=scope)), params).all()
    return (rows[0].total if rows else 0), [r.item for r in rows]


def _listed(
    conn: Connection, principal: Principal, cond: str, order: str, extra: str = "", **values: Any
) -> tuple[int, list[dict[str, Any]]]:
    """(how many, the first ``SHIFT_LIST_MAX`` case summaries) of the viewer's cases
    where ``cond``, in ``order``; ``extra``: members added to each (a jsonb expression)."""
    scope, params = case_filter(principal, "c")
    item = "case_summary(c)::jsonb" + (f" || {extra}" if extra else "")
    rows = conn.execute(
        text(
            f"SELECT {item} AS item, count(*) OVER () AS total FROM cases c "
            f"WHERE {scope} AND {cond} ORDER BY {order} LIMIT :limit"
        ),
        {**params, **values, "limit": SHIFT_LIST_MAX},
    ).all()
    return (rows[0].total if rows else 0), [r.item for r in rows]


#: the first urge (督办) a case's team has not answered: a reply answers every urge before
#: it (cases/actions.py), so the first urge after the last reply
FIRST_UNANSWERED_URGE = """(
    SELECT min(e.at) FROM case_event e
     WHERE e.case_id = c.id AND e.district_code = c.district_code AND e.action = :urge
       AND e.at > coalesce((SELECT max(r.at) FROM case_event r
                             WHERE r.case_id = c.id AND r.district_code = c.district_code
                               AND r.action = :reply), '-infinity'))"""


@dataclass
class Shift:
    """When the viewer's shift view starts and why (``previous_session`` or
    ``fallback``)."""

    since: datetime
    basis: str


def shift_start(conn: Connection, principal: Principal, now: datetime) -> Shift:
    """The start of the viewer's previous sign-in (:func:`last_shift_start`), else
    ``SHIFT_FALLBACK_HOURS`` before ``now``."""
    since = last_shift_start(conn, principal)
    if since is None:
        return Shift(now - timedelta(hours=SHIFT_FALLBACK_HOURS), "fallback")
    return Shift(since, "previous_session")


def shift(conn: Connection, principal: Principal) -> dict[str, Any]:
    """The shift view of the viewer's jurisdiction:

    - ``arrived``: cases reported since the last shift began (:func:`shift_start`),
      newest first;
    - ``urged_unreplied``: open cases with an urge (督办) the team has not answered,
      longest-waiting first (``urged_at``: the first urge without a reply);
    - ``likely_late``: :func:`likely_late`.

    Each list is ``{"total", "cases": [case summary, …]}`` (at most ``SHIFT_LIST_MAX``);
    ``since``, ``since_basis`` and ``method`` (the prediction's parameters) say how it
    was made. 403 for roles other than dispatchers."""
    require_desk(principal)
    now = datetime.now(UTC)
    start = shift_start(conn, principal, now)
    arrived = _listed(
        conn,
        principal,
        "c.reported_at >= :since AND " + partitions.period_sql("c.id", ":since", None),
        "c.reported_at DESC, c.id DESC",
        since=start.since,
    )
    urged = _listed(
        conn,
        principal,
        "c.status = ANY(:open) AND c.urge_count > c.urge_replied",
        f"{FIRST_UNANSWERED_URGE}, c.id",
        f"jsonb_build_object('urged_at', {FIRST_UNANSWERED_URGE})",
        open=_statuses(*OPEN_STATUSES),
        urge=Action.urge.value,
        reply=Action.reply.value,
    )
    late = likely_late(conn, principal)
    return {
        "since": start.since,
        "since_basis": start.basis,
        "now": now,
        "arrived": {"total": arrived[0], "cases": arrived[1]},
        "urged_unreplied": {"total": urged[0], "cases": urged[1]},
        "likely_late": {"total": late[0], "cases": late[1]},
        "method": {
            "quantile": PREDICT_QUANTILE,
            "history_days": PREDICT_HISTORY_DAYS,
            "min_cases": PREDICT_MIN_CASES,
            "gap_hours": SHIFT_GAP_HOURS,
            "fallback_hours": SHIFT_FALLBACK_HOURS,
        },
    }
