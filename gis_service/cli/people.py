"""``gis-service users`` and ``gis-service teams``: accounts and service teams."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from gis_service.auth import users as users_service
from gis_service.auth.principal import Principal, Role
from gis_service.cases import teams as teams_service
from gis_service.cli.session import database

users_app = typer.Typer(help="Accounts: create, list, deactivate.", no_args_is_help=True)
teams_app = typer.Typer(help="Service teams that cases are dispatched to.", no_args_is_help=True)
console = Console()
ROLES = [r.value for r in Role if r not in (Role.client, Role.public)]


@users_app.command("create")
def create(
    username: str = typer.Option(..., help="Sign-in name (letters, digits, _ . @ -)."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters."
    ),
    role: str = typer.Option(..., help=" | ".join(ROLES)),
    scope: list[str] = typer.Option(None, help="Unit code; repeat for several grids."),
    team: int = typer.Option(None, help="Team id (team members)."),
    name: str = typer.Option(None, help="Display name, e.g. 张伟."),
    phone: str = typer.Option(None, help="Mobile number for SMS notifications."),
    email: str = typer.Option(None, help="E-mail address for e-mail notifications."),
) -> None:
    """Create an account; grid workers are scoped to grids, supervisors and planners to a
    community, subdistrict or district, team members to a team. ``--email`` and
    ``--phone`` are where its notifications go (checked by auth/users.py: a malformed
    one is named, exit 2, nothing written)."""
    with database() as conn:  # the role is checked where accounts are (auth/users.py)
        user = users_service.create_user(
            conn,
            username=username,
            password=password,
            role=role,
            scopes=scope or [],
            team_id=team,
            display_name=name,
            phone=phone,
            email=email,
        )
    scopes = ", ".join(user["scopes"]) or (
        f"team {user['team_id']}" if user["team_id"] else "everything"
    )
    reach = "".join(f", {k} {user[k]}" for k in ("email", "phone") if user[k])
    console.print(
        f"created user {user['username']} (id {user['id']}, {user['role']}, scope: {scopes}{reach})"
    )


@users_app.command("list")
def list_users() -> None:
    with database() as conn:
        rows = users_service.list_users(conn)
    # a narrow terminal folds values over lines rather than cutting them; the username
    # (what the other commands take) stays on one line
    table = Table("id")
    table.add_column("username", no_wrap=True)
    for column in ("name", "role", "scope", "team", "email", "phone", "active"):
        table.add_column(column, overflow="fold")
    for u in rows:
        table.add_row(
            str(u["id"]),
            u["username"],
            u["display_name"],
            u["role"],
            ", ".join(u["scopes"]),
            str(u["team_id"] or ""),
            u["email"] or "",
            u["phone"] or "",
            "yes" if u["active"] else "no",
        )
    console.print(table)
    console.print(f"{len(rows)} users")


@users_app.command("change")
def change(
    username: str,
    role: str = typer.Option(None, help=" | ".join(ROLES)),
    scope: list[str] = typer.Option(None, help="Unit code; repeat for several grids."),
    team: int = typer.Option(None, help="Team id (team members)."),
    phone: str = typer.Option(None, help='Mobile number for SMS; "" removes it.'),
    email: str = typer.Option(None, help='E-mail address for notifications; "" removes it.'),
) -> None:
    """Change an account's role, scopes or team (the same rules as at creation; its
    sessions end at once), or where its notifications go (``--email``, ``--phone``;
    a malformed one is named, exit 2, nothing written)."""
    with database() as conn:
        user = users_service.update_user(
            conn,
            username,
            role=role,
            scopes=scope or None,
            **({"team_id": team} if team is not None else {}),
            **({"phone": phone} if phone is not None else {}),
            **({"email": email} if email is not None else {}),
        )
    ended = role is not None or scope or team is not None
    console.print(
        f"changed {user['username']}: {user['role']}, scope {', '.join(user['scopes']) or '-'}, "
        f"team {user['team_id'] or '-'}, email {user['email'] or '-'}, "
        f"phone {user['phone'] or '-'}" + ("; their sessions have ended" if ended else "")
    )


@users_app.command("deactivate")
def deactivate(username: str) -> None:
    """Deactivate and revoke every token the user holds."""
    with database() as conn:
        users_service.set_active(conn, username, False)
    console.print(f"deactivated {username}; their tokens no longer work")


@users_app.command("password")
def password(
    username: str,
    new_password: str = typer.Option(
        ..., "--password", prompt=True, hide_input=True, confirmation_prompt=True
    ),
) -> None:
    """Set a new password (and revoke the old tokens)."""
    with database() as conn:
        users_service.set_password(conn, username, new_password)
    console.print(f"password changed for {username}")


@teams_app.command("create")
def create_team(
    name: str = typer.Option(..., help="e.g. 经八路社区两委"),
    kind: str = typer.Option(..., help=" | ".join(teams_service.TEAM_KINDS)),
    unit: str = typer.Option(..., help="Code of the unit the team serves."),
    phone: str = typer.Option(None),
) -> None:
    with database() as conn:
        team = teams_service.create_team(conn, name=name, kind=kind, unit_code=unit, phone=phone)
    console.print(f"team {team['id']}: {team['name']} ({team['kind']}, unit {team['unit_code']})")


@teams_app.command("list")
def list_teams(unit: str = typer.Option(None, help="Teams serving this unit.")) -> None:
    with database() as conn:
        rows = teams_service.list_teams(conn, Principal(role=Role.admin), unit)
    table = Table("id", "name", "kind", "unit", "members")
    for t in rows:
        table.add_row(
            str(t["id"]),
            t["name"],
            t["kind_zh"],
            f"{t['unit_code']} {t['unit_name']}",
            str(t["members"]),
        )
    console.print(table)
    console.print(f"{len(rows)} teams")
