"""Service teams a case is dispatched to: the "1+5" teams of the seed articles (one walking
team that collects, five that resolve) and any others a district keeps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import units_visible
from gis_service.errors import Conflict, InvalidInput, NotFound

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
    """A team serving ``unit_code``; an existing team of that unit and name is updated
    and reactivated. 422 naming ``kind``, ``name`` or ``unit``."""
    if kind not in TEAM_KINDS:
        raise InvalidInput(f"team kind must be one of {', '.join(TEAM_KINDS)}", field="kind")
    if not (name or "").strip():
        raise InvalidInput("a team needs a name", field="name")
    if not conn.execute(text("SELECT 1 FROM admin_unit WHERE code = :c"), {"c": unit_code}).first():
        raise InvalidInput(f"no unit with code {unit_code}", field="unit_code")
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
    conn: Connection,
    principal: Principal,
    unit: str | None = None,
    *,
    include_inactive: bool = False,
) -> list[dict[str, Any]]:
    """Teams that can work in the principal's scope: those serving a unit inside it, or a
    unit above it (a district work team serves every community below); deactivated ones
    too with ``include_inactive`` (the admin pages)."""
    where = ["TRUE" if include_inactive else "t.active"]
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
               t.phone, t.active,
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


TEAM_COLUMNS = "id, name, kind, unit_code, phone, active"


def get_team(conn: Connection, team_id: int) -> dict[str, Any]:
    """One team, active or not; 404 ``not_found``."""
    row = (
        conn.execute(text(f"SELECT {TEAM_COLUMNS} FROM team WHERE id = :id"), {"id": team_id})
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no team with id {team_id}")
    return dict(row)


def update_team(
    conn: Connection,
    team_id: int,
    *,
    name: str | None = None,
    kind: str | None = None,
    phone: str | None = None,
    active: bool | None = None,
) -> dict[str, Any]:
    """Rename a team, change its kind or phone, or (de)activate it; the kind is checked
    as at creation (``TEAM_KINDS``, 422 naming ``kind``), a name another team of the same
    unit has is a 409 naming ``name``. A deactivated team is no longer dispatched to
    (``list_teams``) and takes no new members (auth/users.py)."""
    team = get_team(conn, team_id)
    if kind is not None and kind not in TEAM_KINDS:
        raise InvalidInput(f"team kind must be one of {', '.join(TEAM_KINDS)}", field="kind")
    if name is not None and not name.strip():
        raise InvalidInput("a team needs a name", field="name")
    new_name = name.strip() if name is not None else team["name"]
    if conn.execute(
        text("SELECT 1 FROM team WHERE unit_code = :u AND name = :n AND id <> :id"),
        {"u": team["unit_code"], "n": new_name, "id": team_id},
    ).first():
        raise Conflict(f"the unit has another team named {new_name!r}", field="name")
    return dict(
        conn.execute(
            text(
                f"""
        UPDATE team SET name = :name, kind = :kind, phone = :phone, active = :active
         WHERE id = :id RETURNING {TEAM_COLUMNS}
        """
            ),
            {
                "id": team_id,
                "name": new_name,
                "kind": kind or team["kind"],
                "phone": team["phone"] if phone is None else (phone.strip() or None),
                "active": team["active"] if active is None else active,
            },
        )
        .mappings()
        .one()
    )


def add_member(conn: Connection, team_id: int, user_id: int) -> dict[str, Any]:
    """Move a team-member account into the active team ``team_id`` (auth/users.py
    ``update_user``: its sessions end, its next sign-in sees the new team's cases). 422
    naming ``user_id`` for an account of another role; 404 for an unknown team or user."""
    from gis_service.auth import users

    get_team(conn, team_id)
    user = users.get_user(conn, user_id)
    if user["role"] != Role.team_member.value:
        raise InvalidInput(
            f"{user['username']} is a {user['role']}: only team-member accounts belong to "
            "teams (change the account's role first)",
            field="user_id",
        )
    return users.update_user(conn, user["username"], team_id=team_id)


def remove_member(conn: Connection, team_id: int, user_id: int) -> dict[str, Any]:
    """Take a member off a team: a team-member account cannot be without a team (the
    ``app_user`` CHECK), so the account is deactivated and its sessions end
    (``users.set_active``); move it to another team with :func:`add_member` instead to
    keep it working. 404 unless the account is a member of this team."""
    from gis_service.auth import users

    get_team(conn, team_id)
    user = users.get_user(conn, user_id)
    if user["team_id"] != team_id:
        raise NotFound(f"user {user_id} is not a member of team {team_id}")
    users.set_active(conn, user["username"], False)
    return users.get_user(conn, user_id)
