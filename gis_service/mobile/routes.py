"""``/m/``: the phone app's page, manifest, icons and service worker (its scripts and
styles are static files under /static/mobile, gzipped and cached by version)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from gis_service.api import conditional
from gis_service.errors import NotFound
from gis_service.mobile import shell

router = APIRouter(prefix="/m", tags=["mobile"], include_in_schema=False)
# the page itself is static (data comes from the API), but must be revalidated so a new
# build reaches phones that have no service worker yet (its Content-Security-Policy,
# shell.CSP, is added with the other security headers by api/security.py)
NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("")
def bare() -> RedirectResponse:
    return RedirectResponse("/m/", status_code=308)


# every answer below carries an ETag and answers 304 by api/conditional.py
@router.get("/")
def app_page(request: Request) -> Response:
    return conditional.respond(
        request.headers, shell.page(), media_type="text/html; charset=utf-8", headers=NO_CACHE
    )


@router.get("/sw.js")
def service_worker(request: Request) -> Response:
    return conditional.respond(
        request.headers, shell.service_worker(), media_type="text/javascript", headers=NO_CACHE
    )


@router.get("/vocabulary.js")
def vocabulary_script() -> Response:
    """The word lists for the app (URL versioned by the build, so cached for good)."""
    return Response(
        shell.vocabulary_js(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


@router.get("/manifest.webmanifest")
def manifest(request: Request, lang: Annotated[str, Query(pattern="^(zh|en)$")] = "zh") -> Response:
    return conditional.respond(
        request.headers,
        json.dumps(shell.manifest(lang), ensure_ascii=False, separators=(",", ":")),
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/icon-{size}.png")
def icon(request: Request, size: Annotated[int, Path()]) -> Response:
    if size not in shell.ICON_SIZES:
        raise NotFound(f"no {size}px icon; sizes: {', '.join(map(str, shell.ICON_SIZES))}")
    return conditional.respond(
        request.headers,
        shell.icon(size),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )
