"""Request (``XCreate``/``XUpdate``) and answer (``XPublic``) models of the admin API.

Requests refuse members they do not list (a misspelt field is a 422 naming it, not a
silently ignored change); the rules on values live in the services the routes call
(auth/users.py, cases/teams.py, cases/categories.py, imports/roster.py, open311/keys.py,
service_points/service.py), not here.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gis_service.api.schemas import Public


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


# --- accounts ---------------------------------------------------------------------------


class UserPublic(Public):
    id: int
    username: str
    display_name: str
    role: str
    scopes: list[str]
    team_id: int | None
    phone: str | None
    email: str | None = None
    active: bool
    created_at: datetime


class UserList(Public):
    users: list[UserPublic]


class UserCreate(Request):
    username: str = Field(description="Sign-in name: 2–64 letters, digits or _ . @ -")
    password: str = Field(description="At least 8 characters")
    role: str = Field(description="An account role (vocabulary account_roles, not public)")
    scopes: list[str] = Field(
        default_factory=list,
        description="Unit codes (grid workers: grids; supervisors, "
        "planners: district, subdistricts or communities)",
    )
    team_id: int | None = Field(None, description="Team members: their team")
    display_name: str | None = None
    phone: str | None = None
    email: str | None = Field(None, description="Where e-mail notifications go")


class UserUpdate(Request):
    """Members left out are kept; a new role without scopes or team clears those."""

    role: str | None = None
    scopes: list[str] | None = None
    team_id: int | None = None
    display_name: str | None = None
    phone: str | None = None
    email: str | None = None


class PasswordReset(Request):
    password: str | None = Field(
        None, description="The new password; without it a one-time password is made"
    )


class PasswordResetPublic(Public):
    user: UserPublic
    password: str | None = Field(
        description="The generated password, shown this once (null when one was given)"
    )


# --- teams ------------------------------------------------------------------------------


class TeamPublic(Public):
    id: int
    name: str
    kind: str
    unit_code: str
    phone: str | None
    active: bool


class TeamRow(TeamPublic):
    unit_name: str | None = None
    kind_zh: str | None = None
    kind_en: str | None = None
    members: int | None = None


class TeamList(Public):
    teams: list[TeamRow]


class TeamCreate(Request):
    name: str
    kind: str = Field(description="A team kind (vocabulary team_kinds)")
    unit_code: str = Field(description="The unit the team serves")
    phone: str | None = None


class TeamUpdate(Request):
    name: str | None = None
    kind: str | None = None
    phone: str | None = None
    active: bool | None = None


class MemberAdd(Request):
    user_id: int = Field(description="A team-member account; it moves to this team")


# --- rosters ----------------------------------------------------------------------------


class StaffPublic(Public):
    id: int
    unit_code: str
    role: str
    name: str
    phone: str | None
    sort: int


class StaffList(Public):
    unit_code: str
    staff: list[StaffPublic]


class StaffSave(Request):
    unit_code: str
    role: str = Field(description="A roster role (vocabulary staff_roles)")
    name: str
    phone: str | None = None
    sort: int = 0


# --- categories -------------------------------------------------------------------------


class CategoryPublic(Public):
    code: str
    parent_code: str | None
    name_zh: str
    name_en: str
    deadline_hours: int
    handling_level: str
    public: bool
    active: bool


class CategoryNode(CategoryPublic):
    children: list[CategoryPublic] = Field(default_factory=list)


class CategoryTree(Public):
    domains: list[CategoryNode]


class CategoryUpdate(Request):
    name_zh: str | None = None
    name_en: str | None = None
    deadline_hours: int | None = Field(None, description="Hours to resolve; > 0")
    handling_level: str | None = Field(None, description="vocabulary handling levels")
    public: bool | None = None
    active: bool | None = None


class SubcategoryCreate(Request):
    parent_code: str = Field(description="The active domain it belongs to")
    code: str = Field(description="'domain.name', e.g. environment.graffiti")
    name_zh: str
    name_en: str
    deadline_hours: int | None = Field(None, description="Default: the domain's")
    handling_level: str | None = Field(None, description="Default: the domain's")
    public: bool | None = Field(None, description="Default: the domain's")


# --- Open311 keys -----------------------------------------------------------------------


class ClientPublic(Public):
    id: int
    name: str
    key_prefix: str
    scope_code: str | None
    created_at: datetime
    revoked_at: datetime | None


class ClientList(Public):
    clients: list[ClientPublic]


class ClientCreate(Request):
    name: str = Field(description="The client app, e.g. 12345-hotline")
    scope_code: str | None = Field(None, description="Unit it may report and read in")


class ClientCreated(Public):
    client: ClientPublic
    api_key: str = Field(description="The key, shown this once (stored only as a hash)")


# --- service points ---------------------------------------------------------------------


class AdminPoint(Public):
    id: int
    kind: str
    categories: list[str]
    name: str
    address: str | None
    opening_hours: str | None
    phone: str | None
    unit_code: str | None
    lon: float
    lat: float
    closed_at: datetime | None


class AdminPointList(Public):
    points: list[AdminPoint]


class PointChanged(AdminPoint):
    refresh: list[dict] = Field(
        default_factory=list, description="The access jobs started (access/jobs.py status)"
    )


class PointCreate(Request):
    kind: str = Field(description="A service kind (GET /api/v1/service-kinds)")
    name: str
    lon: float = Field(ge=-180, le=180, description="WGS-84 longitude")
    lat: float = Field(ge=-90, le=90, description="WGS-84 latitude")
    categories: list[str] | None = Field(None, description="Default: the kind's")
    address: str | None = None
    opening_hours: str | None = None
    phone: str | None = None


class PointMove(Request):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
