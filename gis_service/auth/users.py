"""Accounts: created by an admin (CLI or the admin pages), signed in with a password,
scoped to units."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from gis_service.auth.passwords import MIN_LENGTH, dummy_hash, hash_password, verify_password
from gis_service.auth.principal import Role
from gis_service.errors import Conflict, InvalidInput, NotFound, Unauthorized
from gis_service.units.codes import Level

# Which unit levels each role may be scoped to.
SCOPE_LEVELS: dict[Role, tuple[str, ...]] = {
    Role.grid_worker: (Level.grid,),
    Role.supervisor: (Level.district, Level.subdistrict, Level.community),
    Role.planner: (Level.district, Level.subdistrict, Level.community),
}
USER_COLUMNS = (
    "id, username, display_name, role, scopes, team_id, phone, email, active, token_version, "
    "created_at"
)
#: an e-mail address for notifications (migration 0014's CHECK on app_user.email, a plain
#: shape check within RFC 5321's lengths; deliverability is the SMTP server's answer)
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
EMAIL_MAX = 254


def check_email(email: str | None) -> str | None:
    """The address, stripped, or None for none; 422 naming ``email`` when malformed."""
    import re

    if email is None or not email.strip():
        return None
    email = email.strip()
    if len(email) > EMAIL_MAX or not re.match(EMAIL_PATTERN, email):
        raise InvalidInput(f"email {email!r} is not an e-mail address", field="email")
    return email


def check_phone(phone: str | None) -> str | None:
    """The number, stripped, or None for none; 422 naming ``phone`` when the SMS channel
    could not send to it (notify/channels/sms.py ``phone_number``, the one rule: 3–15
    digits, ITU-T E.164, an optional +, spaces, hyphens and brackets allowed)."""
    from gis_service.notify.channels import DeliveryError
    from gis_service.notify.channels.sms import phone_number

    if phone is None or not phone.strip():
        return None
    phone = phone.strip()
    try:
        phone_number(phone)
    except DeliveryError:
        raise InvalidInput(
            f"phone {phone!r} is not a phone number (3–15 digits)", field="phone"
        ) from None
    return phone


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
    email: str | None = None,
) -> dict[str, Any]:
    role, scopes = check_assignment(conn, role, scopes, team_id)
    email = check_email(email)
    phone = check_phone(phone)
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"the password needs at least {MIN_LENGTH} characters", field="password")
    if conn.execute(text("SELECT 1 FROM app_user WHERE username = :u"), {"u": username}).first():
        raise Conflict(f"the username {username!r} is taken", field="username")
    try:
        with conn.begin_nested():
            row = (
                conn.execute(
                    text(
                        f"""
        INSERT INTO app_user (username, password_hash, display_name, role, scopes, team_id,
                              phone, email)
        VALUES (:username, :hash, :name, :role, :scopes, :team_id, :phone, :email)
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
                        "email": email,
                    },
                )
                .mappings()
                .one()
            )
    except IntegrityError as exc:
        # the table's CHECK on usernames (migration 0002) is the rule: name the field
        if "app_user_username_check" not in str(exc.orig):
            raise
        raise InvalidInput(
            f"username {username!r}: 2–64 letters, digits or _ . @ -", field="username"
        ) from None
    return dict(row)


def account_role(value: Role | str) -> Role:
    """The role of an account: any of ``vocabulary.ACCOUNT_ROLES`` but the public (nobody
    signed in); 422 naming ``role`` otherwise. Client apps get Open311 keys instead."""
    try:
        role = Role(value)
    except ValueError:
        role = None
    if role is Role.client:
        raise InvalidInput("client apps get Open311 keys, not accounts", field="role")
    if role is None or role is Role.public:
        roles = ", ".join(r.value for r in Role if r not in (Role.client, Role.public))
        raise InvalidInput(f"role must be one of {roles}", field="role")
    return role


def check_assignment(
    conn: Connection, role: Role | str, scopes: list[str] | None, team_id: int | None
) -> tuple[Role, list[str]]:
    """The one rule for what an account works on, for creating and changing one: grid
    workers are scoped to grids, supervisors and planners to a district, subdistrict or
    community (``SCOPE_LEVELS``), admins and team members to nothing; team members, and
    only they, belong to an active team. Returns the role and the scopes without
    duplicates; 422 naming ``role``, ``scope`` or ``team``."""
    role = account_role(role)
    scopes = list(dict.fromkeys(scopes or []))
    if role in SCOPE_LEVELS:
        if not scopes:
            raise InvalidInput(
                f"a {role.value} needs --scope (unit codes at level "
                f"{' or '.join(SCOPE_LEVELS[role])})",
                field="scopes",
            )
        _check_scopes(conn, scopes, SCOPE_LEVELS[role])
    elif scopes:
        raise InvalidInput(f"a {role.value} takes no scope", field="scopes")
    if (role is Role.team_member) != (team_id is not None):
        raise InvalidInput(
            "team members, and only they, belong to a team (--team)", field="team_id"
        )
    if (
        team_id is not None
        and not conn.execute(
            text("SELECT 1 FROM team WHERE id = :id AND active"), {"id": team_id}
        ).first()
    ):
        raise InvalidInput(f"no active team with id {team_id}", field="team_id")
    return role, scopes


def _check_scopes(conn: Connection, scopes: list[str], levels: tuple[str, ...]) -> None:
    found = dict(
        conn.execute(
            text("SELECT code, level FROM admin_unit WHERE code = ANY(:c)"), {"c": scopes}
        ).all()
    )
    for code in scopes:
        if code not in found:
            raise InvalidInput(f"no unit with code {code}", field="scopes")
        if found[code] not in levels:
            raise InvalidInput(
                f"unit {code} is a {found[code]}; this role is scoped to "
                f"{' or '.join(levels)} units",
                field="scopes",
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


def list_users(
    conn: Connection,
    *,
    role: str | None = None,
    team_id: int | None = None,
    active: bool | None = None,
    q: str | None = None,
) -> list[dict[str, Any]]:
    """Accounts by id, optionally only those of a role, a team, an activation state, or
    whose username or display name contains ``q``."""
    where, params = ["TRUE"], {}
    if role is not None:
        where.append("role = :role")
        params["role"] = account_role(role).value
    if team_id is not None:
        where.append("team_id = :team")
        params["team"] = team_id
    if active is not None:
        where.append("active = :active")
        params["active"] = active
    if q:
        where.append("(strpos(username, :q) > 0 OR strpos(display_name, :q) > 0)")
        params["q"] = q
    sql = f"SELECT {USER_COLUMNS} FROM app_user WHERE {' AND '.join(where)} ORDER BY id"
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def get_user(conn: Connection, user_id: int) -> dict[str, Any]:
    """One account by id; 404 ``not_found``."""
    row = (
        conn.execute(text(f"SELECT {USER_COLUMNS} FROM app_user WHERE id = :id"), {"id": user_id})
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no user with id {user_id}")
    return dict(row)


#: a member not given to :func:`update_user` (None is a value there: no team, no phone)
_UNSET: Any = object()


def update_user(
    conn: Connection,
    username: str,
    *,
    role: Role | str | None = None,
    scopes: list[str] | None = None,
    team_id: int | Any | None = _UNSET,
    display_name: str | None = None,
    phone: str | Any | None = _UNSET,
    email: str | Any | None = _UNSET,
) -> dict[str, Any]:
    """Change an account's role, scopes, team (checked as at creation,
    :func:`check_assignment`), display name or phone. A change of role, scopes or team
    bumps the token version and ends the account's sessions at once
    (auth/sessions.py ``end_all``): what a signed-in person may see is fixed at sign-in."""
    current = _by_username(conn, username)
    new_role = account_role(role) if role is not None else Role(current["role"])
    new_scopes = list(scopes) if scopes is not None else list(current["scopes"])
    new_team = current["team_id"] if team_id is _UNSET else team_id
    if role is not None and scopes is None and new_role not in SCOPE_LEVELS:
        new_scopes = []
    if role is not None and team_id is _UNSET and new_role is not Role.team_member:
        new_team = None
    new_role, new_scopes = check_assignment(conn, new_role, new_scopes, new_team)
    assignment = (new_role.value, new_scopes, new_team) != (
        current["role"],
        list(current["scopes"]),
        current["team_id"],
    )
    row = (
        conn.execute(
            text(
                f"""
        UPDATE app_user SET role = :role, scopes = :scopes, team_id = :team,
               display_name = :name, phone = :phone, email = :email,
               token_version = token_version + CASE WHEN :bump THEN 1 ELSE 0 END
         WHERE username = :u RETURNING {USER_COLUMNS}
        """
            ),
            {
                "role": new_role.value,
                "scopes": new_scopes,
                "team": new_team,
                "name": (display_name or "").strip() or current["display_name"],
                "phone": current["phone"] if phone is _UNSET else check_phone(phone),
                "email": current["email"] if email is _UNSET else check_email(email),
                "bump": assignment,
                "u": username,
            },
        )
        .mappings()
        .one()
    )
    if assignment:
        _end_sessions(conn, row["id"])
    return dict(row)


def _by_username(conn: Connection, username: str) -> dict[str, Any]:
    row = (
        conn.execute(
            text(f"SELECT {USER_COLUMNS} FROM app_user WHERE username = :u"), {"u": username}
        )
        .mappings()
        .first()
    )
    if row is None:
        raise InvalidInput(f"no user {username!r}", field="username")
    return dict(row)


def _end_sessions(conn: Connection, user_id: int) -> None:
    # auth/sessions.py imports this module: import it at call time
    from gis_service.auth import sessions

    sessions.end_all(conn, user_id)


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
    _end_sessions(conn, _by_username(conn, username)["id"])


def set_password(conn: Connection, username: str, password: str) -> None:
    """Set a new password; the account's sessions end at once (token version bumped and
    sessions revoked). 422 naming ``password`` when shorter than ``MIN_LENGTH``."""
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
    _end_sessions(conn, _by_username(conn, username)["id"])


def reset_password(conn: Connection, username: str, password: str | None = None) -> str | None:
    """An admin's reset: set ``password`` when given (returns None), else a new random
    one (``secrets``, 16 URL-safe characters) that is returned here once and stored only
    as its hash. Either way the account's sessions end (:func:`set_password`)."""
    new = password if password is not None else secrets.token_urlsafe(12)
    set_password(conn, username, new)
    return None if password is not None else new
