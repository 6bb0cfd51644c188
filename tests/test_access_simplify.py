"""The outline's simplifier (_band.simplify through isochrone.simplified_rings): every ring
cut to few of its own vertices, each dropped vertex within the tolerance of the shortcut
that skips it (Douglas–Peucker's guarantee), and fewer vertices than Douglas–Peucker —
held against GEOS's Douglas–Peucker and a brute-force search for the fewest."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import shapely

from gis_service.access.isochrone import simplified_rings


def _ring(rng: np.random.Generator, n: int) -> np.ndarray:
    """A closed, counter-clockwise, star-shaped ring of ``n`` vertices about one unit
    apart, its radius wandering like a traced band's outline (bays, capes, straight runs)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radius = n / (2 * np.pi)
    wobble = sum(
        rng.uniform(0, radius / (3 * k)) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
        for k in range(1, 8)
    )
    r = radius + wobble + rng.normal(0, 0.15, n)
    ring = np.column_stack([r * np.cos(t), r * np.sin(t)])
    return np.vstack([ring, ring[:1]])


def _simplified(ring: np.ndarray, tolerance: float) -> np.ndarray:
    (coords, _, _), _, _ = simplified_rings(
        (ring, np.array([0, len(ring)]), np.array([0, 1])), tolerance, 0.0
    )
    return coords


def _distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    t = np.clip(((points - a) @ d) / max(float(d @ d), 1e-300), 0, 1)
    return np.hypot(*(points - (a + t[:, None] * d)).T)


def _fewest(ring: np.ndarray, tolerance: float) -> int:
    """The fewest vertices of a chain from the ring's first vertex round to its last
    (the same point) whose every shortcut passes within ``tolerance`` of what it skips:
    a shortest path over every pair, checked one by one (Imai & Iri's formulation)."""
    n = len(ring)
    cost = [0] + [n] * (n - 1)
    for j in range(1, n):
        for i in range(j):
            if cost[i] + 1 < cost[j] and (
                j == i + 1 or _distance(ring[i + 1 : j], ring[i], ring[j]).max() <= tolerance
            ):
                cost[j] = cost[i] + 1
    return cost[-1] + 1


@pytest.mark.parametrize("seed", range(8))
def test_every_dropped_vertex_lies_within_the_tolerance_of_its_shortcut(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        ring = _ring(rng, int(rng.integers(12, 400)))
        tolerance = float(rng.uniform(0.3, 4.0))
        got = _simplified(ring, tolerance)
        # the ring's own vertices, in order, from its first, closed
        at = [int(np.flatnonzero((ring == v).all(axis=1))[0]) for v in got[:-1]] + [len(ring) - 1]
        assert at[0] == 0 and at == sorted(at) and (got[-1] == got[0]).all()
        assert len(got) >= 4 and shapely.Polygon(got).area > 0
        for i, j in itertools.pairwise(at):
            if j > i + 1:
                assert _distance(ring[i + 1 : j], ring[i], ring[j]).max() <= tolerance * (1 + 1e-9)


def test_fewer_vertices_than_douglas_peucker_and_close_to_the_fewest():
    """On rings like a traced outline's, at about a vertex spacing of tolerance (one grid
    cell, the default): fewer vertices than GEOS's Douglas–Peucker, and within a few per
    cent of the fewest any chain of the ring's own vertices can have."""
    rng = np.random.default_rng(11)
    ours = douglas = fewest = 0
    for _ in range(60):
        ring = _ring(rng, int(rng.integers(30, 120)))
        tolerance = float(rng.uniform(0.7, 1.5))
        ours += len(_simplified(ring, tolerance))
        douglas += shapely.get_num_coordinates(
            shapely.simplify(shapely.LineString(ring), tolerance, preserve_topology=False)
        )
        fewest += _fewest(ring, tolerance)
    assert fewest <= ours <= 1.05 * fewest
    assert ours <= 0.9 * douglas
