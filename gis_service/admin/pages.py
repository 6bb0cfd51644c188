"""``/admin/…``: the admin pages — server-rendered shells that web/static/admin.js fills
from ``/api/v1/admin/…`` (admin/api.py).

No inline script or style (api/security.py's CSP): the page's settings are in the body's
``data-config``, its words in admin.js and ``/m/vocabulary.js``; the service-points page
uses the map pages' own copies of Leaflet and the basemap helpers (maps/assets.py).

Writes go through pagefetch.js (``gisApi``): the HttpOnly sign-in cookie with the header
that makes a cookie write our own page's (api/deps.py ``PAGE_WRITE_HEADER``); no token is
ever handed to the page's script.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gis_service.api.deps import SettingsDep
from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import require_role
from gis_service.desk.shell import PAGEFETCH_JS, page, signed_in
from gis_service.notify.channels import CHANNELS
from gis_service.notify.kinds import channel_label, kind_vocabulary

router = APIRouter(tags=["admin"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]

#: section → (path, 中文, English, what it manages (zh, en))
SECTIONS: dict[str, tuple[str, str, str, str, str]] = {
    "users": ("/admin/users", "账号", "Accounts", "账号、角色、辖区与队伍", "roles, scopes, teams"),
    "teams": ("/admin/teams", "服务队伍", "Teams", "队伍与成员", "teams and their members"),
    "rosters": ("/admin/rosters", "网格人员", "Rosters", "各单元的责任人", "who is on each unit"),
    "categories": (
        "/admin/categories",
        "案件类别",
        "Categories",
        "时限、处置层级、公开",
        "deadlines, handling levels, public",
    ),
    "open311": ("/admin/open311", "接入密钥", "Open311 keys", "接入应用的密钥", "client app keys"),
    "service-points": (
        "/admin/service-points",
        "服务点位",
        "Service points",
        "在地图上新增、移动、关闭",
        "add, move, close on the map",
    ),
    "dead-letters": (
        "/admin/dead-letters",
        "投递失败",
        "Dead letters",
        "放弃投递的通知，查看错误并重发",
        "undelivered notifications: errors, retry",
    ),
    "webhooks": (
        "/admin/webhooks",
        "Webhook 订阅",
        "Webhooks",
        "向其他系统推送的签名通知",
        "signed notifications to other systems",
    ),
}
#: the sections whose script needs the notification vocabulary (notify/kinds.py)
NOTIFY_SECTIONS = frozenset({"dead-letters", "webhooks"})


def notify_vocabulary() -> dict[str, object]:
    """The notification kinds and outside channels with their names (notify/kinds.py, the
    one home of these words) for the notification pages' ``data-config``."""
    return {
        "kinds": kind_vocabulary(),
        "channels": [{"code": c, "label": channel_label(c)} for c in CHANNELS],
    }


def _require_admin(principal: Principal) -> None:
    require_role(principal, Role.admin, what="the admin pages")


async def _admin(request: Request, settings) -> Principal | Response:
    """The signed-in admin, or the redirect to the sign-in; 403 for any other role."""
    return await signed_in(request, settings, _require_admin)


def _shell(
    request: Request, principal: Principal, lang: str, section: str | None, body: str
) -> HTMLResponse:
    """An admin page in the desk's frame (desk/shell.py) with the sections beside it."""
    zh = lang == "zh"
    title = ("管理", "Admin")
    if section:
        title = (f"{SECTIONS[section][1]} · 管理", f"{SECTIONS[section][2]} · Admin")
    on = ' aria-current="page" class="on"'
    side = "".join(
        f'<a href="{path}{"" if zh else "?lang=en"}" data-testid="side-{key}"'
        f"{on if key == section else ''}>{name_zh if zh else name_en}</a>"
        for key, (path, name_zh, name_en, _dz, _de) in SECTIONS.items()
    )
    frame = f"""<div class="admin-frame">
<nav class="admin-side" data-testid="admin-side">{side}</nav>
<main class="admin-main" data-testid="admin-{section or "index"}">{body}</main>
</div>"""
    return page(
        request,
        principal,
        lang=lang,
        title=title,
        current="admin",
        body=frame,
        script="admin.js",
        style="admin.css",
        config={
            "section": section,
            **({"notify": notify_vocabulary()} if section in NOTIFY_SECTIONS else {}),
        },
        body_class="admin",
        leaflet=section == "service-points",
        scripts=(PAGEFETCH_JS,),
    )


@router.get("/admin", response_class=RedirectResponse)
def admin_bare(request: Request) -> RedirectResponse:
    """``/admin`` → ``/admin/`` (the query kept)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/admin/{query}", status_code=308)


@router.get("/admin/", response_class=HTMLResponse)
async def index(request: Request, settings: SettingsDep, lang: Lang = "zh") -> Response:
    """The admin pages' index: one card per section. Admins only (403 for others)."""
    principal = await _admin(request, settings)
    if isinstance(principal, Response):
        return principal
    zh = lang == "zh"
    cards = "".join(
        f'<li><a href="{path}{"" if zh else "?lang=en"}" data-testid="card-{key}">'
        f"<b>{name_zh if zh else name_en}</b><span>{what_zh if zh else what_en}</span></a></li>"
        for key, (path, name_zh, name_en, what_zh, what_en) in SECTIONS.items()
    )
    body = f'<h1>{"管理" if zh else "Administration"}</h1><ul class="admin-cards">{cards}</ul>'
    return _shell(request, principal, lang, None, body)


def _section_page(section: str):
    async def page(request: Request, settings: SettingsDep, lang: Lang = "zh") -> Response:
        principal = await _admin(request, settings)
        if isinstance(principal, Response):
            return principal
        zh = lang == "zh"
        mapped = section == "service-points"
        body = (
            f"<h1>{SECTIONS[section][1 if zh else 2]}</h1>"
            '<div class="admin-work">'
            '<section class="admin-panel">'
            '<form class="admin-form" data-testid="form" novalidate></form>'
            '<p class="admin-error" data-testid="form-error" role="alert"></p>'
            '<p class="admin-notice" data-testid="notice" aria-live="polite"></p>'
            '<form class="admin-filter" data-testid="filter"></form>'
            '<table class="admin-table" data-testid="table"><thead></thead><tbody></tbody></table>'
            '<div class="admin-extra" data-testid="extra"></div>'
            "</section>"
            + ('<div class="admin-map" id="admin-map" data-testid="map"></div>' if mapped else "")
            + "</div>"
        )
        return _shell(request, principal, lang, section, body)

    page.__doc__ = (
        f"The {SECTIONS[section][2]} page: a table, a form, row actions "
        "(web/static/admin.js). Admins only (403 for others)."
    )
    return page


for _key, (_path, *_rest) in SECTIONS.items():
    router.add_api_route(
        _path, _section_page(_key), methods=["GET"], response_class=HTMLResponse, name=_key
    )
