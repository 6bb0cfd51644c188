"""Tile cache: answers keyed by everything that shapes a tile, including the version of
the data it was cut from, so a change invalidates it without anyone clearing anything.

Versions: units and the basemap follow ``access_state`` (bumped by triggers on every
change to units, points and the network); cases follow the statistics cube (a new object
whenever a sync brings changes). The ETag is the key's hash: a client that has the tile
gets 304 with no body.
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

    @staticmethod
    def etag(key: str) -> str:
        return '"' + hashlib.blake2b(key.encode(), digest_size=12).hexdigest() + '"'

    def get(self, key: str, make: Callable[[], bytes]) -> bytes:
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
            self._data[key] = tile
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)
        return tile
