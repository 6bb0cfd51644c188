"""The closed loop as data: which action moves a case from which status, and who may.

This module is the home of the loop's vocabulary (statuses, actions, priorities, approval
kinds and states): SQL, statistics, exports and the phone read them from here through
gis_service/vocabulary.py.

    reported ─accept→ accepted ─dispatch→ dispatched ─start→ in_progress ─handle→ handled
        │reject          ↑  │ ↑      ↑                │return (回退)          │verify
        ↓                │  │ └──────┴── return ──────┘        fail (返工) ←──┤
    rejected             │  │                                      pass → closed ─rate→
                         │  │park (挂账; also from dispatched, in_progress)
                  resume │  ↓
                 (恢复,   parked ── its review date passes: back to the status it left
                 or the         (read time: case_status() in cases/report.sql)
                 review date)
    any open status ─void (作废)→ voided

escalate (上报) moves the handling level up one step and hands the case back to the
dispatcher of that level; comment adds a note to the timeline at any open step.

The command-centre actions follow the dispatch seat of a digital urban-management
command centre (GB/T 30428.1-2013 "数字化城市管理信息系统 第1部分: 单元网格", and the
case-handling rules of GB/T 30428.2/.4, which name 延期, 挂账, 作废, 督办 and 回退):

* extend (申请延期): the team or the dispatcher asks for more hours, with a reason and
  evidence (note, photos); the level above decides (an approval, cases/approvals.py).
  Approval moves the deadline; statistics count the case as extended (on time within
  the original deadline, or only within the extended one).
* park (挂账): a case that cannot be solved now leaves the deadline count until a review
  date; on that date it returns to the status it left, evaluated when read, so no
  scheduler is needed (the next action on the case writes the return on its timeline).
  resume (恢复) brings it back earlier.
* void (作废): a dispatcher ends a case with a reason; a closed end state.
* urge (督办): a dispatcher urges the team; the team answers with reply (督办回复).
  Counted per case (urges, replied).
* return (回退): the team gives the case back with a reason; the dispatcher's next step
  is to dispatch it again, and the reason stays on the case (its ``returned`` member).

The desk's case actions (issue 15 item 4; docs/cases.md "Desk actions"):

* assign (指派): a dispatcher names the member of the case's team who does the work
  (``assignee_id``); a dispatch to a team the assignee is not a member of clears it.
* recategorize (改类): a dispatcher corrects the category, with a reason. The deadline
  follows the new category's hours counted from acceptance (an approved extension keeps
  its hours on top), and the handling level follows the new category's unless the case
  was escalated (上报) above it.
* reprioritize: a dispatcher changes the priority, with a reason.
* note (内部备注): dispatchers and the case's team write an internal remark. Its event is
  internal (:data:`INTERNAL_EVENTS`): it never reaches Open311, the public view or the
  grid workers (the reporter side); the one filter is ``auth/scope.py`` event_filter.
* merge (合并): a dispatcher merges the case into another open case it repeats: this
  case becomes a duplicate of it and the target's timeline gets a ``link`` event, as for
  a report filed as a duplicate (``link_duplicate()``, cases/report.sql).
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
    parked = "parked"
    closed = "closed"
    rejected = "rejected"
    duplicate = "duplicate"
    voided = "voided"


STATUSES: tuple[Status, ...] = tuple(Status)
# Still being worked on: the duplicate search, "overdue" and Open311's "open".
OPEN_STATUSES: tuple[Status, ...] = (
    Status.reported,
    Status.accepted,
    Status.dispatched,
    Status.in_progress,
    Status.handled,
    Status.parked,
)
OPEN = frozenset(OPEN_STATUSES)
CLOSED_STATUSES: tuple[Status, ...] = tuple(s for s in STATUSES if s not in OPEN)
# Accepted, not yet closed and not parked: the deadline runs (it starts at acceptance);
# "overdue" counts these only. A parked case (挂账) is out of the count until its review.
DEADLINE_STATUSES: tuple[Status, ...] = tuple(
    s for s in OPEN_STATUSES if s not in (Status.reported, Status.parked)
)
# What a case may be parked from (and so return to): the statuses whose deadline runs.
PARKABLE: frozenset[Status] = frozenset(DEADLINE_STATUSES) - {Status.handled}
STATUS_LABELS: dict[Status, tuple[str, str]] = {
    Status.reported: ("已上报", "Reported"),
    Status.accepted: ("已立案", "Accepted"),
    Status.dispatched: ("已派遣", "Dispatched"),
    Status.in_progress: ("处置中", "In progress"),
    Status.handled: ("已处置", "Handled"),
    Status.parked: ("挂账", "Parked"),
    Status.closed: ("已结案", "Closed"),
    Status.rejected: ("不予立案", "Rejected"),
    Status.duplicate: ("重复", "Duplicate"),
    Status.voided: ("已作废", "Voided"),
}


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


PRIORITIES: tuple[Priority, ...] = tuple(Priority)
#: each priority's name for people (zh, en), published with the vocabulary's
#: ``priority_labels`` as STATUS_LABELS are with its statuses
PRIORITY_LABELS: dict[Priority, tuple[str, str]] = {
    Priority.low: ("低", "Low"),
    Priority.normal: ("一般", "Normal"),
    Priority.high: ("高", "High"),
    Priority.urgent: ("紧急", "Urgent"),
}


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
    extend = "extend"
    park = "park"
    resume = "resume"
    void = "void"
    urge = "urge"
    reply = "reply"
    # the desk's case actions (see the module)
    assign = "assign"
    recategorize = "recategorize"
    reprioritize = "reprioritize"
    note = "note"
    merge = "merge"


ACTIONS: tuple[Action, ...] = tuple(Action)


class ApprovalKind(StrEnum):
    """Requests that wait for the level above (审批): only deadline extensions so far."""

    extension = "extension"


class ApprovalState(StrEnum):
    pending = "pending"
    approved = "approved"
    refused = "refused"


class Decision(StrEnum):
    """What an approver answers (POST /api/v1/approvals/decisions)."""

    approve = "approve"
    refuse = "refuse"


APPROVAL_KINDS: tuple[ApprovalKind, ...] = tuple(ApprovalKind)
APPROVAL_STATES: tuple[ApprovalState, ...] = tuple(ApprovalState)
DECISIONS: tuple[Decision, ...] = tuple(Decision)
#: the approval state each decision leads to
DECISION_STATE: dict[Decision, ApprovalState] = {
    Decision.approve: ApprovalState.approved,
    Decision.refuse: ApprovalState.refused,
}
#: the timeline event of each decision on an extension
DECISION_EVENT: dict[Decision, str] = {
    Decision.approve: "extension_approved",
    Decision.refuse: "extension_refused",
}
# Timeline events that are not workflow actions: the report itself, a later report
# linked to the case as its duplicate, and the decisions on its extension requests.
EVENTS: tuple[str, ...] = ("report", "link", *ACTIONS, *DECISION_EVENT.values())
#: events only staff who work the case read (dispatchers and the case's team): never
#: Open311, the public view nor grid workers (``auth/scope.py`` event_filter, the one
#: filter every path listing timeline events uses)
INTERNAL_EVENTS: tuple[str, ...] = (Action.note.value,)


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
    #: the ActionRequest fields this action takes besides ``note`` and ``photo_ids``
    #: (required unless the action's rule says otherwise): the desk builds its forms
    #: from this, the API checks it (cases/actions.py)
    fields: tuple[str, ...] = ()


S = Status
STEPS: dict[Action, Step] = {
    Action.accept: Step(frozenset({S.reported}), S.accepted),
    Action.reject: Step(frozenset({S.reported}), S.rejected, note_required=True),
    Action.dispatch: Step(frozenset({S.accepted}), S.dispatched, fields=("team_id",)),
    Action.start: Step(frozenset({S.dispatched}), S.in_progress, team=True),
    Action.handle: Step(frozenset({S.in_progress}), S.handled, team=True, note_required=True),
    Action.verify: Step(frozenset({S.handled}), None, reporter=True, fields=("passed",)),
    Action.rate: Step(frozenset({S.closed}), None, reporter=True, fields=("score",)),
    Action.escalate: Step(
        OPEN - {S.handled, S.parked},
        None,
        team=True,
        reporter=True,
        note_required=True,
    ),
    Action.return_: Step(
        frozenset({S.dispatched, S.in_progress}), S.accepted, team=True, note_required=True
    ),
    Action.comment: Step(OPEN, None, team=True, reporter=True),
    # The command-centre actions (see the module; GB/T 30428).
    Action.extend: Step(PARKABLE, None, team=True, note_required=True, fields=("extension_hours",)),
    Action.park: Step(PARKABLE, S.parked, note_required=True, fields=("review_on",)),
    Action.resume: Step(frozenset({S.parked}), None),
    Action.void: Step(OPEN, S.voided, note_required=True),
    Action.urge: Step(frozenset({S.dispatched, S.in_progress}), None, note_required=True),
    Action.reply: Step(
        OPEN - {S.reported, S.parked}, None, dispatcher=False, team=True, note_required=True
    ),
    # The desk's case actions (see the module).
    Action.assign: Step(frozenset({S.dispatched, S.in_progress}), None, fields=("assignee_id",)),
    Action.recategorize: Step(OPEN, None, note_required=True, fields=("category",)),
    Action.reprioritize: Step(OPEN, None, note_required=True, fields=("priority",)),
    Action.note: Step(frozenset(STATUSES), None, team=True, note_required=True),
    Action.merge: Step(OPEN, S.duplicate, fields=("into_case_id",)),
}
#: actions whose note is the substance of the step (a reason, a reply, a remark): the ones
#: reply and reason templates (回复模板/理由模板, the case_template table) are kept for
TEMPLATE_ACTIONS: tuple[Action, ...] = tuple(
    a for a, step in STEPS.items() if step.note_required or a in (Action.comment, Action.verify)
)
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
    if action is Action.extend:  # one request at a time
        return not case.get("extension_pending")
    if action is Action.reply:  # only an urge waits for a reply
        return case.get("urge_count", 0) > case.get("urge_replied", 0)
    return True


def why_not(action: Action, case: dict) -> str:
    """Why ``state_allows`` refuses: the 409's detail."""
    why = f"case {case['case_no']} is {case['status']}"
    if case["status"] not in STEPS[action].sources:
        return why
    return why + {
        Action.rate: " and already rated",
        Action.escalate: " and already at district level",
        Action.extend: " and an extension request is waiting for its decision",
        Action.reply: " and no urge waits for a reply",
    }.get(action, "")


def allowed_actions(principal: Principal, case: dict) -> list[str]:
    """What this principal may do to this case now (the 409 answer and the UI's buttons)."""
    return [
        a.value
        for a, step in STEPS.items()
        if state_allows(a, case) and may_act(step, principal, case)
    ]
