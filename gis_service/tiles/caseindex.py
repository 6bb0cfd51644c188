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
#: re-sort when this many cases have arrived since the last sort
TAIL_LIMIT = 50_000


def world_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 → Web Mercator world coordinates as integers (y grows southward)."""
    size = float(1 << BITS)
    lat = np.clip(lat, -85.05112878, 85.05112878)
    x = (lon + 180.0) / 360.0 * size
    s = np.sin(np.radians(lat))
    y = (0.5 - np.log((1 + s) / (1 - s)) / (4 * np.pi)) * size
    return (np.clip(x, 0, size - 1).astype(np.uint64),
            np.clip(y, 0, size - 1).astype(np.uint64))


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
class TileCases:
    """The rows of the cube inside one tile (indices into the facts arrays)."""

    rows: np.ndarray
    x: np.ndarray  # world coordinates
    y: np.ndarray


class CaseIndex:
    def __init__(self, cube: CaseCube) -> None:
        self.cube = cube
        self._lock = threading.Lock()
        self._facts: Facts | None = None
        self._keys = np.zeros(0, np.uint64)  # sorted Morton keys
        self._ids_by_key = np.zeros(0, np.int64)  # case ids in key order
        self._order = np.zeros(0, np.int64)  # rows of the current facts in key order
        self._tail = np.zeros(0, np.int64)  # rows not in the sort (reported since)
        self._wx = np.zeros(0, np.uint64)
        self._wy = np.zeros(0, np.uint64)

    def facts(self) -> Facts:
        """The cube's facts, synced, with this index brought up to them."""
        facts = self.cube.facts()
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
        if not still or len(tail) > TAIL_LIMIT or len(self._keys) == 0:
            keys = morton(wx, wy)
            order = np.argsort(keys, kind="stable")
            self._keys, self._order = keys[order], order
            self._ids_by_key = facts.ids[order]
            tail = np.zeros(0, np.int64)
        else:
            self._order = rows
        self._wx, self._wy, self._tail, self._facts = wx, wy, tail, facts

    def in_tile(self, z: int, x: int, y: int, margin: float = 0.0) -> TileCases:
        """Rows inside tile (z, x, y), grown by ``margin`` of a tile on each side."""
        lo_x = int((x - margin) * (1 << (BITS - z)))
        hi_x = int((x + 1 + margin) * (1 << (BITS - z)))
        lo_y = int((y - margin) * (1 << (BITS - z)))
        hi_y = int((y + 1 + margin) * (1 << (BITS - z)))
        rows = []
        # the tile's own key range, and its eight neighbours' ranges for the margin
        for dx in ((-1, 0, 1) if margin else (0,)):
            for dy in ((-1, 0, 1) if margin else (0,)):
                tx, ty = x + dx, y + dy
                if not (0 <= tx < (1 << z) and 0 <= ty < (1 << z)):
                    continue
                k0 = int(morton(np.array([tx << (BITS - z)]), np.array([ty << (BITS - z)]))[0])
                k1 = k0 + (1 << (2 * (BITS - z)))
                a = np.searchsorted(self._keys, np.uint64(k0))
                b = np.searchsorted(self._keys, np.uint64(k1))
                rows.append(self._order[a:b])
        rows.append(self._tail)
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        wx, wy = self._wx[r], self._wy[r]
        inside = (wx >= lo_x) & (wx < hi_x) & (wy >= lo_y) & (wy < hi_y)
        r = r[inside]
        return TileCases(rows=r, x=self._wx[r], y=self._wy[r])
