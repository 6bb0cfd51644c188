"""Reads on a standby, and read-your-writes: the rule for which server a read may use.

Reads that may lag the last commit (statistics, tiles, map pages, case lists, the desk's
queue) take a connection from the read engine (db/engine.py ``get_read_engine``: libpq's
``target_session_attrs=prefer-standby`` over every node, so a standby when one answers,
else the primary; no configuration change after a failover). Writes stay on the primary.

Read-your-writes. A standby replays the primary's WAL a little later than the primary
commits (``synchronous_commit = on`` waits for the synchronous standby's *flush*, not its
replay; PostgreSQL docs §27.2.8, §20.5.1), so a reporter who lists their cases right after
a report could miss it there. After every successful write the API hands the client the
primary's WAL position (``pg_current_wal_lsn()``, read once the write has committed, so at
or past its commit record) as ``X-Min-LSN`` — a response header and a short-lived cookie,
api/readyourwrites.py. A read that carries one (cookie or header) uses a standby only
once its ``pg_last_wal_replay_lsn()`` has reached that position: it waits up to
``Settings.read_your_writes_wait_ms`` for the replay, then reads on the primary instead.
A read without one takes the standby as it is.
"""

from __future__ import annotations

import re
import time

from sqlalchemy import Connection, text

from gis_service.db import asyncpool
from gis_service.errors import InvalidInput
from gis_service.settings import Settings

#: the request header and cookie that carry the position a client's reads must see
MIN_LSN_HEADER = "X-Min-LSN"
MIN_LSN_COOKIE = "gis_min_lsn"
#: what the header (and cookie) mean, for the OpenAPI document of every route that honours
#: them (api/deps.py ``get_read_conn``) and of every write that sends them
#: (api/readyourwrites.py)
MIN_LSN_DOC = (
    "Read-your-writes: the primary's WAL position after your last write (pg_lsn text, "
    "e.g. 16/B374D848), as a write's X-Min-LSN response header (and the gis_min_lsn "
    "cookie) gave it. A read carrying it is served by a standby only once the standby "
    "has replayed that far, else by the primary. 422 when it is not a WAL position."
)
#: pg_lsn's text form: two hexadecimal numbers of up to 32 bits (PostgreSQL docs §8.20)
LSN_PATTERN = r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$"
_LSN = re.compile(LSN_PATTERN)
#: how often a read that waits for the replay asks the standby again
POLL_SECONDS = 0.01

_REPLAYED = text(
    "SELECT NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"
)


def parse_lsn(value: str, field: str = MIN_LSN_HEADER) -> int:
    """``'16/B374D848'`` → its 64-bit position; 422 ``invalid_input`` naming ``field`` when
    the text is not an LSN."""
    found = _LSN.match(value.strip())
    if not found:
        raise InvalidInput(
            f"{field} must be a WAL position like 0/1A2B3C4D (pg_lsn), not {value[:40]!r}",
            field=field,
        )
    return int(found[1], 16) << 32 | int(found[2], 16)


def format_lsn(position: int) -> str:
    """A 64-bit WAL position in pg_lsn's text form."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def min_lsn(header: str | None, cookie: str | None) -> int | None:
    """The position a request's reads must see: the later of its ``X-Min-LSN`` header and
    cookie, None without either."""
    found = [
        parse_lsn(value, field)
        for value, field in ((header, MIN_LSN_HEADER), (cookie, MIN_LSN_COOKIE))
        if value
    ]
    return max(found, default=None)


def replayed(conn: Connection, position: int, wait_seconds: float) -> bool:
    """Whether ``conn`` sees everything up to ``position``: at once when it is the primary
    (or a standby that has replayed that far), else after waiting up to ``wait_seconds``
    for the replay. Ends the transaction its queries opened, so the caller starts clean."""
    lsn = format_lsn(position)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            if conn.execute(_REPLAYED, {"lsn": lsn}).scalar_one():
                return True
            if time.monotonic() >= deadline:
                return False
            conn.rollback()  # each try reads a new snapshot of the replay
            time.sleep(POLL_SECONDS)
    finally:
        conn.rollback()


async def primary_lsn(settings: Settings) -> str:
    """The primary's current WAL write position (``pg_current_wal_lsn()``), on the report
    path's pool (the write DSN, target_session_attrs=read-write). Asked after a write has
    committed, it is at or past that write's commit record."""
    row = await asyncpool.fetchrow(settings, "SELECT pg_current_wal_lsn()::text")
    assert row is not None
    return row[0]
