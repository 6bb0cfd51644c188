"""Which event notifies whom: the fan-out rules, in one place (issue 16 item 1).

A case event (a ``case_event`` row, through the outbox) or a deadline reminder (the
scheduler's ``notify_reminder`` row) becomes zero or more (kind, audience) pairs
(:func:`event_kinds`, :func:`reminder_audiences`); an audience becomes accounts
(:func:`recipients`). The actions and statuses are cases/workflow.py's; "in scope" is
auth/scope.py's ``covers_unit``:

==============  ==============================  =============================================
kind            raised by                       who hears (active accounts, never the actor)
==============  ==============================  =============================================
new_case        ``report`` (a new case)         supervisors whose scope covers the case's unit
dispatched      ``dispatch``                    the members of the team it went to
returned        ``return`` (回退)               supervisors covering the case's unit (they
                                                dispatch it again)
returned        ``verify`` failed (返工)        the case's assignee, else its team's members
escalated       ``escalate`` (上报)             supervisors covering the case's unit at the
                                                level it was escalated to
awaiting_check  ``handle``                      grid workers covering the case's unit (who
                                                verify, workflow.STEPS verify reporter=True)
near_deadline   the scheduler: a share          the case's assignee, else its team's members
                (``notify_reminder_shares``)
                of the deadline's span elapsed
overdue         the scheduler: ``case_overdue`` the assignee/team and the supervisors
rated_badly     ``rate`` (also the resident's   the supervisors and the case's team
                link) with score ≤
                ``notify_bad_rating_max``
==============  ==============================  =============================================

Admins are not told of single cases (they see everything; their inbox would be the whole
district's): they read the desk and the dead-letter list. Urgency: :func:`is_urgent`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import covers_unit
from gis_service.cases.workflow import Action
from gis_service.notify.kinds import URGENT_KINDS, URGENT_PRIORITY, Kind
from gis_service.settings import Settings
from gis_service.units.codes import CODE_LENGTH, Level

#: the timeline event of a new report (cases/report.sql; workflow.EVENTS)
REPORT_EVENT = "report"


class Audience(StrEnum):
    """Who a (kind, audience) pair reaches; resolved by :func:`recipients`."""

    dispatchers = "dispatchers"  # supervisors covering the case's unit
    escalation = "escalation"  # supervisors covering the unit at the escalated level
    team = "team"  # the team the event names (dispatch) or the case's team
    worker = "worker"  # the case's assignee, else its team's members
    checkers = "checkers"  # grid workers covering the case's unit


@dataclass(frozen=True)
class Account:
    """An account that may be notified, as the rules and the channels need it."""

    id: int
    principal: Principal
    email: str | None
    phone: str | None


def event_kinds(event: dict[str, Any], settings: Settings) -> list[tuple[Kind, Audience]]:
    """The (kind, audience) pairs a timeline event raises (see the module's table).

    ``event``: a ``case_event`` row as a mapping (``action``, ``data``)."""
    action, data = event["action"], event.get("data") or {}
    if action == REPORT_EVENT:
        return [(Kind.new_case, Audience.dispatchers)]
    if action == Action.dispatch:
        return [(Kind.dispatched, Audience.team)]
    if action == Action.return_:
        return [(Kind.returned, Audience.dispatchers)]
    if action == Action.verify and data.get("passed") is False:
        return [(Kind.returned, Audience.worker)]
    if action == Action.escalate:
        return [(Kind.escalated, Audience.escalation)]
    if action == Action.handle:
        return [(Kind.awaiting_check, Audience.checkers)]
    if action == Action.rate:
        score = data.get("score")
        if isinstance(score, int) and score <= settings.notify_bad_rating_max:
            return [(Kind.rated_badly, Audience.dispatchers), (Kind.rated_badly, Audience.team)]
    return []


def reminder_audiences(kind: Kind) -> list[Audience]:
    """Who a deadline reminder of ``kind`` reaches (see the module's table)."""
    if kind is Kind.near_deadline:
        return [Audience.worker]
    if kind is Kind.overdue:
        return [Audience.worker, Audience.dispatchers]
    raise ValueError(f"{kind} is not a reminder kind")


def reminder_shares(settings: Settings) -> tuple[float, ...]:
    """The shares of a deadline's span after which a near-deadline reminder is due:
    ``notify_reminder_shares``, else ``1 - desk_near_deadline_share`` (the desk's 临期)."""
    shares = settings.notify_reminder_shares or (1 - settings.desk_near_deadline_share,)
    return tuple(sorted({round(float(s), 3) for s in shares if 0 < s < 1}))


def is_urgent(kind: Kind, case: dict[str, Any]) -> bool:
    """Urgent (quiet hours do not hold it): the case's priority is the urgent one, or the
    kind is one of :data:`kinds.URGENT_KINDS` (overdue, escalated)."""
    return kind in URGENT_KINDS or case.get("priority") == URGENT_PRIORITY


def recipients(
    accounts: Iterable[Account],
    audience: Audience,
    case: dict[str, Any],
    event: dict[str, Any] | None,
) -> list[Account]:
    """The accounts of ``audience`` for this case (and event), without its actor.

    ``accounts``: the active accounts that may be notified (:func:`load_accounts`);
    ``case``: ``unit_code``, ``team_id``, ``assignee_id``; ``event``: the timeline event
    (``actor_id``, ``data``) or None for a reminder."""
    data = (event or {}).get("data") or {}
    actor = (event or {}).get("actor_id")
    unit = case["unit_code"]
    if audience is Audience.dispatchers:
        chosen = [
            a for a in accounts if _role(a, Role.supervisor) and covers_unit(a.principal, unit)
        ]
    elif audience is Audience.escalation:
        level = data.get("to_level") or case["handling_level"]
        target = unit[: CODE_LENGTH[Level(level)]]
        chosen = [
            a for a in accounts if _role(a, Role.supervisor) and covers_unit(a.principal, target)
        ]
    elif audience is Audience.team:
        team = data.get("team_id") or case.get("team_id")
        chosen = [a for a in accounts if _member(a, team)]
    elif audience is Audience.worker:
        assignee = case.get("assignee_id")
        chosen = [a for a in accounts if a.id == assignee] if assignee else []
        chosen = chosen or [a for a in accounts if _member(a, case.get("team_id"))]
    elif audience is Audience.checkers:
        chosen = [
            a for a in accounts if _role(a, Role.grid_worker) and covers_unit(a.principal, unit)
        ]
    else:  # pragma: no cover - Audience is closed
        raise ValueError(audience)
    return [a for a in chosen if a.id != actor]


def _role(a: Account, role: Role) -> bool:
    return a.principal.role is role


def _member(a: Account, team_id: int | None) -> bool:
    return (
        team_id is not None
        and a.principal.role is Role.team_member
        and (a.principal.team_id == team_id)
    )


def load_accounts(conn: Connection) -> list[Account]:
    """The active accounts the rules choose from (supervisors, grid workers, team
    members: the roles some audience names)."""
    rows = conn.execute(
        text(
            "SELECT id, role, username, scopes, team_id, email, phone FROM app_user "
            "WHERE active AND role = ANY(CAST(:roles AS text[]))"
        ),
        {"roles": [Role.supervisor.value, Role.grid_worker.value, Role.team_member.value]},
    ).mappings()
    return [
        Account(
            id=r["id"],
            principal=Principal(
                role=Role(r["role"]),
                user_id=r["id"],
                username=r["username"],
                scopes=tuple(r["scopes"] or ()),
                team_id=r["team_id"],
            ),
            email=r["email"],
            phone=r["phone"],
        )
        for r in rows
    ]
