"""Accounts: created by an admin (CLI), signed in with a password, scoped to units."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.passwords import MIN_LENGTH, dummy_hash, hash_password, verify_password
from gis_service.auth.principal import Role
from gis_service.errors import Conflict, InvalidInput, Unauthorized
from gis_service.units.codes import Level

# Which unit levels each role may be scoped to.
SCOPE_LEVELS: dict[Role, tuple[str, ...]] = {
    Role.grid_worker: (Level.grid,),
    Role.supervisor: (Level.district, Level.subdistrict, Level.community),
    Role.planner: (Level.district, Level.subdistrict, Level.community),
}
USER_COLUMNS = (
    "id, username, display_name, role, scopes, team_id, phone, active, token_version, created_at"
)


def create_user(
    conn: Connection,
    *,
    username: str,
    password: str,
    role: Role | str,
    scopes: list[str] | None = None,
    team_id: int | None = None,
    display_name: str | None = None,
    phone: str | None = None,
) -> dict[str, Any]:
    role = Role(role)
    scopes = list(dict.fromkeys(scopes or []))
    if role is Role.client:
        raise InvalidInput("client apps get Open311 keys, not accounts", field="role")
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"the password needs at least {MIN_LENGTH} characters", field="password")
    if role in SCOPE_LEVELS:
        if not scopes:
            raise InvalidInput(
                f"a {role.value} needs --scope (unit codes at level "
                f"{' or '.join(SCOPE_LEVELS[role])})",
                field="scope",
            )
        _check_scopes(conn, scopes, SCOPE_LEVELS[role])
    elif scopes:
        raise InvalidInput(f"a {role.value} takes no scope", field="scope")
    if (role is Role.team_member) != (team_id is not None):
        raise InvalidInput("team members, and only they, belong to a team (--team)", field="team")
    if (
        team_id is not None
        and not conn.execute(
            text("SELECT 1 FROM team WHERE id = :id AND active"), {"id": team_id}
        ).first()
    ):
        raise InvalidInput(f"no active team with id {team_id}", field="team")
    if conn.execute(text("SELECT 1 FROM app_user WHERE username = :u"), {"u": username}).first():
        raise Conflict(f"the username {username!r} is taken", field="username")
    row = (
        conn.execute(
            text(
                f"""
        INSERT INTO app_user (username, password_hash, display_name, role, scopes, team_id,
                              phone)
        VALUES (:username, :hash, :name, :role, :scopes, :team_id, :phone)
        RETURNING {USER_COLUMNS}
        """
            ),
            {
                "username": username,
                "hash": hash_password(password),
                "name": display_name or username,
                "role": role.value,
                "scopes": scopes,
                "team_id": team_id,
                "phone": phone,
            },
        )
        .mappings()
        .one()
    )
    return dict(row)


def _check_scopes(conn: Connection, scopes: list[str], levels: tuple[str, ...]) -> None:
    found = dict(
        conn.execute(
            text("SELECT code, level FROM admin_unit WHERE code = ANY(:c)"), {"c": scopes}
        ).all()
    )
    for code in scopes:
        if code not in found:
            raise InvalidInput(f"no unit with code {code}", field="scope")
        if found[code] not in levels:
            raise InvalidInput(
                f"unit {code} is a {found[code]}; this role is scoped to "
                f"{' or '.join(levels)} units",
                field="scope",
            )


def authenticate(conn: Connection, username: str, password: str) -> dict[str, Any]:
    row = (
        conn.execute(
            text(f"SELECT password_hash, {USER_COLUMNS} FROM app_user WHERE username = :u"),
            {"u": username},
        )
        .mappings()
        .first()
    )
    if row is None:
        verify_password(dummy_hash(), password)
        raise Unauthorized("wrong username or password")
    if not verify_password(row["password_hash"], password):
        raise Unauthorized("wrong username or password")
    if not row["active"]:
        raise Unauthorized("this account is deactivated")
    return {k: v for k, v in row.items() if k != "password_hash"}


def list_users(conn: Connection) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in conn.execute(text(f"SELECT {USER_COLUMNS} FROM app_user ORDER BY id")).mappings()
    ]


def set_active(conn: Connection, username: str, active: bool) -> None:
    """(De)activate; bumping the token version revokes every token already issued."""
    done = conn.execute(
        text(
            "UPDATE app_user SET active = :a, token_version = token_version + 1 WHERE username = :u"
        ),
        {"a": active, "u": username},
    ).rowcount
    if not done:
        raise InvalidInput(f"no user {username!r}", field="username")


def set_password(conn: Connection, username: str, password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"the password needs at least {MIN_LENGTH} characters", field="password")
    done = conn.execute(
        text(
            "UPDATE app_user SET password_hash = :h, token_version = token_version + 1 "
            "WHERE username = :u"
        ),
        {"h": hash_password(password), "u": username},
    ).rowcount
    if not done:
        raise InvalidInput(f"no user {username!r}", field="username")
