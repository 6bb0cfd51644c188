"""``/api/v1/admin/…``: accounts, teams, rosters, categories, Open311 keys and service
points for admins. Thin: every route calls the service function the CLI or the import
calls (the rules live there), in one transaction, stamped with the admin for the audit
log (audit/actor.py). 401 signed out, 403 for every role but admin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from gis_service.access.refresh import after_points_change
from gis_service.admin import schemas as s
from gis_service.api.deps import AccessDep, AccessJobsDep, AdminDep, ConnDep, SettingsDep
from gis_service.api.responses import json_response
from gis_service.api.schemas import refusals
from gis_service.auth import users
from gis_service.auth.principal import Principal, Role
from gis_service.cases import categories, teams
from gis_service.db.engine import transaction
from gis_service.errors import Conflict, InvalidInput
from gis_service.imports import roster
from gis_service.open311 import keys
from gis_service.service_points import service as points
from gis_service.units.codes import CodeError, validate

router = APIRouter(prefix="/admin", tags=["admin"], responses=refusals(401, 403, 422))
Id = Annotated[int, Path(ge=0, le=2**31 - 1)]
#: writes may also refuse an unknown id (404) or a name taken (409)
WRITE = refusals(404, 409)


def _unit(code: str | None, field: str = "unit") -> str | None:
    """A unit code by the coding scheme (units/codes.py ``validate``); 422 naming
    ``field``."""
    if code is None:
        return None
    try:
        return validate(code)
    except CodeError as exc:
        raise InvalidInput(str(exc), field=field) from None


# --- accounts ---------------------------------------------------------------------------


@router.get("/users", summary="Accounts, filtered", response_model=s.UserList)
def list_users(
    conn: ConnDep,
    _: AdminDep,
    role: Annotated[str | None, Query(description="Only this role")] = None,
    team_id: Annotated[int | None, Query(description="Only this team's members")] = None,
    active: Annotated[bool | None, Query(description="Only (de)activated accounts")] = None,
    q: Annotated[str | None, Query(max_length=64, description="In username or name")] = None,
) -> JSONResponse:
    """Every account (auth/users.py ``list_users``), by id."""
    return json_response(
        {"users": users.list_users(conn, role=role, team_id=team_id, active=active, q=q or None)}
    )


@router.post(
    "/users",
    summary="Create an account",
    status_code=201,
    response_model=s.UserPublic,
    responses=WRITE,
)
def create_user(body: s.UserCreate, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """auth/users.py ``create_user``, the CLI's ``users create``: the role's scope levels,
    the team rule and the password length are checked there (422 naming the field; 409
    ``username`` taken). The account can sign in at once."""
    with transaction(settings) as conn:
        user = users.create_user(
            conn,
            username=body.username,
            password=body.password,
            role=body.role,
            scopes=body.scopes,
            team_id=body.team_id,
            display_name=body.display_name,
            phone=body.phone,
            email=body.email,
        )
    return json_response(user, 201)


@router.patch(
    "/users/{user_id}",
    summary="Change an account's role, scopes, team, name or phone",
    response_model=s.UserPublic,
    responses=WRITE,
)
def change_user(
    user_id: Id, body: s.UserUpdate, settings: SettingsDep, _: AdminDep
) -> JSONResponse:
    """auth/users.py ``update_user`` (the CLI's ``users change``): checked as at creation;
    a change of role, scopes or team ends the account's sessions at once."""
    given = body.model_dump(exclude_unset=True)
    with transaction(settings) as conn:
        user = users.get_user(conn, user_id)
        changed = users.update_user(conn, user["username"], **given)
    return json_response(changed)


def _set_active(settings, user_id: int, active: bool) -> dict[str, Any]:
    with transaction(settings) as conn:
        user = users.get_user(conn, user_id)
        users.set_active(conn, user["username"], active)
        return users.get_user(conn, user_id)


@router.post(
    "/users/{user_id}/deactivate",
    summary="Deactivate an account: its sessions end at once",
    response_model=s.UserPublic,
    responses=WRITE,
)
def deactivate_user(user_id: Id, settings: SettingsDep, principal: AdminDep) -> JSONResponse:
    """auth/users.py ``set_active`` (the CLI's ``users deactivate``): every session of the
    account ends at once (auth/sessions.py ``end_all``). An admin cannot deactivate
    themself (409)."""
    if principal.user_id == user_id:
        raise Conflict("you cannot deactivate your own account", field="user_id")
    return json_response(_set_active(settings, user_id, False))


@router.post(
    "/users/{user_id}/activate",
    summary="Reactivate an account",
    response_model=s.UserPublic,
    responses=WRITE,
)
def activate_user(user_id: Id, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """auth/users.py ``set_active``; the account signs in again with its password."""
    return json_response(_set_active(settings, user_id, True))


@router.post(
    "/users/{user_id}/password",
    summary="Reset a password (a given one, or a one-time password shown once)",
    response_model=s.PasswordResetPublic,
    responses=WRITE,
)
def reset_password(
    user_id: Id, body: s.PasswordReset, settings: SettingsDep, _: AdminDep
) -> JSONResponse:
    """auth/users.py ``reset_password``: sets ``password`` when given (``password`` null in
    the answer), else a random one returned here once and stored only hashed. The
    account's sessions end either way."""
    with transaction(settings) as conn:
        user = users.get_user(conn, user_id)
        new = users.reset_password(conn, user["username"], body.password)
        user = users.get_user(conn, user_id)
    return json_response({"user": user, "password": new})


# --- teams ------------------------------------------------------------------------------

ADMIN = Principal(role=Role.admin)


@router.get("/teams", summary="Every team, deactivated ones too", response_model=s.TeamList)
def list_teams(
    conn: ConnDep,
    _: AdminDep,
    unit: Annotated[str | None, Query(description="Teams serving this unit")] = None,
) -> JSONResponse:
    """cases/teams.py ``list_teams`` (the CLI's ``teams list``) with the inactive ones."""
    found = teams.list_teams(conn, ADMIN, _unit(unit), include_inactive=True)
    return json_response({"teams": found})


@router.post(
    "/teams",
    summary="Create a team",
    status_code=201,
    response_model=s.TeamPublic,
    responses=WRITE,
)
def create_team(body: s.TeamCreate, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """cases/teams.py ``create_team`` (the CLI's ``teams create``); it can be dispatched
    to at once (``GET /api/v1/teams``)."""
    with transaction(settings) as conn:
        team = teams.create_team(
            conn, name=body.name, kind=body.kind, unit_code=body.unit_code, phone=body.phone
        )
    return json_response(team, 201)


@router.patch(
    "/teams/{team_id}",
    summary="Rename, re-kind, re-phone or (de)activate a team",
    response_model=s.TeamPublic,
    responses=WRITE,
)
def change_team(
    team_id: Id, body: s.TeamUpdate, settings: SettingsDep, _: AdminDep
) -> JSONResponse:
    """cases/teams.py ``update_team``."""
    with transaction(settings) as conn:
        team = teams.update_team(conn, team_id, **body.model_dump(exclude_unset=True))
    return json_response(team)


@router.get(
    "/teams/{team_id}/members",
    summary="A team's member accounts",
    response_model=s.UserList,
    responses=refusals(404),
)
def team_members(conn: ConnDep, _: AdminDep, team_id: Id) -> JSONResponse:
    """The accounts of the team (auth/users.py ``list_users``), deactivated ones too."""
    teams.get_team(conn, team_id)
    return json_response({"users": users.list_users(conn, team_id=team_id)})


@router.post(
    "/teams/{team_id}/members",
    summary="Move a team-member account into the team",
    response_model=s.UserPublic,
    responses=WRITE,
)
def add_member(team_id: Id, body: s.MemberAdd, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """cases/teams.py ``add_member``: the account's sessions end (its scope changed)."""
    with transaction(settings) as conn:
        return json_response(teams.add_member(conn, team_id, body.user_id))


@router.delete(
    "/teams/{team_id}/members/{user_id}",
    summary="Take a member off the team (the account is deactivated)",
    response_model=s.UserPublic,
    responses=WRITE,
)
def remove_member(team_id: Id, user_id: Id, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """cases/teams.py ``remove_member``: a team member cannot be without a team, so the
    account is deactivated and its sessions end; move it with POST …/members instead."""
    with transaction(settings) as conn:
        return json_response(teams.remove_member(conn, team_id, user_id))


# --- rosters ----------------------------------------------------------------------------


@router.get(
    "/rosters",
    summary="A unit's whole roster",
    response_model=s.StaffList,
    responses=refusals(404),
)
def list_roster(
    conn: ConnDep,
    _: AdminDep,
    unit: Annotated[str, Query(max_length=20, description="Unit code")],
) -> JSONResponse:
    """imports/roster.py ``list_staff``: every entry of the unit, in roster order."""
    return json_response({"unit_code": unit, "staff": roster.list_staff(conn, _unit(unit))})


@router.post(
    "/rosters",
    summary="Add a person to a unit's roster",
    status_code=201,
    response_model=s.StaffPublic,
    responses=WRITE,
)
def add_staff(body: s.StaffSave, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """imports/roster.py ``save_staff``: the roster file's rules, row by row."""
    with transaction(settings) as conn:
        return json_response(roster.save_staff(conn, body.model_dump()), 201)


@router.put(
    "/rosters/{staff_id}",
    summary="Change a roster entry",
    response_model=s.StaffPublic,
    responses=WRITE,
)
def change_staff(
    staff_id: Id, body: s.StaffSave, settings: SettingsDep, _: AdminDep
) -> JSONResponse:
    """imports/roster.py ``save_staff``."""
    with transaction(settings) as conn:
        return json_response(roster.save_staff(conn, body.model_dump(), staff_id))


@router.delete(
    "/rosters/{staff_id}",
    summary="Remove a roster entry (answers what it was)",
    response_model=s.StaffPublic,
    responses=refusals(404),
)
def remove_staff(staff_id: Id, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """imports/roster.py ``remove_staff``."""
    with transaction(settings) as conn:
        return json_response(roster.remove_staff(conn, staff_id))


# --- categories -------------------------------------------------------------------------


@router.get("/categories", summary="The taxonomy tree, inactive too", response_model=s.CategoryTree)
def list_categories(conn: ConnDep, _: AdminDep) -> JSONResponse:
    """cases/categories.py ``list_categories`` (the CLI's ``categories list``)."""
    return json_response({"domains": categories.list_categories(conn, include_inactive=True)})


@router.patch(
    "/categories/{code}",
    summary="Change a category's names, deadline, handling level, public flag, activation",
    response_model=s.CategoryPublic,
    responses=WRITE,
)
def change_category(
    code: Annotated[str, Path(max_length=80)],
    body: s.CategoryUpdate,
    settings: SettingsDep,
    _: AdminDep,
) -> JSONResponse:
    """cases/categories.py ``update_category``: the taxonomy file's rules."""
    with transaction(settings) as conn:
        return json_response(
            categories.update_category(conn, code, body.model_dump(exclude_unset=True))
        )


@router.post(
    "/categories",
    summary="Create a sub-category",
    status_code=201,
    response_model=s.CategoryPublic,
    responses=WRITE,
)
def create_subcategory(
    body: s.SubcategoryCreate, settings: SettingsDep, _: AdminDep
) -> JSONResponse:
    """cases/categories.py ``create_subcategory``: defaults from the domain."""
    item = body.model_dump(exclude={"parent_code"})
    with transaction(settings) as conn:
        return json_response(categories.create_subcategory(conn, body.parent_code, item), 201)


# --- Open311 keys -----------------------------------------------------------------------


@router.get("/open311-keys", summary="Open311 client apps", response_model=s.ClientList)
def list_keys(conn: ConnDep, _: AdminDep) -> JSONResponse:
    """open311/keys.py ``list_keys`` (the CLI's ``open311 keys list``): the first
    characters of each key, never the key."""
    return json_response({"clients": keys.list_keys(conn)})


@router.post(
    "/open311-keys",
    summary="Create a client app's key (shown once)",
    status_code=201,
    response_model=s.ClientCreated,
    responses=WRITE,
)
def create_key(body: s.ClientCreate, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """open311/keys.py ``create_key``: the key is in this answer only."""
    with transaction(settings) as conn:
        client, key = keys.create_key(conn, body.name, body.scope_code)
    return json_response({"client": client, "api_key": key}, 201)


@router.post(
    "/open311-keys/{client_id}/revoke",
    summary="Revoke a client app's key at once",
    response_model=s.ClientPublic,
    responses=WRITE,
)
def revoke_key(client_id: Id, settings: SettingsDep, _: AdminDep) -> JSONResponse:
    """open311/keys.py ``revoke_key``; revoking twice keeps the first time."""
    with transaction(settings) as conn:
        client = keys.get_client(conn, client_id)
        return json_response(keys.revoke_key(conn, client["name"]))


# --- service points ---------------------------------------------------------------------


@router.get(
    "/service-points", summary="Every service point, closed too", response_model=s.AdminPointList
)
def list_points(
    conn: ConnDep,
    _: AdminDep,
    kind: Annotated[str | None, Query(examples=["red_home"])] = None,
    closed: Annotated[bool | None, Query(description="Only closed (true) or open (false)")] = None,
) -> JSONResponse:
    """service_points/service.py ``admin_list``."""
    return json_response({"points": points.admin_list(conn, kind=kind, closed=closed)})


def _changed(point: dict, access, jobs, settings) -> JSONResponse:
    """The point, after starting the access refresh (access/refresh.py)."""
    started = after_points_change(access, jobs, settings)
    return json_response({**point, "refresh": [j.public() for j in started if j is not None]})


@router.post(
    "/service-points",
    summary="Add a service point",
    status_code=201,
    response_model=s.PointChanged,
    responses=WRITE,
)
def add_point(
    body: s.PointCreate,
    settings: SettingsDep,
    access: AccessDep,
    jobs: AccessJobsDep,
    _: AdminDep,
) -> JSONResponse:
    """service_points/service.py ``add_point`` (the point import's rules); then the
    circles and building distances are refreshed in the background."""
    with transaction(settings) as conn:
        point = points.add_point(conn, body.model_dump())
    response = _changed(point, access, jobs, settings)
    response.status_code = 201
    return response


@router.post(
    "/service-points/{point_id}/move",
    summary="Move a service point",
    response_model=s.PointChanged,
    responses=WRITE,
)
def move_point(
    point_id: Id,
    body: s.PointMove,
    settings: SettingsDep,
    access: AccessDep,
    jobs: AccessJobsDep,
    _: AdminDep,
) -> JSONResponse:
    """service_points/service.py ``move_point``; then the access refresh."""
    with transaction(settings) as conn:
        point = points.move_point(conn, point_id, body.lon, body.lat)
    return _changed(point, access, jobs, settings)


def _close(point_id, closed, settings, access, jobs) -> JSONResponse:
    with transaction(settings) as conn:
        point = points.set_closed(conn, point_id, closed)
    return _changed(point, access, jobs, settings)


@router.post(
    "/service-points/{point_id}/close",
    summary="Close a service point (it leaves every list, map and figure)",
    response_model=s.PointChanged,
    responses=WRITE,
)
def close_point(
    point_id: Id, settings: SettingsDep, access: AccessDep, jobs: AccessJobsDep, _: AdminDep
) -> JSONResponse:
    """service_points/service.py ``set_closed``; then the access refresh."""
    return _close(point_id, True, settings, access, jobs)


@router.post(
    "/service-points/{point_id}/reopen",
    summary="Reopen a closed service point",
    response_model=s.PointChanged,
    responses=WRITE,
)
def reopen_point(
    point_id: Id, settings: SettingsDep, access: AccessDep, jobs: AccessJobsDep, _: AdminDep
) -> JSONResponse:
    """service_points/service.py ``set_closed``; then the access refresh."""
    return _close(point_id, False, settings, access, jobs)
