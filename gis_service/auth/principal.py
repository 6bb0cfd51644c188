"""Who is asking: the role, the scope units, the team. What each may see and do is
decided in one place, :mod:`gis_service.auth.scope`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    grid_worker = "grid_worker"
    team_member = "team_member"
    supervisor = "supervisor"
    planner = "planner"
    admin = "admin"
    client = "client"  # an Open311 client app, by api_key
    public = "public"  # nobody signed in: the public view (Open311 reads without a key)


#: each role's name for people (zh, en); the phone and the pages read them from here
ROLE_NAMES: dict[Role, tuple[str, str]] = {
    Role.grid_worker: ("网格员", "Grid worker"),
    Role.team_member: ("服务队员", "Team member"),
    Role.supervisor: ("督办人员", "Supervisor"),
    Role.planner: ("规划人员", "Planner"),
    Role.admin: ("管理员", "Administrator"),
    Role.client: ("接入应用", "Client app"),
    Role.public: ("公众", "Public"),
}
ROLE_NAMES_ZH = {r: zh for r, (zh, _en) in ROLE_NAMES.items()}
REPORTERS = frozenset({Role.grid_worker, Role.supervisor, Role.admin, Role.client})
CASE_READERS = frozenset(
    {Role.grid_worker, Role.team_member, Role.supervisor, Role.admin, Role.client}
)


@dataclass(frozen=True)
class Principal:
    role: Role
    user_id: int | None = None
    username: str = ""
    display_name: str = ""
    scopes: tuple[str, ...] = ()
    team_id: int | None = None
    client_id: int | None = None
    token_version: int = 0
    # the sign-in this principal's token belongs to (auth/sessions.py)
    session_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def public(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role.value,
            "role_zh": ROLE_NAMES_ZH[self.role],
            "scopes": list(self.scopes),
            "team_id": self.team_id,
            "client_id": self.client_id,
        }
