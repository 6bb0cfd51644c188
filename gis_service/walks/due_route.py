"""Today's suggested route (issue 18 item 3): a walk from the worker's position through the
doors of the grid's due buildings along the walking network.

The stops are the doors of the due list (service.due_buildings: the same scope, the same
N days, the same refresh of running walks), the door being the network point of the
building's entrance area (walks.sql ``building_doors``, docs/walks.md "Visited"): walking
past it is what counts the building as visited. Distances are the access engine's walking
distances (access/search.py: straight access leg + shortest path along the network); the
path is drawn by the engine too (``AccessEngine.path_line``). Nothing here searches a graph
itself.

The order is a heuristic for the open travelling-salesman path (fixed start, free end):
nearest neighbour, then 2-opt (Croes 1958) and Or-opt (Or 1976) moves until neither
improves the walk — a well-known local search that lands within a few per cent of the
optimum on street networks; the optimum is not needed for a day's walk. The distance
matrix may be asymmetric (one-way footways): every move is costed in both directions.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection

from gis_service.access.engine import MAX_ACCESS_M
from gis_service.access.graph import F
from gis_service.access.service import DEFAULT_SPEED_KMH, wgs84_geojson
from gis_service.access.snap import Snapped
from gis_service.access.store import EngineCache
from gis_service.auth.principal import Principal
from gis_service.errors import InvalidInput, OutsideCoverage
from gis_service.settings import Settings
from gis_service.walks import service, store
from gis_service.walks.rules import (
    ENTRANCE_MAX_M,
    ROUTE_DETOUR,
    ROUTE_MAX_STOPS,
    ROUTE_MIN_SEARCH_M,
)

#: the heuristic, as the answer names it
METHOD = "nearest_neighbour+2-opt+or-opt"
#: Or-opt moves segments of up to this many stops
OR_OPT_MAX = 3
#: a move must shorten the walk by more than this (metres) to be taken
EPS_M = 1e-6


# ------------------------------------------------------------------------ ordering


def order_stops(d: F) -> list[int]:
    """The order of stops 1..n for an open walk starting at 0 and ending anywhere.

    ``d``: (n+1, n+1) distances in metres, ``d[i, j]`` from point i to point j (may be
    asymmetric; ``inf`` where j cannot be reached from i — such legs are avoided when
    possible). Nearest neighbour from 0 (ties: the lower index, i.e. the stop listed
    first), then first-improvement 2-opt (reverse a stretch) and Or-opt (move a stretch of
    1–3 stops elsewhere) until no move shortens the walk. Returns the stop indices in
    walking order."""
    n = len(d) - 1
    if n <= 0:
        return []
    finite = d[np.isfinite(d)]
    penalty = (float(finite.max()) + 1.0) * (n + 1) if len(finite) else 1.0
    cost = np.where(np.isfinite(d), d, penalty).tolist()
    tour = [0]
    left = list(range(1, n + 1))
    while left:
        here = cost[tour[-1]]
        nxt = min(left, key=lambda j: (here[j], j))
        tour.append(nxt)
        left.remove(nxt)
    for _ in range(10 * n * n):  # every move shortens the walk: this bound is never met
        if not (_two_opt(tour, cost) or _or_opt(tour, cost)):
            break
    return tour[1:]


def _legs(tour: list[int], cost: list[list[float]]) -> tuple[list[float], list[float]]:
    """Prefix sums of the legs walked forward and of the same legs walked backward."""
    fwd, bwd = [0.0], [0.0]
    for a, b in itertools.pairwise(tour):
        fwd.append(fwd[-1] + cost[a][b])
        bwd.append(bwd[-1] + cost[b][a])
    return fwd, bwd


def _two_opt(tour: list[int], cost: list[list[float]]) -> bool:
    """Reverse the first stretch tour[i..j] whose reversal shortens the walk; True if one
    was found (tour changed in place)."""
    n = len(tour) - 1
    fwd, bwd = _legs(tour, cost)
    for i in range(1, n):
        a, b = tour[i - 1], tour[i]
        for j in range(i + 1, n + 1):
            c = tour[j]
            old = cost[a][b] + fwd[j] - fwd[i]
            new = cost[a][c] + bwd[j] - bwd[i]
            if j < n:
                e = tour[j + 1]
                old += cost[c][e]
                new += cost[b][e]
            if new < old - EPS_M:
                tour[i : j + 1] = tour[i : j + 1][::-1]
                return True
    return False


def _or_opt(tour: list[int], cost: list[list[float]]) -> bool:
    """Move the first stretch of 1–3 stops whose move elsewhere (same direction)
    shortens the walk; True if one was found (tour changed in place)."""
    n = len(tour) - 1
    for size in range(1, min(OR_OPT_MAX, n - 1) + 1):
        for i in range(1, n - size + 2):
            seg = tour[i : i + size]
            s0, s1 = seg[0], seg[-1]
            prev = tour[i - 1]
            rest = tour[:i] + tour[i + size :]
            gain = cost[prev][s0]
            if i + size <= n:
                nxt = tour[i + size]
                gain += cost[s1][nxt] - cost[prev][nxt]
            for q in range(len(rest)):
                if q == i - 1:
                    continue  # where it is now
                x = rest[q]
                add = cost[x][s0]
                if q + 1 < len(rest):
                    y = rest[q + 1]
                    add += cost[s1][y] - cost[x][y]
                if add < gain - EPS_M:
                    tour[:] = rest[: q + 1] + seg + rest[q + 1 :]
                    return True
    return False


# ------------------------------------------------------------------------ the route


def due_route(
    conn: Connection,
    access: EngineCache,
    principal: Principal,
    settings: Settings,
    grid_code: str,
    lon: float,
    lat: float,
    days: int | None,
    max_stops: int = ROUTE_MAX_STOPS,
) -> dict[str, Any]:
    """Today's suggested route (``DueRoute``): a GeoJSON Feature whose geometry is the
    walk along the network (LineString, WGS-84; null without stops) from (lon, lat)
    through the doors of the grid's buildings not visited in ``days`` days (the due list's
    N: the district's default when None).

    ``properties.stops``: in walking order, each ``{order, code, name, lon, lat (the
    door), leg_m, cumulative_m, minutes (cumulative, at the access engine's
    DEFAULT_SPEED_KMH, walking only), last_visited_at, days_since}``; ``distance_m`` and
    ``minutes`` the totals; ``left_out``: due buildings not in the route with their
    ``reason`` — ``no_door`` (no path within rules.ENTRANCE_MAX_M: visited only from its
    footprint, no network point to route to), ``unreachable`` (not reached along the
    network within the search), ``over_cap`` (more than ``max_stops`` doors: the most
    overdue are routed, ties the nearest from the start; the rest come in as stops are
    passed). ``reason``: null, or why there are no stops (``no_due_buildings``,
    ``no_reachable_door``).

    Errors: 404 no such grid, or no walking network imported; 403 the grid is outside the
    viewer's jurisdiction (the due list's rule); 422 ``invalid_input`` (``field`` lon /
    lat) for a position outside the grid's district (its box plus
    rules.BOUNDS_MARGIN_M, the rule fixes are checked by); 422 ``outside_coverage``
    (``field`` lon) for a position farther than access.engine.MAX_ACCESS_M from every
    path: no walk starts there."""
    due = service.due_buildings(conn, principal, settings, grid_code, days)
    _check_position(conn, grid_code, lon, lat)
    engine = access.get(conn)
    start = engine.snap(lon, lat)
    access_m = float(start.leg[0])
    if not access_m <= MAX_ACCESS_M:
        raise OutsideCoverage(
            f"lon={lon}, lat={lat} is {access_m:,.0f} m from the nearest path of the walking "
            f"network (more than {MAX_ACCESS_M:g} m): no route starts there; ask again from "
            "a street of the grid",
            field="lon",
            access_m=round(access_m, 1) if math.isfinite(access_m) else None,
        )
    speed = DEFAULT_SPEED_KMH * 1000.0 / 60.0  # metres per minute
    props: dict[str, Any] = {
        "grid_code": grid_code,
        "days": due["days"],
        "as_of": due["as_of"],
        "start": {"lon": lon, "lat": lat, "access_m": round(access_m, 1)},
        "speed_kmh": DEFAULT_SPEED_KMH,
        "method": METHOD,
        "max_stops": max_stops,
        "due": due["due"],
        "distance_m": 0.0,
        "minutes": 0.0,
        "stops": [],
        "left_out": [],
        "reason": None,
        "network_version": engine.version,
    }
    out = {"type": "Feature", "geometry": None, "properties": props}
    buildings = due["buildings"]
    if not buildings:
        props["reason"] = "no_due_buildings"
        return out
    doors = store.doors(conn, [b["code"] for b in buildings], ENTRANCE_MAX_M)
    left_out = props["left_out"]
    routed = []
    for b in buildings:
        if b["code"] in doors:
            routed.append(b)
        else:
            left_out.append({"code": b["code"], "name": b["name"], "reason": "no_door"})
    if not routed:
        props["reason"] = "no_reachable_door"
        return out
    dlon = np.array([doors[b["code"]][0] for b in routed])
    dlat = np.array([doors[b["code"]][1] for b in routed])
    x0, y0 = (float(v) for v in engine.project(lon, lat))
    dx, dy = engine.project(dlon, dlat)
    xs, ys = np.concatenate([[x0], dx]), np.concatenate([[y0], dy])
    span = math.hypot(float(xs.max() - xs.min()), float(ys.max() - ys.min()))
    budget = max(ROUTE_MIN_SEARCH_M, ROUTE_DETOUR * span) + access_m
    targets = engine.snap(dlon, dlat)
    first = engine.search(start, budget)
    from_start = first.distance_to(targets.edge, targets.frac) + targets.leg
    keep = []
    for i, b in enumerate(routed):
        if np.isfinite(from_start[i]):
            keep.append(i)
        else:
            left_out.append({"code": b["code"], "name": b["name"], "reason": "unreachable"})
    keep.sort(key=lambda i: (*_overdue(routed[i]), float(from_start[i])))
    for i in keep[max_stops:]:
        b = routed[i]
        left_out.append({"code": b["code"], "name": b["name"], "reason": "over_cap"})
    keep = keep[:max_stops]
    if not keep:
        props["reason"] = "no_reachable_door"
        return out
    sub = _pick(targets, keep)
    searches = [first] + [engine.search(_pick(targets, [i]), budget) for i in keep]
    d = np.vstack([s.distance_to(sub.edge, sub.frac) + sub.leg for s in searches])
    d = np.hstack([np.full((len(d), 1), np.inf), d])  # nobody walks back to the start
    order = order_stops(d)
    xy = [(x0, y0)] + [(float(dx[i]), float(dy[i])) for i in keep]
    here, total, parts = 0, 0.0, []
    for j in order:
        leg = float(d[here, j])
        b = routed[keep[j - 1]]
        if not np.isfinite(leg):
            left_out.append({"code": b["code"], "name": b["name"], "reason": "unreachable"})
            continue
        line = engine.path_line(searches[here], sub, j - 1, xy[here], xy[j])
        parts.append(np.asarray(line.coords))
        total += leg
        props["stops"].append(
            {
                "order": len(props["stops"]) + 1,
                "code": b["code"],
                "name": b["name"],
                "lon": round(float(dlon[keep[j - 1]]), 7),
                "lat": round(float(dlat[keep[j - 1]]), 7),
                "leg_m": round(leg, 1),
                "cumulative_m": round(total, 1),
                "minutes": round(total / speed, 1),
                "last_visited_at": b["last_visited_at"],
                "days_since": b["days_since"],
            }
        )
        here = j
    props["distance_m"] = round(total, 1)
    props["minutes"] = round(total / speed, 1)
    if parts:
        coords = np.vstack([parts[0], *(p[1:] for p in parts[1:])])
        out["geometry"] = wgs84_geojson(engine, shapely.LineString(coords))
    return out


def _overdue(b: dict[str, Any]) -> tuple[int, float]:
    """Priority above the cap: never visited first, then the most whole days since."""
    if b["days_since"] is None:
        return (0, 0.0)
    return (1, -math.floor(b["days_since"]))


def _pick(s: Snapped, idx: list[int]) -> Snapped:
    i = np.asarray(idx, np.int64)
    return Snapped(s.edge[i], s.frac[i], s.leg[i], s.x[i], s.y[i])


def _check_position(conn: Connection, grid_code: str, lon: float, lat: float) -> None:
    box = store.district_boxes(conn, [grid_code]).get(grid_code)
    bounds = service.district_bounds(box) if box is not None else None
    if bounds is None:
        return
    x0, y0, x1, y1 = bounds
    for name, v, lo, hi in (("lon", lon, x0, x1), ("lat", lat, y0, y1)):
        if not lo <= v <= hi:
            raise InvalidInput(
                f"{name}={v} is outside the district of grid {grid_code} "
                f"({lo:.5f}..{hi:.5f}): a route starts where the worker walks",
                field=name,
            )
