"""Sign-in: the OAuth2 password flow (FastAPI's convention) and who-am-I."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from gis_service.api.deps import ConnDep, PrincipalDep, SettingsDep, ThrottleDep
from gis_service.api.schemas import refusals
from gis_service.auth import tokens, users
from gis_service.auth.schemas import PrincipalPublic, TokenPublic
from gis_service.errors import Unauthorized

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/token",
    summary="Sign in with username and password; returns a bearer token",
    response_model=TokenPublic,
    response_model_exclude_unset=True,
    responses=refusals(401, 422, 429),
)
def token(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> dict[str, Any]:
    """Five wrong passwords for one username from one address in 15 minutes: 429 with
    Retry-After until the oldest of them is 15 minutes old."""
    address = request.client.host if request.client else "-"
    throttle.check(form.username, address)
    try:
        user = users.authenticate(conn, form.username, form.password)
    except Unauthorized:
        throttle.failed(form.username, address)
        raise
    throttle.succeeded(form.username, address)
    access_token, lifetime = tokens.issue(user, settings)
    return {
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": lifetime,
        "user": {
            k: user[k] for k in ("id", "username", "display_name", "role", "scopes", "team_id")
        },
    }


@router.get(
    "/me",
    summary="The signed-in user, role and jurisdiction",
    response_model=PrincipalPublic,
    response_model_exclude_unset=True,
    responses=refusals(401, 403, 422),
)
def me(principal: PrincipalDep) -> dict[str, Any]:
    return principal.public()
