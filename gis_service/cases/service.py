"""Reading cases: one case with its timeline and photos, filtered lists as GeoJSON, and
nearby open cases (possible duplicates). Every query carries the principal's filter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import case_filter, event_filter, require_case_reader
from gis_service.cases import locks, partitions
from gis_service.cases.categories import within_sql
from gis_service.cases.workflow import (
    DISPATCHER,
    ApprovalState,
    Status,
    allowed_actions,
)
from gis_service.errors import NotFound


def visible_case(
    conn: Connection, principal: Principal, case_id: int, *, lock: bool = False
) -> dict[str, Any]:
    """The case row if the principal may see it; otherwise 404, never 403, so ids outside
    one's jurisdiction do not even reveal that they exist.

    ``status`` is the status now (``case_status()``: a parked case whose review moment has
    passed is back in the status it left), ``stored_status`` the column as written;
    ``extension_pending`` is true while an extension request waits for its decision."""
    require_case_reader(principal)
    cond, params = case_filter(principal, "c")
    row = (
        conn.execute(
            text(
                f"""
        SELECT c.*, case_status(c) AS status_now,
               case_summary(c) AS summary, cat.deadline_hours,
               cat.name_zh AS category_zh, cat.name_en AS category_en,
               EXISTS (SELECT 1 FROM approval a
                        WHERE a.case_id = c.id AND a.district_code = c.district_code
                          AND a.state = :pending) AS extension_pending
          FROM cases c JOIN case_category cat ON cat.code = c.category_code
         WHERE c.id = :id AND {cond}
         {"FOR UPDATE OF c" if lock else ""}
        """
            ),
            {"id": case_id, "pending": ApprovalState.pending.value, **params},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no case {case_id} in your jurisdiction", case_id=case_id)
    case = dict(row)
    case["stored_status"], case["status"] = case["status"], case.pop("status_now")
    return case


def timeline(conn: Connection, principal: Principal, case_id: int) -> list[dict[str, Any]]:
    """The case's events, oldest first, as this viewer may read them (internal events only
    for dispatchers and the team: ``auth/scope.py`` event_filter). The caller has checked
    that the viewer sees the case."""
    cond, params = event_filter(principal, "e")
    return [
        dict(r)
        for r in conn.execute(
            text(
                f"""
        SELECT e.id, e.at, e.action, e.from_status, e.to_status, e.note, e.data, e.photo_ids,
               e.actor_id, u.display_name AS actor_name, u.role AS actor_role,
               k.name AS client_name
          FROM case_event e
          LEFT JOIN app_user u ON u.id = e.actor_id
          LEFT JOIN open311_client k ON k.id = e.client_id
         WHERE e.case_id = :id AND {cond} ORDER BY e.id
        """
            ),
            {"id": case_id, **params},
        ).mappings()
    ]


def photos(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            """
        SELECT id, stage, mime, width, height, bytes, uploaded_at, uploaded_by, published_at
          FROM case_photo WHERE case_id = :id ORDER BY id
        """
        ),
        {"id": case_id},
    ).mappings()
    base = f"/api/v1/cases/{case_id}/photos"
    return [
        {**r, "url": f"{base}/{r['id']}", "thumbnail_url": f"{base}/{r['id']}?thumb=true"}
        for r in rows
    ]


def get_case(conn: Connection, principal: Principal, case_id: int) -> dict[str, Any]:
    """The case with its unit chain, team, photos and timeline (as this viewer may read
    it), what the viewer may do now, the ``assignee`` ({id, display_name} or null) and, for
    dispatchers, ``team_members``: the active members of the case's team, whom ``assign``
    may name (empty for other viewers and without a team)."""
    row = visible_case(conn, principal, case_id)
    summary = row["summary"]
    team = None
    members: list[dict[str, Any]] = []
    if row["team_id"] is not None:
        team = dict(
            conn.execute(
                text("SELECT id, name, kind, unit_code, phone FROM team WHERE id = :id"),
                {"id": row["team_id"]},
            )
            .mappings()
            .one()
        )
        if principal.role in DISPATCHER:
            members = people(conn, "team_id = :v AND active", row["team_id"])
    assignee = people(conn, "id = :v", row["assignee_id"]) if row["assignee_id"] else []
    units = conn.execute(text("SELECT unit_chain(:c)"), {"c": row["unit_code"]}).scalar()
    reporter = None
    if principal.role in DISPATCHER and row["reporter_id"] is not None:
        # the reporter's contact, for dispatchers only (the case desk calls them back)
        reporter = dict(
            conn.execute(
                text("SELECT id, display_name AS name, phone FROM app_user WHERE id = :id"),
                {"id": row["reporter_id"]},
            )
            .mappings()
            .one()
        )
    return {
        **summary,
        "category_name": {"zh": row["category_zh"], "en": row["category_en"]},
        "units": units,
        "team": team,
        "assignee": assignee[0] if assignee else None,
        "team_members": members,
        "reporter": reporter,
        "photos": photos(conn, case_id),
        "timeline": timeline(conn, principal, case_id),
        "allowed_actions": allowed_actions(principal, row),
        "lock": locks.lock_of(conn, principal, case_id),
        "rating_url": (
            f"/api/v1/public/rate/{row['public_token']}"
            if row["status"] == Status.closed and row["rating"] is None and row["public_token"]
            else None
        ),
    }


def people(conn: Connection, where: str, value: Any) -> list[dict[str, Any]]:
    """Accounts as ``{id, display_name}``, by name (``where`` over app_user, ``:v``)."""
    return [
        dict(r)
        for r in conn.execute(
            text(f"SELECT id, display_name FROM app_user WHERE {where} ORDER BY display_name, id"),
            {"v": value},
        ).mappings()
    ]


@dataclass
class CaseFilters:
    status: list[str] | None = None
    category: str | None = None
    unit: str | None = None
    team_id: int | None = None
    reporter_id: int | None = None
    overdue: bool | None = None
    date_from: date | None = None
    date_to: date | None = None
    bbox: tuple[float, float, float, float] | None = None
    q: str | None = None
    ids: list[int] | None = None

    def sql(self, tz: str) -> tuple[list[str], dict[str, Any]]:
        where: list[str] = []
        p: dict[str, Any] = {"tz": tz}
        if self.status:  # the status now: a parked case past its review is back
            where.append("case_status(c) = ANY(:f_status)")
            p["f_status"] = self.status
        if self.category:
            cond, cond_params = within_sql("c.category_code", self.category)
            where.append(cond)
            p.update(cond_params)
        if self.unit:
            where.append("c.unit_code LIKE :f_unit")
            p["f_unit"] = self.unit + "%"
        if self.team_id is not None:
            where.append("c.team_id = :f_team")
            p["f_team"] = self.team_id
        if self.reporter_id is not None:
            where.append("c.reporter_id = :f_reporter")
            p["f_reporter"] = self.reporter_id
        if self.overdue is not None:
            # the one overdue rule (case_overdue, cases/report.sql)
            where.append(("" if self.overdue else "NOT ") + "case_overdue(c)")
        start = end = None
        if self.date_from:
            start = "(:f_from)::timestamp AT TIME ZONE :tz"
            where.append(f"c.reported_at >= {start}")
            p["f_from"] = self.date_from
        if self.date_to:
            end = "((:f_to)::timestamp + interval '1 day') AT TIME ZONE :tz"
            where.append(f"c.reported_at < {end}")
            p["f_to"] = self.date_to
        if start or end:
            # the month partitions of the period only (cases/partitions.py)
            where.append(partitions.period_sql("c.id", start, end))
        if self.bbox:
            where.append("c.geom && ST_MakeEnvelope(:f_x0, :f_y0, :f_x1, :f_y1, 4326)")
            p.update(zip(("f_x0", "f_y0", "f_x1", "f_y1"), self.bbox, strict=True))
        if self.q:
            where.append("(c.description LIKE :f_q OR c.case_no LIKE :f_q OR c.address LIKE :f_q)")
            p["f_q"] = f"%{self.q}%"
        if self.ids:
            where.append("c.id = ANY(:f_ids)")
            p["f_ids"] = self.ids
        return where, p


def list_cases(
    conn: Connection,
    principal: Principal,
    filters: CaseFilters,
    *,
    tz: str,
    limit: int,
    offset: int,
    order: str = "newest",
) -> dict[str, Any]:
    """A page of cases as a GeoJSON FeatureCollection, newest first."""
    require_case_reader(principal)
    scope, params = case_filter(principal, "c")
    where, fparams = filters.sql(tz)
    cond = " AND ".join([scope, *where])
    order_by = {
        "newest": "c.reported_at DESC, c.id DESC",
        "oldest": "c.reported_at, c.id",
        "deadline": "c.deadline_at NULLS LAST, c.id",
    }[order]
    row = conn.execute(
        text(
            f"""
        WITH page AS (
            SELECT c.*, case_summary(c) AS summary, ST_AsGeoJSON(c.geom, 7) AS gj
              FROM cases c WHERE {cond} ORDER BY {order_by} LIMIT :limit OFFSET :offset)
        SELECT (SELECT count(*) FROM cases c WHERE {cond}) AS matched,
               coalesce(json_agg(json_build_object(
                   'type', 'Feature', 'id', id, 'geometry', gj::json,
                   'properties', summary)), '[]'::json) AS features
          FROM page
        """
        ),
        {**params, **fparams, "limit": limit, "offset": offset},
    ).one()
    features = row.features if isinstance(row.features, list) else json.loads(row.features)
    return {
        "type": "FeatureCollection",
        "numberMatched": row.matched,
        "numberReturned": len(features),
        "features": features,
    }


def nearby_open(
    conn: Connection,
    principal: Principal,
    lon: float,
    lat: float,
    category: str | None,
    radius_m: float,
    days: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """Open cases near a point (same category if given): what a worker checks before
    reporting, to link instead of filing the same problem twice. The search is
    ``nearby_cases()`` (cases/report.sql), the one a report's possible_duplicates use;
    the nearest ``limit`` within the principal's jurisdiction, and how many there are."""
    require_case_reader(principal)
    scope, params = case_filter(principal, "c")
    rows = conn.execute(
        text(
            f"""
        SELECT near.id, near.case_no, near.status, near.category,
               left(near.description, 120) AS description, near.reported_at,
               near.distance_m, count(*) OVER () AS total
          FROM nearby_cases(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), CAST(:cat AS text),
                            :radius, :days) near
          JOIN cases c ON c.id = near.id
         WHERE {scope}
         ORDER BY near.distance_m, near.id LIMIT :limit
        """
        ),
        {
            **params,
            "lon": lon,
            "lat": lat,
            "days": days,
            "cat": category,
            "radius": radius_m,
            "limit": limit,
        },
    ).mappings()
    found = [dict(r) for r in rows]
    total = found[0]["total"] if found else 0  # the same count on every row
    return [{k: v for k, v in r.items() if k != "total"} for r in found], total
