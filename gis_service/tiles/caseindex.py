"""Where the cases are, for tiles: a Morton-ordered index over the statistics cube.

Why in memory: a z12 tile over an old town holds 100,000+ of a million cases. Selecting
and grouping them in SQL costs a scan of that many rows per tile; here a tile is one
contiguous range of the sorted Morton keys (two binary searches), and grouping is a
bincount. Locations never change after a report, so the sort survives status changes;
cases reported since the last sort sit in a short unsorted tail that every query scans.

Which cases (issue 19 item 5, memory bounded by design): the cube's — those reported in the
recent window (``stats_recent_days``, 90 by default) and every open case however old. A
supervisor's case map is for the work: what is open, overdue or parked, and what was
reported and settled lately; older settled cases are not points on it but figures — the
unit tiles' resolution figures and the hotspots count them from the daily roll-up
(stats/rollup.py), and the case list and exports find any of them in PostgreSQL. So the
index, like the cube, grows with the window and the open cases, not with the years.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class IndexState:
    """One version of the index, never changed once made: the facts it covers, their
    Morton keys in order, the unsorted tail and the world coordinates of every row. A
    tile reads everything from one state (``CaseIndex.state()``), so a sync by another
    thread meanwhile cannot mix two versions — the soak found tiles whose rows came from
    a newer tail than their facts (IndexError, 500)."""

    facts: Facts | None
    keys: np.ndarray  # sorted Morton keys
    ids_by_key: np.ndarray  # case ids in key order
    order: np.ndarray  # rows of ``facts`` in key order
    tail: np.ndarray  # rows not in the sort (reported since)
    wx: np.ndarray
    wy: np.ndarray
    _sums: dict[object, Sums] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cached_sums(self, key: object) -> Sums | None:
        """The prefix sums of a filter if this state has made them."""
        with self._lock:
            return self._sums.get(key)

    def sums(self, key: object, keep: np.ndarray, is_open: np.ndarray, overdue: np.ndarray) -> Sums:
        """Prefix sums for one filter (``keep`` over all rows), kept for this state (at
        most 8 filters)."""
        got = self.cached_sums(key)
        if got is None:
            o = self.order
            k = keep[o].astype(np.float64)
            got = Sums(
                count=_cumsum(k),
                open=_cumsum(k * is_open[o]),
                overdue=_cumsum(k * overdue[o]),
                x=_cumsum(k * self.wx[o].astype(np.float64)),
                y=_cumsum(k * self.wy[o].astype(np.float64)),
            )
            with self._lock:
                if len(self._sums) >= 8:
                    self._sums.pop(next(iter(self._sums)))
                self._sums[key] = got
        return got

    def cell_ranges(self, z: int, cx: np.ndarray, cy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in the sorted keys where each cell (zoom z grid) starts and ends."""
        shift = np.uint64(BITS - z)
        k0 = morton(cx.astype(np.uint64) << shift, cy.astype(np.uint64) << shift)
        k1 = k0 + np.uint64(1 << (2 * (BITS - z)))
        return np.searchsorted(self.keys, k0), np.searchsorted(self.keys, k1)

    def rows_between(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """The rows of several key ranges, gathered in one vectorised step."""
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        return self.order[offsets + np.arange(total)]


def _empty_state() -> IndexState:
    none = np.zeros(0, np.int64)
    return IndexState(None, np.zeros(0, np.uint64), none, none, none, none, none)


class CaseIndex:
    """The index over the cube's current facts: ``state()`` is the version to read a
    tile from, brought up to the facts first (re-sorted when the tail passed its limit)."""

    def __init__(self, cube: CaseCube, max_age: float = 0.0) -> None:
        self.cube = cube
        self.max_age = max_age
        self._lock = threading.Lock()
        self._state = _empty_state()

    def state(self) -> IndexState:
        """The index at the cube's facts (at most ``max_age`` seconds old)."""
        facts = self.cube.facts(self.max_age)
        state = self._state
        if facts is not state.facts:
            with self._lock:
                if facts is not self._state.facts:
                    self._state = _next_state(self._state, facts)
                state = self._state
        return state


def _next_state(old: IndexState, facts: Facts) -> IndexState:
    """The index at ``facts``: the old sort kept and the new cases in the tail, or a new
    sort when cases left the sort or the tail passed ``tail_limit``."""
    wx, wy = world_xy(facts.lon, facts.lat)
    rows = np.searchsorted(facts.ids, old.ids_by_key)
    rows = np.minimum(rows, max(len(facts.ids) - 1, 0))
    still = len(rows) == 0 or bool((facts.ids[rows] == old.ids_by_key).all())
    in_sort = np.zeros(len(facts.ids), bool)
    if still and len(rows):
        in_sort[rows] = True
    tail = np.nonzero(~in_sort)[0]
    if not still or len(tail) > tail_limit(len(old.keys)) or len(old.keys) == 0:
        keys = morton(wx, wy)
        order = np.argsort(keys, kind="stable")
        no_tail = np.zeros(0, np.int64)
        return IndexState(facts, keys[order], facts.ids[order], order, no_tail, wx, wy)
    return IndexState(facts, old.keys, old.ids_by_key, rows, tail, wx, wy)
