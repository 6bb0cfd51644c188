"""``/desk/cases/{case_id}``: one case on the command desk (issue 15 item 4).

The page is drawn in the desk's frame (desk/shell.py ``signed_in`` and ``page``): no
inline script or style (api/security.py, kind ``desk``); its settings travel in the body's
``data-config``; its words come from ``/m/vocabulary.js`` (statuses, priorities and their
labels, actions, the fields and notes each action takes, the actions templates are kept
for) and the phone's ``/static/mobile/words.js`` (the label of every timeline event, which
tests/test_vocabulary.py keeps complete); its script is ``web/static/case.js`` and its
style ``case.css``; it calls the API through ``web/static/pagefetch.js`` (``gisApi``: the
sign-in cookie, and ``X-Requested-With`` on writes, api/deps.py ``PAGE_WRITE_HEADER``).
Signed out: to the sign-in; 403 for roles other than supervisors and admins
(``require_desk``); a case outside the viewer's jurisdiction is a 404 page, decided by the
API's own ``visible_case`` (auth/scope.py's one rule).

What case.js fetches, and the answer it reads:

==================================================  =======================================
``GET /api/v1/cases/{id}``                          header, contacts (``team``; ``reporter``
                                                    for dispatchers), ``assignee``,
                                                    ``team_members`` (the assign select),
                                                    photos, timeline, ``allowed_actions``,
                                                    ``lock`` (null when free)
``GET /api/v1/cases/{id}/team-suggestions``         the dispatch select:
                                                    ``{teams: [{id, name, responsible,
                                                    open_cases, overdue_cases, distance_m,
                                                    distance_kind}]}``, the responsible
                                                    team first (cases/suggestions.py)
``GET /api/v1/cases/{id}/templates``                each note's template picker:
                                                    ``{templates: [{id, action, text_zh,
                                                    text_en}]}``, asked once per category
                                                    (no ``action``: every action's), only
                                                    when an allowed action is among the
                                                    vocabulary's ``template_actions``
``PUT/GET/DELETE /api/v1/cases/{id}/lock``          the lock (cases/locks.py): taken on
                                                    opening, renewed every half lock
                                                    (``Settings.case_lock_seconds``),
                                                    released on ``pagehide``; 200
                                                    ``{holder: {user_id, name},
                                                    expires_at, mine}``, 409
                                                    ``case_locked`` with ``holder``: the
                                                    page shows "正在处理：NAME" and
                                                    disables the forms, then only reads
                                                    the lock (GET) until it is free
``GET /api/v1/units/{grid}``                        the case's grid polygon
``GET /api/v1/cases?bbox=…&status=…``               the open cases around it, as markers
``GET /api/v1/cases/nearby``                        possible duplicates (``nearby_cases()``,
                                                    the one duplicate rule)
``GET /api/v1/categories``                          the category select and names
                                                    (pagefetch.js ``gisCategories``)
``POST /api/v1/cases/{id}/actions``                 each form; a 409/422/403 answer's
                                                    ``detail`` (and ``allowed``) is shown
                                                    beside its form
==================================================  =======================================

Forms are generated, one per action in the case's ``allowed_actions``, with the fields the
vocabulary lists for it (``action_fields``) and a note (required when the action is in
``note_required_actions``). Each field name has one widget in case.js ``WIDGETS``:
``team_id`` the suggested teams, ``assignee_id`` the case's ``team_members`` by name,
``category`` the sub-categories, ``priority`` the vocabulary's ``priority_labels``,
``passed`` pass/fail, ``score`` 1–5, ``extension_hours`` a number, ``review_on`` a date,
``into_case_id`` the possible duplicates; any other field a text input named after it.

Keyboard: each main action's key is on its button (case.js ``KEYS``: a accept, x reject,
d dispatch, v verify, c comment, e escalate, …); Esc goes back to the queue.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from gis_service.api.deps import SettingsDep
from gis_service.auth.principal import Principal
from gis_service.cases.desk import require_desk
from gis_service.cases.service import visible_case
from gis_service.db.engine import get_engine
from gis_service.desk.shell import PAGEFETCH_JS, page, signed_in
from gis_service.errors import NotFound
from gis_service.mobile.shell import SCRIPTS
from gis_service.settings import Settings

router = APIRouter(tags=["desk"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]
#: the phone's words: the label of every timeline event (ev.*) and action (act.*)
WORDS_JS = SCRIPTS["words.js"][0]
#: metres around the case within which open cases are drawn on its map
NEARBY_MAP_M = 300


def lock_renew_ms(settings: Settings) -> int:
    """How often the open page renews its lock: every half of ``case_lock_seconds``, so
    one late renewal never lets the lock lapse."""
    return settings.case_lock_seconds * 1000 // 2


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
    principal = await signed_in(request, settings, require_desk)
    if isinstance(principal, Response):
        return principal
    zh = lang == "zh"
    queue = "/desk/" + ("" if zh else "?lang=en")
    row = await run_in_threadpool(_case_row, settings, principal, case_id)
    if row is None:
        return _not_found(request, principal, lang, queue, case_id)
    config = {
        "case_id": case_id,
        "timezone": settings.timezone,
        "queue_url": queue,
        "lock_renew_ms": lock_renew_ms(settings),
        "nearby_map_m": NEARBY_MAP_M,
    }
    case_no = html.escape(row["case_no"])
    body = f"""<main class="case-main">
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
 data-testid="lightbox-close">{"关闭" if zh else "Close"}</button></dialog>"""
    return page(
        request,
        principal,
        lang=lang,
        title=(f"{row['case_no']} · 案件", f"{row['case_no']} · Case"),
        current="desk",
        body=body,
        script="case.js",
        style="case.css",
        config=config,
        body_class="case",
        leaflet=True,
        scripts=(PAGEFETCH_JS, WORDS_JS),
    )


def _not_found(
    request: Request, principal: Principal, lang: str, queue: str, case_id: int
) -> Response:
    """The 404 page: the same words whether the case does not exist or is outside the
    viewer's jurisdiction (auth/scope.py: ids outside it reveal nothing)."""
    zh = lang == "zh"
    text = (
        f"没有案件 {case_id}，或不在您的辖区" if zh else f"No case {case_id} in your jurisdiction"
    )
    body = f"""<p class="case-missing" data-testid="not-found">{html.escape(text)}</p>
<p><a href="{queue}">{"返回案件队列" if zh else "Back to the queue"}</a></p>"""
    return page(
        request,
        principal,
        lang=lang,
        title=("找不到案件", "Case not found"),
        current="desk",
        body=body,
        script=None,
        style="case.css",
        body_class="case",
        status_code=404,
    )
