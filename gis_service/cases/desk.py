"""The command desk's case queue (issue 15 item 2): its tabs, their counts and its pages.

A tab is a named condition over ``cases c`` (SQL with named parameters), built here from
the loop's vocabulary (cases/workflow.py) and the one status rule (``case_status()``,
cases/report.sql) and the one overdue rule (``case_overdue()``, cases/report.sql). Every
query is cut to the viewer's jurisdiction by ``auth/scope.py`` ``case_filter``; the desk
is for dispatchers (supervisors and admins, ``workflow.DISPATCHER``).

Tabs (GB/T 30428's dispatch seat; ``TABS`` keeps their order):

=================  ========  ======================================================
tab                中文       cases
=================  ========  ======================================================
to_accept          待立案     reported, waiting for acceptance or rejection
to_dispatch        待派遣     accepted, no team yet (returned ones included)
in_progress        处置中     dispatched or in progress
to_verify          待核查     handled by the team, waiting for the check
returned           退回       accepted again after a team's return (回退)
escalated          上报给我   escalated (上报) and now handled at one of my levels
near_deadline      临期       the deadline runs, not passed, and less than
                              ``Settings.desk_near_deadline_share`` of it is left
overdue            超期       the deadline passed (parked cases are out)
=================  ========  ======================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import case_filter, require_role
from gis_service.cases.service import CaseFilters, list_cases
from gis_service.cases.workflow import DEADLINE_STATUSES, DISPATCHER, OPEN_STATUSES, Status
from gis_service.units.codes import level_of

#: tab → (中文, English): the queue's tabs in the order the desk shows them
TABS: dict[str, tuple[str, str]] = {
    "to_accept": ("待立案", "To accept"),
    "to_dispatch": ("待派遣", "To dispatch"),
    "in_progress": ("处置中", "In progress"),
    "to_verify": ("待核查", "To verify"),
    "returned": ("退回", "Returned by a team"),
    "escalated": ("上报给我", "Escalated to me"),
    "near_deadline": ("临期", "Near the deadline"),
    "overdue": ("超期", "Overdue"),
}


def require_desk(principal: Principal) -> None:
    """403 unless the viewer dispatches (supervisors and admins): the desk is their seat."""
    require_role(principal, *sorted(DISPATCHER), what="the command desk")


def _statuses(*statuses: Status) -> list[str]:
    return [s.value for s in statuses]


#: the one overdue rule over ``cases c``: ``case_overdue()`` (cases/report.sql), which
#: the case answer and the list filter use too
OVERDUE = "case_overdue(c)"


def tab_sql(tab: str, principal: Principal, *, near_share: float) -> tuple[str, dict[str, Any]]:
    """SQL (named parameters ``t_…``) true for the cases of ``tab`` over ``cases c``.

    ``escalated`` depends on the viewer: the handling level of one of their scope units
    (an admin: any level). ``near_share`` is the share of the deadline's span (acceptance
    to deadline) under which a running case is near its deadline."""
    status = "case_status(c)"
    if tab == "to_accept":
        return f"{status} = :t_reported", {"t_reported": Status.reported.value}
    if tab == "to_dispatch":
        return f"{status} = :t_accepted", {"t_accepted": Status.accepted.value}
    if tab == "in_progress":
        return f"{status} = ANY(:t_working)", {
            "t_working": _statuses(Status.dispatched, Status.in_progress)
        }
    if tab == "to_verify":
        return f"{status} = :t_handled", {"t_handled": Status.handled.value}
    if tab == "returned":
        return (
            f"({status} = :t_accepted AND c.returned_at IS NOT NULL)",
            {"t_accepted": Status.accepted.value},
        )
    if tab == "escalated":
        cond = f"(c.escalation_count > 0 AND {status} = ANY(:t_open)"
        params: dict[str, Any] = {"t_open": _statuses(*OPEN_STATUSES)}
        if principal.role is not Role.admin:
            cond += " AND c.handling_level = ANY(:t_levels)"
            params["t_levels"] = sorted({level_of(s).value for s in principal.scopes})
        return cond + ")", params
    if tab == "near_deadline":
        return (
            f"({status} = ANY(:t_running) AND NOT {OVERDUE} AND c.deadline_at IS NOT NULL "
            "AND c.deadline_at - now() "
            "<= :t_share * (c.deadline_at - coalesce(c.accepted_at, c.reported_at)))",
            {"t_running": _statuses(*DEADLINE_STATUSES), "t_share": near_share},
        )
    if tab == "overdue":
        return OVERDUE, {}
    raise KeyError(tab)


@dataclass
class DeskFilters(CaseFilters):
    """The list filters (cases/service.py) and one queue tab."""

    tab: str | None = None
    principal: Principal | None = None
    near_share: float = 0.25

    def sql(self, tz: str) -> tuple[list[str], dict[str, Any]]:
        where, params = super().sql(tz)
        if self.tab and self.principal is not None:
            cond, tparams = tab_sql(self.tab, self.principal, near_share=self.near_share)
            # every tab holds open cases: the stored status says so too (case_status()
            # only turns parked into what it left), and lets the planner use the
            # indexes on open cases (cases_open_idx, cases_open_geom_idx)
            where += [cond, "c.status = ANY(:d_open)"]
            params.update(tparams, d_open=_statuses(*OPEN_STATUSES))
        return where, params


def queue(
    conn: Connection,
    principal: Principal,
    filters: DeskFilters,
    *,
    tz: str,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """A page of the queue as a GeoJSON FeatureCollection (``list_cases``' answer), the
    most urgent first: the least time left before the deadline (``deadline_at``), then
    the cases without one (reported) oldest first. 403 for roles other than dispatchers."""
    require_desk(principal)
    filters.principal = principal
    return list_cases(conn, principal, filters, tz=tz, limit=limit, offset=offset, order="deadline")


def counts(
    conn: Connection, principal: Principal, filters: CaseFilters, *, tz: str, near_share: float
) -> dict[str, Any]:
    """tab → how many cases in the viewer's jurisdiction it holds under ``filters``, in
    one scan of the open cases (every tab holds open cases only), and ``open``: all of
    them, and ``changed_at``: the latest change among them (a new report or an action moves
    it even when no count moves). 403 for roles other than dispatchers."""
    require_desk(principal)
    scope, params = case_filter(principal, "c")
    where, fparams = filters.sql(tz)
    params.update(fparams)
    columns = []
    for name in TABS:
        cond, tparams = tab_sql(name, principal, near_share=near_share)
        params.update(tparams)
        columns.append(f"count(*) FILTER (WHERE {cond}) AS {name}")
    cond = " AND ".join([scope, "c.status = ANY(:d_open)", *where])
    row = (
        conn.execute(
            text(
                f"SELECT count(*) AS open, max(c.updated_at) AS changed_at, {', '.join(columns)} "
                f"FROM cases c WHERE {cond}"
            ),
            {**params, "d_open": _statuses(*OPEN_STATUSES)},
        )
        .mappings()
        .one()
    )
    return dict(row)
