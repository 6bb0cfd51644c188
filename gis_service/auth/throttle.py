"""Slows password guessing, across every worker process: failed sign-ins are rows of
``sign_in_failure`` in PostgreSQL (migration 0006), so two workers count together.

Two rules, both over the last ``Settings.sign_in_window_seconds`` (default 15 min):

- one username from one address: ``sign_in_max_failures`` failures (default 5) and that
  pair waits until the oldest of them leaves the window (OWASP Authentication Cheat
  Sheet, "account lockout" by pair rather than by account, so nobody can lock a worker
  out from elsewhere); a success clears the pair;
- password spraying: failures for ``sign_in_max_usernames`` distinct usernames (default
  20) from one address, and that address waits too (OWASP API2; ASVS V2.2.1).

Refusals are 429 ``too_many_attempts`` with Retry-After (RFC 6585 §4, RFC 9110 §10.2.3).
Rows older than the window are pruned whenever a failure is recorded.
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import Connection, text
from starlette.requests import Request

from gis_service.errors import TooManyAttempts
from gis_service.settings import Settings

# The k-th most recent failure of the pair: while it is inside the window, k failures are.
_PAIR_WAIT = text(
    """
    SELECT extract(epoch FROM at + :window - now()) FROM sign_in_failure
    WHERE username = :u AND address = :a AND at > now() - :window
    ORDER BY at DESC OFFSET :k - 1 LIMIT 1
    """
)
# Each username's last failure from the address; the k-th most recent of those.
_SPRAY_WAIT = text(
    """
    SELECT extract(epoch FROM last + :window - now()) FROM (
        SELECT max(at) AS last FROM sign_in_failure
        WHERE address = :a AND at > now() - :window GROUP BY username
    ) per_user
    ORDER BY last DESC OFFSET :k - 1 LIMIT 1
    """
)


def client_address(request: Request) -> str:
    """The address the throttle counts by: the peer of the connection (behind a proxy,
    uvicorn's --forwarded-allow-ips makes it the client's)."""
    return request.client.host if request.client else "-"


def check(conn: Connection, settings: Settings, username: str, address: str) -> None:
    """Refuse (429, ``retry_after`` in seconds) while the pair or the address has used up
    its failures. Takes a transaction-level advisory lock on the pair, so concurrent
    attempts for it (on any worker) are counted one after another."""
    user = username.lower()
    window = timedelta(seconds=settings.sign_in_window_seconds)
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:u || ' ' || :a, 14))"),
        {"u": user, "a": address},
    )
    wait = conn.execute(
        _PAIR_WAIT,
        {"u": user, "a": address, "window": window, "k": settings.sign_in_max_failures},
    ).scalar()
    if wait is not None:
        raise TooManyAttempts(
            f"too many failed sign-ins for {username!r}: try again in {_seconds(wait)} s",
            retry_after=_seconds(wait),
        )
    wait = conn.execute(
        _SPRAY_WAIT, {"a": address, "window": window, "k": settings.sign_in_max_usernames}
    ).scalar()
    if wait is not None:
        raise TooManyAttempts(
            f"too many failed sign-ins from this address: try again in {_seconds(wait)} s",
            retry_after=_seconds(wait),
        )


def failed(conn: Connection, settings: Settings, username: str, address: str) -> None:
    """Record a failure (in the caller's transaction) and prune the expired ones."""
    window = timedelta(seconds=settings.sign_in_window_seconds)
    conn.execute(text("DELETE FROM sign_in_failure WHERE at < now() - :window"), {"window": window})
    conn.execute(
        text("INSERT INTO sign_in_failure (username, address) VALUES (:u, :a)"),
        {"u": username.lower(), "a": address},
    )


def succeeded(conn: Connection, username: str, address: str) -> None:
    """A right password clears the pair's failures (not the address's other usernames)."""
    conn.execute(
        text("DELETE FROM sign_in_failure WHERE username = :u AND address = :a"),
        {"u": username.lower(), "a": address},
    )


def _seconds(wait: float) -> int:
    return max(1, math.ceil(float(wait)))
