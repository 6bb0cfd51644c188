"""Who is acting, and from where: the one helper every privileged write goes through.

The actor of the current request or command lives in a context variable; the database
engine stamps it on every transaction it begins (:func:`on_begin` and
:func:`before_cursor_execute`, listened to in db/engine.py) as transaction-local settings
(``set_config(..., true)``) that the audit triggers read (triggers.py). So no write path
has to remember anything, and the settings vanish with the transaction: a pooled
connection never carries one request's actor into the next.

Where the actor is set:

* the API — :func:`for_request`, when a request that may write (any method but GET, HEAD
  and OPTIONS) signs in (api/deps.py ``principal_of``): ``user:<username>`` with the
  account id, the client address (``request.client.host``; behind the TLS proxy, the
  address uvicorn's ``--proxy-headers`` takes from ``X-Forwarded-For``) and a request id
  (the ``X-Request-ID`` header when it is a plain token, else a new one). Reads are not
  stamped: they change nothing audited, and a stamp costs a round trip.
* the CLI — ``cli:<os user>`` from ``cli@<host>``, for the whole command (cli/main.py).
* work handed to a thread (imports) — the submitting context is copied with it
  (``contextvars.copy_context()``, imports/jobs.py).

The report path's asyncpg pool is not stamped: reports change no audited column.
"""

from __future__ import annotations

import getpass
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import Request
    from sqlalchemy import Connection

    from gis_service.auth.principal import Principal

#: methods that never write: requests with them are not stamped
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
STAMP_SQL = (
    "SELECT set_config('gis.actor', %s, true), set_config('gis.actor_id', %s, true), "
    "set_config('gis.address', %s, true), set_config('gis.request_id', %s, true)"
)


@dataclass(frozen=True)
class Actor:
    """``name``: ``user:<username>``, ``client:<name>`` or ``cli:<os user>``;
    ``actor_id``: the account id when there is one."""

    name: str
    actor_id: int | None = None
    address: str | None = None
    request_id: str | None = None


_current: ContextVar[Actor | None] = ContextVar("gis_audit_actor", default=None)


def current() -> Actor | None:
    return _current.get()


def act_as(actor: Actor | None) -> Token:
    """Make ``actor`` the current one (for the rest of this context); returns the token
    that :func:`restore` takes."""
    return _current.set(actor)


def restore(token: Token) -> None:
    _current.reset(token)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """``with acting_as(Actor("cli:root")):`` — transactions begun inside are stamped."""
    token = act_as(actor)
    try:
        yield actor
    finally:
        restore(token)


def of_principal(
    principal: Principal, address: str | None = None, request_id: str | None = None
) -> Actor:
    """The actor a signed-in principal is: a person (``user:``) or a client app."""
    if principal.client_id is not None:
        return Actor(f"client:{principal.username}", None, address, request_id)
    return Actor(f"user:{principal.username}", principal.user_id, address, request_id)


def for_request(request: Request, principal: Principal) -> None:
    """Stamp the rest of this request with the principal, when the request may write."""
    if request.method in READ_METHODS:
        return
    given = request.headers.get("x-request-id", "")
    request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    address = request.client.host if request.client else None
    act_as(of_principal(principal, address, request_id))


def cli_actor() -> Actor:
    """The person at the terminal: their operating-system account on this host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container)
        user = "unknown"
    return Actor(f"cli:{user}", None, f"cli@{socket.gethostname()}")


def stamp(dbapi_connection: Any, actor: Actor) -> None:
    """Set the transaction-local settings the audit triggers read (one round trip)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(
            STAMP_SQL,
            (
                actor.name,
                "" if actor.actor_id is None else str(actor.actor_id),
                actor.address or "",
                actor.request_id or "",
            ),
        )
    finally:
        cursor.close()


#: statements that must come first in a transaction (PostgreSQL refuses them after any
#: query): the stamp waits for the statement after them
_TRANSACTION_SETUP = re.compile(r"^\s*(SET\s+TRANSACTION|BEGIN|START\s+TRANSACTION)\b", re.I)
_PENDING = "gis_audit_pending_actor"


def on_begin(conn: Connection) -> None:
    """SQLAlchemy ``begin`` listener: the transaction being begun is to carry the current
    actor, if any; :func:`before_cursor_execute` stamps it just before its first statement
    (not here: ``SET TRANSACTION ISOLATION LEVEL`` must be a transaction's first)."""
    actor = current()
    if actor is None:
        conn.info.pop(_PENDING, None)
    else:
        conn.info[_PENDING] = actor


def before_cursor_execute(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    """SQLAlchemy ``before_cursor_execute`` listener: stamp a pending actor on the
    transaction before its first statement that is not transaction set-up. psycopg2 opens
    the transaction on that first statement, so the settings belong to it; they are
    transaction-local and vanish at its end."""
    actor = conn.info.get(_PENDING)
    if actor is None or _TRANSACTION_SETUP.match(statement):
        return
    del conn.info[_PENDING]
    stamp(cursor.connection, actor)
