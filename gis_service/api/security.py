"""The security headers of every answer, decided in one place by the kind of answer.

One ASGI wrapper outside every other layer (so error answers, 304s and the 500 of an
unexpected exception carry them too) sorts each request by its path into a kind and adds
that kind's headers; routes never set these headers themselves.

Kinds and their Content-Security-Policy (CSP Level 3, W3C):

* ``page``: the desk map pages and their sign-in (``/maps/…``). folium writes each map as
  inline ``<script>``/``<style>`` and inline ``style=""`` attributes whose ids change every
  render, so scripts and styles may be inline, but every file comes from this server:
  no other origin, except the image tiles of an outside basemap when one is configured
  (``Settings.basemap_url``).
* ``shell``: the phone app (``/m/…``), strict: ``'self'`` only, nothing inline
  (``mobile/shell.py`` builds a page with no inline script or style).
* ``desk``: the front door (``/``, the sign-in), the desk's pages (``/desk/…``) and the
  admin pages (``/admin/…``), as strict as the phone app (the same policy): they carry no
  inline script or style.
* ``docs``: Swagger UI (``/docs``), whose page starts the bundle with one inline script.
* ``static``, ``tiles``, ``api``: files, vector tiles and JSON answers are never documents
  a browser should run: ``default-src 'none'; frame-ancestors 'none'``.

Every kind also gets ``X-Content-Type-Options: nosniff`` (Fetch standard),
``Referrer-Policy: no-referrer`` (nothing here reads the Referer header, and a page's
address can carry filters), ``X-Frame-Options: DENY`` for browsers older than
``frame-ancestors``, and, when ``Settings.https`` says the service is reached over HTTPS,
``Strict-Transport-Security`` (RFC 6797; never sent over plain HTTP, where it is ignored
and would only mislead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_service.mobile.shell import CSP as SHELL_CSP
from gis_service.settings import Settings

#: a year, the usual HSTS lifetime (RFC 6797 §11.2 recommends a long one)
HSTS = "max-age=31536000"

_NONE = "default-src 'none'; frame-ancestors 'none'"


def page_csp(basemap_url: str | None = None) -> str:
    """The desk pages' policy; ``basemap_url`` (an XYZ template) adds its origin to
    ``img-src`` only, since Leaflet draws raster tiles as ``<img>``."""
    outside = ""
    if basemap_url:
        parts = urlsplit(basemap_url)
        outside = f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: blob:{outside}; connect-src 'self'; worker-src 'self'; "
        "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

#: path (itself or with anything under it) → kind; anything else is ``api``
KINDS: dict[str, str] = {
    "/maps": "page",
    "/m": "shell",
    "/desk": "desk",
    "/admin": "desk",  # the admin pages: no inline script or style either
    "/": "desk",  # the front door itself only: "/" + "/" never starts another path
    "/docs": "docs",
    "/static": "static",
    "/tiles": "tiles",
}


def kind_of(path: str) -> str:
    """The kind of answer a request path gets: page, shell, desk, docs, static, tiles or
    api."""
    for prefix, kind in KINDS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return kind
    return "api"


def headers_by_kind(settings: Settings) -> dict[str, dict[str, str]]:
    """kind → the headers every answer of that kind carries (names as sent)."""
    common = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    if settings.https:
        common["Strict-Transport-Security"] = HSTS
    csp = {
        "page": page_csp(settings.basemap_url),
        "shell": SHELL_CSP,
        "desk": SHELL_CSP,
        "docs": DOCS_CSP,
        "static": _NONE,
        "tiles": _NONE,
        "api": _NONE,
    }
    return {kind: {"Content-Security-Policy": policy, **common} for kind, policy in csp.items()}


class SecurityHeaders:
    """ASGI wrapper adding ``table[kind_of(path)]`` to every HTTP answer's headers,
    replacing any same-named header a layer below set."""

    def __init__(self, app: ASGIApp, table: Mapping[str, Mapping[str, str]]) -> None:
        self.app = app
        self.raw = {
            kind: [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in h.items()]
            for kind, h in table.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.raw[kind_of(scope["path"])]
        names = {k for k, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: Starlette, settings: Settings) -> None:
    """Wrap ``app``'s whole middleware stack (Starlette's ServerErrorMiddleware included,
    so even the 500 of an unexpected exception carries the headers)."""
    build: Callable[[], ASGIApp] = app.build_middleware_stack
    table = headers_by_kind(settings)
    app.build_middleware_stack = lambda: SecurityHeaders(build(), table)


def cookie_secure(settings: Settings) -> bool:
    """Whether cookies carry ``Secure`` (RFC 6265 §4.1.2.5): when ``Settings.https`` says
    the browser reaches the service over HTTPS (a TLS proxy in front)."""
    return settings.https
