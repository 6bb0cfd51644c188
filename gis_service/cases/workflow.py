"""The closed loop as data: which action moves a case from which status, and who may.

This module is the home of the loop's vocabulary (statuses, actions, priorities): SQL,
statistics, exports and the phone read them from here through gis_service/vocabulary.py.

    reported ─accept→ accepted ─dispatch→ dispatched ─start→ in_progress ─handle→ handled
        │reject                 ↑      ↑                │return (退回)          │verify
        ↓                       └──────┴── return ──────┘        fail (返工) ←──┤
    rejected                                                          pass → closed ─rate→

escalate (上报) moves the handling level up one step and hands the case back to the
dispatcher of that level; comment adds a note to the timeline at any open step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gis_service.auth.principal import Principal, Role
from gis_service.units.codes import HANDLING_LEVELS, Level, parent_level


class Status(StrEnum):
    """Where a case stands in the loop (this order: the loop's order, then the ends)."""

    reported = "reported"
    accepted = "accepted"
    dispatched = "dispatched"
    in_progress = "in_progress"
    handled = "handled"
    closed = "closed"
    rejected = "rejected"
    duplicate = "duplicate"


STATUSES: tuple[Status, ...] = tuple(Status)
# Still being worked on: the duplicate search, "overdue" and Open311's "open".
OPEN_STATUSES: tuple[Status, ...] = (
    Status.reported,
    Status.accepted,
    Status.dispatched,
    Status.in_progress,
    Status.handled,
)
OPEN = frozenset(OPEN_STATUSES)
CLOSED_STATUSES: tuple[Status, ...] = tuple(s for s in STATUSES if s not in OPEN)
# Accepted and not yet closed: the deadline runs (it starts at acceptance).
DEADLINE_STATUSES: tuple[Status, ...] = tuple(s for s in OPEN_STATUSES if s is not Status.reported)
STATUS_LABELS: dict[Status, tuple[str, str]] = {
    Status.reported: ("已上报", "Reported"),
    Status.accepted: ("已立案", "Accepted"),
    Status.dispatched: ("已派遣", "Dispatched"),
    Status.in_progress: ("处置中", "In progress"),
    Status.handled: ("已处置", "Handled"),
    Status.closed: ("已结案", "Closed"),
    Status.rejected: ("不予立案", "Rejected"),
    Status.duplicate: ("重复", "Duplicate"),
}


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


PRIORITIES: tuple[Priority, ...] = tuple(Priority)


class Action(StrEnum):
    accept = "accept"
    reject = "reject"
    dispatch = "dispatch"
    start = "start"
    handle = "handle"
    verify = "verify"
    rate = "rate"
    escalate = "escalate"
    return_ = "return"
    comment = "comment"


ACTIONS: tuple[Action, ...] = tuple(Action)
# Timeline events that are not workflow actions: the report itself and a later report
# linked to the case as its duplicate.
EVENTS: tuple[str, ...] = ("report", "link", *ACTIONS)


# Who may act: "dispatcher" = supervisors and admins; "team" = members of the team the
# case is dispatched to; "reporter" = grid workers whose grid holds the case (the reporter
# or whoever walks that grid now).
DISPATCHER = frozenset({Role.supervisor, Role.admin})


@dataclass(frozen=True)
class Step:
    sources: frozenset[str]
    target: str | None  # None: the status does not change (or depends on the input)
    dispatcher: bool = True
    team: bool = False
    reporter: bool = False
    note_required: bool = False


S = Status
STEPS: dict[Action, Step] = {
    Action.accept: Step(frozenset({S.reported}), S.accepted),
    Action.reject: Step(frozenset({S.reported}), S.rejected, note_required=True),
    Action.dispatch: Step(frozenset({S.accepted}), S.dispatched),
    Action.start: Step(frozenset({S.dispatched}), S.in_progress, team=True),
    Action.handle: Step(frozenset({S.in_progress}), S.handled, team=True, note_required=True),
    Action.verify: Step(frozenset({S.handled}), None, reporter=True),
    Action.rate: Step(frozenset({S.closed}), None, reporter=True),
    Action.escalate: Step(
        OPEN - {S.handled},
        None,
        team=True,
        reporter=True,
        note_required=True,
    ),
    Action.return_: Step(
        frozenset({S.dispatched, S.in_progress}), S.accepted, team=True, note_required=True
    ),
    Action.comment: Step(OPEN, None, team=True, reporter=True),
}
# Escalation (上报) moves the handling level one step up the unit hierarchy.
NEXT_LEVEL: dict[str, Level] = {
    lvl.value: up for lvl in HANDLING_LEVELS if (up := parent_level(lvl)) is not None
}


def may_act(step: Step, principal: Principal, case: dict) -> bool:
    if step.dispatcher and principal.role in DISPATCHER:
        return True
    if step.team and principal.role is Role.team_member:
        return case["team_id"] is not None and case["team_id"] == principal.team_id
    return step.reporter and principal.role is Role.grid_worker


def state_allows(action: Action, case: dict) -> bool:
    step = STEPS[action]
    if case["status"] not in step.sources:
        return False
    if action is Action.rate:
        return case["rating"] is None
    if action is Action.escalate:
        return case["handling_level"] in NEXT_LEVEL
    return True


def allowed_actions(principal: Principal, case: dict) -> list[str]:
    """What this principal may do to this case now (the 409 answer and the UI's buttons)."""
    return [
        a.value
        for a, step in STEPS.items()
        if state_allows(a, case) and may_act(step, principal, case)
    ]
