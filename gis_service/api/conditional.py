"""Conditional GET (RFC 9110 §13): the one place that decides "304 Not Modified".

Every cacheable answer (tiles, static files, case photos, the basemap style, the /m/
shell, the sign-in page) calls ``not_modified``, ``respond`` or ``file_response``:

* ``If-None-Match`` uses the weak comparison (§8.8.3.2): ``W/"x"`` matches ``"x"``; it may
  list several tags (``"a", W/"b"``) or be ``*`` (any current representation);
* ``If-Modified-Since`` counts only when there is no ``If-None-Match`` (§13.1.3), only for
  GET and HEAD, and only when the answer has a modification time;
* a 304 carries the headers a 200 would have sent among ETag, Cache-Control,
  Content-Location, Date, Expires, Last-Modified and Vary (§15.4.5), and no body.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from starlette.responses import FileResponse, Response

#: the headers a 304 repeats from the 200 (RFC 9110 §15.4.5)
KEPT_BY_304 = (
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "last-modified",
    "vary",
)
# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, in a comma-separated list (§8.8.3)
_TAG = re.compile(r'\s*((?:W/)?"[^"]*")\s*(?:,|$)')


def etag_of(body: bytes) -> str:
    """A strong ETag for exactly these bytes: ``"<first 16 bytes of SHA-256, hex>"``."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def opaque(tag: str) -> str:
    """The tag without its weakness marker: ``W/"x"`` → ``"x"``."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def tags_of(header: str) -> list[str]:
    """The entity-tags of an If-None-Match value (``*`` is returned as ``["*"]``)."""
    if header.strip() == "*":
        return ["*"]
    return [m.group(1) for m in _TAG.finditer(header)]


def none_match(header: str, etag: str) -> bool:
    """True when If-None-Match ``header`` names ``etag`` (weak comparison) or is ``*``."""
    tags = tags_of(header)
    return tags == ["*"] or opaque(etag) in {opaque(t) for t in tags}


def not_modified(
    headers: Mapping[str, str],
    etag: str | None,
    last_modified: float | None = None,
    method: str = "GET",
) -> bool:
    """Whether a GET/HEAD with request ``headers`` may be answered 304 for a
    representation with ``etag`` and ``last_modified`` (Unix seconds)."""
    if method not in ("GET", "HEAD"):
        return False
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return etag is not None and none_match(if_none_match, etag)
    since = headers.get("if-modified-since")
    if since is None or last_modified is None:
        return False
    try:
        when = parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):
        return False  # an invalid date is ignored (§13.1.3)
    return int(last_modified) <= when


def not_modified_response(headers: Mapping[str, str]) -> Response:
    """The 304: only the headers §15.4.5 lets it repeat, no body."""
    kept = {k: v for k, v in headers.items() if k.lower() in KEPT_BY_304}
    return Response(status_code=304, headers=kept)


def respond(
    request_headers: Mapping[str, str],
    body: bytes | str,
    *,
    media_type: str,
    headers: Mapping[str, str],
    etag: str | None = None,
    method: str = "GET",
) -> Response:
    """``body`` with its ETag (``etag``, else the body's hash) and ``headers``, or the 304
    when the request already holds it."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    full = {**headers, "ETag": etag or etag_of(data)}
    if not_modified(request_headers, full["ETag"], method=method):
        return not_modified_response(full)
    return Response(data, media_type=media_type, headers=full)


def file_response(
    request_headers: Mapping[str, str],
    path: str | os.PathLike[str],
    *,
    media_type: str,
    headers: Mapping[str, str],
    method: str = "GET",
) -> Response:
    """A stored file with Starlette's ETag and Last-Modified (from its size and mtime),
    or the 304 when the request already holds it."""
    stat = os.stat(path)
    response = FileResponse(path, media_type=media_type, headers=dict(headers), stat_result=stat)
    if not_modified(request_headers, response.headers["etag"], stat.st_mtime, method):
        return not_modified_response(response.headers)
    return response
