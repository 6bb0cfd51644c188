"""Sign-in (the OAuth2 password flow, FastAPI's convention), refresh, sign-out, who-am-I.

The rules live in auth/sessions.py (sessions, refresh-token rotation) and auth/throttle.py
(failed sign-ins); these routes only read the form and answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.security import OAuth2PasswordRequestForm

from gis_service.api.deps import PrincipalDep, SettingsDep
from gis_service.api.schemas import refusals
from gis_service.auth import sessions
from gis_service.auth.schemas import PrincipalPublic, SignedOutPublic, TokenPublic
from gis_service.auth.throttle import client_address

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/token",
    summary="Sign in with username and password; returns an access and a refresh token",
    response_model=TokenPublic,
    response_model_exclude_unset=True,
    responses=refusals(401, 422, 429),
)
def token(
    request: Request,
    settings: SettingsDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> dict[str, Any]:
    """RFC 6749 §4.3 (resource owner password credentials), answer §5.1: ``access_token``
    (JWT, ``expires_in`` seconds, GIS_ACCESS_TOKEN_SECONDS), ``refresh_token`` (single use,
    POST /api/v1/auth/refresh) and the user. 401 wrong username or password or a
    deactivated account; 429 with Retry-After after 5 failures for one username from one
    address in 15 minutes, or failures for 20 usernames from one address (auth/throttle.py,
    the numbers are settings)."""
    grant = sessions.sign_in(
        settings, form.username, form.password, client_address(request), "bearer"
    )
    return grant.answer()


@router.post(
    "/refresh",
    summary="Exchange a refresh token for new tokens (grant_type=refresh_token)",
    response_model=TokenPublic,
    response_model_exclude_unset=True,
    responses=refusals(400, 422),
)
def refresh(
    settings: SettingsDep,
    grant_type: Annotated[str, Form(pattern="^refresh_token$")],
    refresh_token: Annotated[str, Form(min_length=1, max_length=200)],
) -> dict[str, Any]:
    """RFC 6749 §6, form-encoded: ``grant_type=refresh_token&refresh_token=…``. Answers
    like /auth/token with a new access token and a NEW refresh token; the one sent is used
    up (rotation, RFC 9700 §4.14.2). 400 ``invalid_grant`` (RFC 6749 §5.2) for an unknown,
    used, signed-out or expired refresh token or a deactivated account or changed
    password; sending a used one again also ends its session for everyone holding it."""
    return sessions.refresh(settings, refresh_token).answer()


@router.post(
    "/handoff",
    summary="The phone app's tokens for the page sign-in (the front door's cookie)",
    response_model=TokenPublic,
    response_model_exclude_unset=True,
    responses=refusals(401, 403, 422),
)
def handoff(settings: SettingsDep, principal: PrincipalDep) -> dict[str, Any]:
    """Answers like /auth/token, for the account signed in at ``/``: the phone app (``/m/``)
    asks for it when it has no tokens of its own, so a grid worker or a team member signs
    in once. Needs the page cookie with our pages' write header (api/deps.py
    ``PAGE_WRITE_HEADER``) — another site cannot mint tokens with a visitor's cookie — or
    a bearer token. 401 without a live sign-in (auth/sessions.py ``hand_off``)."""
    return sessions.hand_off(settings, principal).answer()


@router.post(
    "/sign-out",
    summary="End this sign-in: its access and refresh tokens stop working at once",
    response_model=SignedOutPublic,
    responses=refusals(401, 403, 422),
)
def sign_out(settings: SettingsDep, principal: PrincipalDep) -> dict[str, Any]:
    """Revokes the session the bearer token belongs to (every access token of it and its
    refresh-token family; ASVS V3.3.1). ``{"signed_out": true}``; 401 if it had already
    ended."""
    sessions.end(settings, principal)
    return {"signed_out": True}


@router.get(
    "/me",
    summary="The signed-in user, role and jurisdiction",
    response_model=PrincipalPublic,
    response_model_exclude_unset=True,
    responses=refusals(401, 403, 422),
)
def me(principal: PrincipalDep) -> dict[str, Any]:
    return principal.public()
