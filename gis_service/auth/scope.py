"""The jurisdiction rule: what each viewer may see, in one place.

Every read path takes its filter from here — SQL for cases, units, rosters, photos and
Open311; numpy masks over the statistics cube and the tile index; the map pages; the
access figures and proposed sites — and every cache of viewer-dependent answers keys on
:func:`scope_key`. Nothing else in the tree decides who sees what.

The rule (issue 13; the roles are those of the cases issue, README "People and
jurisdiction"):

=================  ==========================================================  ==========
viewer             cases, photos, case figures                                   units
=================  ==========================================================  ==========
admin              all                                                           all
Open311 key        all, or the cases inside its one unit                         same
supervisor,        the cases located inside any of their scope units (a unit     inside +
grid worker,       code is a prefix of the case's unit code: district,           the chain
planner            subdistrict, community, grid or building)                     above
team member        the cases ever dispatched to their team (``team_history``)    the team's
                                                                                 unit + chain
anonymous          the public view (Open311 reads and published photos only):  none
                   cases of public categories (``case_category.public``, from
                   the taxonomy file) except rejected and duplicate ones;
                   never the fields in :data:`PUBLIC_HIDDEN_FIELDS`; a photo
                   only once a supervisor has published it
=================  ==========================================================  ==========

The public view (:func:`public_case_filter`, :func:`photo_filter`, :func:`public_fields`):

* Categories: public-space problems (rubbish, roads, street lights, blocked fire lanes…)
  are public; disputes, help for vulnerable people, security findings, problems that
  point at one household (noise, e-bike charging, gas) and petition-like requests are
  not. The flag is data (``"public"`` in taxonomy.json, ``case_category.public``).
* Statuses: a rejected report was judged not to be a problem (or abusive), and a
  duplicate is shown through the case it was merged into; both stay private.
* Fields: whatever a person typed or gave about themselves — the reporter's description
  and address, staff notes on the timeline, the Open311 reporter's contact fields and own
  media_url (``attrs``) — can name people or carry phone numbers, so the public view
  never shows it; the category, status, place (lat/long), dates and the unit or team
  responsible are shown. No route shows the reporter's account to anyone anonymous.
* Photos: a photo can show faces, number plates or the inside of a home; it is public
  only after a supervisor or admin of the case has published it (``published_at``), and
  only while its case is in the public view.

Timeline events: internal events (``workflow.INTERNAL_EVENTS``: the desk's internal note,
内部备注) are read only by those who work the case — dispatchers (supervisors, admins) and
team members; grid workers (the reporter side), Open311 keys and the public view never get
them (:func:`event_filter`, the one filter every path that lists events uses: the case
timeline, Open311's status notes).

Figures of a unit *above* a viewer's scope (a grid worker's community on the map) count
only the viewer's own cases, never the unit's whole. Planners read figures and maps, not
single cases (:func:`require_case_reader`).

Rosters: anyone sees each unit's responsible person (the grid leader, whose name and phone
are posted at building entrances anyway, :data:`PUBLIC_ROSTER_ROLES`); staff see the whole
roster of the units inside their scope and of the chain above it.

Approvals (an extension request, 延期): the level above the case's handling level
decides (GB/T 30428: 延期 is approved by the level that dispatched the case's level). A
request records ``approver_unit``, the case's unit at that level; a supervisor decides it
when one of their scope units contains it (the same prefix rule as for cases), an admin
always, and a supervisor's delegate during the delegation's period
(:func:`approval_filter`). District-level cases have no level above: only admins decide.

Ties at shared boundaries are decided by the location rule, not here: a case has exactly
one ``unit_code``; this module only compares codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gis_service.auth.principal import CASE_READERS, REPORTERS, Principal, Role
from gis_service.cases.workflow import DISPATCHER, INTERNAL_EVENTS, Status
from gis_service.errors import Forbidden

#: the anonymous viewer: Open311 GET without a key, public pages
ANONYMOUS = Principal(role=Role.public, username="anonymous", display_name="anonymous")

#: roster roles whose name and phone anyone may read (posted at building entrances)
PUBLIC_ROSTER_ROLES: tuple[str, ...] = ("grid_leader",)

#: statuses the public view leaves out: rejected reports, duplicates (see the module)
PUBLIC_HIDDEN_STATUSES: tuple[str, ...] = (Status.rejected.value, Status.duplicate.value)

#: case data the public view never shows (column names of ``cases`` and ``case_event``):
#: free text a person typed and the reporter's contact fields (see the module)
PUBLIC_HIDDEN_FIELDS: frozenset[str] = frozenset({"description", "address", "note", "attrs"})

#: roles whose view is bounded by unit codes (``Principal.scopes``)
UNIT_SCOPED = frozenset({Role.grid_worker, Role.supervisor, Role.planner, Role.client})


def unrestricted(p: Principal) -> bool:
    """Admins, and Open311 keys without a unit, see the whole coverage."""
    return p.role is Role.admin or (p.role is Role.client and not p.scopes)


def scope_key(p: Principal) -> str:
    """What makes two viewers' answers differ; every per-viewer cache keys on it.

    Two viewers with equal keys see exactly the same cases, units and figures."""
    if unrestricted(p):
        return "all"
    if p.role is Role.team_member:
        return f"team:{p.team_id}"
    if p.role is Role.public:
        return "public"
    return "units:" + ",".join(sorted(set(p.scopes)))


def require_role(p: Principal, *roles: Role, what: str) -> None:
    """403 unless the viewer has one of the roles; the message names them."""
    if p.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"{what} needs one of the roles: {allowed} (you are {p.role.value})")


def report_scopes(p: Principal) -> list[str] | None:
    """Units a report may be located in; None means anywhere covered. 403 for roles that
    do not report (planners, team members, anonymous callers)."""
    if p.role not in REPORTERS:
        raise Forbidden(f"a {p.role.value} cannot report cases")
    return None if unrestricted(p) else list(p.scopes)


def public_view(p: Principal) -> bool:
    """True for the anonymous viewer: it sees the public view, not a jurisdiction."""
    return p.role is Role.public


def require_case_reader(p: Principal, *, public_view_too: bool = False) -> None:
    """Single cases (lists, details, photos, case tiles) are for the roles that work them.

    ``public_view_too``: the few paths that also serve the public view (Open311 reads,
    published photos) let the anonymous viewer through; :func:`case_filter` and
    :func:`photo_filter` then narrow what it gets."""
    if public_view_too and public_view(p):
        return
    if p.role not in CASE_READERS:
        raise Forbidden(
            "planners see statistics and maps, not individual cases"
            if p.role is Role.planner
            else "sign in to read cases"
        )


def covers_unit(p: Principal, code: str) -> bool:
    """True if the unit lies inside the viewer's jurisdiction (itself or below a scope)."""
    if unrestricted(p):
        return True
    if p.role not in UNIT_SCOPED:
        return False
    return any(code.startswith(s) for s in p.scopes)


# --------------------------------------------------------------------------- SQL


def _prefix_terms(column: str, scopes: tuple[str, ...], tag: str) -> tuple[str, dict[str, Any]]:
    terms = [f"{column} LIKE :{tag}_{i}" for i in range(len(scopes))]
    params = {f"{tag}_{i}": s + "%" for i, s in enumerate(scopes)}
    return "(" + " OR ".join(terms or ["FALSE"]) + ")", params


def case_filter(p: Principal, alias: str = "c") -> tuple[str, dict[str, Any]]:
    """SQL (with named parameters) true for the cases this viewer may see.

    A unit scope is the prefix test ``unit_code LIKE 'X%'``, which the text_pattern_ops
    index on cases.unit_code answers."""
    if unrestricted(p):
        return "TRUE", {}
    if p.role is Role.team_member:
        return (
            f"({alias}.team_history @> ARRAY[CAST(:scope_team AS integer)] "
            f"AND {alias}.team_history <> '{{}}')",
            {"scope_team": p.team_id},
        )
    if p.role is Role.public:
        return public_case_filter(alias)
    if p.role not in UNIT_SCOPED:
        return "FALSE", {}
    return _prefix_terms(f"{alias}.unit_code", p.scopes, "scope")


def approval_filter(
    p: Principal, alias: str = "a", tag: str = "appr"
) -> tuple[str, dict[str, Any]]:
    """SQL over ``approval`` (alias) true for the requests this viewer decides in their
    own right (see the module): admins all, a supervisor those whose ``approver_unit``
    lies inside a scope unit, nobody else. ``tag`` keeps parameter names apart when the
    filters of several principals (a delegate's delegators) are combined."""
    if p.role is Role.admin:
        return "TRUE", {}
    if p.role is not Role.supervisor:
        return "FALSE", {}
    return _prefix_terms(f"{alias}.approver_unit", p.scopes, tag)


def public_case_filter(alias: str = "c") -> tuple[str, dict[str, Any]]:
    """SQL true for the public view's cases: a category the taxonomy marks public, and not
    a rejected or duplicate case (:data:`PUBLIC_HIDDEN_STATUSES`)."""
    return (
        f"({alias}.category_code IN (SELECT pub_c.code FROM case_category pub_c "
        f"WHERE pub_c.public) AND {alias}.status <> ALL(CAST(:public_hidden AS text[])))",
        {"public_hidden": list(PUBLIC_HIDDEN_STATUSES)},
    )


def sees_internal_events(p: Principal) -> bool:
    """True for the viewers who read internal timeline events (see the module):
    dispatchers and team members."""
    return p.role in DISPATCHER or p.role is Role.team_member


def event_filter(p: Principal, alias: str = "e") -> tuple[str, dict[str, Any]]:
    """SQL over ``case_event`` (alias) true for the events this viewer may read among those
    of a case it sees: all of them for dispatchers and team members, else all but the
    internal ones (``workflow.INTERNAL_EVENTS``). Use it with :func:`case_filter`."""
    if sees_internal_events(p):
        return "TRUE", {}
    return (
        f"{alias}.action <> ALL(CAST(:internal_events AS text[]))",
        {"internal_events": list(INTERNAL_EVENTS)},
    )


def photo_filter(p: Principal, alias: str = "p") -> tuple[str, dict[str, Any]]:
    """SQL over ``case_photo`` (alias) true for the photos this viewer may see among those
    of a case it sees: all of them, or in the public view only the published ones. Use
    it together with :func:`case_filter` on the photo's case."""
    if public_view(p):
        return f"{alias}.published_at IS NOT NULL", {}
    return "TRUE", {}


def public_fields(p: Principal, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as this viewer may read it: in the public view each field named in
    :data:`PUBLIC_HIDDEN_FIELDS` is None (kept, so the shape stays the same); others
    read the row unchanged."""
    out = dict(row)
    if public_view(p):
        for name in PUBLIC_HIDDEN_FIELDS & out.keys():
            out[name] = None
    return out


def units_inside(p: Principal, column: str) -> tuple[str, dict[str, Any]]:
    """SQL true for unit codes inside the jurisdiction (not the units above it)."""
    if unrestricted(p):
        return "TRUE", {}
    if p.role not in UNIT_SCOPED:
        return "FALSE", {}
    return _prefix_terms(column, p.scopes, "inside")


def units_visible(p: Principal, column: str) -> tuple[str, dict[str, Any]]:
    """SQL true for units inside the jurisdiction or above it (the chain a viewer
    navigates through: a grid worker's district, subdistrict and community)."""
    if unrestricted(p):
        return "TRUE", {}
    if p.role is Role.team_member:  # the unit the team serves, and the chain above it
        return (
            f"EXISTS (SELECT 1 FROM team scope_t WHERE scope_t.id = :scope_team AND "
            f"({column} LIKE scope_t.unit_code || '%' OR starts_with(scope_t.unit_code, "
            f"{column})))",
            {"scope_team": p.team_id},
        )
    if p.role not in UNIT_SCOPED or not p.scopes:
        return "FALSE", {}
    terms, params = [], {}
    for i, scope in enumerate(p.scopes):
        terms.append(f"({column} LIKE :unit_in_{i} OR starts_with(:unit_of_{i}, {column}))")
        params[f"unit_in_{i}"], params[f"unit_of_{i}"] = scope + "%", scope
    return "(" + " OR ".join(terms) + ")", params


#: roles that read single walks and their tracks (auth/scope.py walk_filter); planners
#: read the walks' figures only, as they read case figures and not cases
WALK_READERS = frozenset({Role.grid_worker, Role.supervisor, Role.admin})


def walk_filter(
    p: Principal, grid_column: str = "w.grid_code", worker_column: str = "w.worker_id"
) -> tuple[str, dict[str, Any]]:
    """SQL true for the grid walks (issue 18) — and their points, visits and daily figures
    — this viewer may see: a grid worker their own walks, a supervisor or planner the
    walks of the grids inside their scope units (the prefix rule of cases), an admin all,
    nobody else any. A walk is where a person was: a track is never public."""
    if p.role is Role.admin:
        return "TRUE", {}
    if p.role is Role.grid_worker and p.user_id is not None:
        return f"{worker_column} = :walk_worker", {"walk_worker": p.user_id}
    if p.role in (Role.supervisor, Role.planner):
        return _prefix_terms(grid_column, p.scopes, "walk")
    return "FALSE", {}


def require_walk_reader(p: Principal) -> None:
    """Single walks (their tracks, visits, the list) are for :data:`WALK_READERS`; 403
    for the others (planners read the figures: GET /api/v1/stats/walks)."""
    if p.role not in WALK_READERS:
        raise Forbidden(
            "planners see walk figures, not single walks"
            if p.role is Role.planner
            else f"a {p.role.value} cannot read walks"
        )


def roster_filter(p: Principal, unit_column: str, role_column: str) -> tuple[str, dict[str, Any]]:
    """SQL true for the roster entries (unit_staff rows) this viewer may read."""
    if unrestricted(p):
        return "TRUE", {}
    chain, params = units_visible(p, unit_column)
    public = f"{role_column} = ANY(CAST(:public_roles AS text[]))"
    return f"({public} OR {chain})", {**params, "public_roles": list(PUBLIC_ROSTER_ROLES)}


# ------------------------------------------------------------------------- numpy


def case_mask(
    conn: Connection, p: Principal, facts: Any, rows: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask over ``facts`` (the statistics cube's columns; ``rows`` selects a
    subset, default all) true for the cases this viewer may see: the same rule as
    :func:`case_filter`, compiled for numpy.

    A unit scope at a level the cube indexes (district … grid) compares the cube's level
    index; any other scope (a building, a team, the public view) takes the case ids from
    :func:`case_filter` in SQL, so the two can never disagree (tests compare them)."""
    ids = facts.ids if rows is None else facts.ids[rows]
    n = len(ids)
    if unrestricted(p):
        return np.ones(n, bool)
    keep = np.zeros(n, bool)
    by_sql = p.role not in UNIT_SCOPED
    if not by_sql:
        for scope in p.scopes:
            inside = facts.prefix_mask(scope, rows)
            if inside is None:  # a level the cube does not index: ask SQL
                by_sql = True
                break
            keep |= inside
    if by_sql:
        cond, params = case_filter(p, "c")
        found = conn.execute(text(f"SELECT c.id FROM cases c WHERE {cond}"), params).scalars()
        keep = np.isin(ids, np.fromiter(found, dtype=np.int64))
    return keep
