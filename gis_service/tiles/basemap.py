"""The offline basemap: vector tiles cut from our own data, kept on disk under tiles/cache.

Isolated government networks cannot fetch OpenStreetMap's or a vendor's tiles, so the
pages draw this by default. A tile on disk is used while the network and units versions it
was cut from are current (tiles/cache/<database>/basemap/VERSION); otherwise it is cut again.
``gis-service tiles seed --maxzoom N`` cuts every tile over the data ahead of time.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Connection, text

from gis_service.settings import project_root
from gis_service.tiles import mvt


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    lat_r = math.radians(max(min(lat, 85.0511), -85.0511))
    y = int((1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


class Basemap:
    def __init__(self, database: str, root: Path | None = None) -> None:
        self.root = root or project_root() / "tiles"
        # one cache per database: two databases may stand at the same versions
        self.cache_dir = self.root / "cache" / database / "basemap"
        self.style = json.loads((self.root / "style.json").read_text(encoding="utf-8"))
        self._lock = threading.Lock()

    def _stamp(self, versions: tuple[int, int, int]) -> str:
        return f"network={versions[0]} units={versions[2]}"

    def _current(self, versions: tuple[int, int, int]) -> bool:
        stamp = self.cache_dir / "VERSION"
        return stamp.exists() and stamp.read_text().strip() == self._stamp(versions)

    def _restamp(self, versions: tuple[int, int, int]) -> None:
        """Data changed since the cache was cut: start it again (under the lock)."""
        import shutil

        if self.cache_dir.exists():
            shutil.rmtree(self.cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        (self.cache_dir / "VERSION").write_text(self._stamp(versions))

    def tile(
        self, conn: Connection, z: int, x: int, y: int, versions: tuple[int, int, int]
    ) -> bytes:
        path = self.cache_dir / str(z) / str(x) / f"{y}.pbf"
        if self._current(versions) and path.exists():
            return path.read_bytes()
        body = mvt.basemap_tile(conn, z, x, y)
        with self._lock:
            if not self._current(versions):
                self._restamp(versions)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(body)
            tmp.replace(path)
        return body

    def extent(self, conn: Connection) -> tuple[float, float, float, float] | None:
        row = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(g) "
                "AS e FROM (SELECT geom AS g FROM walk_edge UNION ALL SELECT geom FROM admin_unit "
                "WHERE level <> 'district') x) y"
            )
        ).one()
        return None if row[0] is None else tuple(row)  # type: ignore[return-value]

    def tiles_over(
        self, bounds: tuple[float, float, float, float], minzoom: int, maxzoom: int
    ) -> Iterator[tuple[int, int, int]]:
        for z in range(minzoom, maxzoom + 1):
            x0, y1 = lonlat_to_tile(bounds[0], bounds[1], z)
            x1, y0 = lonlat_to_tile(bounds[2], bounds[3], z)
            for x in range(x0, x1 + 1):
                for y in range(y0, y1 + 1):
                    yield z, x, y

    def seed(
        self,
        conn: Connection,
        versions: tuple[int, int, int],
        minzoom: int,
        maxzoom: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[int, int]:
        """Cut every tile over the data; returns (tiles, bytes)."""
        bounds = self.extent(conn)
        if bounds is None:
            return 0, 0
        todo = list(self.tiles_over(bounds, minzoom, maxzoom))
        total = 0
        for i, (z, x, y) in enumerate(todo):
            total += len(self.tile(conn, z, x, y, versions))
            if progress:
                progress(i + 1, len(todo))
        return len(todo), total
