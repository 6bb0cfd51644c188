"""Reply and reason templates per category (回复模板/理由模板): ready texts the desk and the
phone offer for an action's note (a rejection's reason, a reply to urging, a return...).

A template (``case_template``) belongs to an action of :data:`workflow.TEMPLATE_ACTIONS`
(the actions whose note is the step's substance) and to a category: none (any category),
a domain (all its sub-categories) or a sub-category. The templates that apply to a case
are those of its sub-category, of its domain and of any category, in that order (the
most specific first), then oldest first. Admins add and withdraw them; withdrawing
deactivates (the audit log keeps every change: audit/tables.py). A few defaults come with
migration 0009.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import require_role
from gis_service.cases.service import visible_case
from gis_service.cases.workflow import TEMPLATE_ACTIONS, Action
from gis_service.errors import InvalidInput, NotFound

COLUMNS = "t.id, t.category_code, t.action, t.text_zh, t.text_en, t.active, t.created_at"


class TemplateRequest(BaseModel):
    """POST /api/v1/templates."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    category_code: Annotated[
        str | None,
        Field(
            max_length=64,
            description="A domain or sub-category code (GET /api/v1/categories); "
            "null: any category",
        ),
    ] = None
    action: Annotated[
        Action,
        Field(description="The action whose note it fills: " + ", ".join(TEMPLATE_ACTIONS)),
    ]
    text_zh: Annotated[str, Field(min_length=1, max_length=2000)]
    text_en: Annotated[str | None, Field(min_length=1, max_length=2000)] = None


def check_action(action: str) -> str:
    """422 (field ``action``) unless templates are kept for the action."""
    if action not in TEMPLATE_ACTIONS:
        raise InvalidInput(
            f"no templates for {action}: one of {', '.join(TEMPLATE_ACTIONS)}", field="action"
        )
    return action


def for_case(
    conn: Connection, principal: Principal, case_id: int, action: str | None
) -> dict[str, Any]:
    """``{"case_id", "category", "templates": [...]}``: the active templates that apply
    to the case (of ``action`` if given), most specific category first. 404 outside the
    jurisdiction (as GET /cases/{id}); 422 for an action without templates."""
    if action is not None:
        check_action(action)
    case = visible_case(conn, principal, case_id)
    rows = conn.execute(
        text(
            f"""
        SELECT {COLUMNS} FROM case_template t
         WHERE t.active AND (CAST(:action AS text) IS NULL OR t.action = :action)
           AND (t.category_code IS NULL OR t.category_code = :cat
                OR starts_with(:cat, t.category_code || '.'))
         ORDER BY CASE WHEN t.category_code = :cat THEN 0
                       WHEN t.category_code IS NULL THEN 2 ELSE 1 END, t.id
        """
        ),
        {"action": action, "cat": case["category_code"]},
    ).mappings()
    return {
        "case_id": case_id,
        "category": case["category_code"],
        "templates": [dict(r) for r in rows],
    }


def create(conn: Connection, principal: Principal, req: TemplateRequest) -> dict[str, Any]:
    """Add a template (admins: 403 otherwise). 422 naming ``category_code`` for a code
    that is no active category, ``action`` for an action without templates."""
    require_role(principal, Role.admin, what="editing reply templates")
    check_action(req.action.value)
    if (
        req.category_code is not None
        and not conn.execute(
            text("SELECT 1 FROM case_category WHERE code = :c AND active"), {"c": req.category_code}
        ).first()
    ):
        raise InvalidInput(
            f"no active category {req.category_code!r} (GET /api/v1/categories)",
            field="category_code",
        )
    return dict(
        conn.execute(
            text(
                f"""
        INSERT INTO case_template AS t (category_code, action, text_zh, text_en)
        VALUES (:cat, :action, :zh, :en) RETURNING {COLUMNS}
        """
            ),
            {
                "cat": req.category_code,
                "action": req.action.value,
                "zh": req.text_zh,
                "en": req.text_en,
            },
        )
        .mappings()
        .one()
    )


def withdraw(conn: Connection, principal: Principal, template_id: int) -> dict[str, Any]:
    """Deactivate a template (admins: 403 otherwise); 404 when there is no active one."""
    require_role(principal, Role.admin, what="editing reply templates")
    row = (
        conn.execute(
            text(
                f"UPDATE case_template t SET active = false WHERE t.id = :id AND t.active "
                f"RETURNING {COLUMNS}"
            ),
            {"id": template_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no active template {template_id}", template_id=template_id)
    return dict(row)
