"""Answer models of sign-in (``XPublic``)."""

from __future__ import annotations

from typing import Literal

from gis_service.api.schemas import Public


class TokenUser(Public):
    id: int
    username: str
    display_name: str | None
    role: str
    scopes: list[str]
    team_id: int | None


class TokenPublic(Public):
    """OAuth2 token answer (RFC 6749 §5.1) with the signed-in user; ``expires_in`` in
    seconds; ``refresh_token`` single-use (RFC 6749 §6, RFC 9700 §4.14.2)."""

    access_token: str
    token_type: Literal["bearer"]
    expires_in: int
    refresh_token: str | None = None
    user: TokenUser


class SignedOutPublic(Public):
    """The answer of POST /api/v1/auth/sign-out."""

    signed_out: bool


class PrincipalPublic(Public):
    """auth/principal.py ``Principal.public``."""

    user_id: int | None
    username: str | None
    display_name: str | None
    role: str
    role_zh: str
    scopes: list[str]
    team_id: int | None
    client_id: int | None
