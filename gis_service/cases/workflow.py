"""The closed loop as data: which action moves a case from which status, and who may.

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


# The statuses of a case still being worked on (the SQL in migration 0002 repeats them).
OPEN_STATUSES = ("reported", "accepted", "dispatched", "in_progress", "handled")
OPEN = frozenset(OPEN_STATUSES)
STEPS: dict[Action, Step] = {
    Action.accept: Step(frozenset({"reported"}), "accepted"),
    Action.reject: Step(frozenset({"reported"}), "rejected", note_required=True),
    Action.dispatch: Step(frozenset({"accepted"}), "dispatched"),
    Action.start: Step(frozenset({"dispatched"}), "in_progress", team=True),
    Action.handle: Step(frozenset({"in_progress"}), "handled", team=True, note_required=True),
    Action.verify: Step(frozenset({"handled"}), None, reporter=True),
    Action.rate: Step(frozenset({"closed"}), None, reporter=True),
    Action.escalate: Step(
        frozenset({"reported", "accepted", "dispatched", "in_progress"}),
        None,
        team=True,
        reporter=True,
        note_required=True,
    ),
    Action.return_: Step(
        frozenset({"dispatched", "in_progress"}), "accepted", team=True, note_required=True
    ),
    Action.comment: Step(OPEN, None, team=True, reporter=True),
}
NEXT_LEVEL = {"grid": "community", "community": "subdistrict", "subdistrict": "district"}


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
