"""Tile cache: answers keyed by everything that shapes a tile, including the version of
the data it was cut from, so a change invalidates it without anyone clearing anything.

Versions: units and the basemap follow ``access_state`` (bumped by triggers on every
change to units, points and the network); cases follow the statistics cube (a new object
whenever a sync brings changes). The ETag is the key's hash: a client that has the tile
gets 304 with no body.

Generations: a key's data version makes every tile cut from an older version dead — its key
is never asked for again. Left to the LRU bound such tiles filled the cache (4,096 tiles of
1–22 KB per worker) within the 30-minute soak, where every report moves the cases'
version: the worker grew by the cache's size, about 1.5 MiB a minute (benchmarks/RESULTS.md,
"Soak"). So each tile names its family (a layer) and generation (the versions in its key);
when a family's generation moves, its older tiles are dropped at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable


class TileCache:
    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        #: per family: its current generation and the keys cut in it
        self._generations: dict[str, tuple[str, set[str]]] = {}

    def __len__(self) -> int:
        return len(self._data)

    @property
    def bytes(self) -> int:
        """The size of the tiles held, bytes."""
        with self._lock:
            return sum(len(t) for t in self._data.values())

    @staticmethod
    def etag(key: str) -> str:
        return '"' + hashlib.blake2b(key.encode(), digest_size=12).hexdigest() + '"'

    def get(
        self, key: str, make: Callable[[], bytes], family: str = "", generation: str = ""
    ) -> bytes:
        """The tile of ``key``, made by ``make()`` when not held. ``family`` (a layer) and
        ``generation`` (the data versions in the key): a tile of a newer generation drops
        the family's tiles of the one before, which no key can reach any more."""
        with self._lock:
            tile = self._data.get(key)
            if tile is not None:
                self._data.move_to_end(key)
                self.hits += 1
                return tile
        tile = make()
        if self.capacity <= 0:
            return tile
        with self._lock:
            self.misses += 1
            current, keys = self._generations.get(family, (generation, set()))
            if current != generation:  # the data moved on: the family's older tiles are dead
                for old in keys:
                    self._data.pop(old, None)
                keys = set()
            keys.add(key)
            self._generations[family] = (generation, keys)
            self._data[key] = tile
            while len(self._data) > self.capacity:
                evicted, _ = self._data.popitem(last=False)
                for _, held in self._generations.values():
                    held.discard(evicted)
        return tile
