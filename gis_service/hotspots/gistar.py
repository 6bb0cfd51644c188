"""Hotspots of cases (热点): Getis-Ord Gi* over the unit grids (网格), by PySAL's ``esda``.

Which grids hold significantly more (hot) or fewer (cold) cases than the grids round
them, for one period and category. The statistics are PySAL's, not ours:

- counts: the cases every statistics figure counts (:func:`stats.resolution.selected`:
  reported in the period, duplicates out, the category and its sub-categories, the
  viewer's jurisdiction and ``unit``), per grid of the case's location;
- the study area: the grids inside the viewer's jurisdiction and ``unit`` (a grid with no
  case counts 0 — grids outside the jurisdiction are left out rather than counted as 0);
- weights: queen contiguity of the grid polygons (``libpysal.weights.Queen``; grids that
  touch at an edge or a corner are neighbours), binary, each grid its own neighbour too
  (the "star" of Gi*: ``esda.G_Local(star=True)``);
- z-scores (``Zs``) and their two-sided normal p-values (``p_value`` = 2 × esda's
  one-sided ``p_norm``) classify each grid as ArcGIS's Hot Spot Analysis does
  (``gi_bin``: ±3 at 99 %, ±2 at 95 %, ±1 at 90 % confidence, 0 not significant); the
  permutation pseudo p-value (``p_sim``, one-sided, 999 conditional permutations with a
  fixed seed so the same data give the same answer) is reported beside it;
- a grid with no neighbour (an island) gets no statistic (null), as PySAL leaves it.

Gi* needs some spread: with fewer than :data:`MIN_GRIDS` grids or no case at all there
is nothing to compare, and every grid is answered with nulls and a ``note``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import units_inside
from gis_service.stats.cube import CaseCube
from gis_service.stats.resolution import StatsQuery, reported_per_unit
from gis_service.units.codes import Level

#: fewer grids than this and the neighbourhoods overlap too much to mean anything
MIN_GRIDS = 5
PERMUTATIONS = 999
SEED = 20261130
#: (confidence, |z| lower bound) of ArcGIS's Gi_Bin classes, highest first
CONFIDENCE_BINS: tuple[tuple[int, float], ...] = ((3, 0.01), (2, 0.05), (1, 0.10))


def _grids(conn: Connection, principal: Principal, unit: str | None) -> list[dict[str, Any]]:
    where, params = units_inside(principal, "code")
    sql = (
        "SELECT code, name, ST_AsBinary(geom) AS wkb FROM admin_unit "
        f"WHERE level = :lvl AND {where}"
    )
    params["lvl"] = Level.grid.value
    if unit:
        sql += " AND code LIKE :gi_unit"
        params["gi_unit"] = unit + "%"
    return [dict(r) for r in conn.execute(text(sql + " ORDER BY code"), params).mappings()]


def counts_per_grid(
    conn: Connection, cube: CaseCube, principal: Principal, q: StatsQuery, codes: list[str]
) -> np.ndarray:
    """Cases per grid of ``codes`` (same order), counted as every statistic counts them
    (recent ones from the cube, older ones from the daily roll-up: stats/rollup.py)."""
    return reported_per_unit(conn, cube, principal, q, Level.grid.value, codes)


def gi_bin(z: float, p: float) -> int:
    """ArcGIS's Gi_Bin: +3/+2/+1 hot at 99/95/90 % confidence, negative for cold, 0 none."""
    for level, alpha in CONFIDENCE_BINS:
        if p <= alpha:
            return level if z > 0 else -level
    return 0


def queen_weights(geoms: list[Any], ids: list[str]):
    """Queen contiguity of the polygons, binary (libpysal); islands stay without neighbours."""
    from libpysal.weights import Queen

    with warnings.catch_warnings():  # libpysal warns about islands; we report them as null
        warnings.simplefilter("ignore")
        w = Queen.from_iterable(geoms, ids=ids)
    w.transform = "B"
    return w


def hotspots(
    conn: Connection, cube: CaseCube, principal: Principal, q: StatsQuery
) -> dict[str, Any]:
    """Gi* per grid as the module defines it.

    Returns a FeatureCollection: one feature per grid of the study area (its polygon,
    WGS-84) with properties code, name, cases, gi_star_z, p_value, p_sim, gi_bin (null for
    islands and when there is too little to compare), and ``parameters`` / ``note``.
    Raises InvalidInput (422) for a bad period, category or unit.
    """
    from esda import G_Local

    q.check()
    grids = _grids(conn, principal, q.unit)
    codes = [g["code"] for g in grids]
    y = counts_per_grid(conn, cube, principal, q, codes)
    n = len(grids)
    z: list[float | None] = [None] * n
    p_two, p_sim = list(z), list(z)
    note = None
    if n < MIN_GRIDS:
        note = f"fewer than {MIN_GRIDS} grids in the area: no hotspot statistic"
    elif y.sum() == 0:
        note = "no case in the period: no hotspot statistic"
    else:
        geoms = list(shapely.from_wkb([bytes(g["wkb"]) for g in grids]))
        w = queen_weights(geoms, codes)
        islands = set(w.islands)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = G_Local(
                y.astype(float),
                w,
                transform="B",
                permutations=PERMUTATIONS,
                star=True,
                seed=SEED,
                n_jobs=1,
                island_weight=0,
            )
        keep = [c not in islands for c in codes]
        z = [float(v) if k else None for v, k in zip(g.Zs, keep, strict=True)]
        p_two = [min(1.0, 2 * float(v)) if k else None for v, k in zip(g.p_norm, keep, strict=True)]
        p_sim = [float(v) if k else None for v, k in zip(g.p_sim, keep, strict=True)]
    geometry = _outlines(conn, codes)
    features = []
    for i, grid in enumerate(grids):
        zi, pi = z[i], p_two[i]
        features.append(
            {
                "type": "Feature",
                "id": grid["code"],
                "geometry": geometry.get(grid["code"]),
                "properties": {
                    "code": grid["code"],
                    "name": grid["name"],
                    "cases": int(y[i]),
                    "gi_star_z": None if zi is None else round(zi, 4),
                    "p_value": None if pi is None else round(pi, 6),
                    "p_sim": None if p_sim[i] is None else round(p_sim[i], 4),
                    "gi_bin": None if zi is None else gi_bin(zi, pi),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "parameters": {
            "from": q.date_from,
            "to": q.date_to,
            "category": q.category,
            "unit": q.unit,
            "weights": "queen contiguity, binary, star",
            "permutations": PERMUTATIONS,
            "seed": SEED,
        },
        "note": note,
    }


def _outlines(conn: Connection, codes: list[str]) -> dict[str, Any]:
    """Grid polygons as GeoJSON dicts, lightly simplified (≈ 1 m) for the map."""
    if not codes:
        return {}
    rows = conn.execute(
        text(
            "SELECT code, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, 0.00001), 6)::json AS g "
            "FROM admin_unit WHERE code = ANY(:codes)"
        ),
        {"codes": codes},
    )
    return {r.code: r.g for r in rows}
