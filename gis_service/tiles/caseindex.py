"""Where the cases are, for tiles: a Morton-ordered index over the statistics cube.

Why in memory: a z12 tile over an old town holds 100,000+ of a million cases. Selecting
and grouping them in SQL costs a scan of that many rows per tile; here a tile is one
contiguous range of the sorted Morton keys (two binary searches), and grouping is a
bincount. Locations never change after a report, so the sort survives status changes;
cases reported since the last sort sit in a short unsorted tail that every query scans.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from gis_service.stats.cube import CaseCube, Facts

#: world coordinates are integers in [0, 2^BITS) on each axis (Web Mercator)
BITS = 30
#: re-sort when the cases that arrived since the last sort (the tail, binned one by one
#: on every tile) pass this share of the sorted ones, or TAIL_MIN: the tail's cost grows
#: with its length on every tile and its ever-longer arrays fragmented the heap in the
#: soak (benchmarks/RESULTS.md), while a re-sort costs ~0.1 s per million cases
TAIL_SHARE = 0.01
TAIL_MIN = 500


def tail_limit(sorted_cases: int) -> int:
    """How long the tail may grow before the next re-sort (see TAIL_SHARE)."""
    return max(TAIL_MIN, int(sorted_cases * TAIL_SHARE))


def world_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 → Web Mercator world coordinates as integers (y grows southward)."""
    size = float(1 << BITS)
    lat = np.clip(lat, -85.05112878, 85.05112878)
    x = (lon + 180.0) / 360.0 * size
    s = np.sin(np.radians(lat))
    y = (0.5 - np.log((1 + s) / (1 - s)) / (4 * np.pi)) * size
    return (np.clip(x, 0, size - 1).astype(np.uint64), np.clip(y, 0, size - 1).astype(np.uint64))


def _spread(v: np.ndarray) -> np.ndarray:
    """Insert a zero bit between the bits of a 32-bit integer (for Morton keys)."""
    v = v.astype(np.uint64) & np.uint64(0xFFFFFFFF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x3333333333333333)
    v = (v | (v << np.uint64(1))) & np.uint64(0x5555555555555555)
    return v


def morton(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _spread(x) | (_spread(y) << np.uint64(1))


@dataclass
class Sums:
    """Prefix sums, in key order, of the cases a filter keeps: a count, how many are
    open and overdue, and their coordinates, over any key range in O(1)."""

    count: np.ndarray
    open: np.ndarray
    overdue: np.ndarray
    x: np.ndarray
    y: np.ndarray


def _cumsum(v: np.ndarray) -> np.ndarray:
    out = np.zeros(len(v) + 1, np.float64)
    np.cumsum(v, out=out[1:])
    return out


class CaseIndex:
    def __init__(self, cube: CaseCube, max_age: float = 0.0) -> None:
        self.cube = cube
        self.max_age = max_age
        self._lock = threading.Lock()
        self._facts: Facts | None = None
        self._keys = np.zeros(0, np.uint64)  # sorted Morton keys
        self._ids_by_key = np.zeros(0, np.int64)  # case ids in key order
        self._order = np.zeros(0, np.int64)  # rows of the current facts in key order
        self._tail = np.zeros(0, np.int64)  # rows not in the sort (reported since)
        self.wx = np.zeros(0, np.uint64)
        self.wy = np.zeros(0, np.uint64)
        self._sums: dict[object, Sums] = {}

    def facts(self) -> Facts:
        """The cube's facts (at most ``max_age`` seconds old), with this index up to them."""
        facts = self.cube.facts(self.max_age)
        if facts is not self._facts:
            with self._lock:
                if facts is not self._facts:
                    self._refresh(facts)
        return facts

    def _refresh(self, facts: Facts) -> None:
        wx, wy = world_xy(facts.lon, facts.lat)
        rows = np.searchsorted(facts.ids, self._ids_by_key)
        rows = np.minimum(rows, max(len(facts.ids) - 1, 0))
        still = len(rows) == 0 or bool((facts.ids[rows] == self._ids_by_key).all())
        in_sort = np.zeros(len(facts.ids), bool)
        if still and len(rows):
            in_sort[rows] = True
        tail = np.nonzero(~in_sort)[0]
        if not still or len(tail) > tail_limit(len(self._keys)) or len(self._keys) == 0:
            keys = morton(wx, wy)
            order = np.argsort(keys, kind="stable")
            self._keys, self._order = keys[order], order
            self._ids_by_key = facts.ids[order]
            tail = np.zeros(0, np.int64)
        else:
            self._order = rows
        self.wx, self.wy, self._tail, self._facts = wx, wy, tail, facts
        self._sums = {}

    def sums(self, key: object, keep: np.ndarray, is_open: np.ndarray, overdue: np.ndarray) -> Sums:
        """Prefix sums for one filter (``keep`` over all rows), cached per facts version."""
        got = self._sums.get(key)
        if got is None:
            o = self._order
            k = keep[o].astype(np.float64)
            got = Sums(
                count=_cumsum(k),
                open=_cumsum(k * is_open[o]),
                overdue=_cumsum(k * overdue[o]),
                x=_cumsum(k * self.wx[o].astype(np.float64)),
                y=_cumsum(k * self.wy[o].astype(np.float64)),
            )
            if len(self._sums) >= 8:
                self._sums.pop(next(iter(self._sums)))
            self._sums[key] = got
        return got

    def cell_ranges(self, z: int, cx: np.ndarray, cy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in the sorted keys where each cell (zoom z grid) starts and ends."""
        shift = np.uint64(BITS - z)
        k0 = morton(cx.astype(np.uint64) << shift, cy.astype(np.uint64) << shift)
        k1 = k0 + np.uint64(1 << (2 * (BITS - z)))
        return np.searchsorted(self._keys, k0), np.searchsorted(self._keys, k1)

    @property
    def tail(self) -> np.ndarray:
        return self._tail

    def rows_between(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """The rows of several key ranges, gathered in one vectorised step."""
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        return self._order[offsets + np.arange(total)]
