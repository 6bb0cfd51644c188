"""Requests that wait for the level above — deadline extensions (延期) — and the
approval inbox: who decides, the clock on each request, delegation and batch decisions.

Rules and their sources:

* Who decides (GB/T 30428 dispatch-seat practice: an extension is approved by the level
  above the one handling the case): a supervisor whose scope holds the case's unit at
  the level above its handling level, or an admin — the jurisdiction rule in
  gis_service/auth/scope.py (``approval_filter``); never the person who asked (four
  eyes).
* The clock: a request is due ``Settings.approval_due_hours`` (default 24) after it was
  made; the inbox lists the earliest due first and marks those past due.
* Delegation: an approver hands their approvals to another supervisor (or admin) for a
  period; during it the delegate sees and decides them, recorded as on behalf of the
  approver. The approver keeps their own inbox.
* Batches: many requests decided at once; each gets its own timeline event on its case;
  a request that cannot be decided is listed with its reason and the rest are applied
  (each in a savepoint of one transaction).
* Approval moves the deadline by the hours asked; the first extension keeps the original
  deadline (``cases.original_deadline_at``) so on-time figures count extended cases
  apart (stats/resolution.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from gis_service.auth import sessions
from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import approval_filter, require_role
from gis_service.cases.workflow import (
    DECISION_EVENT,
    DECISION_STATE,
    NEXT_LEVEL,
    OPEN_STATUSES,
    ApprovalKind,
    ApprovalState,
    Decision,
)
from gis_service.errors import Conflict, Forbidden, GisServiceError, InvalidInput, NotFound
from gis_service.settings import Settings
from gis_service.units.codes import CODE_LENGTH

APPROVERS = (Role.supervisor, Role.admin)
#: the longest delegation (days)
MAX_DELEGATION_DAYS = 92
#: the most requests one batch may decide
MAX_BATCH = 500


class DecisionRequest(BaseModel):
    """POST /api/v1/approvals/decisions: one decision for many requests."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ids: list[int] = Field(min_length=1, max_length=MAX_BATCH, description="Approval ids")
    decision: Decision
    note: str | None = Field(default=None, max_length=2000, description="Required to refuse")


class DelegationRequest(BaseModel):
    """POST /api/v1/approvals/delegations: hand my approvals to another supervisor."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    delegate_id: int = Field(gt=0, description="The supervisor (or admin) who decides for me")
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now")
    ends_at: AwareDatetime
    note: str | None = Field(default=None, max_length=500)


def approver_unit(case: dict[str, Any]) -> str | None:
    """The case's unit at the level above its handling level (None at district level:
    admins decide)."""
    level = NEXT_LEVEL.get(case["handling_level"])
    return None if level is None else case["unit_code"][: CODE_LENGTH[level]]


def request_extension(
    conn: Connection,
    principal: Principal,
    case: dict[str, Any],
    hours: int,
    reason: str,
    photo_ids: list[int],
    settings: Settings,
) -> dict[str, Any]:
    """Store a pending extension request for a locked case (the extend action,
    cases/actions.py, has checked state, role and note). Returns {id, due_by}."""
    return dict(
        conn.execute(
            text(
                """
        INSERT INTO approval (district_code, case_id, kind, approver_unit, requested_by,
                              due_by, reason, photo_ids, hours)
        SELECT c.district_code, c.id, :kind, :unit, :by,
               now() + make_interval(secs => :due_s), :reason, :photos, :hours
          FROM cases c WHERE c.id = :case
        RETURNING id, due_by
        """
            ),
            {
                "case": case["id"],
                "kind": ApprovalKind.extension.value,
                "unit": approver_unit(case),
                "by": principal.user_id,
                "due_s": settings.approval_due_hours * 3600,
                "reason": reason,
                "photos": photo_ids,
                "hours": hours,
            },
        )
        .mappings()
        .one()
    )


def _deciding(conn: Connection, principal: Principal) -> tuple[str, str, dict[str, Any]]:
    """(SQL true for the approvals the viewer decides — own right or a delegation in
    force —, SQL giving the delegator's id (NULL in own right), parameters)."""
    own, params = approval_filter(principal, "a", "appr")
    terms, behalf = [own], [f"WHEN {own} THEN NULL"]
    if principal.user_id is not None:
        rows = conn.execute(
            text(
                """
            SELECT DISTINCT u.id, u.role, u.scopes, u.username
              FROM approval_delegation d JOIN app_user u ON u.id = d.delegator_id
             WHERE d.delegate_id = :me AND d.revoked_at IS NULL AND u.active
               AND d.starts_at <= now() AND now() < d.ends_at
             ORDER BY u.id
            """
            ),
            {"me": principal.user_id},
        ).mappings()
        for i, u in enumerate(rows):
            delegator = Principal(
                role=Role(u["role"]),
                user_id=u["id"],
                username=u["username"],
                scopes=tuple(u["scopes"]),
            )
            cond, p = approval_filter(delegator, "a", f"dlg{i}")
            terms.append(cond)
            behalf.append(f"WHEN {cond} THEN {int(u['id'])}")
            params.update(p)
    return "(" + " OR ".join(terms) + ")", f"CASE {' '.join(behalf)} END", params


INBOX_SQL = """
    SELECT a.id, a.kind, a.state, a.case_id, c.case_no, c.category_code AS category,
           c.unit_code, c.handling_level, case_status(c) AS case_status, c.team_id,
           a.approver_unit, a.requested_by, ru.display_name AS requested_by_name,
           a.requested_at, a.due_by, a.due_by < now() AS past_due,
           round(extract(epoch FROM a.due_by - now()) / 3600.0, 2)::float AS hours_left,
           a.reason, a.photo_ids, a.hours, c.deadline_at,
           c.deadline_at + make_interval(hours => a.hours) AS proposed_deadline_at,
           c.original_deadline_at, c.extension_count,
           a.decided_by, a.decided_at, a.decision_note, a.on_behalf_of AS decided_on_behalf_of,
           {behalf} AS on_behalf_of
      FROM approval a
      JOIN cases c ON c.id = a.case_id AND c.district_code = a.district_code
      LEFT JOIN app_user ru ON ru.id = a.requested_by
"""


def inbox(
    conn: Connection,
    principal: Principal,
    *,
    state: ApprovalState = ApprovalState.pending,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """GET /api/v1/approvals: ``{"approvals": [...], "total"}``, earliest due first.

    Pending: the requests waiting for this viewer's decision (own right or delegation;
    not those they asked for themselves; only while the case is open). Approved or
    refused: those the viewer could decide, most recent first. 403 for roles that never
    approve."""
    require_role(principal, *APPROVERS, what="the approval inbox")
    cond, behalf, params = _deciding(conn, principal)
    where = [cond, "a.state = :state"]
    order = "a.due_by, a.id"
    if state is ApprovalState.pending:
        where += [
            "a.requested_by IS DISTINCT FROM :me",
            "case_status(c) = ANY(CAST(:open AS text[]))",
        ]
        params.update(me=principal.user_id, open=list(OPEN_STATUSES))
    else:
        order = "a.decided_at DESC, a.id DESC"
    rows = conn.execute(
        text(
            INBOX_SQL.format(behalf=behalf)
            + f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT :limit OFFSET :offset"
        ),
        {**params, "state": state.value, "limit": limit, "offset": offset},
    ).mappings()
    found = [dict(r) for r in rows]
    total = conn.execute(
        text(
            "SELECT count(*) FROM approval a "
            "JOIN cases c ON c.id = a.case_id AND c.district_code = a.district_code "
            f"WHERE {' AND '.join(where)}"
        ),
        {**params, "state": state.value},
    ).scalar_one()
    return {"approvals": found, "total": total}


def decide(conn: Connection, principal: Principal, req: DecisionRequest) -> dict[str, Any]:
    """Decide many requests at once: ``{"decision", "applied": [...], "failed": [{id,
    error, detail}]}``. Each id is decided in a savepoint: a refusal of one (not in the
    inbox, already decided, asked by the decider, case no longer open) leaves the others
    applied. 422 when refusing without a note; 403 for roles that never approve."""
    require_role(principal, *APPROVERS, what="deciding approvals")
    sessions.check_sync(conn, principal)  # a write re-checks its session
    if req.decision is Decision.refuse and not req.note:
        raise InvalidInput("refusing needs a note saying why", field="note")
    cond, behalf, params = _deciding(conn, principal)
    applied: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for approval_id in dict.fromkeys(req.ids):
        try:
            with conn.begin_nested():
                applied.append(_decide_one(conn, principal, approval_id, req, cond, behalf, params))
        except GisServiceError as exc:
            failed.append({"id": approval_id, "error": exc.code, "detail": exc.message})
    return {"decision": req.decision.value, "applied": applied, "failed": failed}


def _decide_one(
    conn: Connection,
    principal: Principal,
    approval_id: int,
    req: DecisionRequest,
    cond: str,
    behalf: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    from gis_service.cases.actions import append_event

    row = (
        conn.execute(
            text(
                f"""
        SELECT a.id, a.state, a.case_id, a.requested_by, a.hours, c.case_no,
               case_status(c) AS case_status, {behalf} AS on_behalf_of
          FROM approval a
          JOIN cases c ON c.id = a.case_id AND c.district_code = a.district_code
         WHERE a.id = :id AND {cond}
           FOR UPDATE OF a, c
        """
            ),
            {**params, "id": approval_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no approval {approval_id} for you to decide")
    if row["state"] != ApprovalState.pending:
        raise Conflict(f"approval {approval_id} is already {row['state']}")
    if row["requested_by"] is not None and row["requested_by"] == principal.user_id:
        raise Forbidden(f"you asked for approval {approval_id}: another approver decides it")
    if row["case_status"] not in OPEN_STATUSES:
        raise Conflict(f"case {row['case_no']} is {row['case_status']}: nothing to extend")
    data: dict[str, Any] = {"approval_id": approval_id, "extension_hours": row["hours"]}
    if row["on_behalf_of"] is not None:
        data["on_behalf_of"] = row["on_behalf_of"]
    deadline = None
    if req.decision is Decision.approve:
        moved = conn.execute(
            text(
                """
            UPDATE cases SET original_deadline_at = coalesce(original_deadline_at, deadline_at),
                             deadline_at = deadline_at + make_interval(hours => :hours),
                             extension_count = extension_count + 1
             WHERE id = :case
         RETURNING deadline_at - make_interval(hours => :hours) AS was, deadline_at
            """
            ),
            {"case": row["case_id"], "hours": row["hours"]},
        ).one()
        deadline = moved.deadline_at
        data.update(from_deadline=moved.was.isoformat(), to_deadline=deadline.isoformat())
    event = append_event(
        conn,
        principal,
        row["case_id"],
        DECISION_EVENT[req.decision],
        row["case_status"],
        row["case_status"],
        note=req.note,
        data=data,
    )
    conn.execute(
        text(
            """
        UPDATE approval SET state = :state, decided_by = :me, decided_at = now(),
                            decision_note = :note, on_behalf_of = :behalf
         WHERE id = :id
        """
        ),
        {
            "state": DECISION_STATE[req.decision].value,
            "me": principal.user_id,
            "note": req.note,
            "behalf": row["on_behalf_of"],
            "id": approval_id,
        },
    )
    return {
        "id": approval_id,
        "case_id": row["case_id"],
        "case_no": row["case_no"],
        "state": DECISION_STATE[req.decision].value,
        "event_id": event["id"],
        "deadline_at": deadline,
        "on_behalf_of": row["on_behalf_of"],
    }


DELEGATION_SQL = """
    SELECT d.id, d.delegator_id, fu.display_name AS delegator_name, d.delegate_id,
           tu.display_name AS delegate_name, d.starts_at, d.ends_at, d.note, d.created_at,
           d.revoked_at, (d.revoked_at IS NULL AND d.starts_at <= now() AND now() < d.ends_at)
               AS in_force
      FROM approval_delegation d
      JOIN app_user fu ON fu.id = d.delegator_id
      JOIN app_user tu ON tu.id = d.delegate_id
"""


def delegate(conn: Connection, principal: Principal, req: DelegationRequest) -> dict[str, Any]:
    """Hand my approvals to another supervisor or admin from ``starts_at`` (default now)
    until ``ends_at`` (at most MAX_DELEGATION_DAYS). 422 naming the field for a delegate
    who is not an active supervisor or admin, myself, or a period that is empty, past
    or too long; 403 for roles that never approve."""
    require_role(principal, *APPROVERS, what="delegating approvals")
    sessions.check_sync(conn, principal)  # a write re-checks its session
    if req.delegate_id == principal.user_id:
        raise InvalidInput("you cannot delegate to yourself", field="delegate_id")
    target = conn.execute(
        text("SELECT role, active FROM app_user WHERE id = :id"), {"id": req.delegate_id}
    ).first()
    if target is None or not target.active or target.role not in APPROVERS:
        raise InvalidInput(
            f"user {req.delegate_id} is not an active supervisor or admin", field="delegate_id"
        )
    now = conn.execute(text("SELECT now()")).scalar_one()
    starts = req.starts_at or now
    if req.ends_at <= max(starts, now):
        raise InvalidInput("ends_at must be after starts_at and in the future", field="ends_at")
    if req.ends_at - starts > timedelta(days=MAX_DELEGATION_DAYS):
        raise InvalidInput(
            f"a delegation lasts at most {MAX_DELEGATION_DAYS} days", field="ends_at"
        )
    new_id = conn.execute(
        text(
            """
        INSERT INTO approval_delegation (delegator_id, delegate_id, starts_at, ends_at, note)
        VALUES (:me, :to, :starts, :ends, :note) RETURNING id
        """
        ),
        {
            "me": principal.user_id,
            "to": req.delegate_id,
            "starts": starts,
            "ends": req.ends_at,
            "note": req.note,
        },
    ).scalar_one()
    return _delegation(conn, new_id)


def _delegation(conn: Connection, delegation_id: int) -> dict[str, Any]:
    return dict(
        conn.execute(text(DELEGATION_SQL + " WHERE d.id = :id"), {"id": delegation_id})
        .mappings()
        .one()
    )


def delegations(conn: Connection, principal: Principal) -> dict[str, Any]:
    """``{"given": [...], "received": [...]}``: my delegations not revoked and not yet
    over, soonest first."""
    require_role(principal, *APPROVERS, what="delegations")
    out: dict[str, Any] = {}
    for key, column in (("given", "delegator_id"), ("received", "delegate_id")):
        out[key] = [
            dict(r)
            for r in conn.execute(
                text(
                    DELEGATION_SQL + f" WHERE d.{column} = :me AND d.revoked_at IS NULL "
                    "AND d.ends_at > now() ORDER BY d.starts_at, d.id"
                ),
                {"me": principal.user_id},
            ).mappings()
        ]
    return out


def revoke(conn: Connection, principal: Principal, delegation_id: int) -> dict[str, Any]:
    """End a delegation now (its delegator or an admin); 404 for anyone else's."""
    require_role(principal, *APPROVERS, what="delegations")
    done = conn.execute(
        text(
            "UPDATE approval_delegation SET revoked_at = now() WHERE id = :id "
            "AND revoked_at IS NULL AND (delegator_id = :me OR :admin)"
        ),
        {"id": delegation_id, "me": principal.user_id, "admin": principal.role is Role.admin},
    ).rowcount
    if not done:
        raise NotFound(f"no delegation {delegation_id} of yours in force")
    return _delegation(conn, delegation_id)
