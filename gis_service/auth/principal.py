"""Who is asking, and the SQL that limits every case query to what they may see.

Jurisdiction is a property of the query, never of the page: lists, details, photos,
statistics, maps, tiles and Open311 all add ``case_filter(principal)`` to their WHERE.
Scopes are unit codes; the code scheme makes "inside unit X" the prefix test
``unit_code LIKE 'X%'``, which the text_pattern_ops index on cases.unit_code answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gis_service.errors import Forbidden


class Role(StrEnum):
    grid_worker = "grid_worker"
    team_member = "team_member"
    supervisor = "supervisor"
    planner = "planner"
    admin = "admin"
    client = "client"  # an Open311 client app, by api_key


ROLE_NAMES_ZH = {
    Role.grid_worker: "网格员",
    Role.team_member: "服务队员",
    Role.supervisor: "督办人员",
    Role.planner: "规划人员",
    Role.admin: "管理员",
    Role.client: "接入应用",
}
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
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def unrestricted(self) -> bool:
        """Admins, and client apps whose key has no scope, see the whole coverage."""
        return self.role is Role.admin or (self.role is Role.client and not self.scopes)

    def report_scopes(self) -> list[str] | None:
        """Units a report may be located in; None means anywhere covered."""
        if self.role not in REPORTERS:
            raise Forbidden(f"a {self.role.value} cannot report cases")
        return None if self.unrestricted else list(self.scopes)

    def require(self, *roles: Role, what: str) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"{what} needs one of the roles: {allowed} (you are {self.role.value})")

    def require_case_reader(self) -> None:
        if self.role not in CASE_READERS:
            raise Forbidden("planners see statistics and maps, not individual cases")

    def covers_unit(self, code: str) -> bool:
        return self.unrestricted or any(code.startswith(s) for s in self.scopes)

    def case_filter(self, alias: str = "c") -> tuple[str, dict[str, Any]]:
        """SQL (with named parameters) true for the cases this principal may see."""
        if self.unrestricted:
            return "TRUE", {}
        if self.role is Role.team_member:
            return (
                f"({alias}.team_history @> ARRAY[CAST(:scope_team AS integer)] "
                f"AND {alias}.team_history <> '{{}}')",
                {"scope_team": self.team_id},
            )
        if not self.scopes:
            return "FALSE", {}
        terms = [f"{alias}.unit_code LIKE :scope_{i}" for i in range(len(self.scopes))]
        return (
            "(" + " OR ".join(terms) + ")",
            {f"scope_{i}": s + "%" for i, s in enumerate(self.scopes)},
        )

    def inside_filter(self, column: str) -> tuple[str, dict[str, Any]]:
        """SQL true for unit codes inside the principal's scopes (not the units above)."""
        if self.unrestricted:
            return "TRUE", {}
        terms = [f"{column} LIKE :inside_{i}" for i in range(len(self.scopes))]
        return (
            "(" + " OR ".join(terms or ["FALSE"]) + ")",
            {f"inside_{i}": s + "%" for i, s in enumerate(self.scopes)},
        )

    def unit_filter(self, column: str) -> tuple[str, dict[str, Any]]:
        """SQL true for units inside the principal's scopes or above them (the chain a
        grid worker sees: their district, subdistrict and community, not the neighbours)."""
        if self.unrestricted:
            return "TRUE", {}
        terms, params = [], {}
        for i, scope in enumerate(self.scopes):
            terms.append(f"({column} LIKE :unit_in_{i} OR starts_with(:unit_of_{i}, {column}))")
            params[f"unit_in_{i}"], params[f"unit_of_{i}"] = scope + "%", scope
        return "(" + " OR ".join(terms or ["FALSE"]) + ")", params

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
