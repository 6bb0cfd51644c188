"""Service teams a case is dispatched to: the "1+5" teams of the seed articles (one walking
team that collects, five that resolve) and any others a district keeps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import units_visible
from gis_service.errors import InvalidInput

TEAM_KINDS = {
    "walking_team": ("走访队", "Walking team"),
    "community_committee": ("社区两委", "Community committee"),
    "district_work_team": ("区直工作队", "District work team"),
    "party_volunteers": ("党员志愿队", "Party volunteers"),
    "social_forces": ("社会力量", "Social forces"),
    "deputies": ("人大代表、政协委员", "Deputies"),
    "property_service": ("物业服务", "Property service"),
    "other": ("其他", "Other"),
}


def create_team(
    conn: Connection, *, name: str, kind: str, unit_code: str, phone: str | None = None
) -> dict[str, Any]:
    if kind not in TEAM_KINDS:
        raise InvalidInput(f"team kind must be one of {', '.join(TEAM_KINDS)}", field="kind")
    if not conn.execute(text("SELECT 1 FROM admin_unit WHERE code = :c"), {"c": unit_code}).first():
        raise InvalidInput(f"no unit with code {unit_code}", field="unit")
    return dict(
        conn.execute(
            text(
                """
        INSERT INTO team (name, kind, unit_code, phone) VALUES (:name, :kind, :unit, :phone)
        ON CONFLICT (unit_code, name) DO UPDATE SET kind = EXCLUDED.kind,
            phone = EXCLUDED.phone, active = true
        RETURNING id, name, kind, unit_code, phone, active
        """
            ),
            {"name": name, "kind": kind, "unit": unit_code, "phone": phone},
        )
        .mappings()
        .one()
    )


def list_teams(
    conn: Connection, principal: Principal, unit: str | None = None
) -> list[dict[str, Any]]:
    """Teams that can work in the principal's scope: those serving a unit inside it, or a
    unit above it (a district work team serves every community below)."""
    where = ["t.active"]
    params: dict[str, Any] = {}
    if principal.role is Role.team_member:
        where.append("t.id = :team")
        params["team"] = principal.team_id
    else:
        cond, cond_params = units_visible(principal, "t.unit_code")
        where.append(cond)
        params.update(cond_params)
    if unit:
        where.append("starts_with(:unit, t.unit_code)")
        params["unit"] = unit
    rows = (
        conn.execute(
            text(
                f"""
        SELECT t.id, t.name, t.kind, t.unit_code, u.name AS unit_name, u.level AS unit_level,
               t.phone,
               (SELECT count(*) FROM app_user m WHERE m.team_id = t.id AND m.active) AS members
          FROM team t JOIN admin_unit u ON u.code = t.unit_code
         WHERE {" AND ".join(where)}
         ORDER BY length(t.unit_code), t.unit_code, t.kind, t.name
        """
            ),
            params,
        )
        .mappings()
        .all()
    )
    return [
        {**r, "kind_zh": TEAM_KINDS[r["kind"]][0], "kind_en": TEAM_KINDS[r["kind"]][1]}
        for r in rows
    ]
