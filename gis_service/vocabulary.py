"""The service's vocabulary, gathered from its homes for everything that is not Python.

Each word list has one home, and only there is it typed:

==================  =====================================================
statuses, actions,  gis_service/cases/workflow.py (Status, Action, Priority,
priorities,         ApprovalKind, ApprovalState, Decision)
approvals
unit levels and     gis_service/units/codes.py (Level, CODE_LENGTH, HANDLING_LEVELS)
code lengths
account roles       gis_service/auth/principal.py (Role)
roster roles        STAFF_ROLES here (unit_staff.role)
team kinds          gis_service/cases/teams.py (TEAM_KINDS)
category codes      the case_category table (GET /api/v1/categories); its code pattern
                    is CATEGORY_CODE_PATTERN here
==================  =====================================================

This module hands them on: as JSON (``vocabulary()``: ``GET /api/v1/vocabulary`` and the
phone's page, mobile/shell.py), and as SQL literals (``sql_constants()``) that the
migrations and the ``.sql`` files of each domain (db/sqlfiles.py) are rendered with at
migrate time, so no SQL text retypes a list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from gis_service.auth.principal import ROLE_NAMES, Role
from gis_service.cases.teams import TEAM_KINDS
from gis_service.cases.workflow import (
    ACTIONS,
    APPROVAL_KINDS,
    APPROVAL_STATES,
    CLOSED_STATUSES,
    DEADLINE_STATUSES,
    DECISIONS,
    EVENTS,
    INTERNAL_EVENTS,
    OPEN_STATUSES,
    PARKABLE,
    PRIORITIES,
    PRIORITY_LABELS,
    STATUS_LABELS,
    STATUSES,
    STEPS,
    TEMPLATE_ACTIONS,
)
from gis_service.units.codes import CODE_LENGTH, HANDLING_LEVELS, LEVEL_NAMES_ZH, LEVELS
from gis_service.walks.rules import WALK_STATUSES

PLACEHOLDER = re.compile(r"\{\{([a-z_.]+)\}\}")
# Roles on a unit's roster card (unit_staff), which are not accounts.
#: roster roles (unit_staff.role) with their names for people (zh, en)
STAFF_ROLE_NAMES: dict[str, tuple[str, str]] = {
    "grid_leader": ("网格长", "Grid leader"),
    "grid_worker": ("网格员", "Grid worker"),
    "building_head": ("楼栋长", "Building head"),
    "party_secretary": ("党支部书记", "Party secretary"),
}
STAFF_ROLES = tuple(STAFF_ROLE_NAMES)
# Accounts of people (Open311 client apps are principals without an app_user row).
ACCOUNT_ROLES: tuple[Role, ...] = tuple(r for r in Role if r is not Role.client)
# A domain ("environment") or a sub-category ("environment.garbage").
CATEGORY_CODE_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)?$"


def vocabulary() -> dict[str, Any]:
    """Every word list as JSON-ready data (the shape of ``GET /api/v1/vocabulary``)::

    {"statuses": [{"code", "open", "label": {"zh", "en"}}, ...],
     "open_statuses": [...], "closed_statuses": [...], "deadline_statuses": [...],
     "actions": [...], "note_required_actions": [...],
     "action_fields": {action: [ActionRequest field, ...]}, "events": [...],
     "internal_events": [...], "template_actions": [...], "priorities": [...],
     "priority_labels": [{"code", "label": {"zh", "en"}}],
     "parkable_statuses": [...], "approval_kinds": [...], "approval_states": [...],
     "decisions": [...],
     "roles": [{"code", "label": {"zh", "en"}}], "staff_role_labels": [same],
     "team_kinds": [{"code", "label": {"zh", "en"}}],
     "levels": [{"code", "code_length", "label": {"zh"}}], "handling_levels": [...],
     "category_code_pattern": "..."}
    """
    return {
        "statuses": [
            {
                "code": s.value,
                "open": s in OPEN_STATUSES,
                "label": {"zh": STATUS_LABELS[s][0], "en": STATUS_LABELS[s][1]},
            }
            for s in STATUSES
        ],
        "open_statuses": _values(OPEN_STATUSES),
        "closed_statuses": _values(CLOSED_STATUSES),
        "deadline_statuses": _values(DEADLINE_STATUSES),
        "actions": _values(ACTIONS),
        "note_required_actions": _values(a for a, step in STEPS.items() if step.note_required),
        "action_fields": {a.value: list(step.fields) for a, step in STEPS.items()},
        "events": _values(EVENTS),
        # events only dispatchers and the case's team read (auth/scope.py event_filter)
        "internal_events": _values(INTERNAL_EVENTS),
        # actions reply and reason templates are kept for (GET /api/v1/cases/{id}/templates)
        "template_actions": _values(TEMPLATE_ACTIONS),
        "priorities": _values(PRIORITIES),
        "priority_labels": [
            {"code": p.value, "label": {"zh": PRIORITY_LABELS[p][0], "en": PRIORITY_LABELS[p][1]}}
            for p in PRIORITIES
        ],
        "parkable_statuses": _values(s for s in STATUSES if s in PARKABLE),
        "approval_kinds": _values(APPROVAL_KINDS),
        "approval_states": _values(APPROVAL_STATES),
        "decisions": _values(DECISIONS),
        "roles": [
            {"code": r.value, "label": {"zh": zh, "en": en}} for r, (zh, en) in ROLE_NAMES.items()
        ],
        "account_roles": _values(ACCOUNT_ROLES),
        "team_kinds": [
            {"code": k, "label": {"zh": zh, "en": en}} for k, (zh, en) in TEAM_KINDS.items()
        ],
        "levels": [
            {
                "code": lvl.value,
                "code_length": CODE_LENGTH[lvl],
                "label": {"zh": LEVEL_NAMES_ZH[lvl]},
            }
            for lvl in LEVELS
        ],
        "handling_levels": _values(HANDLING_LEVELS),
        "staff_roles": list(STAFF_ROLES),
        "staff_role_labels": [
            {"code": k, "label": {"zh": zh, "en": en}} for k, (zh, en) in STAFF_ROLE_NAMES.items()
        ],
        "category_code_pattern": CATEGORY_CODE_PATTERN,
    }


def _values(items: Iterable[Any]) -> list[str]:
    return [str(i) for i in items]


def sql_literal(value: str | int) -> str:
    """A SQL literal: integers as they are, text single-quoted (quotes doubled)."""
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: Iterable[str]) -> str:
    """``('a', 'b')``: the right side of ``x IN …`` and of a CHECK constraint."""
    return "(" + ", ".join(sql_literal(str(v)) for v in values) + ")"


def sql_constants() -> dict[str, str]:
    """Placeholder → SQL text, for the ``{{name}}`` placeholders of migrations and
    ``.sql`` files (db/sqlfiles.py)."""
    prefixes = ", ".join(f"left(p_code, {CODE_LENGTH[lvl]})" for lvl in LEVELS)
    return {
        "statuses": sql_list(STATUSES),
        "open_statuses": sql_list(OPEN_STATUSES),
        "deadline_statuses": sql_list(DEADLINE_STATUSES),
        "priorities": sql_list(PRIORITIES),
        "template_actions": sql_list(TEMPLATE_ACTIONS),
        "parkable_statuses": sql_list(s for s in STATUSES if s in PARKABLE),
        "approval_kinds": sql_list(APPROVAL_KINDS),
        "approval_states": sql_list(APPROVAL_STATES),
        "account_roles": sql_list(ACCOUNT_ROLES),
        "team_kinds": sql_list(TEAM_KINDS),
        "levels": sql_list(LEVELS),
        "handling_levels": sql_list(HANDLING_LEVELS),
        "top_level": sql_literal(LEVELS[0].value),
        "category_code_pattern": sql_literal(CATEGORY_CODE_PATTERN),
        # the codes of a unit and all its ancestors, read off its code (units/codes.py)
        "code_prefixes": f"ARRAY[{prefixes}]",
        "district_length": str(CODE_LENGTH[LEVELS[0]]),
        "level_length_case": "CASE p_level "
        + " ".join(f"WHEN {sql_literal(lvl.value)} THEN {CODE_LENGTH[lvl]}" for lvl in LEVELS)
        + " END",
        "staff_roles": sql_list(STAFF_ROLES),
        **{f"status.{s.value}": sql_literal(s.value) for s in STATUSES},
        **{f"level.{lvl.value}": sql_literal(lvl.value) for lvl in LEVELS},
        **{f"priority.{p.value}": sql_literal(p.value) for p in PRIORITIES},
        **{f"role.{r.value}": sql_literal(r.value) for r in ACCOUNT_ROLES},
        **{f"approval_state.{a.value}": sql_literal(a.value) for a in APPROVAL_STATES},
        **{f"walk_status.{w.value}": sql_literal(w.value) for w in WALK_STATUSES},
    }


def render(sql: str, source: str = "SQL") -> str:
    """Fill the ``{{name}}`` placeholders of ``sql`` from ``sql_constants()``; an unknown
    name is an error naming it and ``source``."""
    constants = sql_constants()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in constants:
            raise KeyError(f"{source}: unknown placeholder {{{{{name}}}}}")
        return constants[name]

    return PLACEHOLDER.sub(fill, sql)
