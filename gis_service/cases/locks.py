"""The case lock (issue 15 item 4): who is working on a case at the desk, so two
dispatchers never act on it at once. The one home of the rule; the lock's routes
(cases/lock_routes.py), the case answer (cases/service.py) and every workflow action
(cases/actions.py ``apply_action``) ask here.

The rule:

* Only dispatchers (supervisors and admins, ``workflow.DISPATCHER``) take a lock, on a
  case they may see (404 outside the jurisdiction, as the case itself; 403 for other
  roles). A lock lasts ``Settings.case_lock_seconds`` (120 s by default) and is renewed by
  taking it again (the case page's heartbeat); the holder keeps its ``acquired_at``.
* A lock whose ``expires_at`` has passed is free: nothing sweeps old rows (the next taker
  overwrites it, the answers show it as free).
* While another dispatcher holds it, taking it answers 409 ``case_locked`` naming the
  holder and until when; an admin may take it over (``take_over``); the answer then names
  whom it was taken from (``taken_over_from``). A take-over is not a timeline event: the
  lock is working state, not a fact about the case, and whatever the admin then does is
  on the timeline under their name.
* Releasing: the holder, or an admin; a free lock releases as a no-op.
* Workflow actions by a dispatcher on a case another dispatcher holds are refused with
  the same 409 (:func:`refuse_if_held`); team members and grid workers acting from the
  phone are never blocked — the lock coordinates the desk, not the field.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import require_role
from gis_service.cases import service
from gis_service.cases.workflow import DISPATCHER
from gis_service.errors import CaseLocked
from gis_service.settings import Settings

#: the lock's row with its holder's name, over ``case_lock l``
_HOLDER = """
SELECT l.case_id, l.user_id, coalesce(nullif(u.display_name, ''), u.username) AS name,
       l.acquired_at, l.expires_at
  FROM case_lock l JOIN app_user u ON u.id = l.user_id
"""


def _answer(case_id: int, row: Any, principal: Principal) -> dict[str, Any]:
    """``{case_id, holder: {user_id, name} | None, acquired_at, expires_at, mine}``."""
    if row is None:
        return {
            "case_id": case_id,
            "holder": None,
            "acquired_at": None,
            "expires_at": None,
            "mine": False,
        }
    return {
        "case_id": case_id,
        "holder": {"user_id": row["user_id"], "name": row["name"]},
        "acquired_at": row["acquired_at"],
        "expires_at": row["expires_at"],
        "mine": row["user_id"] == principal.user_id,
    }


def current(conn: Connection, case_id: int) -> dict[str, Any] | None:
    """The live lock of ``case_id`` (its row with the holder's ``name``), or None when free
    or expired. No scope check: callers have already read the case."""
    row = (
        conn.execute(
            text(_HOLDER + " WHERE l.case_id = :id AND l.expires_at > now()"), {"id": case_id}
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def state(conn: Connection, principal: Principal, case_id: int) -> dict[str, Any]:
    """``GET …/lock``: the lock as the case's readers see it (holder None when free or
    expired); 404 outside the jurisdiction."""
    service.visible_case(conn, principal, case_id)
    return _answer(case_id, current(conn, case_id), principal)


def lock_of(conn: Connection, principal: Principal, case_id: int) -> dict[str, Any] | None:
    """The case answer's ``lock``: the same shape as :func:`state`, None when free."""
    row = current(conn, case_id)
    return None if row is None else _answer(case_id, row, principal)


def _refusal(case_no: str, row: dict[str, Any]) -> CaseLocked:
    return CaseLocked(
        f"case {case_no} is being worked on by {row['name']} until "
        f"{row['expires_at'].isoformat(timespec='seconds')}",
        holder={"user_id": row["user_id"], "name": row["name"]},
        expires_at=row["expires_at"].isoformat(),
    )


def acquire(
    conn: Connection,
    principal: Principal,
    case_id: int,
    settings: Settings,
    *,
    take_over: bool = False,
) -> dict[str, Any]:
    """Take or renew the lock for ``Settings.case_lock_seconds``: the lock's answer
    (``mine`` true) plus ``taken_over_from`` ({user_id, name}) when an admin took it from
    another dispatcher. 403 for roles other than dispatchers, and for ``take_over`` by a
    supervisor; 404 outside the jurisdiction; 409 ``case_locked`` while another holds it."""
    require_role(principal, *sorted(DISPATCHER), what="a case lock")
    if take_over:
        require_role(principal, Role.admin, what="taking over a case lock")
    case = service.visible_case(conn, principal, case_id)
    before = current(conn, case_id)
    row = (
        conn.execute(
            text(
                """
        INSERT INTO case_lock AS l (district_code, case_id, user_id, acquired_at, expires_at)
        SELECT c.district_code, c.id, :user, now(), now() + make_interval(secs => :secs)
          FROM cases c WHERE c.id = :id
        ON CONFLICT (case_id, district_code) DO UPDATE SET
            user_id = EXCLUDED.user_id,
            acquired_at = CASE WHEN l.user_id = EXCLUDED.user_id AND l.expires_at > now()
                               THEN l.acquired_at ELSE now() END,
            expires_at = EXCLUDED.expires_at
        WHERE l.user_id = EXCLUDED.user_id OR l.expires_at <= now() OR :take_over
        RETURNING l.case_id
        """
            ),
            {
                "id": case_id,
                "user": principal.user_id,
                "secs": settings.case_lock_seconds,
                "take_over": take_over,
            },
        )
        .mappings()
        .first()
    )
    if row is None:  # held by another, live, and not taken over
        held = current(conn, case_id)
        if held is not None:
            raise _refusal(case["case_no"], held)
    answer = _answer(case_id, current(conn, case_id), principal)
    if before is not None and before["user_id"] != principal.user_id:
        answer["taken_over_from"] = {"user_id": before["user_id"], "name": before["name"]}
    return answer


def release(conn: Connection, principal: Principal, case_id: int) -> dict[str, Any]:
    """Give the lock up: the holder, or an admin. The answer: the lock now (free). 404
    outside the jurisdiction; 409 ``case_locked`` when another dispatcher holds it and
    the caller is not an admin; 403 for roles other than dispatchers."""
    require_role(principal, *sorted(DISPATCHER), what="a case lock")
    case = service.visible_case(conn, principal, case_id)
    held = current(conn, case_id)
    mine = held is None or held["user_id"] == principal.user_id
    if not mine and principal.role is not Role.admin:
        raise _refusal(case["case_no"], held)
    conn.execute(text("DELETE FROM case_lock WHERE case_id = :id"), {"id": case_id})
    return _answer(case_id, None, principal)


def refuse_if_held(conn: Connection, principal: Principal, case: dict[str, Any]) -> None:
    """409 ``case_locked`` when a dispatcher acts on a case another dispatcher holds;
    anyone else (team members, grid workers on the phone) is never blocked. ``case`` is
    the row ``visible_case`` read (``id``, ``case_no``)."""
    if principal.role not in DISPATCHER:
        return
    held = current(conn, case["id"])
    if held is not None and held["user_id"] != principal.user_id:
        raise _refusal(case["case_no"], held)
