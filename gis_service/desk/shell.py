"""The frame every desk and admin page shares: sign-in check, role check, the navigation
bar, the language switch and the page's assets — one place, so each page module holds only
what is its own.

A page is a shell served by our own server: no inline script or style (the strict page
policy of api/security.py); its settings travel in the body's ``data-config`` (JSON), its
words come from ``/m/vocabulary.js`` and its own script; Leaflet and the basemap helpers
are the map pages' own copies (maps/assets.py).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gis_service.auth.principal import Principal
from gis_service.desk.nav import BADGE_JS, nav_bar
from gis_service.maps import routes as maps_routes
from gis_service.maps.assets import LEAFLET_CSS, LEAFLET_JS, MAPS_JS, VECTORGRID_JS
from gis_service.mobile.shell import VOCABULARY_URL
from gis_service.mobile.shell import version as build_version
from gis_service.settings import Settings

STATIC = "/static/app"
MAPS_CSS = f"{STATIC}/maps.css"  # fonts and the navigation bar, shared with the maps
#: gisApi(): the pages' one way to call the API (the cookie, and the write header)
PAGEFETCH_JS = f"{STATIC}/pagefetch.js"


async def signed_in(
    request: Request, settings: Settings, require: Callable[[Principal], None]
) -> Principal | Response:
    """The viewer, or the answer to send instead: signed out, a 303 to the sign-in with
    this page as ``next``. ``require`` raises the 403 for roles the page is not for."""
    principal = await maps_routes._principal(request, settings)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/maps/login?next={quote(target)}", status_code=303)
    require(principal)
    return principal


def other_language_url(request: Request, lang: str) -> str:
    """This page's address in the other language (the query kept)."""
    query = dict(request.query_params)
    query["lang"] = "en" if lang == "zh" else "zh"
    kept = {k: v for k, v in query.items() if v != "zh"}
    return request.url.path + ("?" + urlencode(kept) if kept else "")


def page(
    request: Request,
    principal: Principal,
    *,
    lang: str,
    title: tuple[str, str],
    current: str,
    body: str,
    script: str | None,
    style: str,
    config: dict[str, Any] | None = None,
    body_class: str = "desk",
    leaflet: bool = False,
    scripts: Sequence[str] = (),
    status_code: int = 200,
) -> HTMLResponse:
    """One desk page: ``title`` (zh, en), ``current`` the navigation key to mark, ``body``
    the page's own markup (escaped by the caller), ``script``/``style`` its own asset names
    under /static/app/ (``script`` None: a page without one, e.g. a 404 page), ``config``
    what its script reads from ``data-config`` (``lang`` is added), ``leaflet`` when it
    draws a map, ``scripts`` more of our own scripts to load before the page's,
    ``status_code`` the answer's status. Answers ``Cache-Control: private, no-store`` (a
    viewer's page)."""
    zh = lang == "zh"
    v = build_version()
    data = html.escape(json.dumps({"lang": lang, **(config or {})}, ensure_ascii=False))
    map_css = f'<link rel="stylesheet" href="{LEAFLET_CSS}?v={v}">\n' if leaflet else ""
    map_js = (
        "".join(
            f'<script src="{src}?v={v}" defer></script>\n'
            for src in (LEAFLET_JS, VECTORGRID_JS, MAPS_JS)
        )
        if leaflet
        else ""
    )
    own_js = "".join(f'<script src="{src}?v={v}" defer></script>\n' for src in scripts)
    page_js = f'<script src="{STATIC}/{script}?v={v}" defer></script>\n' if script else ""
    doc = f"""<!DOCTYPE html><html lang="{"zh-CN" if zh else "en"}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title[0] if zh else title[1])}</title>
{map_css}<link rel="stylesheet" href="{MAPS_CSS}?v={v}">
<link rel="stylesheet" href="{STATIC}/{style}?v={v}">
</head><body class="{body_class}" data-config="{data}">
{nav_bar(principal, lang, current, other_language_url(request, lang))}
{body}
<script src="{VOCABULARY_URL}?v={v}" defer></script>
<script src="{BADGE_JS}?v={v}" defer></script>
{map_js}{own_js}{page_js}</body></html>"""
    return HTMLResponse(
        doc, status_code=status_code, headers={"Cache-Control": "private, no-store"}
    )
