"""``/desk/workload`` (the workload board) and ``/desk/shift`` (the shift view): pages of
the desk (issue 15 item 6).

Shells like the queue's page (desk/pages.py): no inline script or style (the desk's strict
policy, api/security.py); their data comes from ``GET /api/v1/desk/workload`` and
``GET /api/v1/desk/shift`` (cases/workload.py), drawn by ``/static/app/board.js``, words
from ``/m/vocabulary.js`` and the page's ``data-config``. Simplified Chinese by default,
English with ``?lang=en``. Signed out: to the sign-in; 403 for roles other than
dispatchers.
"""

from __future__ import annotations

import html
import json
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gis_service.api.deps import SettingsDep
from gis_service.cases.desk import require_desk
from gis_service.cases.workload import PERIODS
from gis_service.desk.nav import nav_bar
from gis_service.maps import routes as maps_routes
from gis_service.mobile.shell import VOCABULARY_URL
from gis_service.mobile.shell import version as build_version
from gis_service.timezone import zone_name

router = APIRouter(tags=["desk"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]
BOARD_JS = "/static/app/board.js"
BOARD_CSS = "/static/app/board.css"
MAPS_CSS = "/static/app/maps.css"  # fonts and the navigation bar

#: page → (nav key, 中文 title, English title)
PAGES: dict[str, tuple[str, str, str]] = {
    "workload": ("workload", "工作量看板", "Workload board"),
    "shift": ("shift", "交接班", "Shift view"),
}


async def _page(request: Request, settings: SettingsDep, lang: str, page: str) -> Response:
    principal = await maps_routes._principal(request, settings)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/maps/login?next={quote(target)}", status_code=303)
    require_desk(principal)
    zh = lang == "zh"
    query = dict(request.query_params)
    query["lang"] = "en" if zh else "zh"
    other_query = urlencode({k: v for k, v in query.items() if v != "zh"})
    other = request.url.path + (f"?{other_query}" if other_query else "")
    key, title_zh, title_en = PAGES[page]
    config = {
        "lang": lang,
        "page": page,
        "periods": {name: (z if zh else e) for name, (z, e) in PERIODS.items()},
        "tz": zone_name(settings),  # times are shown in the district's time
    }
    v = build_version()
    body = f"""<!DOCTYPE html><html lang="{"zh-CN" if zh else "en"}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title_zh if zh else title_en}</title>
<link rel="stylesheet" href="{MAPS_CSS}">
<link rel="stylesheet" href="{BOARD_CSS}">
</head><body class="board" data-config="{html.escape(json.dumps(config, ensure_ascii=False))}">
{nav_bar(principal, lang, key, other)}
<main class="board-main" data-testid="board-{page}">
<header class="board-head"><h1>{title_zh if zh else title_en}</h1>
<div class="board-tools" data-testid="tools"></div>
<div class="board-status" data-testid="board-status" aria-live="polite"></div></header>
<div class="board-body" data-testid="board-body"></div>
</main>
<script src="{VOCABULARY_URL}?v={v}" defer></script>
<script src="{BOARD_JS}" defer></script>
</body></html>"""
    return HTMLResponse(body, headers={"Cache-Control": "private, no-store"})


@router.get("/desk/workload", response_class=HTMLResponse)
async def workload_page(request: Request, settings: SettingsDep, lang: Lang = "zh") -> Response:
    """The workload board: a sortable table per team (open, overdue — linking to the queue
    filtered to the team's overdue cases —, handled, on-time and rework rates) and one per
    grid worker (reports, cases awaiting their check), over the period in ``?period=``."""
    return await _page(request, settings, lang, "workload")


@router.get("/desk/shift", response_class=HTMLResponse)
async def shift_page(request: Request, settings: SettingsDep, lang: Lang = "zh") -> Response:
    """The shift view: arrived since my last shift, urged without a reply, likely to miss
    the deadline; each row opens the case page (``/desk/cases/{id}``)."""
    return await _page(request, settings, lang, "shift")
