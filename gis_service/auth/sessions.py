"""Sessions that end: the one rule for whether a signed-in request still holds, and the
refresh tokens that renew a phone's short-lived access token.

A sign-in opens a session (``auth_session``): ``bearer`` for the API (the phone), with a
family of refresh tokens; ``cookie`` for the map pages. Every access token names its session
(JWT claim ``sid``, auth/tokens.py), and **every** request, read or write, on any worker
process, checks in one primary-key lookup (:data:`ALIVE`, the SQL function
``sign_in_holds()`` of auth/sessions.sql; a report checks it inside ``report_case()``) that

- the session is neither revoked (sign-out, refresh-token reuse) nor past its end,
- the account is active and its ``token_version`` is the token's (deactivation and a
  password change bump it, auth/users.py; so does a change of role or scopes, should an
  admin path for that be added),

so a revocation holds for every request that starts after the revoking one was answered
(ASVS V3.3.1, V3.3.3; OWASP API2). The lookup is strongly consistent where a notification
fed cache (LISTEN/NOTIFY) would lag; its cost is measured in benchmarks/sessions.py and
documented in docs/http.md.

Refresh tokens (RFC 6749 §1.5, §6; RFC 9700 §2.2.2, §4.14.2): opaque, 256 random bits,
kept only as SHA-256; each use rotates it (the old one is marked used, a new one issued),
and presenting a used one again revokes the whole family: whoever replays a stolen token,
the thief or the phone, is signed out, and the other's next refresh fails too.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import Connection, text

from gis_service.auth import throttle, tokens, users
from gis_service.auth.principal import Principal
from gis_service.db import asyncpool
from gis_service.db.engine import transaction
from gis_service.errors import Forbidden, InvalidGrant, Unauthorized
from gis_service.settings import Settings

Kind = Literal["bearer", "cookie"]

#: the rule lives in one place, the SQL function sign_in_holds() (auth/sessions.sql), which
#: report_case() calls too; a row (true) when the sign-in holds, none when it does not
ALIVE = "SELECT true FROM sign_in_holds($1, $2, $3)"  # asyncpg
ALIVE_SA = text("SELECT true FROM sign_in_holds(:sid, :uid, :ver)")  # SQLAlchemy

ENDED = (
    "this sign-in is no longer valid (signed out, deactivated or password changed): sign in again"
)


def _needs_check(principal: Principal) -> bool:
    """Principals from access tokens; Open311 clients (api_key) and the public have none."""
    return principal.user_id is not None and principal.session_id is not None


async def check(settings: Settings, principal: Principal) -> Principal:
    """The principal, if its session and account still hold (see module doc); else 401
    ``unauthorized``. One primary-key lookup on the async pool (db/asyncpool.py)."""
    if _needs_check(principal):
        # through asyncpool.fetchrow, which ends a connection a restart broke (a 503, not
        # a 500 on the next request that takes it: tests/faults/test_database_restart.py)
        row = await asyncpool.fetchrow(
            settings, ALIVE, principal.session_id, principal.user_id, principal.token_version
        )
        if row is None or not row[0]:
            raise Unauthorized(ENDED)
    return principal


def check_sync(conn: Connection, principal: Principal) -> Principal:
    """:func:`check` on a SQLAlchemy connection, for code already holding one (sync routes,
    case writes)."""
    if _needs_check(principal):
        ok = conn.execute(
            ALIVE_SA,
            {"sid": principal.session_id, "uid": principal.user_id, "ver": principal.token_version},
        ).first()
        if not ok:
            raise Unauthorized(ENDED)
    return principal


@dataclass(frozen=True)
class Grant:
    """What a sign-in or a refresh hands out: ``access_token`` lives ``expires_in`` seconds;
    ``refresh_token`` (bearer sessions only) is single-use."""

    access_token: str
    expires_in: int
    session_id: int
    user: dict[str, Any]
    refresh_token: str | None = None

    def answer(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 token answer with the signed-in user (auth/schemas.TokenPublic)."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "user": {
                k: self.user[k]
                for k in ("id", "username", "display_name", "role", "scopes", "team_id")
            },
        }
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        return body


def _digest(refresh_token: str) -> bytes:
    return hashlib.sha256(refresh_token.encode()).digest()


def _new_refresh(conn: Connection, session_id: int) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute(
        text("INSERT INTO refresh_token (token_hash, session_id) VALUES (:h, :s)"),
        {"h": _digest(token), "s": session_id},
    )
    return token


def sign_in(settings: Settings, username: str, password: str, address: str, kind: Kind) -> Grant:
    """Check the throttle (auth/throttle.py: 429), the password (401 ``unauthorized``,
    recorded as a failure) and open a session (:func:`start`). ``address``: the client's
    IP address as the server sees it."""
    with transaction(settings) as conn:
        throttle.check(conn, settings, username, address)
        try:
            user = users.authenticate(conn, username, password)
        except Unauthorized as exc:
            throttle.failed(conn, settings, username, address)
            failure = exc
        else:
            throttle.succeeded(conn, username, address)
            return start(conn, user, settings, kind)
    raise failure  # after the failure is committed


def start(conn: Connection, user: dict[str, Any], settings: Settings, kind: Kind) -> Grant:
    """Open a session for an authenticated user row (app_user columns), in the caller's
    transaction.

    ``bearer``: an access token of ``Settings.access_token_seconds`` and a refresh token
    usable until ``refresh_token_days`` after sign-in. ``cookie`` (the map pages): one
    access token for the whole page session, ``page_session_hours``, fixed rather than
    sliding (a working shift; ASVS V3.3.2), checked on every request like any other and
    ended by the pages' sign-out."""
    life = (
        timedelta(days=settings.refresh_token_days)
        if kind == "bearer"
        else timedelta(hours=settings.page_session_hours)
    )
    prune(conn)
    session_id = conn.execute(
        text(
            "INSERT INTO auth_session (user_id, kind, token_version, expires_at) "
            "VALUES (:u, :k, :v, now() + :life) RETURNING id"
        ),
        {"u": user["id"], "k": kind, "v": user["token_version"], "life": life},
    ).scalar_one()
    refresh = _new_refresh(conn, session_id) if kind == "bearer" else None
    lifetime = settings.access_token_seconds if kind == "bearer" else int(life.total_seconds())
    access, expires_in = tokens.issue(user, settings, session_id, lifetime)
    return Grant(access, expires_in, session_id, user, refresh)


#: ended sessions are kept this long (a reused refresh token of one is still named as
#: such), then deleted with their refresh tokens
KEEP_ENDED = timedelta(days=1)


def prune(conn: Connection) -> None:
    """Delete the sessions that ended (expired or revoked) more than :data:`KEEP_ENDED`
    ago, with their refresh tokens; run at each sign-in."""
    conn.execute(
        text(
            "DELETE FROM auth_session WHERE expires_at < now() - :keep "
            "OR revoked_at < now() - :keep"
        ),
        {"keep": KEEP_ENDED},
    )


def issue_for(settings: Settings, user: dict[str, Any], kind: Kind = "bearer") -> Grant:
    """Open a session for a user row without a password, committed (the CLI's tools,
    tests and benchmarks)."""
    with transaction(settings) as conn:
        return start(conn, user, settings, kind)


def hand_off(settings: Settings, principal: Principal) -> Grant:
    """The phone app's own tokens for the account of a live page sign-in (the front door's
    cookie; the caller has checked its session): one sign-in at ``/`` for every role
    (issue 15 item 1) — the phone keeps bearer tokens in its storage for its offline queue,
    which a cookie cannot serve. A new ``bearer`` session of the same account; the page
    session goes on. 403 for principals without an account (Open311 clients)."""
    if principal.user_id is None:
        raise Forbidden("only a signed-in account can hand its sign-in to the phone app")
    with transaction(settings) as conn:
        return start(conn, users.get_user(conn, principal.user_id), settings, "bearer")


_REFRESH_ROW = text(
    f"""
    SELECT r.used_at, s.id AS session_id, s.revoked_at IS NULL AND s.expires_at > now()
           AND u.active AND u.token_version = s.token_version AS live,
           {", ".join("u." + c.strip() for c in users.USER_COLUMNS.split(","))}
    FROM refresh_token r
    JOIN auth_session s ON s.id = r.session_id
    JOIN app_user u ON u.id = s.user_id
    WHERE r.token_hash = :h
    FOR UPDATE OF r, s
    """
)


def refresh(settings: Settings, refresh_token: str) -> Grant:
    """Exchange a refresh token for a new access token and a new refresh token (rotation,
    RFC 9700 §4.14.2). The access token carries the account's current role and scopes.

    Errors, all 400 ``invalid_grant`` (RFC 6749 §5.2): an unknown token; a session signed
    out, expired, or whose account was deactivated or had its password changed since; a
    token already used, which also revokes its session (reuse detection, committed before
    the answer)."""
    digest = _digest(refresh_token)
    with transaction(settings) as conn:
        row = conn.execute(_REFRESH_ROW, {"h": digest}).mappings().first()
        if row is None:
            raise InvalidGrant("this refresh token is not valid: sign in again")
        reused = row["used_at"] is not None
        if reused:
            _revoke(conn, row["session_id"], "reuse")
        elif row["live"]:
            conn.execute(
                text("UPDATE refresh_token SET used_at = now() WHERE token_hash = :h"),
                {"h": digest},
            )
            new_refresh = _new_refresh(conn, row["session_id"])
    if reused:
        raise InvalidGrant("this refresh token was already used: the sign-in is revoked")
    if not row["live"]:
        raise InvalidGrant(ENDED)
    user = {k: row[k] for k in row if k not in ("used_at", "session_id", "live")}
    access, expires_in = tokens.issue(user, settings, row["session_id"])
    return Grant(access, expires_in, row["session_id"], user, new_refresh)


def _revoke(conn: Connection, session_id: int, why: str) -> None:
    conn.execute(
        text(
            "UPDATE auth_session SET revoked_at = now(), revoked_why = :w "
            "WHERE id = :s AND revoked_at IS NULL"
        ),
        {"s": session_id, "w": why},
    )


def end_all(conn: Connection, user_id: int) -> int:
    """End every live session of an account at once, in the caller's transaction (an
    admin deactivated it, changed its role, scopes or team, or reset its password; the
    token version is bumped too, auth/users.py). Returns how many were live."""
    return conn.execute(
        text(
            "UPDATE auth_session SET revoked_at = now(), revoked_why = 'account_changed' "
            "WHERE user_id = :u AND revoked_at IS NULL AND expires_at > now()"
        ),
        {"u": user_id},
    ).rowcount


def end(settings: Settings, principal: Principal) -> None:
    """Sign out: revoke the principal's session, its refresh tokens and every access token
    of it at once. Idempotent; principals without a session (Open311 clients) have none."""
    if principal.session_id is None:
        return
    with transaction(settings) as conn:
        _revoke(conn, principal.session_id, "sign_out")
