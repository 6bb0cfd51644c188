"""Static files gzipped once and kept in memory, with long caching for versioned URLs.

Phones on a weak signal pay for every byte: Leaflet alone is 148 KB as a file and 42 KB
gzipped. Files are few and small, so each is compressed once (keyed by its mtime and
size) instead of per request, and a URL carrying ``?v=`` (the build's content hash) may
be cached for a year: a new build changes the URL.
"""

from __future__ import annotations

import gzip
import os
import threading

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

COMPRESSIBLE = (".js", ".css", ".json", ".svg", ".html", ".webmanifest", ".map", ".txt")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class CompressedStaticFiles(StaticFiles):
    """StaticFiles that answers gzip to browsers that accept it (all do)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
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

    def file_response(self, full_path, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        versioned = b"v=" in scope.get("query_string", b"")
        response.headers["Cache-Control"] = IMMUTABLE if versioned else REVALIDATE
        request = Headers(scope=scope)
        if (isinstance(response, NotModifiedResponse) or status_code != 200
                or not str(full_path).endswith(COMPRESSIBLE)
                or "gzip" not in request.get("accept-encoding", "")):
            return response
        body = self._gzipped(str(full_path), stat_result)
        headers = {k: v for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "etag")}
        headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding",
                        "ETag": response.headers["etag"].rstrip('"') + '-gz"'})
        if request.get("if-none-match") == headers["ETag"]:
            return NotModifiedResponse(headers)
        return Response(body, status_code=200, headers=headers,
                        media_type=response.media_type)
