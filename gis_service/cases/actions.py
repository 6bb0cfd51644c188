"""Applying a workflow action: lock the case, check state and role, change it, and append
the timeline event — one transaction, so the case and its timeline never disagree.

The rules (which status, who, whether a note is needed) are data in cases/workflow.py;
this module carries out each action's change, including the command-centre actions of
GB/T 30428 (extend, park, resume, void, urge, reply; see workflow.py) and the desk's case
actions (assign, recategorize, reprioritize, note, merge; docs/cases.md "Desk actions")."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from gis_service.auth import sessions
from gis_service.auth.principal import Principal
from gis_service.cases import approvals, locks
from gis_service.cases.service import visible_case
from gis_service.cases.workflow import (
    INTERNAL_EVENTS,
    NEXT_LEVEL,
    OPEN,
    STEPS,
    Action,
    Priority,
    Status,
    allowed_actions,
    may_act,
    state_allows,
    why_not,
)
from gis_service.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis_service.settings import Settings
from gis_service.timezone import local_date, zone_name
from gis_service.units.codes import HANDLING_LEVELS

#: the longest extension one request may ask for (hours): 30 days
MAX_EXTENSION_HOURS = 720


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Action
    note: Annotated[str | None, Field(max_length=2000)] = None
    team_id: Annotated[int | None, Field(description="dispatch: the team to send it to")] = None
    passed: Annotated[bool | None, Field(description="verify: was it fixed?")] = None
    score: Annotated[int | None, Field(ge=1, le=5, description="rate: 1–5")] = None
    photo_ids: Annotated[
        list[int], Field(max_length=10, description="Photos of this case to attach")
    ] = []
    extension_hours: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_EXTENSION_HOURS,
            description="extend: how many hours the deadline should move (延期)",
        ),
    ] = None
    review_on: Annotated[
        date | None,
        Field(description="park: the local date the case comes back for review (挂账)"),
    ] = None
    assignee_id: Annotated[
        int | None,
        Field(gt=0, description="assign: the member of the case's team who does the work"),
    ] = None
    category: Annotated[
        str | None,
        Field(
            max_length=64,
            description="recategorize: the new sub-category (GET /api/v1/categories)",
        ),
    ] = None
    priority: Annotated[Priority | None, Field(description="reprioritize: the new priority")] = None
    into_case_id: Annotated[
        int | None,
        Field(gt=0, description="merge: the open case this one repeats (合并)"),
    ] = None


#: what every action takes (Step.fields lists the rest, per action)
COMMON_FIELDS = frozenset({"action", "note", "photo_ids"})


def apply_action(
    conn: Connection,
    principal: Principal,
    case_id: int,
    req: ActionRequest,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Carry out one action on one case: ``{"case", "event", "allowed_actions"}``.

    Errors: 404 outside the jurisdiction, 409 when the status does not allow the action
    (``allowed``: what this principal may do now), 403 when the role may not, 422 for a
    missing or unfit note, team, score, extension_hours, review_on, assignee_id, category,
    priority or into_case_id (``field`` names it), 409 for a merge into a case of another
    district (a case's district never changes: docs/scale.md). ``settings`` gives the approval clock
    and the local date (defaults when absent). An internal note (workflow.INTERNAL_EVENTS)
    leaves the case row untouched: its ``updated_at`` (Open311's updated_datetime) does
    not betray it."""
    settings = settings or Settings()
    # writes re-check the session in their own transaction: one that ended meanwhile
    # writes nothing (auth/sessions.py, the rule every request already passed)
    sessions.check_sync(conn, principal)
    case = wake_if_due(conn, principal, visible_case(conn, principal, case_id, lock=True))
    locks.refuse_if_held(conn, principal, case)  # another dispatcher's lock: 409
    action, step = req.action, STEPS[req.action]
    stray = sorted(req.model_fields_set - COMMON_FIELDS - set(step.fields))
    if stray:
        raise InvalidInput(
            f"{stray[0]} does not apply to {action.value}"
            + (f" (it takes {', '.join(step.fields)})" if step.fields else ""),
            field=stray[0],
        )
    if not state_allows(action, case):
        raise Conflict(
            f"cannot {action.value}: {why_not(action, case)}",
            status=case["status"],
            allowed=allowed_actions(principal, case),
        )
    if not may_act(step, principal, case):
        raise Forbidden(
            f"a {principal.role.value} cannot {action.value} this case",
            allowed=allowed_actions(principal, case),
        )
    if step.note_required and not req.note:
        raise InvalidInput(f"{action.value} needs a note saying why", field="note")
    _check_photos(conn, case_id, req.photo_ids)

    sets, data, target, extra = _changes(conn, principal, settings, case, req)
    target = target or case["status"]
    if not sets and action.value in INTERNAL_EVENTS:
        update = "SELECT case_summary(c) FROM cases c WHERE c.id = :id"
    else:
        update = (
            f"UPDATE cases c SET {', '.join(sets or ['updated_at = now()'])} "
            "WHERE c.id = :id RETURNING case_summary(c)"
        )
    summary = conn.execute(
        text(update),
        {
            "id": case_id,
            "team": req.team_id,
            "score": req.score,
            "target": target,
            "hours": case["deadline_hours"],
            "level": NEXT_LEVEL.get(case["handling_level"]),
            **extra,
        },
    ).scalar_one()
    event = append_event(
        conn,
        principal,
        case_id,
        action.value,
        case["status"],
        target,
        note=req.note,
        data=data,
        photo_ids=req.photo_ids,
    )
    # read again: what is allowed next depends on members the action changed (an open
    # extension request, urges); the case's unit never changes, so it stays visible
    new_case = visible_case(conn, principal, case_id)
    return {
        "case": summary,
        "event": event,
        "allowed_actions": allowed_actions(principal, new_case),
    }


def append_event(
    conn: Connection,
    principal: Principal | None,
    case_id: int,
    action: str,
    from_status: str,
    to_status: str,
    *,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    photo_ids: list[int] | None = None,
) -> dict[str, Any]:
    """Append one timeline event (case_event is append-only); ``principal`` None: the
    service itself (a parked case's review date). Returns the event as stored."""
    return dict(
        conn.execute(
            text(
                """
        INSERT INTO case_event (district_code, case_id, actor_id, client_id, action,
                                from_status, to_status, note, data, photo_ids)
        SELECT c.district_code, c.id, :actor, :client, :action, :from, :to, :note,
               CAST(:data AS jsonb), :photos
          FROM cases c WHERE c.id = :id
        RETURNING id, at, action, from_status, to_status, note, data, photo_ids
        """
            ),
            {
                "id": case_id,
                "actor": principal.user_id if principal else None,
                "client": principal.client_id if principal else None,
                "action": action,
                "from": from_status,
                "to": to_status,
                "note": note,
                "data": _json(data or {}),
                "photos": photo_ids or [],
            },
        )
        .mappings()
        .one()
    )


def wake_if_due(conn: Connection, principal: Principal, case: dict[str, Any]) -> dict[str, Any]:
    """A parked case (挂账) whose review moment has passed reads as the status it left
    (``case_status()``, cases/report.sql); before anyone acts on it, that return is
    written: the row goes back to that status and the timeline gets a ``resume`` event
    without an actor (``data.by = "review_date"``). The case must be locked."""
    if case["stored_status"] != Status.parked or case["status"] == Status.parked:
        return case
    conn.execute(
        text(
            "UPDATE cases SET status = parked_from, parked_from = NULL, parked_until = NULL "
            "WHERE id = :id"
        ),
        {"id": case["id"]},
    )
    append_event(
        conn,
        None,
        case["id"],
        Action.resume.value,
        Status.parked.value,
        case["status"],
        data={"by": "review_date", "review_at": case["parked_until"].isoformat()},
    )
    return visible_case(conn, principal, case["id"], lock=True)


def _changes(
    conn: Connection,
    principal: Principal,
    settings: Settings,
    case: dict[str, Any],
    req: ActionRequest,
) -> tuple[list[str], dict[str, Any], str | None, dict[str, Any]]:
    """SET clauses, event data, the new status and extra parameters for the action."""
    action, step = req.action, STEPS[req.action]
    sets = ["status = :target"] if step.target else []
    data: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    target = step.target
    if action is Action.accept:
        sets += ["accepted_at = now()", "deadline_at = now() + make_interval(hours => :hours)"]
        data["deadline_hours"] = case["deadline_hours"]
    elif action is Action.reject:
        sets.append("rejected_at = now()")
    elif action is Action.dispatch:
        team = _team_for(conn, case, req.team_id)
        sets += [
            "team_id = :team",
            "dispatched_at = now()",
            "team_history = CASE WHEN :team = ANY(team_history) THEN team_history "
            "ELSE team_history || :team END",
            "assignee_id = :assignee",
        ]
        data.update(team_id=team["id"], team_name=team["name"])
        # the assignee (指派) stays only while a member of the team the case goes to
        kept = case["assignee_id"] is not None and _member(conn, case["assignee_id"], team["id"])
        extra["assignee"] = case["assignee_id"] if kept else None
        if case["assignee_id"] is not None and not kept:
            data["assignee_cleared"] = case["assignee_id"]
        if _returned_since_dispatch(case):  # 回退 → re-dispatch: the reason travels along
            data["after_return"] = {
                "team_id": case["returned_by_team"],
                "note": case["return_note"],
                "at": case["returned_at"].isoformat(),
            }
    elif action is Action.handle:
        _require_after_photo(conn, case)
        sets.append("handled_at = now()")
    elif action is Action.verify:
        if req.passed is None:
            raise InvalidInput("verify needs passed: true or false", field="passed")
        data["passed"] = req.passed
        if req.passed:
            target = Status.closed
            sets += [
                "status = :target",
                "closed_at = now()",
                "public_token = coalesce(public_token, gen_random_uuid())",
            ]
        else:
            if not req.note:
                raise InvalidInput(
                    "a failed check needs a note saying what is still wrong", field="note"
                )
            target = Status.dispatched
            sets += ["status = :target", "rework_count = rework_count + 1", "dispatched_at = now()"]
    elif action is Action.rate:
        if req.score is None:
            raise InvalidInput("rate needs a score from 1 to 5", field="score")
        sets += ["rating = :score", "rated_at = now()"]
        data["score"] = req.score
    elif action is Action.escalate:
        level = NEXT_LEVEL[case["handling_level"]]
        sets += ["handling_level = :level", "escalation_count = escalation_count + 1"]
        data.update(from_level=case["handling_level"], to_level=level)
        if case["status"] != Status.reported:
            target = Status.accepted
            sets += ["status = :target", "team_id = NULL"]
    elif action is Action.return_:
        sets += [
            "team_id = NULL",
            "returned_at = now()",
            "returned_by_team = :returned_by",
            "return_note = :return_note",
        ]
        extra.update(returned_by=case["team_id"], return_note=req.note)
        data["team_id"] = case["team_id"]
    elif action is Action.extend:
        if req.extension_hours is None:
            raise InvalidInput(
                f"extend needs extension_hours (1–{MAX_EXTENSION_HOURS})", field="extension_hours"
            )
        approval = approvals.request_extension(
            conn, principal, case, req.extension_hours, req.note or "", req.photo_ids, settings
        )
        data.update(
            approval_id=approval["id"],
            extension_hours=req.extension_hours,
            due_by=approval["due_by"].isoformat(),
        )
    elif action is Action.park:
        today = local_date(settings)
        if req.review_on is None or req.review_on <= today:
            raise InvalidInput(
                f"park needs review_on, a date after today ({today.isoformat()})",
                field="review_on",
            )
        sets += [
            "parked_from = :from_status",
            "parked_until = CAST(:review_on AS timestamp) AT TIME ZONE :tz",
        ]
        extra.update(from_status=case["status"], review_on=req.review_on, tz=zone_name(settings))
        data.update(parked_from=case["status"], review_on=req.review_on.isoformat())
    elif action is Action.resume:
        target = case["parked_from"]
        sets += ["status = :target", "parked_from = NULL", "parked_until = NULL"]
        data.update(by="dispatcher", review_at=case["parked_until"].isoformat())
    elif action is Action.void:
        sets += ["voided_at = now()", "parked_from = NULL", "parked_until = NULL"]
    elif action is Action.urge:
        sets.append("urge_count = urge_count + 1")
        data.update(team_id=case["team_id"], urge_no=case["urge_count"] + 1)
    elif action is Action.reply:
        sets.append("urge_replied = urge_count")
        data["answers_urges"] = case["urge_count"] - case["urge_replied"]
    elif action is Action.assign:
        member = _assignee_for(conn, case, req.assignee_id)
        sets.append("assignee_id = :assignee")
        extra["assignee"] = member["id"]
        data.update(
            assignee_id=member["id"],
            assignee_name=member["display_name"],
            previous_assignee_id=case["assignee_id"],
        )
    elif action is Action.recategorize:
        changed = _recategorized(conn, case, req.category)
        sets += [
            "category_code = :category",
            "handling_level = :new_level",
            "deadline_at = :new_deadline",
            "original_deadline_at = :new_original",
        ]
        extra.update(
            category=changed["to_category"],
            new_level=changed["to_level"],
            new_deadline=changed.pop("deadline_at"),
            new_original=changed.pop("original_deadline_at"),
        )
        data.update(changed)
    elif action is Action.reprioritize:
        if req.priority is None:
            raise InvalidInput(
                f"reprioritize needs priority, one of {', '.join(Priority)}", field="priority"
            )
        if req.priority == case["priority"]:
            raise InvalidInput(
                f"case {case['case_no']} already has priority {case['priority']}",
                field="priority",
            )
        sets.append("priority = :priority")
        extra["priority"] = req.priority.value
        data.update(from_priority=case["priority"], to_priority=req.priority.value)
    elif action is Action.merge:
        into = _merge_target(conn, principal, case, req.into_case_id)
        sets += ["duplicate_of = :into", "parked_from = NULL", "parked_until = NULL"]
        extra["into"] = into["id"]
        data.update(into_case_id=into["id"], into_case_no=into["case_no"])
        # the target's timeline notes it as for a report filed as its duplicate
        data["link_event_id"] = conn.execute(
            text("SELECT link_duplicate(:into, :id, :no, :actor, :client, CAST(:extra AS jsonb))"),
            {
                "into": into["id"],
                "id": case["id"],
                "no": case["case_no"],
                "actor": principal.user_id,
                "client": principal.client_id,
                "extra": _json({"by": Action.merge.value}),
            },
        ).scalar_one()
    return sets, data, target, extra


def _member(conn: Connection, user_id: int, team_id: int) -> bool:
    """True if the account is an active member of the team."""
    return bool(
        conn.execute(
            text("SELECT 1 FROM app_user WHERE id = :u AND team_id = :t AND active"),
            {"u": user_id, "t": team_id},
        ).first()
    )


def _assignee_for(conn: Connection, case: dict[str, Any], user_id: int | None) -> dict[str, Any]:
    """The account an ``assign`` names: an active member of the case's team (422 else)."""
    if user_id is None:
        raise InvalidInput(
            "assign needs assignee_id, a member of the case's team", field="assignee_id"
        )
    member = (
        conn.execute(
            text("SELECT id, display_name FROM app_user WHERE id = :u AND team_id = :t AND active"),
            {"u": user_id, "t": case["team_id"]},
        )
        .mappings()
        .first()
    )
    if member is None:
        raise InvalidInput(
            f"user {user_id} is not an active member of team {case['team_id']}, "
            f"which case {case['case_no']} is dispatched to",
            field="assignee_id",
        )
    if user_id == case["assignee_id"]:
        raise InvalidInput(
            f"case {case['case_no']} is already assigned to {member['display_name']}",
            field="assignee_id",
        )
    return dict(member)


def _recategorized(conn: Connection, case: dict[str, Any], code: str | None) -> dict[str, Any]:
    """What a ``recategorize`` changes (the rule, docs/cases.md "Desk actions"):

    * the deadline: the new category's hours counted from acceptance, plus whatever an
      approved extension (延期) added (``deadline_at - original_deadline_at``); a case not
      yet accepted has none (acceptance counts the new category's hours);
    * the handling level: the new category's, unless the case was escalated (上报) to a
      level above it, which it keeps.

    422 (field ``category``) unless ``code`` is an active sub-category other than the
    case's own."""
    if not code:
        raise InvalidInput(
            "recategorize needs category, a sub-category code (GET /api/v1/categories)",
            field="category",
        )
    new = (
        conn.execute(
            text(
                "SELECT code, deadline_hours, handling_level FROM case_category "
                "WHERE code = :c AND active AND parent_code IS NOT NULL"
            ),
            {"c": code},
        )
        .mappings()
        .first()
    )
    if new is None:
        raise InvalidInput(
            f"no active sub-category {code!r} (GET /api/v1/categories)", field="category"
        )
    if code == case["category_code"]:
        raise InvalidInput(f"case {case['case_no']} is already in {code}", field="category")
    rank = {lvl.value: i for i, lvl in enumerate(HANDLING_LEVELS)}
    level = new["handling_level"]
    if case["escalation_count"] and rank[case["handling_level"]] > rank[level]:
        level = case["handling_level"]
    deadline = original = None
    accepted: datetime | None = case["accepted_at"]
    if accepted is not None:
        base = accepted + timedelta(hours=new["deadline_hours"])
        if case["original_deadline_at"] is not None:  # extended: the extension stays
            original = base
            deadline = base + (case["deadline_at"] - case["original_deadline_at"])
        else:
            deadline = base
    return {
        "from_category": case["category_code"],
        "to_category": code,
        "deadline_hours": new["deadline_hours"],
        "from_level": case["handling_level"],
        "to_level": level,
        "from_deadline_at": _iso(case["deadline_at"]),
        "to_deadline_at": _iso(deadline),
        "deadline_at": deadline,
        "original_deadline_at": original,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _merge_target(
    conn: Connection, principal: Principal, case: dict[str, Any], into: int | None
) -> dict[str, Any]:
    """The open case a ``merge`` joins this one to, locked. 422 (field ``into_case_id``)
    for the case itself, a case the principal may not see (worded as for a missing one,
    as the 404 elsewhere) and a case that is not open (closed, duplicate, ...)."""
    if into is None:
        raise InvalidInput(
            "merge needs into_case_id, the open case it repeats", field="into_case_id"
        )
    if into == case["id"]:
        raise InvalidInput(
            f"case {case['case_no']} cannot be merged into itself", field="into_case_id"
        )
    try:
        target = visible_case(conn, principal, into, lock=True)
    except NotFound:
        raise InvalidInput(f"no case {into} in your jurisdiction", field="into_case_id") from None
    if target["status"] not in OPEN:
        raise InvalidInput(
            f"case {target['case_no']} is {target['status']}: merge into an open case",
            field="into_case_id",
        )
    if target["district_code"] != case["district_code"]:
        # cases.duplicate_of is keyed within a district (migration 0020, docs/scale.md)
        raise Conflict(
            f"case {target['case_no']} is in district {target['district_code']} and case "
            f"{case['case_no']} in {case['district_code']}: cases merge only within their "
            "district; note the other case's number instead",
            status=case["status"],
            allowed=[],
        )
    return target


def _returned_since_dispatch(case: dict[str, Any]) -> bool:
    """True while the case waits for dispatch after a team's return (回退)."""
    returned = case.get("returned_at")
    return returned is not None and (
        case["dispatched_at"] is None or returned > case["dispatched_at"]
    )


def _team_for(conn: Connection, case: dict[str, Any], team_id: int | None) -> dict[str, Any]:
    if team_id is None:
        raise InvalidInput("dispatch needs team_id (GET /api/v1/teams)", field="team_id")
    team = (
        conn.execute(
            text("SELECT id, name, unit_code, active FROM team WHERE id = :id"), {"id": team_id}
        )
        .mappings()
        .first()
    )
    if team is None or not team["active"]:
        raise InvalidInput(f"no active team {team_id}", field="team_id")
    if not case["unit_code"].startswith(team["unit_code"]):
        raise InvalidInput(
            f"team {team['name']} serves unit {team['unit_code']}, which does "
            f"not include this case's unit {case['unit_code']}",
            field="team_id",
        )
    return dict(team)


def _require_after_photo(conn: Connection, case: dict[str, Any]) -> None:
    has = conn.execute(
        text(
            "SELECT 1 FROM case_photo WHERE case_id = :id AND stage = 'after' "
            "AND uploaded_at >= :since LIMIT 1"
        ),
        {"id": case["id"], "since": case["dispatched_at"]},
    ).first()
    if not has:
        raise Conflict(
            "handle needs an after photo of the work: upload one first "
            f"(POST /api/v1/cases/{case['id']}/photos, stage=after)",
            status=case["status"],
            allowed=["comment"],
        )


def _check_photos(conn: Connection, case_id: int, photo_ids: list[int]) -> None:
    if not photo_ids:
        return
    found = {
        r[0]
        for r in conn.execute(
            text("SELECT id FROM case_photo WHERE case_id = :c AND id = ANY(:ids)"),
            {"c": case_id, "ids": photo_ids},
        )
    }
    missing = sorted(set(photo_ids) - found)
    if missing:
        raise InvalidInput(f"photos {missing} do not belong to case {case_id}", field="photo_ids")


def rate_by_link(conn: Connection, token: str, score: int, note: str | None) -> dict[str, Any]:
    """A resident rates through the public link the reporter passed on (no account)."""
    row = (
        conn.execute(
            text(
                "SELECT id, status, rating, case_no FROM cases WHERE "
                "public_token = CAST(:t AS uuid) "
                "FOR UPDATE"
            ),
            {"t": token},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("this rating link is not valid")
    if row["status"] != Status.closed or row["rating"] is not None:
        raise Conflict(
            f"case {row['case_no']} cannot be rated now "
            f"({'already rated' if row['rating'] else row['status']})",
            status=row["status"],
            allowed=[],
        )
    conn.execute(
        text("UPDATE cases SET rating = :s, rated_at = now() WHERE id = :id"),
        {"s": score, "id": row["id"]},
    )
    conn.execute(
        text(
            "INSERT INTO case_event (district_code, case_id, action, from_status, to_status, "
            "note, data) SELECT c.district_code, c.id, :action, :status, :status, :note, "
            "CAST(:data AS jsonb) FROM cases c WHERE c.id = :id"
        ),
        {
            "id": row["id"],
            "action": Action.rate.value,
            "status": Status.closed.value,
            "note": note,
            "data": _json({"score": score, "via": "public_link"}),
        },
    )
    return {"case_no": row["case_no"], "rating": score}


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, ensure_ascii=False)
