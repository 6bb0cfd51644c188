"""``/admin/…``: the admin pages — server-rendered shells that web/static/admin.js fills
from ``/api/v1/admin/…`` (admin/api.py).

No inline script or style (api/security.py's CSP): the page's settings are in the body's
``data-config``, its words in admin.js and ``/m/vocabulary.js``; the service-points page
uses the map pages' own copies of Leaflet and the basemap helpers (maps/assets.py).

Writes never take the sign-in cookie (api/deps.py: a cookie could forge them): the page
carries its own sign-in's access token in ``data-config`` and admin.js sends it as
``Authorization: Bearer``. The page is served only to an admin, ``no-store``, and the
token ends with the sign-in (auth/sessions.py).
"""

from __future__ import annotations

import html
import json
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gis_service.api.deps import SettingsDep, _credential
from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import require_role
from gis_service.desk.nav import nav_bar
from gis_service.maps import routes as maps_routes
from gis_service.maps.assets import LEAFLET_CSS, LEAFLET_JS, MAPS_JS, VECTORGRID_JS
from gis_service.mobile.shell import VOCABULARY_URL
from gis_service.mobile.shell import version as build_version

router = APIRouter(tags=["admin"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]
ADMIN_JS = "/static/app/admin.js"
ADMIN_CSS = "/static/app/admin.css"
MAPS_CSS = "/static/app/maps.css"  # fonts and the navigation bar

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
}


async def _admin(request: Request, settings) -> Principal | Response:
    """The signed-in admin, or the redirect to the sign-in; 403 for any other role."""
    principal = await maps_routes._principal(request, settings)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/maps/login?next={quote(target)}", status_code=303)
    require_role(principal, Role.admin, what="the admin pages")
    return principal


def _shell(
    request: Request, principal: Principal, lang: str, section: str | None, body: str
) -> HTMLResponse:
    zh = lang == "zh"
    query = dict(request.query_params)
    query["lang"] = "en" if zh else "zh"
    other = request.url.path + "?" + urlencode({k: v for k, v in query.items() if v != "zh"})
    config = {"lang": lang, "section": section, "token": _credential(request, None)}
    title = "管理" if zh else "Admin"
    if section:
        title = f"{SECTIONS[section][1 if zh else 2]} · {title}"
    mapped = section == "service-points"
    v = build_version()
    map_css = f'<link rel="stylesheet" href="{LEAFLET_CSS}?v={v}">' if mapped else ""
    map_js = (
        f'<script src="{LEAFLET_JS}?v={v}" defer></script>'
        f'<script src="{VECTORGRID_JS}?v={v}" defer></script>'
        f'<script src="{MAPS_JS}?v={v}" defer></script>'
        if mapped
        else ""
    )
    on = ' aria-current="page" class="on"'
    side = "".join(
        f'<a href="{path}{"" if zh else "?lang=en"}" data-testid="side-{key}"'
        f"{on if key == section else ''}>{name_zh if zh else name_en}</a>"
        for key, (path, name_zh, name_en, _dz, _de) in SECTIONS.items()
    )
    page = f"""<!DOCTYPE html><html lang="{"zh-CN" if zh else "en"}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
{map_css}
<link rel="stylesheet" href="{MAPS_CSS}">
<link rel="stylesheet" href="{ADMIN_CSS}">
</head><body class="admin" data-config="{html.escape(json.dumps(config, ensure_ascii=False))}">
{nav_bar(principal, lang, "admin", other)}
<div class="admin-frame">
<nav class="admin-side" data-testid="admin-side">{side}</nav>
<main class="admin-main" data-testid="admin-{section or "index"}">{body}</main>
</div>
<script src="{VOCABULARY_URL}?v={v}" defer></script>
{map_js}
<script src="{ADMIN_JS}" defer></script>
</body></html>"""
    return HTMLResponse(page, headers={"Cache-Control": "private, no-store"})


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
