"""A one-value read whose round trip hides behind work: the query goes out, the caller
works, then reads the answer — on a libpq connection of its own in non-blocking mode
(psycopg2's asynchronous connections), used by one thread at a time.

Why: the plain isochrone route (access/fast.py) must know the walking network's version
on every request, and computes the answer meanwhile. Read through asyncpg (its pool, or a
connection of its own) the read cost the event loop 0.3–0.5 ms of Python when caches are
cold (a task, a loop iteration, the protocol's parsing: 2026-12-01); here it is two C calls
around the work, the server's answer waiting in the socket when it is read.

Faults: a connection that cannot be opened or that breaks raises psycopg2's
OperationalError (the API answers 503, api/handlers.py DATABASE_FAULTS) and is dropped,
so the next call connects again; an answer that does not come within ``timeout`` seconds
is one too.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg2
import psycopg2.extensions

from gis_service.settings import Settings
from gis_service.timezone import zone_name


def _wait(conn: Any, timeout: float) -> None:
    """Until ``conn`` has finished its exchange (psycopg2's poll protocol)."""
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        fd = conn.fileno()
        if state == psycopg2.extensions.POLL_READ:
            ready = select.select([fd], [], [], timeout)[0]
        elif state == psycopg2.extensions.POLL_WRITE:
            ready = select.select([], [fd], [], timeout)[1]
        else:  # pragma: no cover - psycopg2 documents no other state
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        if not ready:
            raise psycopg2.OperationalError(f"no answer from the database in {timeout:g} s")


class Ask:
    """``send(query)``, then ``answer()``: the first value of its first row."""

    def __init__(self, settings: Settings, name: str, timeout: float = 5.0) -> None:
        """``name``: the connection's application_name (what pg_stat_activity shows)."""
        self.settings = settings
        self.name = name
        self.timeout = timeout
        self._conn: Any = None
        self._cursor: Any = None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            conn = psycopg2.connect(
                self.settings.libpq_url,
                async_=True,
                application_name=self.name,
                options=f"-c TimeZone={zone_name(self.settings)}",
            )
            try:
                _wait(conn, self.timeout)
            except Exception:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def send(self, query: str) -> None:
        """Send ``query`` (connecting first when there is no connection)."""
        try:
            self._cursor = self._connection().cursor()
            self._cursor.execute(query)
        except psycopg2.Error:
            self._drop()
            raise

    def answer(self) -> Any:
        """The first value of the answer to the query sent last."""
        try:
            _wait(self._conn, self.timeout)
            row = self._cursor.fetchone()
        except psycopg2.Error:
            self._drop()
            raise
        return None if row is None else row[0]

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._cursor = None

    def close(self) -> None:
        self._drop()
