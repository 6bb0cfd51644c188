"""Sign-in: the OAuth2 password flow (FastAPI's convention) and who-am-I."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from gis_service.api.deps import ConnDep, PrincipalDep, SettingsDep
from gis_service.auth import tokens, users

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", summary="Sign in with username and password; returns a bearer token")
def token(conn: ConnDep, settings: SettingsDep,
          form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, Any]:
    user = users.authenticate(conn, form.username, form.password)
    access_token, lifetime = tokens.issue(user, settings)
    return {"access_token": access_token, "token_type": "bearer", "expires_in": lifetime,
            "user": {k: user[k] for k in ("id", "username", "display_name", "role", "scopes",
                                          "team_id")}}


@router.get("/me", summary="The signed-in user, role and jurisdiction")
def me(principal: PrincipalDep) -> dict[str, Any]:
    return principal.public()
