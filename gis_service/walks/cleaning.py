"""Cleaning a walk's fixes: which to drop and why, and where the track must break.

The rules and their numbers are rules.py's (docs/walks.md "Cleaning" says why each); this
module applies them, in this order, to the fixes sorted by the phone's time:

1. ``accuracy`` — the fix reports worse than ``ACCURACY_MAX_M``.
2. ``jump`` — an out-and-back spike: more than ``JUMP_M`` from both its neighbours
   (among the fixes still kept) while those lie within half the shorter of the two
   distances of each other.
3. ``speed`` — reaching the fix from the last kept one would need more than
   ``SPEED_MAX_MPS`` even granting both fixes their stated error. If ``RELOCATE_FIXES``
   such fixes in a row agree with each other (a walk resumed elsewhere after an outage
   in a lift or a car, or a first fix that was the bad one), they are kept and start a new
   *part* of the track: the track is not drawn, nor distance counted, across the gap. A
   part left with one fix is that bad fix: dropped as a ``jump``.
4. ``stop`` — ``STOP_MIN_S`` or more of fixes within ``STOP_RADIUS_M`` of the first of
   them collapse to the one nearest their centre.

Distances are on a local plane around the walk (equirectangular, the sphere of mean
radius 6,371,008.8 m): exact to centimetres over a grid's few hundred metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gis_service.walks.rules import (
    ACCURACY_MAX_M,
    JUMP_M,
    SPEED_MAX_MPS,
    STOP_MIN_S,
    STOP_RADIUS_M,
)

EARTH_RADIUS_M = 6_371_008.8
#: this many speed-refused fixes in a row that agree with each other start a new part
RELOCATE_FIXES = 3


@dataclass(frozen=True)
class Cleaned:
    """Per fix (in the order given): why it was dropped (None: kept) and the part of the
    track it belongs to (kept fixes only; -1 for dropped ones)."""

    dropped: list[str | None]
    part: NDArray[np.int64]

    @property
    def kept(self) -> int:
        return sum(d is None for d in self.dropped)


def local_xy(lon: NDArray, lat: NDArray) -> tuple[NDArray, NDArray]:
    """Metres east and north of the fixes' mean position."""
    lat0 = np.radians(np.mean(lat)) if len(lat) else 0.0
    k = np.pi / 180 * EARTH_RADIUS_M
    return (lon - np.mean(lon)) * k * np.cos(lat0), (lat - np.mean(lat)) * k


def clean(
    t: NDArray[np.float64],
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    accuracy_m: NDArray[np.float64],
) -> Cleaned:
    """Apply the rules to fixes sorted by ``t`` (seconds); arrays of equal length."""
    n = len(t)
    x, y = local_xy(np.asarray(lon, float), np.asarray(lat, float))
    acc = np.asarray(accuracy_m, float)
    dropped: list[str | None] = [None] * n

    def dist(i: int, j: int) -> float:
        return float(np.hypot(x[i] - x[j], y[i] - y[j]))

    for i in np.flatnonzero(acc > ACCURACY_MAX_M):
        dropped[i] = "accuracy"
    _jumps(dropped, dist)
    part = _speeds(t, acc, dropped, dist)
    _lonely(dropped, part)
    _stops(t, x, y, dropped, part, dist)
    return Cleaned(dropped, np.where([d is None for d in dropped], part, -1).astype(np.int64))


def _kept(dropped: list[str | None]) -> list[int]:
    return [i for i, d in enumerate(dropped) if d is None]


def _jumps(dropped: list[str | None], dist) -> None:
    keep = _kept(dropped)
    prev = None
    for k, j in enumerate(keep):
        nxt = keep[k + 1] if k + 1 < len(keep) else None
        if prev is not None and nxt is not None:
            d1, d2 = dist(prev, j), dist(j, nxt)
            if d1 > JUMP_M and d2 > JUMP_M and dist(prev, nxt) < min(d1, d2) / 2:
                dropped[j] = "jump"
                continue
        prev = j


def _feasible(t: NDArray, acc: NDArray, dist, i: int, j: int) -> bool:
    return dist(i, j) <= SPEED_MAX_MPS * abs(t[j] - t[i]) + acc[i] + acc[j]


def _speeds(t: NDArray, acc: NDArray, dropped: list[str | None], dist) -> NDArray[np.int64]:
    part = np.full(len(t), -1, np.int64)
    current, anchor = 0, None
    pending: list[int] = []
    for j in _kept(dropped):
        if anchor is None or _feasible(t, acc, dist, anchor, j):
            part[j], anchor, pending = current, j, []
            continue
        if pending and not _feasible(t, acc, dist, pending[-1], j):
            for i in pending:
                dropped[i] = "speed"
            pending = []
        pending.append(j)
        dropped[j] = "speed"
        if len(pending) == RELOCATE_FIXES:
            current += 1
            for i in pending:
                dropped[i], part[i] = None, current
            anchor, pending = pending[-1], []
    return part


def _lonely(dropped: list[str | None], part: NDArray[np.int64]) -> None:
    keep = _kept(dropped)
    sizes: dict[int, int] = {}
    for i in keep:
        sizes[int(part[i])] = sizes.get(int(part[i]), 0) + 1
    if len(sizes) < 2:
        return
    for i in keep:
        if sizes[int(part[i])] == 1:
            dropped[i] = "jump"


def _stops(t, x, y, dropped: list[str | None], part, dist) -> None:
    keep = _kept(dropped)
    k = 0
    while k < len(keep):
        first = keep[k]
        m = k
        while (
            m + 1 < len(keep)
            and part[keep[m + 1]] == part[first]
            and dist(first, keep[m + 1]) <= STOP_RADIUS_M
        ):
            m += 1
        run = keep[k : m + 1]
        if len(run) >= 3 and t[run[-1]] - t[first] >= STOP_MIN_S:
            cx, cy = np.mean(x[run]), np.mean(y[run])
            centre = run[int(np.argmin(np.hypot(x[run] - cx, y[run] - cy)))]
            for i in run:
                if i != centre:
                    dropped[i] = "stop"
            k = m + 1
        else:
            k += 1
