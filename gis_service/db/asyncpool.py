"""asyncpg pools for the report path: one per event loop and database, built on first use.

The report is the one request that must be cheap at a thousand a second: on asyncpg it
runs on the event loop (no worker-thread hop) as a prepared statement over the binary
protocol; so does every signed-in request's session check (auth/sessions.py), and a
phone's chunk of walk positions (walks/service.py ``add_chunk_async``: two statements in
one transaction, committed before release). Everything else stays on SQLAlchemy +
psycopg2. min_size = max_size: a pool that shrinks reconnects on every burst
(PERFORMANCE-NOTES).

Faults: a pool that could not open is forgotten, so the next request opens it again; a
pooled connection the server closed (a restart) is noticed by the event loop when its
socket closes, and asyncpg's pool connects it again on the next acquire. Failing to
connect at all raises asyncpg's ``ClientCannotConnectError`` (SQLSTATE 08001), which the
API answers with 503 and Retry-After like every other database fault (api/handlers.py).
A connection whose query failed that way is closed at once (``fetchrow``), never handed
out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

import asyncpg

from gis_service.settings import Settings
from gis_service.timezone import zone_name

# One pool per loop and DSN, held as a task: the first burst of requests after start all
# await the same pool instead of each opening one (which ran out of connections).
_pools: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Task[asyncpg.Pool]]
] = weakref.WeakKeyDictionary()


def dsn(settings: Settings) -> str:
    """The libpq form of the database URL: asyncpg reads several hosts and
    target_session_attrs from it like libpq (the Patroni cluster's write DSN)."""
    return settings.libpq_url


async def get_pool(settings: Settings) -> asyncpg.Pool:
    loop = asyncio.get_running_loop()
    pools = _pools.setdefault(loop, {})
    key = (dsn(settings), zone_name(settings))
    task = pools.get(key)
    if task is None:
        task = loop.create_task(_create(*key, settings.db_pool_size))
        pools[key] = task
    try:
        return await asyncio.shield(task)
    except Exception:
        pools.pop(key, None)  # the next request tries again
        raise


#: failures after which a connection cannot be trusted: the server ended the session
#: (SQLSTATE 57P01-57P03), the connection itself failed (class 08), the socket failed, or
#: asyncpg's protocol lost its place in the exchange
BROKEN: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


async def fetchrow(settings: Settings, query: str, *args: Any) -> asyncpg.Record | None:
    """One row of ``query`` on the pool of these settings.

    A connection whose query failed with a ``BROKEN`` error is terminated before it goes
    back to the pool. Without this a restart answered 500: PostgreSQL's FATAL 57P01
    ("terminating connection due to administrator command") reaches a session before its
    socket closes; asyncpg's protocol, caught between the two, leaves the connection in the
    pool waiting for the end of an exchange that never comes, and the next query on it
    failed with "cannot switch to state …; another operation is in progress"
    (``InternalClientError``, found by tests/faults/test_database_restart.py under a
    report stream). Such a failure is raised as what it is, a connection that no longer
    exists (SQLSTATE 08003), which the API answers 503 like every database fault."""
    pool = await get_pool(settings)
    async with pool.acquire() as connection:
        try:
            return await connection.fetchrow(query, *args)
        except BROKEN as exc:
            # a connection whose socket closed was already taken back by the pool
            with contextlib.suppress(asyncpg.InterfaceError):
                connection.terminate()
            if isinstance(exc, asyncpg.InternalClientError):
                raise asyncpg.ConnectionDoesNotExistError(
                    f"the pooled connection broke: {exc}"
                ) from exc
            raise


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Skip the pool's reset on release (UNLISTEN, RESET ALL … — one more round trip per
    request, 15 % of the report's server time in py-spy): these connections run only
    report_case(), the session check (auth/sessions.py) and the walk chunks' committed
    transactions, which leave no session state behind."""


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """asyncpg.connect, with the socket's failures (nothing listening, no socket file,
    timed out: OSError) as SQLSTATE 08001 "client unable to establish connection", so
    one class of error says "the database cannot be reached" on this path."""
    try:
        return await asyncpg.connect(*args, **kwargs)
    except OSError as exc:
        raise asyncpg.ClientCannotConnectError(
            f"cannot connect to the database: {type(exc).__name__}"
        ) from exc
    except asyncpg.TargetServerAttributeNotMatched as exc:
        # every host of a multi-host URL answered, none is the primary (yet): a failover
        # in progress, the same fault for the caller as no server at all
        raise asyncpg.ClientCannotConnectError(
            "cannot connect to the database: no host is the primary now"
        ) from exc


async def _create(key: str, timezone: str, size: int) -> asyncpg.Pool:
    """Sessions in the district's time, like the SQLAlchemy engine's (db/engine.py)."""
    return await asyncpg.create_pool(
        key,
        min_size=size,
        max_size=size,
        reset=_no_reset,
        connect=_connect,
        server_settings={"TimeZone": timezone},
    )


async def close_pools() -> None:
    """Close this loop's pools (app shutdown)."""
    loop = asyncio.get_running_loop()
    for task in _pools.pop(loop, {}).values():
        if task.done() and not task.exception():
            await task.result().close()


async def report_path_status(settings: Settings) -> str:
    """``ok`` when the report path's pool answers a query, else ``unreachable`` (for
    /healthz; opens the pool if it is not open yet). Bounded: five seconds at most."""
    try:
        async with asyncio.timeout(5):
            pool = await get_pool(settings)
            await pool.fetchval("SELECT 1")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return "unreachable"
    return "ok"
