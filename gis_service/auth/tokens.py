"""Signed access tokens (JWT, RFC 7519, HS256) that carry the role, scopes and session.

The signature and expiry are checked here, once per token and process; whether the token's
session and account still hold is checked on every request, reads and writes alike, by
:mod:`gis_service.auth.sessions` (deactivation, a password change or a sign-out end it at
once). Lifetime: ``Settings.access_token_seconds`` (the phone refreshes, RFC 6749 §6).
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import jwt

from gis_service.auth.principal import Principal, Role
from gis_service.errors import Unauthorized
from gis_service.settings import Settings

ALGORITHM = "HS256"


def issue(
    user: dict[str, Any], settings: Settings, session_id: int, lifetime: int | None = None
) -> tuple[str, int]:
    """A token for a user row (app_user columns) in a session (auth_session.id); returns it
    and its lifetime in seconds (``Settings.access_token_seconds`` unless given)."""
    lifetime = int(lifetime if lifetime is not None else settings.access_token_seconds)
    now = int(time.time())
    claims = {
        "sub": str(user["id"]),
        "usr": user["username"],
        "name": user["display_name"],
        "role": user["role"],
        "scp": list(user["scopes"]),
        "team": user["team_id"],
        "ver": user["token_version"],
        "sid": session_id,
        "iat": now,
        "exp": now + lifetime,
    }
    return jwt.encode(claims, settings.signing_key(), algorithm=ALGORITHM), lifetime


def read(token: str, settings: Settings) -> Principal:
    """The principal a token names; 401 if it is forged, malformed or expired. Does not
    say whether its session still holds (auth/sessions.py ``check``)."""
    principal, expires = _decode(token, settings.signing_key())
    if expires <= time.time():
        raise Unauthorized("the access token has expired: sign in again")
    return principal


@lru_cache(maxsize=4096)
def _decode(token: str, key: str) -> tuple[Principal, int]:
    """Verified once per token and process: a phone sends the same token all day."""
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "role", "sid"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token has expired: sign in again") from None
    except (jwt.PyJWTError, ValueError):
        raise Unauthorized("the access token is not valid") from None
    return Principal(
        role=Role(claims["role"]),
        user_id=int(claims["sub"]),
        username=claims.get("usr", ""),
        display_name=claims.get("name", ""),
        scopes=tuple(claims.get("scp") or ()),
        team_id=claims.get("team"),
        token_version=int(claims.get("ver", 0)),
        session_id=int(claims["sid"]),
    ), int(claims["exp"])
