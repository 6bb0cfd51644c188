"""Siting: the k new sites that bring the most uncovered residents within walking reach
(the maximal covering location problem, MCLP), solved exactly.

Demand: buildings farther than ``max_m`` from every existing service of the kind (for
kinds that count for the party reach: from every such kind, since any fulfils the
promise) or of the category. Candidates: the network's nodes, or a supplied set of points.
Coverage: candidate j covers building i if i walks to j within ``max_m`` — one bounded
search from each uncovered building, never one per candidate. Candidates that cover
exactly the same buildings are merged, buildings covered by the same candidates are
merged, and the integer programme goes to HiGHS (scipy.optimize.milp): the optimum, not
a greedy guess. Sites are listed in the order that adds the most residents first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix, hstack, identity
from sqlalchemy import Connection

from gis_service.access import reach
from gis_service.access.bounds import Deadline, check_siting_pairs
from gis_service.access.engine import MAX_ACCESS_M, AccessEngine
from gis_service.access.snap import Snapped
from gis_service.auth.principal import Principal
from gis_service.auth.scope import covers_unit
from gis_service.errors import InvalidInput
from gis_service.geo.bounds import GeometryLimits, check_geojson
from gis_service.geo.checks import check_lon_lat
from gis_service.geo.coords import CoordSys, point_to_wgs84


@dataclass
class Demand:
    codes: list[str]
    population: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


@dataclass
class Candidates:
    lon: np.ndarray
    lat: np.ndarray
    label: list[str]  # "node:123" or the supplied candidate's id
    node: np.ndarray | None = None  # graph node index when the candidates are nodes


def uncovered(
    conn: Connection,
    engine: AccessEngine,
    *,
    kind: str | None,
    category: str | None,
    max_m: float,
    viewer: Principal | None = None,
) -> Demand:
    """Buildings with residents and no existing service of the kind / category within a
    max_m walk (for a party-reach kind, none of any party-reach kind); with ``viewer``,
    only the buildings inside that viewer's jurisdiction are walked from."""
    codes, pop, lon, lat = reach.building_rows(conn)
    if viewer is not None:
        inside = np.array([covers_unit(viewer, c) for c in codes], bool)
        codes = [c for c, y in zip(codes, inside, strict=True) if y]
        pop, lon, lat = pop[inside], lon[inside], lat[inside]
        if not codes:  # nobody lives inside this jurisdiction: nothing to walk from
            return Demand([], pop, lon, lat)
    points, party_kinds = reach.point_rows(conn)
    if kind:
        wanted = party_kinds if kind in party_kinds else {kind}
        mask = np.array([k in wanted for k in points.kind], bool)
    else:
        mask = np.array([category in c for c in points.categories], bool)
    b_snap = engine.snap(lon, lat)
    bx, by = engine.project(lon, lat)
    if mask.any():
        p_snap = engine.snap(points.lon[mask], points.lat[mask])
        px, py = engine.project(points.lon[mask], points.lat[mask])
        dist = reach.distances_to(
            engine,
            p_snap,
            np.column_stack([px, py]),
            b_snap,
            np.column_stack([bx, by]),
            b_snap.leg <= MAX_ACCESS_M,
            max_m,
        )[0]
    else:
        dist = np.full(len(codes), np.inf)
    gap = (dist > max_m) & (pop > 0)
    return Demand([c for c, g in zip(codes, gap, strict=True) if g], pop[gap], lon[gap], lat[gap])


def candidates_from_geojson(
    fc: dict, coord_sys: CoordSys | str = CoordSys.wgs84, limits: GeometryLimits | None = None
) -> Candidates:
    """Candidate points from a GeoJSON FeatureCollection (named by id or properties.id).

    Errors: 422 geometry_too_large past ``limits`` (``geo/bounds.py``, counted before
    anything else is read), 422 invalid_input for a feature that is not a Point."""
    feats = fc.get("features") if isinstance(fc, dict) else None
    if not feats:
        raise InvalidInput("candidates: a GeoJSON FeatureCollection with point features")
    if limits is not None:
        check_geojson(fc, limits, "candidates")
    lon, lat, label = [], [], []
    for i, f in enumerate(feats):
        geom = (f or {}).get("geometry") or {}
        xy = geom.get("coordinates")
        if geom.get("type") != "Point" or not isinstance(xy, list) or len(xy) < 2:
            raise InvalidInput(f"candidates: feature {i} is not a Point")
        check_lon_lat(float(xy[0]), float(xy[1]))
        x, y = point_to_wgs84(float(xy[0]), float(xy[1]), coord_sys)
        lon.append(x), lat.append(y)
        label.append(str(f.get("id") or (f.get("properties") or {}).get("id") or i))
    return Candidates(np.array(lon), np.array(lat), label)


def node_candidates(engine: AccessEngine) -> Candidates:
    g = engine.graph
    lon, lat = g.projection.to_lonlat(g.node_xy[:, 0], g.node_xy[:, 1])
    return Candidates(lon, lat, [f"node:{int(i)}" for i in g.node_id], np.arange(g.node_count))


def coverage(
    engine: AccessEngine,
    demand: Demand,
    cands: Candidates,
    max_m: float,
    deadline: Deadline | None = None,
) -> csr_matrix:
    """Boolean (buildings × candidates): who walks to which candidate within max_m; past
    ``deadline`` AnalysisTooLarge (422)."""
    rows, cols = [], []
    targets: Snapped | None = None
    if cands.node is None:
        targets = engine.snap(cands.lon, cands.lat)
        cx, cy = engine.project(cands.lon, cands.lat)
        tree_xy = np.column_stack([cx, cy])
    snaps = engine.snap(demand.lon, demand.lat)
    for i in range(len(demand.codes)):
        if deadline is not None and i % 64 == 0:
            deadline.check(f"walking from {len(demand.codes):,} buildings")
        one = Snapped(
            snaps.edge[i : i + 1],
            snaps.frac[i : i + 1],
            snaps.leg[i : i + 1],
            snaps.x[i : i + 1],
            snaps.y[i : i + 1],
        )
        if one.leg[0] > MAX_ACCESS_M:
            continue  # off the network: no walk can be proven; left to planners
        found = engine.search(one, max_m)
        if cands.node is not None:
            ok = np.isfinite(found.dist) & (found.dist <= max_m)
            hit = found.nodes[ok]
        else:
            bx, by = engine.project(demand.lon[i], demand.lat[i])
            near = np.nonzero(np.hypot(tree_xy[:, 0] - bx, tree_xy[:, 1] - by) <= max_m)[0]
            d = found.distance_to(targets.edge[near], targets.frac[near]) + targets.leg[near]
            hit = near[d <= max_m]
        rows.extend([i] * len(hit))
        cols.extend(hit.tolist())
    return csr_matrix(
        (np.ones(len(rows), bool), (rows, cols)), shape=(len(demand.codes), len(cands.label))
    )


def solve(
    cover: csr_matrix, weight: np.ndarray, k: int, deadline: Deadline | None = None
) -> tuple[list[int], float]:
    """Exact MCLP: choose k columns maximising the weight of rows covered. HiGHS gets what
    is left of ``deadline`` (else 60 s); stopped by it, AnalysisTooLarge (422) rather than
    a solution not proven optimal."""
    cover = cover.tocsc()
    used = np.nonzero(np.diff(cover.indptr) > 0)[0]
    if len(used) == 0:
        return [], 0.0
    # merge candidates with identical coverage, and buildings with identical candidates
    cols = cover[:, used].T.tocsr()
    keys = [cols.indices[cols.indptr[j] : cols.indptr[j + 1]].tobytes() for j in range(len(used))]
    first: dict[bytes, int] = {}
    for j, key in enumerate(keys):
        first.setdefault(key, j)
    reps = used[sorted(first.values())]
    sub = cover[:, reps].tocsr()
    rows_keys = [
        sub.indices[sub.indptr[i] : sub.indptr[i + 1]].tobytes() for i in range(sub.shape[0])
    ]
    groups: dict[bytes, list[int]] = {}
    for i, key in enumerate(rows_keys):
        if key:
            groups.setdefault(key, []).append(i)
    grows = list(groups.values())
    w = np.array([weight[g].sum() for g in grows], float)
    a = sub[[g[0] for g in grows]].astype(float)  # (demand groups × candidates)
    n_c, n_d = len(reps), len(grows)
    k = min(k, n_c)
    # variables: x (candidates) then y (demand groups); maximise w·y
    c = np.concatenate([np.zeros(n_c), -w])
    link = hstack([-a, identity(n_d)]).tocsr()  # y_i - sum of x_j covering i <= 0
    count = np.concatenate([np.ones(n_c), np.zeros(n_d)])[None, :]
    result = milp(
        c,
        integrality=np.ones(n_c + n_d),
        bounds=Bounds(np.zeros(n_c + n_d), np.ones(n_c + n_d)),
        constraints=[LinearConstraint(link, -np.inf, 0), LinearConstraint(count, k, k)],
        options={"time_limit": max(0.1, deadline.left()) if deadline else 60},
    )
    if result.status == 1 and deadline is not None:  # the time limit stopped HiGHS
        raise deadline.exceeded(f"the integer programme ({n_c:,} × {n_d:,} merged)")
    if result.x is None:
        raise InvalidInput(f"the siting problem could not be solved ({result.message})")
    chosen = reps[np.nonzero(result.x[:n_c] > 0.5)[0]]
    return [int(j) for j in chosen], float(-result.fun)


def order_by_gain(
    cover: csr_matrix, weight: np.ndarray, chosen: list[int]
) -> list[tuple[int, float, int]]:
    """The chosen sites, each with the residents and buildings it adds, largest first."""
    cover = cover.tocsc()
    covered = np.zeros(cover.shape[0], bool)
    left, out = list(chosen), []
    while left:
        gains = []
        for j in left:
            rows = cover.indices[cover.indptr[j] : cover.indptr[j + 1]]
            new = rows[~covered[rows]]
            gains.append((weight[new].sum(), len(new), j, new))
        gain, nb, j, new = max(gains, key=lambda t: (t[0], -t[2]))
        covered[new] = True
        out.append((j, float(gain), nb))
        left.remove(j)
    return out


def site(
    conn: Connection,
    engine: AccessEngine,
    *,
    kind: str | None,
    category: str | None,
    k: int,
    max_m: float,
    candidates: Candidates | None = None,
    viewer: Principal | None = None,
    max_pairs: int | None = None,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """The k sites that bring the most uncovered residents within ``max_m`` metres' walk.

    ``viewer`` limits the demand to the buildings inside that viewer's jurisdiction
    (auth/scope.py), so a supervisor's proposals answer for their own residents only;
    None (the CLI, an operator) counts every building. ``max_pairs`` and ``deadline``
    bound the work (access/bounds.py): past either, 422 ``analysis_too_large``."""
    if not kind and not category:
        raise InvalidInput("kind or category: say what is to be sited")
    demand = uncovered(conn, engine, kind=kind, category=category, max_m=max_m, viewer=viewer)
    cands = candidates or node_candidates(engine)
    cover = coverage(engine, demand, cands, max_m, deadline)
    if max_pairs is not None:
        check_siting_pairs(len(demand.codes), len(cands.label), cover.nnz, max_pairs, max_m)
    chosen, total = solve(cover, demand.population, k, deadline)
    sites = []
    for rank, (j, gain, nb) in enumerate(order_by_gain(cover, demand.population, chosen), 1):
        sites.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(float(cands.lon[j]), 7), round(float(cands.lat[j]), 7)],
                },
                "properties": {
                    "rank": rank,
                    "candidate": cands.label[j],
                    "population_added": int(gain),
                    "buildings_added": nb,
                },
            }
        )
    reachable = cover.getnnz(axis=1) > 0
    return {
        "type": "FeatureCollection",
        "features": sites,
        "kind": kind,
        "category": category,
        "k": k,
        "max_m": max_m,
        "uncovered_buildings": len(demand.codes),
        "uncovered_population": int(demand.population.sum()),
        "population_covered": round(total),
        "population_coverable": int(demand.population[reachable].sum()),
        "candidates": "network nodes" if candidates is None else "supplied",
        "method": "exact MCLP (HiGHS) over merged candidates",
    }
