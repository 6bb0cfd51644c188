"""A month of generated grid walks (巡查) for the demo district.

Each grid worker walks their grid on some of the last :data:`DAYS` days, from the grid's
office (the network node nearest the middle of the grid) along the walking network — the
shortest paths between the doors of the buildings they call at, with a short stop at each —
and back. The phone's fixes come every :data:`FIX_INTERVAL_S` seconds with a few metres of
GPS noise, now and then a fix reporting poor accuracy and, rarely, a Wi-Fi position
hundreds of metres off (what walks/cleaning.py drops). The walks are stored and processed
by the walks service's own bulk path (``walks.service.record_ended``: the same rules as
the phone's start → chunks → end), so tracks, visits and daily figures exist.

How well a grid is walked is a property of its community (:func:`care_of`): in a
``well`` walked community every grid is walked on most days and every building called at;
``fair`` on about half the days, through about half the buildings; ``neglected`` on two
or three days more than a week ago, along a street near the office and past no building
on purpose — so the desk's walk maps and due lists show something real.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import numpy as np
import shapely
import shapely.ops
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree
from sqlalchemy import Connection, text

from gis_service.demo.hierarchy import Hierarchy, Unit
from gis_service.demo.network import Network
from gis_service.demo.plane import Plane
from gis_service.walks.service import EndedWalk, record_ended

#: the days before today that get walks
DAYS = 30
#: seconds between two fixes: the phone app samples every 5 s; the demo's history uses a
#: phone's power-saving rate (every 30 s) so that its month (some 9,000 walks) builds in
#: about half a minute — the cleaning, matching and visited rules are the same
FIX_INTERVAL_S = 30.0
#: walking speed, m/s (mean, spread)
SPEED_MPS = (1.25, 0.12)
#: GPS noise, metres (standard deviation per axis), and the accuracy the phone reports
NOISE_M = 4.0
ACCURACY_M = (5.0, 15.0)
#: share of fixes reporting a poor accuracy (dropped as ``accuracy``), and of Wi-Fi jumps
POOR_SHARE = 0.02
JUMP_SHARE = 0.004
#: a call at a building: seconds standing at its door
STOP_S = (30.0, 90.0)
#: walks per batch handed to the walks service (one transaction each)
BATCH = 1500


class Care(StrEnum):
    """How well a community's grids are walked."""

    well = "well"
    fair = "fair"
    neglected = "neglected"


#: share of communities in each class
CARE_SHARES = {Care.well: 0.55, Care.fair: 0.25, Care.neglected: 0.20}


def care_of(community_code: str, seed: int = 2026) -> Care:
    """The care class of a community: a deterministic draw from its code and the seed."""
    u = np.random.default_rng([seed, int(community_code)]).uniform()
    acc = 0.0
    for care, share in CARE_SHARES.items():
        acc += share
        if u < acc:
            return care
    return Care.neglected


@dataclass
class WalkSummary:
    walks: int = 0
    fixes: int = 0
    workers: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.walks:,} walks of {self.workers} grid workers, {self.fixes:,} fixes "
            f"in {self.seconds:.1f} s"
        )


class _Graph:
    """The demo network as a weighted graph with a node index."""

    def __init__(self, net: Network):
        self.xy = net.node_xy
        index = {int(n): i for i, n in enumerate(net.node_id)}
        a = np.array([index[int(s)] for s in net.source])
        b = np.array([index[int(t)] for t in net.target])
        w = np.hypot(*(self.xy[a] - self.xy[b]).T)
        n = len(self.xy)
        self.matrix = coo_matrix(
            (np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))),
            shape=(n, n),
        ).tocsr()
        self.tree = cKDTree(self.xy)

    def nearest(self, x: float, y: float) -> int:
        return int(self.tree.query([x, y])[1])

    def paths(self, sources: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return dijkstra(self.matrix, indices=sources, return_predecessors=True, limit=6000.0)


def _path(pred: np.ndarray, src_row: int, target: int) -> list[int]:
    out = [target]
    while True:
        p = int(pred[src_row, out[-1]])
        if p < 0:
            break
        out.append(p)
    return out[::-1]


def _door(b: Unit, graph: _Graph) -> tuple[int, np.ndarray]:
    """The network node nearest the building's footprint, and the point of the footprint
    nearest that node (where the worker knocks)."""
    poly = b.metric
    corners = np.asarray(shapely.get_coordinates(poly))
    _, idx = graph.tree.query(corners, k=3)
    cand = np.unique(idx.ravel())
    pts = shapely.points(graph.xy[cand])
    best = int(cand[int(np.argmin(shapely.distance(pts, poly)))])
    near = shapely.ops.nearest_points(poly, shapely.Point(graph.xy[best]))[0]
    return best, np.array([near.x, near.y])


def _sample(
    line: np.ndarray,
    stops: list[tuple[int, float]],
    speed: float,
    rng: np.random.Generator,
    interval: float = FIX_INTERVAL_S,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions every ``interval`` seconds along ``line`` (metric, (n, 2)) at ``speed``,
    with a stop of the given seconds at the given vertices; (seconds from the start, xy)."""
    seg = np.hypot(*np.diff(line, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    # time at each vertex, stops included
    pause = np.zeros(len(line))
    for vertex, seconds in stops:
        pause[vertex] += seconds
    t_vertex = cum / speed + np.concatenate([[0.0], np.cumsum(pause)[:-1]])
    t_leave = t_vertex + pause
    total = t_leave[-1]
    ts = np.arange(0.0, total, interval) + rng.uniform(0, interval)
    ts = ts[ts < total]
    # distance along the line at each time: flat during stops, linear between vertices
    knots_t = np.ravel(np.column_stack([t_vertex, t_leave]))
    knots_d = np.repeat(cum, 2)
    d = np.interp(ts, knots_t, knots_d)
    x = np.interp(d, cum, line[:, 0])
    y = np.interp(d, cum, line[:, 1])
    return ts, np.column_stack([x, y])


def _route(
    grid: Unit,
    buildings: list[Unit],
    care: Care,
    graph: _Graph,
    rng: np.random.Generator,
    cache: dict,
) -> tuple[np.ndarray, list[tuple[int, float]]] | None:
    """One walk's line (metric vertices) and its stops (vertex index, seconds)."""
    key = grid.code
    if key not in cache:
        mid = grid.metric.representative_point()
        office = graph.nearest(mid.x, mid.y)
        doors = [_door(b, graph) for b in buildings]
        sources = [office, *[d[0] for d in doors]]
        dist, pred = graph.paths(sources)
        cache[key] = (office, doors, sources, dist, pred)
    office, doors, sources, dist, pred = cache[key]
    if care is Care.neglected or not doors:
        # along a street near the office and back
        reach = np.flatnonzero((dist[0] > 150) & (dist[0] < 450))
        if not len(reach):
            return None
        far = int(rng.choice(reach))
        there = _path(pred, 0, far)
        nodes = there + there[::-1][1:]
        return graph.xy[nodes], []
    share = 1.0 if care is Care.well else 0.5
    n = max(1, round(len(doors) * share * rng.uniform(0.8, 1.0)))
    chosen = list(rng.choice(len(doors), size=min(n, len(doors)), replace=False))
    # nearest-neighbour order from the office
    order: list[int] = []
    row = 0
    while chosen:
        nxt = min(chosen, key=lambda k: dist[row, sources[k + 1]])
        order.append(nxt)
        chosen.remove(nxt)
        row = nxt + 1
    if not np.isfinite(dist[0, [sources[k + 1] for k in order]]).all():
        return None
    pts: list[np.ndarray] = [graph.xy[office][None, :]]
    stops: list[tuple[int, float]] = []
    row = 0
    for k in order:
        node, knock = doors[k]
        leg = _path(pred, row, node)
        pts.append(graph.xy[leg[1:]])
        pts.append(knock[None, :])
        count = sum(len(p) for p in pts)
        stops.append((count - 1, float(rng.uniform(*STOP_S))))
        pts.append(graph.xy[node][None, :])
        row = k + 1
    back = _path(pred, 0, sources[row])[::-1]
    pts.append(graph.xy[back[1:]])
    line = np.vstack(pts)
    keep = np.concatenate([[True], np.hypot(*np.diff(line, axis=0).T) > 0.01])
    # a stop's vertex index must survive the de-duplication
    new_index = np.cumsum(keep) - 1
    return line[keep], [(int(new_index[v]), s) for v, s in stops]


def _days(care: Care, today: date, rng: np.random.Generator) -> list[date]:
    days = [today - timedelta(days=k) for k in range(1, DAYS + 1)]
    if care is Care.well:
        return [d for d in days if rng.uniform() < 0.75]
    if care is Care.fair:
        return [d for d in days if rng.uniform() < 0.4]
    old = [d for d in days if (today - d).days > 8]
    return sorted(rng.choice(old, size=int(rng.integers(2, 4)), replace=False).tolist())


def generate_walks(
    conn: Connection,
    h: Hierarchy,
    net: Network,
    plane: Plane,
    *,
    seed: int,
    tz: str,
) -> WalkSummary:
    """A month of walks for every grid worker of the district (whose scope is one grid),
    through the walks service inside the caller's transaction. Deterministic for a seed."""
    started = time.perf_counter()
    rng = np.random.default_rng([seed, 18])
    zone = ZoneInfo(tz)
    today = datetime.now(zone).date()
    workers = _workers(conn, h)
    graph = _Graph(net)
    by_grid = _buildings_by_grid(h)
    out = WalkSummary()
    batch: list[EndedWalk] = []
    cache: dict = {}
    for grid in h.levels["grid"]:
        worker = workers.get(grid.code)
        if worker is None:
            continue
        care = care_of(grid.parent_code or grid.code, seed)
        walked = False
        for day in _days(care, today, rng):
            walk = _walk(grid, int(worker), by_grid, care, day, zone, graph, plane, rng, cache)
            if walk is None:
                continue
            batch.append(walk)
            walked = True
            out.walks += 1
            out.fixes += len(walk.t)
            if len(batch) >= BATCH:
                record_ended(conn, batch, tz)
                batch = []
        out.workers += walked
    if batch:
        record_ended(conn, batch, tz)
    out.seconds = time.perf_counter() - started
    return out


def _workers(conn: Connection, h: Hierarchy) -> dict[str, int]:
    """The district's grid workers (scope: one grid), by grid code."""
    return dict(
        conn.execute(
            text(
                "SELECT scopes[1], id FROM app_user WHERE role = 'grid_worker' "
                "AND cardinality(scopes) = 1 AND scopes[1] LIKE :p"
            ),
            {"p": h.levels["district"][0].code + "%"},
        ).all()
    )


def _buildings_by_grid(h: Hierarchy) -> dict[str, list[Unit]]:
    by_grid: dict[str, list[Unit]] = {}
    for b in h.levels["building"]:
        by_grid.setdefault(b.parent_code or "", []).append(b)
    return by_grid


def _walk(
    grid: Unit,
    worker: int,
    by_grid: dict[str, list[Unit]],
    care: Care,
    day: date,
    zone: ZoneInfo,
    graph: _Graph,
    plane: Plane,
    rng: np.random.Generator,
    cache: dict,
    interval: float = FIX_INTERVAL_S,
) -> EndedWalk | None:
    """One walk of the grid on the day: its route (:func:`_route`), fixes every
    ``interval`` seconds with the phone's noise, poor fixes and jumps."""
    route = _route(grid, by_grid.get(grid.code, []), care, graph, rng, cache)
    if route is None:
        return None
    line, stops = route
    speed = max(0.8, rng.normal(*SPEED_MPS))
    ts, xy = _sample(line, stops, speed, rng, interval)
    if len(ts) < 2:
        return None
    n = len(ts)
    xy = xy + rng.normal(0.0, NOISE_M, (n, 2))
    acc = rng.uniform(*ACCURACY_M, n)
    poor = rng.uniform(size=n) < POOR_SHARE
    acc[poor] = rng.uniform(35.0, 120.0, poor.sum())
    xy[poor] += rng.normal(0.0, 40.0, (poor.sum(), 2))
    jump = (rng.uniform(size=n) < JUMP_SHARE) & ~poor
    jump[[0, -1]] = False
    angle = rng.uniform(0, 2 * np.pi, jump.sum())
    radius = rng.uniform(120.0, 300.0, jump.sum())
    xy[jump] += np.column_stack([np.cos(angle), np.sin(angle)]) * radius[:, None]
    lon, lat = plane.to_wgs84.transform(xy[:, 0], xy[:, 1])
    start = datetime.combine(day, datetime.min.time(), zone) + timedelta(
        hours=8.5 + float(rng.uniform(0, 1.5))
        if rng.uniform() < 0.7
        else 14.5 + float(rng.uniform(0, 1.5))
    )
    fixes = [start + timedelta(seconds=float(round(s, 3))) for s in ts]
    end = fixes[-1] + timedelta(seconds=float(rng.uniform(5, 60)))
    return EndedWalk(
        worker_id=worker,
        grid_code=grid.code,
        started_at=start,
        ended_at=end,
        t=fixes,
        lon=np.round(lon, 7).tolist(),
        lat=np.round(lat, 7).tolist(),
        accuracy_m=np.round(acc, 1).tolist(),
    )


def district_day(
    conn: Connection,
    h: Hierarchy,
    net: Network,
    plane: Plane,
    day: date,
    *,
    seed: int,
    tz: str,
    interval: float,
) -> list[EndedWalk]:
    """A whole district's day (benchmarks/walks.py): every grid worker walks their grid
    on ``day`` through all its buildings (as in a ``well`` walked community), a fix every
    ``interval`` seconds. The walks, not yet recorded."""
    rng = np.random.default_rng([seed, 18, day.toordinal()])
    workers = _workers(conn, h)
    graph = _Graph(net)
    by_grid = _buildings_by_grid(h)
    cache: dict = {}
    out = []
    for grid in h.levels["grid"]:
        worker = workers.get(grid.code)
        walk = (
            _walk(
                grid,
                worker,
                by_grid,
                Care.well,
                day,
                ZoneInfo(tz),
                graph,
                plane,
                rng,
                cache,
                interval,
            )
            if worker is not None
            else None
        )
        if walk is not None:
            out.append(walk)
    return out
