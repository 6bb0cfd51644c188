"""Static files gzipped once and kept in memory, with long caching for versioned URLs.

Phones on a weak signal pay for every byte: Leaflet alone is 148 KB as a file and 42 KB
gzipped. Files are few and small, so each is compressed once (keyed by its mtime and
size) instead of per request. A URL carrying ``?v=`` with the current build's hash may be
cached for a year (a new build changes the URL); any other ``v`` is an old page asking
after a deploy, and gets the current file marked for revalidation, never pinned.
"""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gis_service.api import conditional

COMPRESSIBLE = (".js", ".css", ".json", ".svg", ".html", ".webmanifest", ".map", ".txt")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def accepts_gzip(header: str) -> bool:
    """True unless gzip is absent or refused with q=0."""
    for part in header.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and float(q[2:] or 0) == 0)
    return False


class CompressedStaticFiles(StaticFiles):
    """StaticFiles that answers gzip to browsers that accept it (all do)."""

    def __init__(self, *args, version: Callable[[], str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._version = version
        self._gz: dict[str, tuple[tuple[float, int], bytes]] = {}
        self._lock = threading.Lock()

    def _gzipped(self, full_path: str, stat_result: os.stat_result) -> bytes:
        stamp = (stat_result.st_mtime, stat_result.st_size)
        hit = self._gz.get(full_path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        with open(full_path, "rb") as f:
            body = gzip.compress(f.read(), compresslevel=9, mtime=0)
        with self._lock:
            self._gz[full_path] = (stamp, body)
        return body

    def _cache_control(self, scope: Scope) -> str:
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v")
        current = self._version() if self._version else None
        return IMMUTABLE if asked and current and asked[0] == current else REVALIDATE

    def file_response(
        self, full_path, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        """The file (gzipped when accepted and worth it), or 304 by ``api/conditional.py``;
        the gzipped variant has its own ETag (``…-gz"``), as a different representation."""
        request = Headers(scope=scope)
        response = FileResponse(full_path, status_code=status_code, stat_result=stat_result)
        response.headers["Cache-Control"] = self._cache_control(scope)
        if status_code != 200:
            return response
        compressible = str(full_path).endswith(COMPRESSIBLE)
        gz = compressible and accepts_gzip(request.get("accept-encoding", ""))
        if compressible:
            response.headers["Vary"] = "Accept-Encoding"
        if gz:
            response.headers["etag"] = response.headers["etag"].rstrip('"') + '-gz"'
        if conditional.not_modified(
            request, response.headers["etag"], stat_result.st_mtime, scope["method"]
        ):
            return conditional.not_modified_response(response.headers)
        if not gz:
            return response
        headers = MutableHeaders(
            {k: v for k, v in response.headers.items() if k != "content-length"}
        )
        headers["content-encoding"] = "gzip"
        body = self._gzipped(str(full_path), stat_result)
        return Response(
            body, status_code=200, headers=dict(headers), media_type=response.media_type
        )
