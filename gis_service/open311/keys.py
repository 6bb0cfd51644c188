"""Open311 client keys: made by an admin (CLI), shown once, stored only as a SHA-256 hash.

A key optionally carries a unit code: the client app then reports and reads only inside
that unit (``auth.scope.case_filter`` does the restricting, as for people); without one it
sees the whole coverage. Reads need no key (GeoReport clients send one only to POST): a
reader without one gets the public view (``auth.scope.ANONYMOUS``, :func:`reader_for_key`).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import ANONYMOUS
from gis_service.errors import Conflict, InvalidInput, NotFound, Unauthorized

PREFIX_LENGTH = 8
MAX_NAME_LENGTH = 100
CLIENT_COLUMNS = "k.id, k.name, k.key_prefix, k.scope_code, k.created_at, k.revoked_at"


def hash_key(key: str) -> str:
    """Keys are 256 random bits, so a plain SHA-256 is enough (no slow password hash)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(
    conn: Connection, name: str, scope_code: str | None = None
) -> tuple[dict[str, Any], str]:
    """A new client and its key; the plaintext key is returned here and never again."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"the client name must be 1–{MAX_NAME_LENGTH} characters", field="name")
    scope_code = (scope_code or "").strip() or None
    if (
        scope_code is not None
        and not conn.execute(
            text("SELECT 1 FROM admin_unit WHERE code = :c"), {"c": scope_code}
        ).first()
    ):
        raise InvalidInput(
            f"no unit with code {scope_code}: the scope must be the code of "
            "an imported district, subdistrict, community or grid",
            field="scope_code",
        )
    if conn.execute(text("SELECT 1 FROM open311_client WHERE name = :n"), {"n": name}).first():
        raise Conflict(f"an Open311 client named {name!r} exists already", field="name")
    key = secrets.token_urlsafe(32)
    row = (
        conn.execute(
            text(
                f"""
        INSERT INTO open311_client AS k (name, key_hash, key_prefix, scope_code)
        VALUES (:name, :hash, :prefix, :scope)
        RETURNING {CLIENT_COLUMNS}
        """
            ),
            {
                "name": name,
                "hash": hash_key(key),
                "prefix": key[:PREFIX_LENGTH],
                "scope": scope_code,
            },
        )
        .mappings()
        .one()
    )
    return dict(row), key


def principal_for_key(conn: Connection, key: str | None) -> Principal:
    """The client app a key belongs to; Unauthorized for a missing, unknown or revoked key."""
    if not key:
        raise Unauthorized("api_key is required: ask the administrator for an Open311 key")
    row = (
        conn.execute(
            text(f"SELECT {CLIENT_COLUMNS} FROM open311_client k WHERE k.key_hash = :h"),
            {"h": hash_key(key)},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise Unauthorized("invalid api_key")
    if row["revoked_at"] is not None:
        raise Unauthorized("this api_key has been revoked")
    return Principal(
        role=Role.client,
        client_id=row["id"],
        username=row["name"],
        display_name=row["name"],
        scopes=(row["scope_code"],) if row["scope_code"] else (),
    )


def reader_for_key(conn: Connection, key: str | None) -> Principal:
    """Who reads (GET requests, tokens): the key's client, or without a key the anonymous
    viewer of the public view. A key that is sent must be good: an unknown or revoked
    one is refused as in :func:`principal_for_key`, never quietly read as anonymous."""
    return ANONYMOUS if not key else principal_for_key(conn, key)


def revoke_key(conn: Connection, name: str) -> dict[str, Any]:
    """Revoke the client's key at once; revoking twice keeps the first time."""
    row = (
        conn.execute(
            text(
                f"""
        UPDATE open311_client k SET revoked_at = coalesce(revoked_at, now())
         WHERE name = :n RETURNING {CLIENT_COLUMNS}
        """
            ),
            {"n": name},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no Open311 client named {name!r}", field="name")
    return dict(row)


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in conn.execute(
            text(
                f"""
        SELECT {CLIENT_COLUMNS}, u.name AS scope_name
          FROM open311_client k LEFT JOIN admin_unit u ON u.code = k.scope_code
         ORDER BY k.id
        """
            )
        ).mappings()
    ]


def get_client(conn: Connection, client_id: int) -> dict[str, Any]:
    """One client (never its key); 404 ``not_found``."""
    row = (
        conn.execute(
            text(f"SELECT {CLIENT_COLUMNS} FROM open311_client k WHERE k.id = :id"),
            {"id": client_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no Open311 client with id {client_id}")
    return dict(row)
