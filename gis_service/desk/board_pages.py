"""``/desk/workload`` (the workload board) and ``/desk/shift`` (the shift view): pages of
the desk (issue 15 item 6).

Shells in the desk's frame (desk/shell.py): no inline script or style (the desk's strict
policy, api/security.py); their data comes from ``GET /api/v1/desk/workload`` and
``GET /api/v1/desk/shift`` (cases/workload.py), drawn by ``/static/app/board.js``, words
from ``/m/vocabulary.js`` and the page's ``data-config``. Simplified Chinese by default,
English with ``?lang=en``. Signed out: to the sign-in; 403 for roles other than
dispatchers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from gis_service.api.deps import SettingsDep
from gis_service.cases.desk import require_desk
from gis_service.cases.workload import PERIODS
from gis_service.desk.shell import PAGEFETCH_JS, page, signed_in
from gis_service.timezone import zone_name

router = APIRouter(tags=["desk"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]

#: page → (nav key, 中文 title, English title)
PAGES: dict[str, tuple[str, str, str]] = {
    "workload": ("workload", "工作量看板", "Workload board"),
    "shift": ("shift", "交接班", "Shift view"),
}


async def _page(request: Request, settings: SettingsDep, lang: str, name: str) -> Response:
    principal = await signed_in(request, settings, require_desk)
    if isinstance(principal, Response):
        return principal
    zh = lang == "zh"
    key, title_zh, title_en = PAGES[name]
    body = f"""<main class="board-main" data-testid="board-{name}">
<header class="board-head"><h1>{title_zh if zh else title_en}</h1>
<div class="board-tools" data-testid="tools"></div>
<div class="board-status" data-testid="board-status" aria-live="polite"></div></header>
<div class="board-body" data-testid="board-body"></div>
</main>"""
    return page(
        request,
        principal,
        lang=lang,
        title=(title_zh, title_en),
        current=key,
        body=body,
        script="board.js",
        style="board.css",
        body_class="board",
        config={
            "page": name,
            "periods": {p: (z if zh else e) for p, (z, e) in PERIODS.items()},
            "tz": zone_name(settings),  # times are shown in the district's time
        },
        scripts=(PAGEFETCH_JS,),
    )


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
