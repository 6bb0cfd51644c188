"""``/desk/notifications``: the viewer's whole inbox and their notification settings
(issue 16 item 1: "per-user preferences and quiet hours").

The inbox, paged newest first (all or only the unread), each notification marked read on
its own or all at once, each linking to its case page; beside it the settings: a table of
the kinds × the personal channels (e-mail, SMS; the in-app inbox always gets everything),
a channel the account has no address for shown disabled with the reason, and the quiet
hours that hold a non-urgent SMS. Data, words of the kinds and channels, and every rule:
``/api/v1/notifications…`` (notify/routes.py, notify/service.py, notify/kinds.py); the
page's own words and behaviour: web/static/notify-page.js. Linked from the inbox badge's
list (desk/nav.py ``INBOX_PAGE``). Grid workers and team members set theirs on the phone.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from gis_service.api.deps import SettingsDep
from gis_service.auth.principal import Principal
from gis_service.auth.scope import require_role
from gis_service.desk.nav import INBOX_PAGE, INBOX_PAGE_ROLES
from gis_service.desk.shell import PAGEFETCH_JS, page, signed_in

router = APIRouter(tags=["desk"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]
#: notifications per page of the list (the API allows up to 100)
PAGE_SIZE = 20


def require_inbox_page(principal: Principal) -> None:
    """403 unless the viewer is one of :data:`desk.nav.INBOX_PAGE_ROLES`."""
    require_role(principal, *sorted(INBOX_PAGE_ROLES), what="the notification page")


@router.get(INBOX_PAGE, response_class=HTMLResponse)
async def notifications_page(
    request: Request, settings: SettingsDep, lang: Lang = "zh"
) -> Response:
    """Supervisors and admins: their notifications and notification settings. Signed out:
    to the sign-in; 403 for other roles (they use the phone app's inbox tab)."""
    principal = await signed_in(request, settings, require_inbox_page)
    if isinstance(principal, Response):
        return principal
    body = """<main class="notify-main">
<section class="notify-inbox" data-testid="notify-inbox" aria-labelledby="notify-inbox-h">
<h2 id="notify-inbox-h" data-word="inbox"></h2>
<div class="notify-bar" data-testid="notify-bar"></div>
<div class="notify-status" data-testid="notify-status" aria-live="polite"></div>
<table class="desk-list notify-list" data-testid="notify-list"><thead></thead><tbody></tbody>
</table>
<div class="desk-pager" data-testid="notify-pager"></div>
</section>
<section class="notify-prefs" data-testid="notify-prefs" aria-labelledby="notify-prefs-h">
<h2 id="notify-prefs-h" data-word="settings"></h2>
<form class="notify-form" data-testid="prefs-form" novalidate></form>
</section>
</main>"""
    return page(
        request,
        principal,
        lang=lang,
        title=("通知", "Notifications"),
        current="notifications",
        body=body,
        script="notify-page.js",
        style="desk.css",
        config={"page_size": PAGE_SIZE, "case_url": "/desk/cases/{id}"},
        scripts=(PAGEFETCH_JS,),
    )
