"""The tile index's tail: cases reported since the last sort are binned one by one on
every tile, so the index re-sorts once the tail passes its share of the sorted cases
(tiles/caseindex.py ``tail_limit``) — at any case count, not only past a fixed 50,000
that a district's day never reaches (the soak's slow tiles and growing heap)."""

from __future__ import annotations

import numpy as np

from gis_service.stats.cube import Facts
from gis_service.tiles.caseindex import TAIL_MIN, CaseIndex, tail_limit


class _Growing:
    """The cube's one method the index calls, over cases that keep arriving."""

    def __init__(self, n: int) -> None:
        self.n = n

    def facts(self, max_age: float = 0.0) -> Facts:
        f = Facts.__new__(Facts)
        rng = np.random.default_rng(self.n)
        f.ids = np.arange(1, self.n + 1, dtype=np.int64)
        f.lon = 113.6 + rng.random(self.n) * 0.1
        f.lat = 34.7 + rng.random(self.n) * 0.1
        return f


def test_the_limit_scales_with_the_sorted_cases_and_has_a_floor():
    assert tail_limit(0) == TAIL_MIN
    assert tail_limit(1_000_000) == 10_000
    assert tail_limit(1_000_000) < tail_limit(2_000_000)


def test_the_tail_is_sorted_in_once_it_passes_its_limit():
    cube = _Growing(20_000)
    index = CaseIndex(cube)
    assert len(index.state().tail) == 0
    limit = tail_limit(20_000)
    cube.n += limit  # at the limit: still a tail
    assert len(index.state().tail) == limit
    cube.n += 1  # past it: sorted in, every case findable by its key again
    state = index.state()
    assert len(state.tail) == 0
    assert len(state.rows_between(np.array([0]), np.array([cube.n]))) == cube.n


def test_a_state_is_never_changed_by_a_later_sync():
    """A tile reads one IndexState throughout: the cases arriving meanwhile make a new
    state and leave the one being read as it was (the soak's IndexError)."""
    cube = _Growing(5_000)
    index = CaseIndex(cube)
    old = index.state()
    n, tail, order = len(old.facts.ids), old.tail.copy(), old.order.copy()
    cube.n += 100  # a sync by another thread: new cases in the tail
    new = index.state()
    assert new is not old and len(new.tail) == 100
    assert len(old.facts.ids) == n and (old.tail == tail).all() and (old.order == order).all()
    rows = old.rows_between(np.array([0]), np.array([len(old.keys)]))
    assert rows.max() < len(old.facts.ids) == len(old.wx)
