"""Bulk work at the desk (issue 15 item 5): one action on many cases at once.

Each case goes through the one rule, ``cases/actions.py`` ``apply_action`` (state, role,
the case lock, the team's unit…), in its own SAVEPOINT inside the request's one
transaction: every applied case gets its own timeline event, a refused one rolls back to
its savepoint only and is listed with the refusal's code and detail, the rest are applied
(as Ushahidi's bulk actions and FixMyStreet's shortlists do). A request that is itself bad
(an unknown action, no ids, too many, duplicates, a field the action does not take) is
refused with 422 before anything is written.

Cases are taken in id order, so two bulk requests over overlapping cases lock their rows
in the same order and never deadlock; the answer lists them in the request's order.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import case_filter
from gis_service.cases.actions import ActionRequest, apply_action
from gis_service.cases.desk import require_desk
from gis_service.cases.workflow import STEPS, Action
from gis_service.errors import GisServiceError, InvalidInput
from gis_service.settings import Settings

#: the actions the desk applies in bulk (issue 15 item 5): accept, dispatch, comment
BULK_ACTIONS: tuple[Action, ...] = (Action.accept, Action.dispatch, Action.comment)
#: the same as an enumeration, for the request's schema (values from workflow.Action)
BulkAction = StrEnum("BulkAction", [(a.name, a.value) for a in BULK_ACTIONS])  # type: ignore[misc]
#: the most cases one request may carry (OWASP API4: a bounded request)
MAX_CASES = 500


class BulkRequest(BaseModel):
    """``POST /api/v1/desk/bulk``: ``action`` on every case of ``case_ids``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: BulkAction = Field(  # type: ignore[valid-type]
        description="One of " + ", ".join(a.value for a in BULK_ACTIONS)
    )
    case_ids: Annotated[
        list[Annotated[int, Field(gt=0)]],
        Field(min_length=1, max_length=MAX_CASES, description=f"1–{MAX_CASES} distinct ids"),
    ]
    note: Annotated[str | None, Field(max_length=2000, description="On every case's event")] = None
    team_id: Annotated[
        int | None,
        Field(gt=0, description="dispatch: the team (GET /api/v1/teams) for every case"),
    ] = None

    @field_validator("case_ids")
    @classmethod
    def _distinct(cls, ids: list[int]) -> list[int]:
        seen: set[int] = set()
        twice = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        if twice:
            raise ValueError(f"each case once: {twice[:10]} appear more than once")
        return ids

    def action_request(self) -> ActionRequest:
        """The one case's ``ActionRequest``; 422 naming a field the action does not take
        (``Step.fields``, cases/workflow.py: the rule apply_action checks too)."""
        action = Action(self.action.value)
        given = {k: getattr(self, k) for k in ("note", "team_id") if k in self.model_fields_set}
        stray = [k for k in given if k != "note" and k not in STEPS[action].fields]
        if stray:
            raise InvalidInput(f"{stray[0]} does not apply to {action.value}", field=stray[0])
        return ActionRequest(action=action, **given)


def apply_bulk(
    conn: Connection, principal: Principal, req: BulkRequest, settings: Settings
) -> dict[str, Any]:
    """Apply ``req`` to each case: ``{"action", "applied": [{case_id, case_no, status}],
    "refused": [{case_id, case_no?, error, detail, …}], "counts": {requested, applied,
    refused}}``. A refused case carries its refusal's members (``allowed``, ``holder``,
    ``field``…); ``case_no`` only for cases the viewer may see (a 404 names none). 403
    for roles other than dispatchers; 422 for a field the action does not take. ``conn``
    must be in a transaction (each case gets a savepoint in it)."""
    require_desk(principal)
    one = req.action_request()
    applied: dict[int, dict[str, Any]] = {}
    refused: dict[int, dict[str, Any]] = {}
    for case_id in sorted(req.case_ids):
        try:
            with conn.begin_nested():
                result = apply_action(conn, principal, case_id, one, settings)
        except GisServiceError as exc:
            refused[case_id] = {"case_id": case_id, **exc.to_dict()}
            continue
        case = result["case"]
        applied[case_id] = {
            "case_id": case_id,
            "case_no": case["case_no"],
            "status": case["status"],
        }
    if refused:
        for case_id, case_no in _case_numbers(conn, principal, list(refused)).items():
            refused[case_id]["case_no"] = case_no
    order = req.case_ids
    return {
        "action": one.action.value,
        "applied": [applied[i] for i in order if i in applied],
        "refused": [refused[i] for i in order if i in refused],
        "counts": {"requested": len(order), "applied": len(applied), "refused": len(refused)},
    }


def _case_numbers(conn: Connection, principal: Principal, ids: list[int]) -> dict[int, str]:
    """id → case number of the cases among ``ids`` the viewer may see."""
    cond, params = case_filter(principal, "c")
    rows = conn.execute(
        text(f"SELECT c.id, c.case_no FROM cases c WHERE c.id = ANY(:ids) AND {cond}"),
        {"ids": ids, **params},
    )
    return {r[0]: r[1] for r in rows}
