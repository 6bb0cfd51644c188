"""``/desk/cases/{case_id}``: one case on the command desk (issue 15 item 4).

The page is a shell of this server only, as strict as the queue (desk/pages.py): no inline
script or style (api/security.py, kind ``desk``); its settings travel in the body's
``data-config``; its words come from ``/m/vocabulary.js`` (statuses, actions, the fields
and notes each action takes) and the phone's ``/static/mobile/words.js`` (the label of
every timeline event, which tests/test_vocabulary.py keeps complete); its script is
``web/static/case.js`` and its style ``case.css``. Leaflet and the basemap helpers are the
map pages' own copies (maps/assets.py). Signed out: to the sign-in; 403 for roles other
than supervisors and admins (``require_desk``); a case outside the viewer's jurisdiction
is a 404 page, decided by the API's own ``visible_case`` (auth/scope.py's one rule).

Everything on the page comes from the API, fetched by case.js with the sign-in cookie;
writes carry ``X-Requested-With: XMLHttpRequest`` (api/deps.py ``PAGE_WRITE_HEADER``):

==========================================  ==============================================
``GET /api/v1/cases/{id}``                  header, contacts (``team``; ``reporter`` for
                                            dispatchers), photos, timeline,
                                            ``allowed_actions``; ``lock`` once it exists
``GET /api/v1/units/{grid}``                the case's grid polygon (public geography)
``GET /api/v1/cases?bbox=…&status=…``       the open cases around it, as map markers
``GET /api/v1/cases/nearby``                possible duplicates: open cases of the same
                                            category (``nearby_cases()``, the one
                                            duplicate rule)
``GET /api/v1/categories``, ``/teams``      the category and team selects
``POST /api/v1/cases/{id}/actions``         each form; a 409/422/403 answer's ``detail``
                                            (and ``allowed``) is shown beside its form
==========================================  ==============================================

Contracts the page already speaks, for endpoints that land later (no page change needed):

* Forms are generated, one per action in the case's ``allowed_actions``, with the fields
  the vocabulary lists for it (``action_fields``) and a note (required when the action is
  in ``note_required_actions``). Each field name has one widget in case.js ``WIDGETS``:
  ``team_id`` a select of teams (suggestions first when
  ``GET /api/v1/cases/{id}/team-suggestions`` answers 200 with
  ``[{team_id, name, open, overdue, distance_m, distance_kind}]``, or main's
  ``{"teams": [{id, name, open_cases, overdue_cases, distance_m, distance_kind}]}``),
  ``passed`` pass/fail,
  ``score`` 1–5, ``extension_hours`` a number, ``review_on`` a date, ``category`` a select
  of ``GET /api/v1/categories``, ``priority`` a select of the vocabulary's priorities,
  ``assignee_id`` a number input (a user id: no route lists a team's members yet),
  ``into_case_id`` a select of the possible duplicates shown on the page; any other field
  a text input named after it. ``merge`` also puts a "merge into" button on each possible
  duplicate (when the vocabulary lists ``merge`` and the case allows it).
* Templates: ``GET /api/v1/cases/{id}/templates`` (asked once, without ``action``, so
  no action without templates draws a 422) answering 200 with ``[{id, text_zh,
  text_en}]`` or ``{"templates": [...]}``: each form's picker, above its note, lists those
  whose ``action`` is its action (or that name none); anything else, no picker.
* Lock: on opening the page ``PUT /api/v1/cases/{id}/lock`` (renewed every
  ``LOCK_RENEW_SECONDS``, released with ``DELETE`` on ``pagehide``); 200
  ``{holder: {user_id, name}, expires_at, mine}``, 409 ``{"error": "case_locked", holder,
  …}``. When someone else holds it the page shows "正在处理: NAME" and disables the forms;
  a 404 (the route not there yet) shows nothing. ``lock`` on the case answer is read the
  same way.
* The page asks for templates, suggestions and the lock only once the app serves their
  routes (``optional_endpoints``, from the app's own route table, in ``data-config``), so
  until then the browser logs no 404s; a 404 is handled all the same.

Keyboard: each main action's key is on its button (case.js ``KEYS``: a accept, x reject,
d dispatch, v verify, c comment, e escalate, …); Esc goes back to the queue.
"""

from __future__ import annotations

import html
import json
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.applications import Starlette

from gis_service.api.deps import SettingsDep
from gis_service.auth.principal import Principal
from gis_service.cases.desk import require_desk
from gis_service.cases.service import visible_case
from gis_service.db.engine import get_engine
from gis_service.desk.nav import nav_bar
from gis_service.errors import NotFound
from gis_service.maps import routes as maps_routes
from gis_service.maps.assets import LEAFLET_CSS, LEAFLET_JS, MAPS_JS
from gis_service.mobile.shell import SCRIPTS, VOCABULARY_URL
from gis_service.mobile.shell import version as build_version
from gis_service.settings import Settings

router = APIRouter(tags=["desk"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]
CASE_JS = "/static/app/case.js"
CASE_CSS = "/static/app/case.css"
MAPS_CSS = "/static/app/maps.css"  # fonts and the navigation bar, shared with the maps
#: the phone's words: the label of every timeline event (ev.*) and action (act.*)
WORDS_JS = SCRIPTS["words.js"][0]
#: seconds between two renewals of the case lock while the page is open
LOCK_RENEW_SECONDS = 60
#: metres around the case within which open cases are drawn on its map
NEARBY_MAP_M = 300


#: endpoints other work adds later; the page calls each only once the app serves it
#: (``optional_endpoints``), so no request of it ends in a 404 until then
OPTIONAL = {
    "lock": ("PUT", "/api/v1/cases/{}/lock"),
    "templates": ("GET", "/api/v1/cases/{}/templates"),
    "team_suggestions": ("GET", "/api/v1/cases/{}/team-suggestions"),
}
_PARAM = re.compile(r"\{[^}]*\}")


def optional_endpoints(app: Starlette) -> dict[str, bool]:
    """Which of ``OPTIONAL`` the app serves, read from its own routes (path parameters
    compared by position, whatever their names)."""
    routes = [
        r
        for route in app.routes
        for r in (
            route.effective_route_contexts()  # an included router: its own routes
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
    ]
    served = {
        (method, _PARAM.sub("{}", getattr(r, "path", "")))
        for r in routes
        for method in (getattr(r, "methods", None) or ())
    }
    return {name: want in served for name, want in OPTIONAL.items()}


def _case_row(settings: Settings, principal: Principal, case_id: int) -> dict | None:
    """The case as the API's scope rule shows it to this viewer, or None (404)."""
    with get_engine(settings).connect() as conn:
        try:
            return visible_case(conn, principal, case_id)
        except NotFound:
            return None


@router.get("/desk/cases/{case_id}", response_class=HTMLResponse)
async def case_page(
    request: Request,
    settings: SettingsDep,
    case_id: Annotated[int, Path(gt=0)],
    lang: Lang = "zh",
) -> Response:
    """One case: header, timeline, photos before and after, map, possible duplicates,
    contacts and a form per allowed action (see the module for the data it fetches).
    Signed out: 303 to the sign-in; 403 for roles other than supervisors and admins; 404
    page for a case the viewer may not see (or that does not exist)."""
    principal = await maps_routes._principal(request, settings)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/maps/login?next={quote(target)}", status_code=303)
    require_desk(principal)
    zh = lang == "zh"
    other = request.url.path + ("?lang=en" if zh else "")
    queue = "/desk/" + ("" if zh else "?lang=en")
    row = await run_in_threadpool(_case_row, settings, principal, case_id)
    if row is None:
        return _not_found(principal, lang, other, queue, case_id)
    config = {
        "lang": lang,
        "case_id": case_id,
        "timezone": settings.timezone,
        "queue_url": queue,
        "lock_renew_ms": LOCK_RENEW_SECONDS * 1000,
        "nearby_map_m": NEARBY_MAP_M,
        "endpoints": optional_endpoints(request.app),
    }
    v = build_version()
    case_no = html.escape(row["case_no"])
    page = f"""<!DOCTYPE html><html lang="{"zh-CN" if zh else "en"}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{case_no} · {"案件" if zh else "Case"}</title>
<link rel="stylesheet" href="{LEAFLET_CSS}?v={v}">
<link rel="stylesheet" href="{MAPS_CSS}">
<link rel="stylesheet" href="{CASE_CSS}">
</head><body class="case" data-config="{html.escape(json.dumps(config, ensure_ascii=False))}">
{nav_bar(principal, lang, "desk", other)}
<main class="case-main">
<section class="case-side">
<header class="case-head" data-testid="case-head"><a class="case-back" href="{queue}"
 data-testid="back">{"← 案件队列" if zh else "← Queue"} <kbd>Esc</kbd></a>
<h1 data-testid="case-no">{case_no}</h1><dl class="case-facts" data-testid="facts"></dl></header>
<div class="case-lock" data-testid="lock" hidden></div>
<section class="case-contacts" data-testid="contacts"></section>
<section class="case-actions" data-testid="actions"></section>
</section>
<section class="case-story">
<div class="case-photos" data-testid="photos"></div>
<h2>{"处理过程" if zh else "Timeline"}</h2>
<ol class="case-timeline" data-testid="timeline"></ol>
</section>
<section class="case-place">
<div class="case-map" id="case-map" data-testid="map"></div>
<h2>{"可能重复的案件" if zh else "Possible duplicates"}</h2>
<ul class="case-dups" data-testid="duplicates"></ul>
</section>
</main>
<dialog class="case-lightbox" data-testid="lightbox"><img alt=""><button type="button"
 data-testid="lightbox-close">{"关闭" if zh else "Close"}</button></dialog>
<script src="{VOCABULARY_URL}?v={v}" defer></script>
<script src="{WORDS_JS}?v={v}" defer></script>
<script src="{LEAFLET_JS}?v={v}" defer></script>
<script src="{MAPS_JS}?v={v}" defer></script>
<script src="{CASE_JS}" defer></script>
</body></html>"""
    return HTMLResponse(page, headers={"Cache-Control": "private, no-store"})


def _not_found(principal: Principal, lang: str, other: str, queue: str, case_id: int) -> Response:
    """The 404 page: the same words whether the case does not exist or is outside the
    viewer's jurisdiction (auth/scope.py: ids outside it reveal nothing)."""
    zh = lang == "zh"
    text = (
        f"没有案件 {case_id}，或不在您的辖区" if zh else f"No case {case_id} in your jurisdiction"
    )
    page = f"""<!DOCTYPE html><html lang="{"zh-CN" if zh else "en"}"><head><meta charset="utf-8">
<title>{"找不到案件" if zh else "Case not found"}</title>
<link rel="stylesheet" href="{MAPS_CSS}"><link rel="stylesheet" href="{CASE_CSS}">
</head><body class="case">{nav_bar(principal, lang, "desk", other)}
<p class="case-missing" data-testid="not-found">{html.escape(text)}</p>
<p><a href="{queue}">{"返回案件队列" if zh else "Back to the queue"}</a></p></body></html>"""
    return HTMLResponse(page, status_code=404, headers={"Cache-Control": "private, no-store"})
