"""``/desk/reports``: the monthly reports of the viewer's units as a desk page.

Pick a unit and a month, press "monthly report" (a draft: ``POST /api/v1/reports/monthly``,
followed through its job when printing takes long), see the versions (draft or sent, by
whom, the reason of a correction), open each PDF and send a draft (``…/send``; a
correction asks for its reason). Data and rules: reports/routes.py, reports/versions.py.
Script: web/static/reports.js.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from gis_service.api.deps import SettingsDep
from gis_service.cases.desk import require_desk
from gis_service.desk.shell import PAGEFETCH_JS, page, signed_in
from gis_service.reports.figures import add_months
from gis_service.timezone import local_date
from gis_service.units.codes import LEVELS

router = APIRouter(tags=["desk"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]


@router.get("/desk/reports", response_class=HTMLResponse)
async def reports_page(request: Request, settings: SettingsDep, lang: Lang = "zh") -> Response:
    """Supervisors and admins: their units' monthly reports. Signed out: to the sign-in;
    403 for other roles. The month offered first is the last whole month (local time)."""
    principal = await signed_in(request, settings, require_desk)
    if isinstance(principal, Response):
        return principal
    today = local_date(settings)
    last = add_months(today.replace(day=1), -1)
    body = """<main class="reports-main">
<form class="reports-form" data-testid="report-form">
<label><span data-word="unit"></span>
<select data-testid="report-unit" name="unit"></select></label>
<label><span data-word="month"></span> <input type="month" data-testid="report-month" name="month"
 required></label>
<label><span data-word="lang"></span> <select data-testid="report-lang" name="lang">
<option value="zh">中文</option><option value="en">English</option></select></label>
<button type="submit" data-testid="report-make" data-word="make"></button>
</form>
<div class="reports-status" data-testid="report-status" aria-live="polite"></div>
<table class="desk-list reports-list" data-testid="report-versions"><thead></thead><tbody></tbody>
</table>
</main>"""
    return page(
        request,
        principal,
        lang=lang,
        title=("月度报告", "Monthly reports"),
        current="reports",
        body=body,
        script="reports.js",
        style="desk.css",
        config={
            "scopes": list(principal.scopes),
            "month": last.strftime("%Y-%m"),
            # an admin's picker starts from the two top levels (units/codes.py)
            "top_levels": [level.value for level in LEVELS[:2]],
        },
        scripts=(PAGEFETCH_JS,),
    )
