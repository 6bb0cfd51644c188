"""``/`` (the front door) and ``/desk/`` (the case queue's page).

Both are pages of this server only: the desk page has no inline script or style (its
data comes from ``/api/v1/desk/…`` and its words from ``/m/vocabulary.js`` and the page's
``data-`` attributes); Leaflet, its tile plugin and the basemap helpers are the map pages'
own copies (maps/assets.py). Sign-in is the map pages' cookie sign-in (maps/routes.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gis_service.api.deps import SettingsDep
from gis_service.cases.bulk import BULK_ACTIONS, MAX_CASES
from gis_service.cases.desk import TABS, require_desk
from gis_service.desk import approvals_page, notifications_page
from gis_service.desk.nav import home_of
from gis_service.desk.shell import PAGEFETCH_JS, STATIC, page, signed_in
from gis_service.maps import routes as maps_routes
from gis_service.reports import desk_page as reports_desk_page

router = APIRouter(tags=["desk"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]
SAVED_JS = f"{STATIC}/desk-saved.js"  # saved searches (desk/saved_searches.py)
#: seconds between two polls of the tab counts (a 304 when nothing moved)
POLL_SECONDS = 10


@router.get("/", response_class=HTMLResponse)
async def front_door(
    request: Request,
    settings: SettingsDep,
    lang: Lang = "zh",
    error: bool = False,
    next: str = "/",
) -> Response:
    """Signed out: the sign-in form (the map pages' cookie sign-in, back to ``/``).
    Signed in: 303 to where the role works (desk/nav.py ``HOMES``)."""
    principal = await maps_routes._principal(request, settings)
    if principal is None:
        return maps_routes.login_form(request, next=next, lang=lang, error=error)
    target = home_of(principal)
    if lang == "en":
        target += ("&" if "?" in target else "?") + "lang=en"
    return RedirectResponse(target, status_code=303)


@router.get("/desk", response_class=RedirectResponse)
def desk_bare(request: Request) -> RedirectResponse:
    """``/desk`` → ``/desk/`` (the query kept)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/desk/{query}", status_code=308)


@router.get("/desk/", response_class=HTMLResponse)
async def desk_page(request: Request, settings: SettingsDep, lang: Lang = "zh") -> Response:
    """The case queue: tabs with live counts, filters (kept in the URL), the list paged
    by the server and a map of the same cases. Signed out: to the sign-in; 403 for roles
    other than supervisors and admins."""
    principal = await signed_in(request, settings, require_desk)
    if isinstance(principal, Response):
        return principal
    zh = lang == "zh"
    config = {
        # times on the list are the district's, whatever the browser's zone (as the case page)
        "timezone": settings.timezone,
        "tabs": {name: (zh_ if zh else en) for name, (zh_, en) in TABS.items()},
        "poll_ms": POLL_SECONDS * 1000,
        # the bulk bar's actions and limit (cases/bulk.py), the case page's address
        "bulk": {"actions": [a.value for a in BULK_ACTIONS], "max": MAX_CASES},
        "case_url": "/desk/cases/{id}",
    }
    body = """<main class="desk-main">
<section class="desk-work">
<div class="desk-tabs" role="tablist" data-testid="tabs"></div>
<form class="desk-filters" data-testid="filters"></form>
<div class="desk-bulk" data-testid="bulk-bar"></div>
<div class="desk-bulk-result" data-testid="bulk-result" aria-live="polite" hidden></div>
<div class="desk-status" data-testid="list-status" aria-live="polite"></div>
<table class="desk-list" data-testid="queue"><thead></thead><tbody></tbody></table>
<div class="desk-pager" data-testid="pager"></div>
</section>
<div class="desk-map" id="desk-map" data-testid="map"></div>
</main>
<div class="desk-help" data-testid="shortcut-help" role="dialog" hidden></div>"""
    return page(
        request,
        principal,
        lang=lang,
        title=("案件台", "Case desk"),
        current="desk",
        body=body,
        script="desk.js",
        style="desk.css",
        config=config,
        leaflet=True,
        scripts=(PAGEFETCH_JS, SAVED_JS),  # saved searches (desk/saved_searches.py)
    )


# the desk's other pages, each in its own module
router.include_router(approvals_page.router)
router.include_router(reports_desk_page.router)
router.include_router(notifications_page.router)
