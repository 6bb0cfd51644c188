"""The walks' SQL: every statement that reads or writes walk, walk_chunk, walk_point,
walk_visit and walk_day (the spatial rules themselves live in walks.sql)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg
from sqlalchemy import Connection, RowMapping, text

from gis_service.units.codes import Level
from gis_service.walks.rules import WalkStatus

#: a walk's summary columns (``w`` is the walk, ``u`` its worker, ``g`` its grid)
SUMMARY = """
    w.id, w.worker_id, u.display_name AS worker_name, w.grid_code, g.name AS grid_name,
    w.status, w.started_at, w.ended_at,
    (w.started_at AT TIME ZONE CAST(:tz AS text))::date AS day,
    w.points_received, w.points_kept, w.points_dropped, w.distance_m,
    walk_duration_s(w) AS duration_s,
    (SELECT count(*) FROM walk_visit v
      WHERE v.walk_id = w.id AND v.district_code = w.district_code) AS buildings_visited,
    (SELECT count(*) FROM cases c
      WHERE c.walk_id = w.id AND c.district_code = w.district_code) AS problems,
    w.raw_pruned_at IS NOT NULL AS raw_pruned
"""
FROM = """
    FROM walk w
    LEFT JOIN app_user u ON u.id = w.worker_id
    LEFT JOIN admin_unit g ON g.code = w.grid_code
"""


# ------------------------------------------------------------------------ starting


def grid_name(conn: Connection, code: str) -> str | None:
    """The grid's name, None when no grid has that code."""
    return conn.execute(
        text("SELECT name FROM admin_unit WHERE code = :c AND level = :grid"),
        {"c": code, "grid": Level.grid.value},
    ).scalar()


def by_key(conn: Connection, key: str) -> RowMapping | None:
    return (
        conn.execute(
            text("SELECT id, idempotency_fingerprint FROM walk WHERE idempotency_key = :k"),
            {"k": key},
        )
        .mappings()
        .first()
    )


def hold_worker(conn: Connection, worker_id: int) -> None:
    """Lock the worker's account row until the transaction ends: walks start one at a
    time per worker, so "one running walk per worker" holds across districts (the unique
    index ``walk_one_running_idx`` holds it within one: on Citus a district's walks are
    one shard, the account a reference table)."""
    conn.execute(text("SELECT 1 FROM app_user WHERE id = :w FOR NO KEY UPDATE"), {"w": worker_id})


def running_of(conn: Connection, worker_id: int) -> int | None:
    return conn.execute(
        text("SELECT id FROM walk WHERE worker_id = :w AND status = :running"),
        {"w": worker_id, "running": WalkStatus.running.value},
    ).scalar()


def insert_walk(
    conn: Connection,
    worker_id: int,
    grid_code: str,
    key: str | None,
    fingerprint: str | None,
    client_started_at: datetime | None,
) -> int | None:
    """The new walk's id; None when a concurrent start won (same key, or a walk of the
    worker already running: the unique indexes decide)."""
    return conn.execute(
        text(
            "INSERT INTO walk (district_code, worker_id, grid_code, idempotency_key, "
            "idempotency_fingerprint, client_started_at) "
            "VALUES (district_of(:g), :w, :g, :k, :f, :cs) ON CONFLICT DO NOTHING RETURNING id"
        ),
        {"w": worker_id, "g": grid_code, "k": key, "f": fingerprint, "cs": client_started_at},
    ).scalar()


# ------------------------------------------------------------------------ a walk


#: the walk's columns a chunk is checked against (``w`` the walk, ``d`` its district)
_LOCK_COLUMNS = (
    "w.id, w.worker_id, w.grid_code, w.status, w.started_at, w.ended_at, "
    "w.client_started_at, w.client_ended_at, w.points_received, "
    "clock_timestamp() AS now, ST_XMin(d.geom) AS xmin, ST_YMin(d.geom) AS ymin, "
    "ST_XMax(d.geom) AS xmax, ST_YMax(d.geom) AS ymax"
)


def lock(conn: Connection, walk_id: int, cond: str, params: dict[str, Any]) -> RowMapping | None:
    """The walk, locked for this transaction, with the bounding box of its district and
    the database's clock; None when there is none the viewer (``cond``) may see."""
    return (
        conn.execute(
            text(
                f"SELECT {_LOCK_COLUMNS} "
                "FROM walk w LEFT JOIN admin_unit d ON d.code = w.district_code "
                f"WHERE w.id = :id AND ({cond}) FOR UPDATE OF w"
            ),
            {"id": walk_id, **params},
        )
        .mappings()
        .first()
    )


def exists(conn: Connection, walk_id: int) -> bool:
    return bool(conn.execute(text("SELECT 1 FROM walk WHERE id = :id"), {"id": walk_id}).scalar())


def chunk(conn: Connection, walk_id: int, chunk_id: str) -> RowMapping | None:
    return (
        conn.execute(
            text(
                "SELECT fingerprint, points, stored FROM walk_chunk "
                "WHERE walk_id = :w AND chunk_id = :c"
            ),
            {"w": walk_id, "c": chunk_id},
        )
        .mappings()
        .first()
    )


#: store a chunk in one statement: its fixes (each (walk, time) once: a fix already
#: stored is skipped), the chunk's record, the count on the walk; answers (stored, the
#: walk's total). Written with ``{name}`` holes for either driver's parameters.
_ADD_POINTS = """
    WITH wk AS (SELECT district_code FROM walk WHERE id = {w}),
    new AS (
        INSERT INTO walk_point (walk_id, district_code, client_ts, geom, accuracy_m, speed_mps,
                                chunk_id)
        SELECT {w}, wk.district_code, u.t, ST_SetSRID(ST_MakePoint(u.x, u.y), 4326), u.a, u.s,
               {c}
          FROM wk, unnest(CAST({t} AS timestamptz[]), CAST({x} AS float8[]),
                          CAST({y} AS float8[]), CAST({a} AS real[]),
                          CAST({s} AS real[])) AS u (t, x, y, a, s)
        ON CONFLICT DO NOTHING
        RETURNING 1),
    n AS (SELECT count(*)::integer AS stored FROM new),
    chunk AS (
        INSERT INTO walk_chunk (walk_id, district_code, chunk_id, fingerprint, points, stored)
        SELECT {w}, wk.district_code, {c}, {f}, cardinality(CAST({t} AS timestamptz[])),
               n.stored
          FROM n, wk),
    total AS (
        UPDATE walk SET points_received = points_received + n.stored,
                        received_at = clock_timestamp()
          FROM n WHERE id = {w} RETURNING points_received)
    SELECT n.stored, total.points_received FROM n, total
"""
_NAMES = ("w", "c", "f", "t", "x", "y", "a", "s")
ADD_POINTS = _ADD_POINTS.format(**{k: f":{k}" for k in _NAMES})  # SQLAlchemy
ADD_POINTS_ASYNC = _ADD_POINTS.format(**{k: f"${i}" for i, k in enumerate(_NAMES, 1)})  # asyncpg


def add_points(
    conn: Connection,
    walk_id: int,
    chunk_id: str,
    fingerprint: str,
    t: Sequence[datetime],
    lon: Sequence[float],
    lat: Sequence[float],
    accuracy_m: Sequence[float],
    speed_mps: Sequence[float | None],
) -> tuple[int, int]:
    """Store the chunk's fixes (each (walk, time) once: a fix already stored is skipped),
    record the chunk, count them on the walk, in one statement (``ADD_POINTS``). Returns
    (stored, the walk's total)."""
    stored, total = conn.execute(
        text(ADD_POINTS),
        {
            "w": walk_id,
            "c": chunk_id,
            "f": fingerprint,
            "t": list(t),
            "x": list(lon),
            "y": list(lat),
            "a": list(accuracy_m),
            "s": list(speed_mps),
        },
    ).one()
    return int(stored), int(total)


# The phone's path on the event loop (asyncpg; walks/service.py ``add_chunk_async``): the
# same statements as above in the driver's own parameter style.

#: the worker's own walk, locked, with what a chunk is checked against and the record
#: of the chunk_id if stored before (``chunk_fingerprint``, ``chunk_points``)
LOCK_OWN_ASYNC = (
    f"SELECT {_LOCK_COLUMNS}, c.fingerprint AS chunk_fingerprint, c.points AS chunk_points "
    "FROM walk w LEFT JOIN admin_unit d ON d.code = w.district_code "
    "LEFT JOIN walk_chunk c ON c.walk_id = w.id AND c.district_code = w.district_code "
    "AND c.chunk_id = $2 WHERE w.id = $1 AND w.worker_id = $3 FOR UPDATE OF w"
)


async def lock_own(
    conn: asyncpg.Connection, walk_id: int, chunk_id: str, worker_id: int
) -> asyncpg.Record | None:
    """The walk if it is this worker's (:data:`LOCK_OWN_ASYNC`), locked; else None."""
    return await conn.fetchrow(LOCK_OWN_ASYNC, walk_id, chunk_id, worker_id)


async def add_points_async(
    conn: asyncpg.Connection,
    walk_id: int,
    chunk_id: str,
    fingerprint: str,
    t: Sequence[datetime],
    lon: Sequence[float],
    lat: Sequence[float],
    accuracy_m: Sequence[float],
    speed_mps: Sequence[float | None],
) -> tuple[int, int]:
    """:func:`add_points` on asyncpg."""
    row = await conn.fetchrow(
        ADD_POINTS_ASYNC,
        walk_id,
        chunk_id,
        fingerprint,
        list(t),
        list(lon),
        list(lat),
        list(accuracy_m),
        list(speed_mps),
    )
    return int(row[0]), int(row[1])


def end(conn: Connection, walk_id: int, client_ended_at: datetime | None) -> None:
    conn.execute(
        text(
            "UPDATE walk SET status = :ended, ended_at = greatest(clock_timestamp(), "
            "started_at), client_ended_at = :ce WHERE id = :w"
        ),
        {"w": walk_id, "ce": client_ended_at, "ended": WalkStatus.ended.value},
    )


# ------------------------------------------------------------------------ processing


def stale_walks(conn: Connection, where: str, params: dict[str, Any]) -> list[int]:
    """Walks (matching ``where`` over ``w``) with fixes not yet processed."""
    return list(
        conn.execute(
            text(
                "SELECT w.id FROM walk w WHERE w.points_processed IS DISTINCT FROM "
                f"w.points_received AND w.raw_pruned_at IS NULL AND ({where}) ORDER BY w.id"
            ),
            params,
        ).scalars()
    )


def lock_for_processing(conn: Connection, walk_id: int) -> RowMapping | None:
    return (
        conn.execute(
            text(
                "SELECT id, worker_id, grid_code, started_at, points_received, raw_pruned_at "
                "FROM walk WHERE id = :w FOR UPDATE"
            ),
            {"w": walk_id},
        )
        .mappings()
        .first()
    )


def fixes(conn: Connection, walk_id: int) -> list[Any]:
    """(client_ts, lon, lat, accuracy_m) of every fix, in time order."""
    return list(
        conn.execute(
            text(
                "SELECT client_ts, ST_X(geom), ST_Y(geom), accuracy_m FROM walk_point "
                "WHERE walk_id = :w ORDER BY client_ts"
            ),
            {"w": walk_id},
        ).all()
    )


def write_cleaning(
    conn: Connection,
    walk_id: int,
    ts: Sequence[datetime],
    dropped: Sequence[str | None],
    part: Sequence[int],
) -> None:
    conn.execute(
        text(
            "UPDATE walk_point p SET dropped = u.d, part = u.part, snapped = NULL "
            "FROM unnest(CAST(:ts AS timestamptz[]), CAST(:d AS text[]), "
            "CAST(:part AS integer[])) AS u (ts, d, part) "
            "WHERE p.walk_id = :w AND p.client_ts = u.ts"
        ),
        {"w": walk_id, "ts": list(ts), "d": list(dropped), "part": [int(x) for x in part]},
    )


def snap(conn: Connection, walk_id: int | Sequence[int], snap_m: float) -> int:
    """Match the kept fixes of the walk(s) to the network (walks.sql ``walk_snap``); how
    many matched."""
    return int(
        conn.execute(
            text("SELECT walk_snap(CAST(:w AS bigint[]), CAST(:m AS double precision))"),
            {"w": _ids(walk_id), "m": snap_m},
        ).scalar_one()
    )


def _ids(walk_id: int | Sequence[int]) -> list[int]:
    return [walk_id] if isinstance(walk_id, int) else [int(w) for w in walk_id]


def write_track(conn: Connection, walk_id: int, kept: int, dropped: int, processed: int) -> None:
    """The track (one line per part of two or more kept fixes) and its length, metres."""
    write_tracks(conn, [walk_id], [kept], [dropped], [processed])


def write_tracks(
    conn: Connection,
    walk_ids: Sequence[int],
    kept: Sequence[int],
    dropped: Sequence[int],
    processed: Sequence[int],
) -> None:
    """:func:`write_track` for many walks in one statement (the same arrays' order)."""
    conn.execute(
        text(
            """
            UPDATE walk w
               SET track = t.track, distance_m = coalesce(t.dist, 0),
                   points_kept = k.kept, points_dropped = k.dropped,
                   points_processed = k.processed, processed_at = clock_timestamp()
              FROM unnest(CAST(:w AS bigint[]), CAST(:kept AS integer[]),
                          CAST(:dropped AS integer[]), CAST(:processed AS integer[]))
                       AS k (id, kept, dropped, processed)
              LEFT JOIN LATERAL (
                    SELECT ST_Multi(ST_Collect(l.line ORDER BY l.part)) AS track,
                           sum(ST_Length(l.line::geography)) AS dist
                      FROM (SELECT part,
                                   ST_MakeLine(coalesce(snapped, geom) ORDER BY client_ts)
                                       AS line,
                                   count(*) AS n
                              FROM walk_point
                             WHERE walk_id = k.id AND dropped IS NULL
                             GROUP BY part) l
                     WHERE l.n >= 2) t ON true
             WHERE w.id = k.id
            """
        ),
        {
            "w": list(walk_ids),
            "kept": list(kept),
            "dropped": list(dropped),
            "processed": list(processed),
        },
    )


def write_visits(
    conn: Connection, walk_id: int | Sequence[int], radius_m: float, entrance_m: float
) -> int:
    """Replace the visits of the walk(s) with walks.sql's ``walk_visits``; how many."""
    ids = _ids(walk_id)
    conn.execute(text("DELETE FROM walk_visit WHERE walk_id = ANY(:w)"), {"w": ids})
    return int(
        conn.execute(
            text(
                "WITH v AS (INSERT INTO walk_visit (walk_id, district_code, building_code, "
                "visited_at) SELECT v.walk_id, w.district_code, v.building_code, v.visited_at "
                "FROM walk_visits(CAST(:w AS bigint[]), :r, :e) v JOIN walk w ON w.id = v.walk_id "
                "RETURNING 1) SELECT count(*) FROM v"
            ),
            {"w": ids, "r": radius_m, "e": entrance_m},
        ).scalar_one()
    )


def refresh_day(conn: Connection, grid_code: str, worker_id: int, day: date, tz: str) -> None:
    """Recompute one row of the daily figures from the walks it sums (none: removed). An
    upsert, so two walks of the row processed at once cannot collide on its key."""
    refresh_days(conn, [(grid_code, worker_id, day)], tz)


#: the walks a daily-figures row (``k``: grid g, worker w, local day) sums
_DAY_WALKS = (
    "{a}.grid_code = k.g AND {a}.worker_id = k.w "
    "AND ({a}.started_at AT TIME ZONE CAST(:tz AS text))::date = k.day"
)


def refresh_days(conn: Connection, keys: Sequence[tuple[str, int, date]], tz: str) -> None:
    """:func:`refresh_day` for many (grid, worker, day) rows in one statement."""
    conn.execute(
        text(
            f"""
            WITH k AS (
                SELECT DISTINCT * FROM unnest(CAST(:g AS text[]), CAST(:w AS integer[]),
                                              CAST(:day AS date[])) AS k (g, w, day)),
            agg AS (
                SELECT k.g, k.w, k.day, a.*
                  FROM k CROSS JOIN LATERAL (
                    SELECT count(*) AS walks, coalesce(sum(ws.distance_m), 0) AS distance_m,
                           coalesce(sum(walk_duration_s(ws)), 0) AS duration_s,
                           (SELECT count(DISTINCT v.building_code) FROM walk_visit v
                              JOIN walk x ON x.id = v.walk_id
                                           AND x.district_code = v.district_code
                             WHERE {_DAY_WALKS.format(a="x")}) AS buildings_visited,
                           (SELECT count(*) FROM cases c JOIN walk x ON x.id = c.walk_id
                                           AND x.district_code = c.district_code
                             WHERE {_DAY_WALKS.format(a="x")}) AS problems
                      FROM walk ws WHERE {_DAY_WALKS.format(a="ws")}) a),
            up AS (
                INSERT INTO walk_day (day, grid_code, district_code, worker_id, walks,
                                      distance_m, duration_s, buildings_visited, problems)
                SELECT day, g, district_of(g), w, walks, distance_m, duration_s,
                       buildings_visited, problems
                  FROM agg WHERE walks > 0
                ON CONFLICT (day, grid_code, worker_id, district_code) DO UPDATE
                   SET walks = EXCLUDED.walks, distance_m = EXCLUDED.distance_m,
                       duration_s = EXCLUDED.duration_s,
                       buildings_visited = EXCLUDED.buildings_visited,
                       problems = EXCLUDED.problems)
            DELETE FROM walk_day d USING agg
             WHERE d.day = agg.day AND d.grid_code = agg.g AND d.worker_id = agg.w
               AND agg.walks = 0
            """
        ),
        {
            "g": [k[0] for k in keys],
            "w": [int(k[1]) for k in keys],
            "day": [k[2] for k in keys],
            "tz": tz,
        },
    )


# ------------------------------------------------------------------------ reading


def summaries(
    conn: Connection,
    cond: str,
    params: dict[str, Any],
    tz: str,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[RowMapping], int]:
    """Walks matching ``cond`` (over ``w``), newest first, and how many match."""
    rows = list(
        conn.execute(
            text(
                f"SELECT {SUMMARY} {FROM} WHERE {cond} ORDER BY w.started_at DESC, w.id DESC "
                "LIMIT :limit OFFSET :offset"
            ),
            {**params, "tz": tz, "limit": limit, "offset": offset},
        ).mappings()
    )
    total = conn.execute(text(f"SELECT count(*) FROM walk w WHERE {cond}"), params).scalar_one()
    return rows, int(total)


def detail(conn: Connection, walk_id: int, tz: str) -> dict[str, Any]:
    """The track (GeoJSON text), the drop counts, the visits and the case ids of a walk."""
    track = conn.execute(
        text("SELECT ST_AsGeoJSON(track, 7) FROM walk WHERE id = :w"), {"w": walk_id}
    ).scalar()
    dropped = dict(
        conn.execute(
            text(
                "SELECT dropped, count(*) FROM walk_point WHERE walk_id = :w "
                "AND dropped IS NOT NULL GROUP BY dropped ORDER BY dropped"
            ),
            {"w": walk_id},
        ).all()
    )
    visits = list(
        conn.execute(
            text(
                "SELECT v.building_code, b.name, v.visited_at FROM walk_visit v "
                "LEFT JOIN admin_unit b ON b.code = v.building_code "
                "WHERE v.walk_id = :w ORDER BY v.visited_at, v.building_code"
            ),
            {"w": walk_id},
        ).mappings()
    )
    cases = list(
        conn.execute(
            text("SELECT id FROM cases WHERE walk_id = :w ORDER BY id"), {"w": walk_id}
        ).scalars()
    )
    return {"track": track, "dropped": dropped, "visits": visits, "case_ids": cases}


def due(conn: Connection, grid_code: str, days: int) -> tuple[list[RowMapping], int, datetime]:
    """The grid's buildings with their last visit (by any walk), those not visited in the
    last ``days`` days first-never, then oldest; and how many buildings the grid has."""
    rows = list(
        conn.execute(
            text(
                """
                SELECT b.code, b.name, ST_X(b.label_point) AS lon, ST_Y(b.label_point) AS lat,
                       last.at AS last_visited_at,
                       extract(epoch FROM clock_timestamp() - last.at) / 86400.0 AS days_since
                  FROM admin_unit b
                  LEFT JOIN LATERAL (SELECT max(v.visited_at) AS at FROM walk_visit v
                                      WHERE v.building_code = b.code) last ON true
                 WHERE b.level = :building AND b.code LIKE :prefix
                 ORDER BY last.at NULLS FIRST, b.code
                """
            ),
            {"prefix": grid_code + "%", "building": Level.building.value},
        ).mappings()
    )
    now = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return rows, len(rows), now


def doors(conn: Connection, codes: Sequence[str], entrance_m: float) -> dict[str, tuple]:
    """Per building code: its door on the walking network (lon, lat), by walks.sql
    ``building_doors`` (the entrance area's rule); buildings without a door within
    ``entrance_m`` metres are absent."""
    rows = conn.execute(
        text(
            """
            SELECT d.code, ST_X(d.door) AS lon, ST_Y(d.door) AS lat
              FROM (SELECT ST_Collect(geom) AS area FROM admin_unit
                     WHERE code = ANY(:codes) AND level = :building) b,
                   building_doors(b.area, :entrance) d
             WHERE d.code = ANY(:codes) AND d.door IS NOT NULL
            """
        ),
        {"codes": list(codes), "entrance": entrance_m, "building": Level.building.value},
    ).all()
    return {r[0]: (float(r[1]), float(r[2])) for r in rows}


# ------------------------------------------------------------------------ retention


def prunable(conn: Connection, before: datetime) -> list[int]:
    """Ended walks older than ``before`` whose raw fixes are still kept."""
    return list(
        conn.execute(
            text(
                "SELECT id FROM walk WHERE status = :ended AND ended_at < :before "
                "AND raw_pruned_at IS NULL ORDER BY id"
            ),
            {"before": before, "ended": WalkStatus.ended.value},
        ).scalars()
    )


def prune(conn: Connection, walk_ids: Sequence[int]) -> int:
    """Remove the raw fixes and chunk records of these walks; how many fixes went."""
    ids = list(walk_ids)
    removed = conn.execute(
        text("DELETE FROM walk_point WHERE walk_id = ANY(:ids)"), {"ids": ids}
    ).rowcount
    conn.execute(text("DELETE FROM walk_chunk WHERE walk_id = ANY(:ids)"), {"ids": ids})
    conn.execute(
        text("UPDATE walk SET raw_pruned_at = clock_timestamp() WHERE id = ANY(:ids)"),
        {"ids": ids},
    )
    return int(removed)


# ------------------------------------------------------------------------ history in bulk


def insert_ended_walks(
    conn: Connection,
    worker_ids: Sequence[int],
    grid_codes: Sequence[str],
    started_at: Sequence[datetime],
    ended_at: Sequence[datetime],
) -> list[int]:
    """Insert walks that have already ended (their start and end as the phone gave them);
    their ids, in the order given."""
    return list(
        conn.execute(
            text(
                """
                INSERT INTO walk (district_code, worker_id, grid_code, status, started_at,
                                  ended_at, client_started_at, client_ended_at)
                SELECT district_of(u.g), u.w, u.g, :ended, u.s, u.e, u.s, u.e
                  FROM unnest(CAST(:w AS integer[]), CAST(:g AS text[]),
                              CAST(:s AS timestamptz[]), CAST(:e AS timestamptz[]))
                       WITH ORDINALITY AS u (w, g, s, e, n)
                 ORDER BY u.n
                RETURNING id
                """
            ),
            {
                "w": [int(w) for w in worker_ids],
                "g": list(grid_codes),
                "s": list(started_at),
                "e": list(ended_at),
                "ended": WalkStatus.ended.value,
            },
        ).scalars()
    )


def district_boxes(conn: Connection, grid_codes: Sequence[str]) -> dict[str, RowMapping]:
    """Per grid code (grids only): the bounding box of its district (xmin … ymax)."""
    return {
        r["code"]: r
        for r in conn.execute(
            text(
                "SELECT g.code, ST_XMin(d.geom) AS xmin, ST_YMin(d.geom) AS ymin, "
                "ST_XMax(d.geom) AS xmax, ST_YMax(d.geom) AS ymax FROM admin_unit g "
                "JOIN admin_unit d ON d.code = district_of(g.code) "
                "WHERE g.code = ANY(:codes) AND g.level = :grid"
            ),
            {
                "codes": list(grid_codes),
                "grid": Level.grid.value,
            },
        ).mappings()
    }


def copy_cleaned_points(conn: Connection, rows: str, chunk_id: str) -> None:
    """COPY fixes already cleaned into walk_point: ``rows`` is COPY text, one fix a line,
    ``walk_id, client_ts, lon, lat, accuracy_m, dropped (\\N: kept), part (\\N)``; then
    count them on their walks."""
    conn.exec_driver_sql(
        "CREATE TEMP TABLE walk_point_in (walk_id bigint, client_ts timestamptz, "
        "lon float8, lat float8, accuracy_m real, dropped text, part integer) ON COMMIT DROP"
    )
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert("COPY walk_point_in FROM STDIN", io.StringIO(rows), size=1 << 20)
    conn.execute(
        text(
            "INSERT INTO walk_point (walk_id, district_code, client_ts, geom, accuracy_m, "
            "chunk_id, dropped, part) SELECT i.walk_id, w.district_code, i.client_ts, "
            "ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326), i.accuracy_m, :c, i.dropped, i.part "
            "FROM walk_point_in i JOIN walk w ON w.id = i.walk_id"
        ),
        {"c": chunk_id},
    )
    conn.execute(
        text(
            "UPDATE walk w SET points_received = n.n, received_at = w.ended_at "
            "FROM (SELECT walk_id, count(*) AS n FROM walk_point_in GROUP BY walk_id) n "
            "WHERE w.id = n.walk_id"
        )
    )
    conn.exec_driver_sql("DROP TABLE walk_point_in")
