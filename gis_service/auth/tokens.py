"""Signed bearer tokens (JWT, HS256) that carry the role and scopes.

Reading them needs no database round trip, which keeps the report path to one query;
writes re-check in SQL that the account is still active and the token's version current,
so deactivating a user or changing a password takes effect at once for every write.
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


def issue(user: dict[str, Any], settings: Settings) -> tuple[str, int]:
    """A token for a user row; returns it and its lifetime in seconds."""
    lifetime = int(settings.token_hours * 3600)
    now = int(time.time())
    claims = {
        "sub": str(user["id"]),
        "usr": user["username"],
        "name": user["display_name"],
        "role": user["role"],
        "scp": list(user["scopes"]),
        "team": user["team_id"],
        "ver": user["token_version"],
        "iat": now,
        "exp": now + lifetime,
    }
    return jwt.encode(claims, settings.signing_key(), algorithm=ALGORITHM), lifetime


def read(token: str, settings: Settings) -> Principal:
    principal, expires = _decode(token, settings.signing_key())
    if expires <= time.time():
        raise Unauthorized("the access token has expired: sign in again")
    return principal


@lru_cache(maxsize=4096)
def _decode(token: str, key: str) -> tuple[Principal, int]:
    """Verified once per token and process: a phone sends the same token all day."""
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "role"]}
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
    ), int(claims["exp"])
