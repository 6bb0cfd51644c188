"""``/desk/approvals``: the approval inbox as a page (issue 15 item 3).

Extension requests (延期) wait here for the level above: each with its clock (due by,
hours left, past due), the case, the team's reason and the deadline it would move to;
approve or refuse one or many at once (refusing needs a note), the failures listed by
request with their reason. Delegations given and received are listed, and may be ended.
Data and rules: ``GET /api/v1/approvals``, ``POST /api/v1/approvals/decisions`` and
``/api/v1/approvals/delegations`` (cases/approvals.py); words of the decisions from the
vocabulary. Script: web/static/approvals.js.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from gis_service.api.deps import SettingsDep
from gis_service.cases.desk import require_desk
from gis_service.desk.shell import PAGEFETCH_JS, page, signed_in

router = APIRouter(tags=["desk"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]


@router.get("/desk/approvals", response_class=HTMLResponse)
async def approvals_page(request: Request, settings: SettingsDep, lang: Lang = "zh") -> Response:
    """Supervisors and admins: the requests waiting for their decision (and decided ones
    by tab). Signed out: to the sign-in; 403 for other roles."""
    principal = await signed_in(request, settings, require_desk)
    if isinstance(principal, Response):
        return principal
    body = """<main class="approvals-main">
<div class="approvals-tabs" role="tablist" data-testid="approval-tabs"></div>
<div class="approvals-bar" data-testid="approval-bar"></div>
<div class="approvals-result" data-testid="approval-result" aria-live="polite"></div>
<table class="desk-list approvals-list" data-testid="approvals"><thead></thead><tbody></tbody>
</table>
<section class="approvals-delegations" data-testid="delegations"></section>
</main>"""
    return page(
        request,
        principal,
        lang=lang,
        title=("审批", "Approvals"),
        current="approvals",
        body=body,
        script="approvals.js",
        style="desk.css",
        config={"user_id": principal.user_id},
        scripts=(PAGEFETCH_JS,),
    )
