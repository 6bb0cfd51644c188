"""Grid walks: starting, recording fixes in chunks, ending, processing, reading.

Who may do what is auth/scope.py's (``walk_filter``, ``require_walk_reader``); the
cleaning rules are cleaning.py's, the matching and visited rules walks.sql's, their
numbers rules.py's. Processing (clean → match → track → visits → daily figures) runs when
a walk ends and, for a walk still running, when someone reads it or its grid's due list
after new fixes came: ingest stays one insert, and the phone's "still to visit" list is
fresh whenever it asks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import covers_unit, require_walk_reader, walk_filter
from gis_service.cases.report import idempotency_scope
from gis_service.db import asyncpool
from gis_service.db.engine import transaction
from gis_service.errors import Conflict, Forbidden, IdempotencyKeyReused, InvalidInput, NotFound
from gis_service.settings import Settings
from gis_service.timezone import to_local
from gis_service.units.codes import CODE_LENGTH, Level
from gis_service.walks import store
from gis_service.walks.cleaning import clean
from gis_service.walks.rules import (
    BOUNDS_MARGIN_M,
    CLOCK_SKEW_S,
    ENTRANCE_MAX_M,
    SNAP_MAX_M,
    VISIT_RADIUS_M,
    WalkStatus,
)
from gis_service.walks.schemas import Chunk, WalkEnd, WalkStart

#: roles that walk grids (a grid worker on patrol, a supervisor or admin inspecting)
WALKERS = frozenset({Role.grid_worker, Role.supervisor, Role.admin})
#: problems listed at most in one refusal (the count is always complete)
MAX_LISTED = 20


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------ start


def start(
    conn: Connection, principal: Principal, body: WalkStart, key: str | None
) -> tuple[int, bool]:
    """Start a walk of ``body.grid_code`` (or of the worker's one grid); returns (walk id,
    created). A retry with the same Idempotency-Key (per sender, as for case reports)
    answers the same walk; the key with another body: 422 ``idempotency_key_reused``.
    403: a role that does not walk, or a grid outside the jurisdiction; 422: no such grid,
    or no grid_code from a worker of several grids; 409: the worker's other walk is still
    running (``walk_id`` names it: end it first)."""
    if principal.role not in WALKERS or principal.user_id is None:
        raise Forbidden(f"a {principal.role.value} does not walk grids")
    scoped = idempotency_scope(principal, key)
    fingerprint = _digest(body.model_dump(mode="json"))
    if scoped is not None:
        found = store.by_key(conn, scoped)
        if found is not None:
            return _replay(found, fingerprint, key), False
    grid = body.grid_code or _only_grid(principal)
    if store.grid_name(conn, grid) is None:
        raise InvalidInput(f"no grid has the code {grid}", field="grid_code")
    if not covers_unit(principal, grid):
        raise Forbidden(f"grid {grid} is outside your jurisdiction", field="grid_code")
    store.hold_worker(conn, principal.user_id)
    running = store.running_of(conn, principal.user_id)
    if running is not None:
        raise Conflict(
            f"your walk {running} is still running: end it first", walk_id=running, allowed=[]
        )
    walk_id = store.insert_walk(
        conn, principal.user_id, grid, scoped, fingerprint, body.client_started_at
    )
    if walk_id is None:  # a concurrent start won: the same key, or another walk
        found = store.by_key(conn, scoped) if scoped is not None else None
        if found is not None:
            return _replay(found, fingerprint, key), False
        raise Conflict("another walk of yours started at the same moment", allowed=[])
    return walk_id, True


def _replay(found: Any, fingerprint: str, key: str | None) -> int:
    if found["idempotency_fingerprint"] != fingerprint:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {key!r} was already used for walk {found['id']} with a "
            "different request: send a new key for a new walk",
            field="Idempotency-Key",
            idempotency_key=key,
        )
    return int(found["id"])


def _only_grid(principal: Principal) -> str:
    grids = [s for s in principal.scopes if len(s) == CODE_LENGTH[Level.grid]]
    if len(grids) != 1 or len(principal.scopes) != 1:
        raise InvalidInput("name the grid you walk: grid_code", field="grid_code")
    return grids[0]


# ------------------------------------------------------------------------ points


def add_chunk(conn: Connection, principal: Principal, walk_id: int, body: Chunk) -> dict:
    """Store a chunk of fixes; the answer is ``ChunkStored``. A retry of a chunk_id
    stores nothing (``replayed``); the same chunk_id with other fixes: 422
    ``idempotency_key_reused``. A fix stored before by another chunk is not stored again.
    Refused whole, naming every bad fix (``errors``: ``points[i].t``, ``points[i].lon``…):
    a time before the walk's start or after its end (or ahead of the server's clock by
    more than rules.CLOCK_SKEW_S), a time twice in the chunk, a position outside the
    district's bounding box (plus rules.BOUNDS_MARGIN_M). 404: no walk the viewer sees;
    403: not the walk's own worker; 409: the walk has ended and the chunk holds no fix
    of its time (a late chunk of fixes made while it ran is taken)."""
    walk = _own(conn, principal, walk_id)
    fingerprint = _digest(body.model_dump(mode="json"))
    seen = store.chunk(conn, walk_id, body.chunk_id)
    if seen is not None:
        return _replayed(walk, body, fingerprint, seen["fingerprint"], seen["points"])
    _check_fixes(walk, body)
    stored, total = store.add_points(conn, walk_id, body.chunk_id, fingerprint, *_columns(body))
    return _stored(walk_id, body, stored, total)


#: roles for which "the walks I may see" holds every walk of their own (auth/scope.py
#: ``walk_filter``: a grid worker sees their own walks, an admin all), so the phone's
#: path can find the walk by its worker alone
_OWN_IS_SEEN = frozenset({Role.grid_worker, Role.admin})


async def add_chunk_async(
    settings: Settings, principal: Principal, walk_id: int, body: Chunk
) -> dict:
    """:func:`add_chunk` for the phone, on the event loop: with a grid worker's or an
    admin's own walk, one transaction on the asyncpg pool (db/asyncpool.py) of two
    statements — the walk locked with the chunk_id's record, then the fixes, the chunk's
    record and the walk's count in one insert — checked and answered by the same
    functions as :func:`add_chunk`. Anything else (another's walk, no such walk, a
    supervisor's) goes to :func:`add_chunk` in a worker thread, which names the refusal."""
    if principal.role in _OWN_IS_SEEN and principal.user_id is not None:
        fingerprint = _digest(body.model_dump(mode="json"))
        pool = await asyncpool.get_pool(settings)
        async with pool.acquire() as conn, conn.transaction():
            walk = await store.lock_own(conn, walk_id, body.chunk_id, principal.user_id)
            if walk is not None:
                require_walk_reader(principal)
                if walk["chunk_fingerprint"] is not None:
                    return _replayed(
                        walk, body, fingerprint, walk["chunk_fingerprint"], walk["chunk_points"]
                    )
                _check_fixes(walk, body)
                stored, total = await store.add_points_async(
                    conn, walk_id, body.chunk_id, fingerprint, *_columns(body)
                )
                return _stored(walk_id, body, stored, total)
    return await run_in_threadpool(_add_chunk_committed, settings, principal, walk_id, body)


def _add_chunk_committed(
    settings: Settings, principal: Principal, walk_id: int, body: Chunk
) -> dict:
    with transaction(settings) as conn:
        return add_chunk(conn, principal, walk_id, body)


def _columns(body: Chunk) -> tuple[list, list, list, list, list]:
    """The chunk's fixes as columns: times, longitudes, latitudes, accuracies, speeds."""
    pts = body.points
    return (
        [p.t for p in pts],
        [p.lon for p in pts],
        [p.lat for p in pts],
        [p.accuracy_m for p in pts],
        [p.speed_mps for p in pts],
    )


def _replayed(walk: Any, body: Chunk, fingerprint: str, seen: str, points: int) -> dict:
    """The answer to a chunk_id stored before; 422 when it came with other fixes."""
    if seen != fingerprint:
        raise IdempotencyKeyReused(
            f"chunk_id {body.chunk_id!r} was already used for other fixes of walk "
            f"{walk['id']}: send a new chunk_id",
            field="chunk_id",
        )
    return {
        "walk_id": walk["id"],
        "chunk_id": body.chunk_id,
        "points": points,
        "stored": 0,
        "replayed": True,
        "points_received": walk["points_received"],
    }


def _stored(walk_id: int, body: Chunk, stored: int, total: int) -> dict:
    return {
        "walk_id": walk_id,
        "chunk_id": body.chunk_id,
        "points": len(body.points),
        "stored": stored,
        "replayed": False,
        "points_received": total,
    }


def _own(conn: Connection, principal: Principal, walk_id: int) -> Any:
    require_walk_reader(principal)
    cond, params = walk_filter(principal)
    walk = store.lock(conn, walk_id, cond, params)
    if walk is None:
        raise NotFound(f"no walk {walk_id} that you can see")
    if walk["worker_id"] != principal.user_id:
        raise Forbidden(f"walk {walk_id} is another worker's: only they record it")
    return walk


def _check_fixes(walk: Any, body: Chunk) -> None:
    skew = timedelta(seconds=CLOCK_SKEW_S)
    first = walk["client_started_at"] or walk["started_at"] - skew
    last = walk["now"] + skew
    if walk["status"] == WalkStatus.ended:
        last = min(last, walk["client_ended_at"] or walk["ended_at"] + skew)
    problems: list[dict[str, str]] = []
    bounds = district_bounds(walk)
    times: dict[datetime, int] = {}
    outside_walk = 0
    for i, p in enumerate(body.points):
        if p.t < first:
            outside_walk += 1
            problems.append(
                {
                    "field": f"points[{i}].t",
                    "message": f"{p.t.isoformat()} is before the "
                    f"walk started ({first.isoformat()})",
                }
            )
        elif p.t > last:
            outside_walk += 1
            why = "the walk ended" if walk["status"] == WalkStatus.ended else "now"
            problems.append(
                {
                    "field": f"points[{i}].t",
                    "message": f"{p.t.isoformat()} is after {why} ({last.isoformat()})",
                }
            )
        if p.t in times:
            problems.append(
                {"field": f"points[{i}].t", "message": f"the same time as points[{times[p.t]}]"}
            )
        times.setdefault(p.t, i)
        if bounds is not None:
            x0, y0, x1, y1 = bounds
            if not x0 <= p.lon <= x1:
                problems.append(
                    {
                        "field": f"points[{i}].lon",
                        "message": f"{p.lon} is outside the district ({x0:.5f}..{x1:.5f})",
                    }
                )
            if not y0 <= p.lat <= y1:
                problems.append(
                    {
                        "field": f"points[{i}].lat",
                        "message": f"{p.lat} is outside the district ({y0:.5f}..{y1:.5f})",
                    }
                )
    if walk["status"] == WalkStatus.ended and outside_walk == len(body.points):
        raise Conflict(f"walk {walk['id']} has ended; these fixes were made after it", allowed=[])
    if problems:
        listed = problems[:MAX_LISTED]
        raise InvalidInput(
            f"{len(problems)} problem(s) in the chunk, nothing stored: "
            + "; ".join(f"{p['field']}: {p['message']}" for p in listed[:3]),
            field=listed[0]["field"],
            errors=listed,
        )


def district_bounds(walk: Any) -> tuple[float, float, float, float] | None:
    """(xmin, ymin, xmax, ymax) of the district's box (``walk``: a row with xmin … ymax)
    grown by rules.BOUNDS_MARGIN_M: where a walker's position may lie. None: no box."""
    if walk["xmin"] is None:
        return None
    dy = BOUNDS_MARGIN_M / 111_000.0
    lat = max(abs(walk["ymin"]), abs(walk["ymax"]))
    dx = dy / max(np.cos(np.radians(lat)), 0.01)
    return walk["xmin"] - dx, walk["ymin"] - dy, walk["xmax"] + dx, walk["ymax"] + dy


# ------------------------------------------------------------------------ end


def end(
    conn: Connection,
    principal: Principal,
    walk_id: int,
    body: WalkEnd | None,
    settings: Settings,
) -> None:
    """End the walk (again: nothing changes) and process it. 404/403 as for chunks."""
    walk = _own(conn, principal, walk_id)
    if walk["status"] == WalkStatus.running:
        store.end(conn, walk_id, body.client_ended_at if body else None)
    process(conn, walk_id, settings.timezone)


# ------------------------------------------------------------------------ processing


def process(conn: Connection, walk_id: int, tz: str) -> None:
    """Clean, match, draw, find the visits of one walk and refresh its day's figures,
    inside the caller's transaction (the walk's row is locked for it)."""
    walk = store.lock_for_processing(conn, walk_id)
    if walk is None or walk["raw_pruned_at"] is not None:
        return
    rows = store.fixes(conn, walk_id)
    kept = dropped = 0
    if rows:
        ts = [r[0] for r in rows]
        seconds = np.array([t.timestamp() for t in ts])
        lon = np.array([r[1] for r in rows], float)
        lat = np.array([r[2] for r in rows], float)
        acc = np.array([r[3] for r in rows], float)
        cleaned = clean(seconds, lon, lat, acc)
        store.write_cleaning(conn, walk_id, ts, cleaned.dropped, cleaned.part.tolist())
        store.snap(conn, walk_id, SNAP_MAX_M)
        kept = cleaned.kept
        dropped = len(rows) - kept
    store.write_track(conn, walk_id, kept, dropped, walk["points_received"])
    store.write_visits(conn, walk_id, VISIT_RADIUS_M, ENTRANCE_MAX_M)
    day = to_local_date(walk["started_at"], tz)
    store.refresh_day(conn, walk["grid_code"], walk["worker_id"], day, tz)


def to_local_date(moment: datetime, tz: str) -> date:
    return moment.astimezone(ZoneInfo(tz)).date()


def refresh(conn: Connection, where: str, params: dict[str, Any], tz: str) -> int:
    """Process the walks matching ``where`` (over ``w``) that have unprocessed fixes."""
    ids = store.stale_walks(conn, where, params)
    for walk_id in ids:
        process(conn, walk_id, tz)
    return len(ids)


# ------------------------------------------------------------------------ reading


def get(conn: Connection, principal: Principal, walk_id: int, settings: Settings) -> dict:
    """The walk as a GeoJSON Feature (``WalkFeature``): the cleaned track, its figures,
    the buildings visited and the cases reported during it. 403 for roles that do not
    read walks, 404 for a walk the viewer may not see."""
    require_walk_reader(principal)
    cond, params = walk_filter(principal)
    rows, _ = store.summaries(
        conn,
        f"w.id = :walk_id AND {cond}",
        {**params, "walk_id": walk_id},
        settings.timezone,
        limit=1,
    )
    if not rows:
        raise NotFound(f"no walk {walk_id} that you can see")
    if refresh(conn, "w.id = :walk_id", {"walk_id": walk_id}, settings.timezone):
        rows, _ = store.summaries(
            conn, "w.id = :walk_id", {"walk_id": walk_id}, settings.timezone, limit=1
        )
    more = store.detail(conn, walk_id, settings.timezone)
    props = summary(rows[0], settings)
    props["dropped"] = more["dropped"]
    props["visited"] = [
        {
            "building_code": v["building_code"],
            "name": v["name"],
            "visited_at": _iso(v["visited_at"], settings),
        }
        for v in more["visits"]
    ]
    props["case_ids"] = more["case_ids"]
    return {
        "type": "Feature",
        "id": walk_id,
        "geometry": json.loads(more["track"]) if more["track"] else None,
        "properties": props,
    }


def summary(row: Any, settings: Settings) -> dict[str, Any]:
    out = dict(row)
    for k in ("started_at", "ended_at"):
        out[k] = _iso(out[k], settings)
    out["day"] = out["day"].isoformat()
    out["distance_m"] = None if out["distance_m"] is None else round(out["distance_m"], 1)
    out["duration_s"] = round(float(out["duration_s"] or 0), 1)
    return out


def _iso(moment: datetime | None, settings: Settings) -> str | None:
    return None if moment is None else to_local(moment, settings).isoformat()


def list_walks(
    conn: Connection,
    principal: Principal,
    settings: Settings,
    *,
    worker: int | None = None,
    grid: str | None = None,
    date_from: Any = None,
    date_to: Any = None,
    status: WalkStatus | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict:
    """The walks the viewer may see (``WalkList``), newest first, filtered: ``worker``
    (user id), ``grid`` (a unit code: walks of the grids inside it), ``from``/``to``
    (local dates of the start, inclusive), ``status``. 403 for roles that do not read
    walks."""
    require_walk_reader(principal)
    cond, params = walk_filter(principal)
    terms = [cond]
    if worker is not None:
        terms.append("w.worker_id = :f_worker")
        params["f_worker"] = worker
    if grid is not None:
        terms.append("w.grid_code LIKE :f_grid")
        params["f_grid"] = grid + "%"
    if date_from is not None or date_to is not None:
        if date_from is not None and date_to is not None and date_from > date_to:
            raise InvalidInput("from is after to", field="from")
        terms.append(
            "(w.started_at AT TIME ZONE :f_tz)::date BETWEEN coalesce(:f_from, '-infinity'::date)"
            " AND coalesce(:f_to, 'infinity'::date)"
        )
        params.update(f_tz=settings.timezone, f_from=date_from, f_to=date_to)
    if status is not None:
        terms.append("w.status = :f_status")
        params["f_status"] = status.value
    rows, total = store.summaries(
        conn, " AND ".join(terms), params, settings.timezone, limit=limit, offset=offset
    )
    return {"walks": [summary(r, settings) for r in rows], "total": total}


def due_days(settings: Settings, grid_code: str) -> int:
    """N of the due list: the district's own (walk_due_days_by_district), else
    walk_due_days."""
    district = grid_code[: CODE_LENGTH[Level.district]]
    return settings.walk_due_days_by_district.get(district, settings.walk_due_days)


def due_buildings(
    conn: Connection, principal: Principal, settings: Settings, grid_code: str, days: int | None
) -> dict:
    """The grid's buildings not visited (by any walk) in the last ``days`` days
    (``DueBuildings``), never-visited first, then the longest ago. The walks of the grid
    with new fixes are processed first, so a building passed a moment ago has left the
    list. 404: no such grid; 403: outside the viewer's jurisdiction (grid workers,
    supervisors and planners of units that hold it; admins)."""
    if store.grid_name(conn, grid_code) is None:
        raise NotFound(f"no grid has the code {grid_code}")
    if principal.role not in (*WALKERS, Role.planner) or not covers_unit(principal, grid_code):
        raise Forbidden(f"grid {grid_code} is outside your jurisdiction")
    n = due_days(settings, grid_code) if days is None else days
    refresh(conn, "w.grid_code = :g", {"g": grid_code}, settings.timezone)
    rows, total, now = store.due(conn, grid_code, n)
    due = [
        {
            "code": r["code"],
            "name": r["name"],
            "lon": round(r["lon"], 7),
            "lat": round(r["lat"], 7),
            "last_visited_at": _iso(r["last_visited_at"], settings),
            "days_since": None if r["days_since"] is None else round(float(r["days_since"]), 2),
        }
        for r in rows
        if r["days_since"] is None or r["days_since"] > n
    ]
    return {
        "grid_code": grid_code,
        "days": n,
        "as_of": _iso(now, settings),
        "buildings_total": total,
        "due": len(due),
        "buildings": due,
    }


# ------------------------------------------------------------------------ history in bulk


@dataclass(frozen=True)
class EndedWalk:
    """A walk that has already ended, with every fix the phone made during it (times
    aware; positions WGS-84 degrees; accuracy metres)."""

    worker_id: int
    grid_code: str
    started_at: datetime
    ended_at: datetime
    t: Sequence[datetime]
    lon: Sequence[float]
    lat: Sequence[float]
    accuracy_m: Sequence[float]


def record_ended(conn: Connection, walks: Sequence[EndedWalk], tz: str) -> list[int]:
    """Store walks that have ended, with their fixes, and process them: the bulk path for
    generated or imported history (the demo's month of walks). The same rules as start →
    chunks → end → :func:`process`: fixes inside the walk's time, each time once, inside
    the district's box plus rules.BOUNDS_MARGIN_M (otherwise 422 naming ``walks[i]``'s
    field, nothing stored), the cleaning of cleaning.py, the matching,
    track and visited rules of walks.sql, the daily figures of store.refresh_day — each
    step one statement for all the walks. Returns the new walks' ids, in order."""
    problems: list[dict[str, str]] = []
    boxes = store.district_boxes(conn, sorted({w.grid_code for w in walks}))
    for i, w in enumerate(walks):
        box = boxes.get(w.grid_code)
        if box is None:
            problems.append({"field": f"walks[{i}].grid_code", "message": "no such grid"})
        elif (bounds := district_bounds(box)) is not None:
            x0, y0, x1, y1 = bounds
            lon, lat = np.asarray(w.lon, float), np.asarray(w.lat, float)
            if np.any((lon < x0) | (lon > x1) | (lat < y0) | (lat > y1)):
                problems.append(
                    {"field": f"walks[{i}].lon", "message": "a fix outside the district"}
                )
        seconds = np.array([t.timestamp() for t in w.t])
        if len(seconds) and (
            seconds.min() < w.started_at.timestamp() or seconds.max() > w.ended_at.timestamp()
        ):
            problems.append({"field": f"walks[{i}].t", "message": "a fix outside the walk"})
        if len(np.unique(seconds)) != len(seconds) or np.any(np.diff(seconds) < 0):
            problems.append({"field": f"walks[{i}].t", "message": "times repeat or go back"})
    if problems:
        raise InvalidInput(
            f"{len(problems)} problem(s) in the walks, nothing stored",
            field=problems[0]["field"],
            errors=problems[:MAX_LISTED],
        )
    ids = store.insert_ended_walks(
        conn,
        [w.worker_id for w in walks],
        [w.grid_code for w in walks],
        [w.started_at for w in walks],
        [w.ended_at for w in walks],
    )
    lines: list[str] = []
    kept: list[int] = []
    for walk_id, w in zip(ids, walks, strict=True):
        seconds = np.array([t.timestamp() for t in w.t])
        cleaned = clean(
            seconds,
            np.asarray(w.lon, float),
            np.asarray(w.lat, float),
            np.asarray(w.accuracy_m, float),
        )
        kept.append(cleaned.kept)
        for j, t in enumerate(w.t):
            d = cleaned.dropped[j]
            lines.append(
                f"{walk_id}\t{t.isoformat()}\t{float(w.lon[j])!r}\t{float(w.lat[j])!r}\t"
                + f"{float(w.accuracy_m[j])!r}\t"
                + (f"{d}\t\\N" if d else f"\\N\t{int(cleaned.part[j])}")
            )
    store.copy_cleaned_points(conn, "\n".join(lines) + "\n", "history")
    store.snap(conn, ids, SNAP_MAX_M)
    received = [len(w.t) for w in walks]
    store.write_tracks(
        conn, ids, kept, [n - k for n, k in zip(received, kept, strict=True)], received
    )
    store.write_visits(conn, ids, VISIT_RADIUS_M, ENTRANCE_MAX_M)
    store.refresh_days(
        conn, [(w.grid_code, w.worker_id, to_local_date(w.started_at, tz)) for w in walks], tz
    )
    return ids
