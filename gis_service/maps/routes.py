"""``/maps/…``: the supervisors' and planners' pages, and their sign-in.

Pages sign in with a form that keeps the token in an HttpOnly, SameSite=Strict cookie
(navigations cannot send a bearer header); every figure and feature on a page is then
cut to the viewer's jurisdiction by the same SQL and cube filters as the API.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
from datetime import date
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gis_service.api import conditional
from gis_service.api.deps import (
    TOKEN_COOKIE,
    ConnDep,
    ReadConnDep,
    ServicesDep,
    SettingsDep,
    get_principal,
)
from gis_service.api.security import cookie_secure
from gis_service.auth import sessions, tokens
from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import require_case_reader, require_role, scope_key
from gis_service.auth.throttle import client_address
from gis_service.errors import Forbidden, Unauthorized
from gis_service.maps import pages, queries
from gis_service.maps.i18n import LANGS, t
from gis_service.maps.pages import GRID_MAP_LEVELS
from gis_service.timezone import local_date, local_now, local_text
from gis_service.units.codes import level_pattern

router = APIRouter(prefix="/maps", tags=["maps"], include_in_schema=False)
Lang = Annotated[str, Query(pattern="^(zh|en)$")]


async def _principal(request: Request, settings) -> Principal | None:
    try:
        return await get_principal(request, settings, None)
    except Unauthorized:
        return None


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/maps/login?next={quote(target)}", status_code=303)


def _safe_next(target: str) -> bool:
    """A page of this server to go to after sign-in: a path, never another origin
    (``//host`` or ``/\\host`` would leave the site: an open redirect, OWASP)."""
    return target.startswith("/") and not target.startswith(("//", "/\\"))


def _page(html_text: str) -> HTMLResponse:
    return HTMLResponse(html_text, headers={"Cache-Control": "private, no-store"})


@router.get("/login")
def login_form(
    request: Request, next: str = "/maps/resolution", lang: Lang = "zh", error: bool = False
) -> Response:
    target = next if _safe_next(next) else "/maps/resolution"
    err = (
        f'<p class="error" data-testid="login-error">{t("login.failed", lang)}</p>' if error else ""
    )
    page = f"""<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t("login.title", lang)}</title><link rel="stylesheet" href="/static/app/maps.css">
</head><body><form class="gis-login" method="post" action="/maps/login">
<h1>{t("login.title", lang)}</h1>{err}
<input type="hidden" name="next" value="{html.escape(target)}">
<input type="hidden" name="lang" value="{lang}">
<label for="u">{t("login.username", lang)}</label>
<input id="u" name="username" autocomplete="username" data-testid="login-username" required>
<label for="p">{t("login.password", lang)}</label>
<input id="p" name="password" type="password" autocomplete="current-password"
       data-testid="login-password" required>
<button type="submit" data-testid="login-submit">{t("login.submit", lang)}</button>
<p><a href="{request.url.path}?lang={"en" if lang == "zh" else "zh"}&amp;next={quote(target)}"
      data-testid="login-lang">{t("lang_switch", lang)}</a></p>
</form></body></html>"""
    # the same for everyone: revalidated by its ETag (api/conditional.py)
    return conditional.respond(
        request.headers,
        page,
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@router.post("/login")
def login(
    request: Request,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/maps/resolution",
    lang: Annotated[str, Form()] = "zh",
) -> Response:
    """Opens a ``cookie`` session (auth/sessions.py: fixed length, checked on every request,
    ended by /maps/logout); the throttle is the API's (429)."""
    lang = lang if lang in LANGS else "zh"
    try:
        grant = sessions.sign_in(settings, username, password, client_address(request), "cookie")
    except Unauthorized:
        return RedirectResponse(
            f"/maps/login?error=1&lang={lang}&next={quote(next)}", status_code=303
        )
    target = next if _safe_next(next) else "/maps/resolution"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        grant.access_token,
        max_age=grant.expires_in,
        httponly=True,
        samesite="strict",
        path="/",
        secure=cookie_secure(settings),
    )
    return response


@router.get("/logout")
async def logout(request: Request, settings: SettingsDep) -> Response:
    """Ends the page session (every request with its cookie is 401 from now on) and drops
    the cookie. Only the cookie's session: a bearer header sent along is not signed out.
    Back to the front door (``/``), where everyone signs in, whatever page they left."""
    token = request.cookies.get(TOKEN_COOKIE)
    if token:
        with contextlib.suppress(Unauthorized):  # a cookie already expired or forged
            await run_in_threadpool(sessions.end, settings, tokens.read(token, settings))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(
        TOKEN_COOKIE, path="/", httponly=True, samesite="strict", secure=cookie_secure(settings)
    )
    return response


def _basemap(settings, lang: str) -> dict[str, str | None]:
    """The outside basemap, if one is configured, and the datum warning it needs."""
    if not settings.basemap_url:
        return {}
    note = ""
    if settings.basemap_coord_sys.lower() != "wgs84":
        note = (
            "底图为GCJ-02/BD-09坐标，与WGS-84数据相差数百米"
            if lang == "zh"
            else "The basemap is GCJ-02/BD-09: it sits a few hundred metres off the WGS-84 data"
        )
    return {"basemap_url": settings.basemap_url, "basemap_note": note}


def _category_field(conn, lang: str, category: str | None) -> tuple[str, str, list, str]:
    """The filter form's category field: every case domain, "all" first."""
    domains = [
        (c["code"], c["name_zh"] if lang == "zh" else c["name_en"])
        for c in queries.case_domains(conn)
    ]
    return ("category", t("category", lang), [("", t("all", lang)), *domains], category or "")


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


@router.get("/resolution")
async def resolution(
    request: Request,
    conn: ReadConnDep,
    settings: SettingsDep,
    services: ServicesDep,
    lang: Lang = "zh",
    level: Annotated[str, Query(pattern=level_pattern(GRID_MAP_LEVELS))] = "subdistrict",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    unit: str | None = None,
) -> Response:
    principal = await _principal(request, settings)
    if principal is None:
        return _to_login(request)
    if principal.role is Role.team_member:
        raise Forbidden("the resolution map is for supervisors, planners and admins")
    from gis_service.stats.resolution import StatsQuery
    from gis_service.stats.resolution import resolution as stats

    q = StatsQuery.default_period(settings, level, date_from, date_to, unit=unit)
    figures = stats(conn, services.cube, principal, q)
    page = pages.Page(
        "resolution",
        lang,
        principal,
        **_basemap(settings, lang),
        data_date=_cube_date(services.cube, settings),
        filters={
            t("level", lang): t(level, lang),
            t("period", lang): f"{q.date_from} – {q.date_to}",
            t("unit", lang): unit or t("all", lang),
        },
        query=_query(request),
        form=[
            (
                "level",
                t("level", lang),
                [(lv.value, t(lv, lang)) for lv in GRID_MAP_LEVELS],
                level,
            ),
            ("from", t("period", lang), [], q.date_from.isoformat()),
            ("to", "–", [], q.date_to.isoformat()),
        ],
    )
    return _page(pages.resolution_page(conn, page, figures, services.basemap.style, unit))


@router.get("/hotspots")
async def hotspots(
    request: Request,
    conn: ReadConnDep,
    settings: SettingsDep,
    services: ServicesDep,
    lang: Lang = "zh",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    category: str | None = None,
    unit: str | None = None,
) -> Response:
    """Gi* hotspots per grid and, for case readers, the recurring spots (docs/hotspots.md):
    the same functions as ``/api/v1/stats/hotspots`` and ``/recurring-spots``."""
    principal = await _principal(request, settings)
    if principal is None:
        return _to_login(request)
    require_role(principal, Role.planner, Role.supervisor, Role.admin, what="the hotspot map")
    from gis_service.auth.principal import CASE_READERS
    from gis_service.hotspots.gistar import hotspots as gi_star
    from gis_service.hotspots.recurrence import SpotQuery, recurring_spots
    from gis_service.stats.resolution import StatsQuery

    category = category or None
    q = StatsQuery.default_period(
        settings, "grid", date_from, date_to, category=category, unit=unit
    )
    gi = gi_star(conn, services.cube, principal, q)
    spots = None
    if principal.role in CASE_READERS:
        sq = SpotQuery.default_period(settings, None, date_to, category=category, unit=unit)
        spots = recurring_spots(conn, settings, principal, sq)
    page = pages.Page(
        "hotspots",
        lang,
        principal,
        **_basemap(settings, lang),
        data_date=_cube_date(services.cube, settings),
        filters={
            t("period", lang): f"{q.date_from} – {q.date_to}",
            t("category", lang): category or t("all", lang),
            t("unit", lang): unit or t("all", lang),
        },
        query=_query(request),
        form=[
            ("from", t("period", lang), [], q.date_from.isoformat()),
            ("to", "–", [], q.date_to.isoformat()),
            _category_field(conn, lang, category),
        ],
    )
    return _page(pages.hotspots_page(conn, page, gi, spots, services.basemap.style))


@router.get("/walks")
async def walks(
    request: Request,
    conn: ReadConnDep,
    settings: SettingsDep,
    services: ServicesDep,
    lang: Lang = "zh",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    unit: str | None = None,
    worker: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The walk map (docs/walks.md "The walk map"): per grid the figures of
    ``GET /api/v1/stats/walks`` (the same function), buildings by days since their last
    visit, and for the viewers who read single walks the walked streets."""
    principal = await _principal(request, settings)
    if principal is None:
        return _to_login(request)
    require_role(principal, Role.planner, Role.supervisor, Role.admin, what="the walk map")
    from gis_service.maps import walk_map
    from gis_service.units.codes import Level
    from gis_service.walks.figures import walk_stats

    first, last = walk_map.default_period(local_date(settings), date_from, date_to)
    stats = walk_stats(
        conn,
        principal,
        settings,
        level=Level.grid,
        date_from=first,
        date_to=last,
        unit=unit,
        worker=worker,
    )
    area = unit or ""
    buildings = walk_map.building_visits(conn, principal, area, last, worker, settings.timezone)
    streets = None
    if walk_map.reads_walks(principal):
        streets = walk_map.walked_streets(
            conn, principal, area, first, last, worker, settings.timezone
        )
    workers = queries.grid_workers(conn, principal, area)
    page = pages.Page(
        "walks",
        lang,
        principal,
        **_basemap(settings, lang),
        data_date=local_text(local_now(settings), settings),
        filters={
            t("period", lang): f"{first} – {last}",
            t("unit", lang): unit or t("all", lang),
            t("worker", lang): next(
                (name for wid, name in workers if str(wid) == str(worker)), t("all", lang)
            ),
        },
        query=_query(request),
        form=[
            ("from", t("period", lang), [], first.isoformat()),
            ("to", "–", [], last.isoformat()),
            (
                "worker",
                t("worker", lang),
                [("", t("all", lang)), *[(str(w), n) for w, n in workers]],
                str(worker or ""),
            ),
        ],
    )
    html_text = walk_map.walks_page(
        conn, page, stats, buildings, streets, services.basemap.style, unit
    )
    return _page(html_text)


def _cube_date(cube, settings) -> str:
    """When the figures were last synced, in the district's time."""
    synced = cube.synced_at
    moment = dt.datetime.fromtimestamp(synced, dt.UTC) if synced else None
    return local_text(moment or local_now(settings), settings)


@router.get("/cases")
async def cases(
    request: Request,
    conn: ReadConnDep,
    settings: SettingsDep,
    services: ServicesDep,
    lang: Lang = "zh",
    status: str | None = None,
    category: str | None = None,
    unit: str | None = None,
    open: bool = False,
) -> Response:
    principal = await _principal(request, settings)
    if principal is None:
        return _to_login(request)
    require_case_reader(principal)
    from urllib.parse import urlencode

    from gis_service.stats.cube import STATUSES

    status, category = status or None, category or None
    tile_query = urlencode(
        {
            k: v
            for k, v in (
                ("status", status),
                ("category", category),
                ("open", "true" if open else None),
            )
            if v
        }
    )
    page = pages.Page(
        "cases",
        lang,
        principal,
        **_basemap(settings, lang),
        data_date=_cube_date(services.cube, settings),
        filters={
            t("status", lang): t("status." + status, lang) if status else t("all", lang),
            t("category", lang): category or t("all", lang),
            t("unit", lang): unit or t("all", lang),
        },
        query=_query(request),
        form=[
            (
                "status",
                t("status", lang),
                [("", t("all", lang))] + [(s_, t("status." + s_, lang)) for s_ in STATUSES],
                status or "",
            ),
            _category_field(conn, lang, category),
        ],
    )
    return _page(pages.cases_page(conn, page, services.basemap.style, unit, tile_query))


@router.get("/units")
async def units(
    request: Request,
    conn: ReadConnDep,
    settings: SettingsDep,
    services: ServicesDep,
    lang: Lang = "zh",
    unit: str | None = None,
) -> Response:
    principal = await _principal(request, settings)
    if principal is None:
        return _to_login(request)
    page = pages.Page(
        "units",
        lang,
        principal,
        **_basemap(settings, lang),
        data_date=local_date(settings).isoformat(),
        filters={t("unit", lang): unit or t("all", lang)},
        query=_query(request),
    )
    return _page(pages.units_page(conn, page, services.basemap.style, unit))


@router.get("/coverage")
async def coverage(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    services: ServicesDep,
    lang: Lang = "zh",
    unit: str | None = None,
    reach_m: Annotated[float, Query(gt=0, le=3000)] = 1000,
    circle: Annotated[
        str,
        Query(pattern="^(government|daily_life|culture_education|health|public_welfare|safety)$"),
    ] = "government",
) -> Response:
    principal = await _principal(request, settings)
    if principal is None:
        return _to_login(request)
    require_role(principal, Role.planner, Role.supervisor, Role.admin, what="the coverage map")
    from gis_service.access import circles, reach, siting
    from gis_service.db.engine import transaction

    with transaction(settings) as tx:
        engine = services.access.get(tx)
        versions = tuple(reach.ensure_fresh(tx, engine))
        if circles.stale_count(tx) or not circles.unions_current(tx):
            circles.refresh(tx, engine)
    memo = services.map_memo
    key = ("sites", versions, reach_m, scope_key(principal))
    if key not in memo:  # proposed sites: same data and jurisdiction, same answer
        if any(k[1] != versions for k in memo):
            memo.clear()
        memo[key] = siting.site(
            conn, engine, kind="party_org", category=None, k=3, max_m=reach_m, viewer=principal
        )
    sites = memo[key]
    from gis_service.access import coverage as coverage_mod

    living = coverage_mod.living_circle(
        conn, principal, list(versions), level="community", within_m=1000.0, unit=unit
    )["units"]
    at = queries.access_computed_at(conn)
    page = pages.Page(
        "coverage",
        lang,
        principal,
        **_basemap(settings, lang),
        data_date=local_text(at, settings) or local_date(settings).isoformat(),
        filters={
            t("unit", lang): unit or t("all", lang),
            t("gap", lang): f"> {reach_m:,.0f} {t('m', lang)}",
            t("circles", lang): dict(queries.living_categories(conn, lang)).get(circle, circle),
        },
        query=_query(request),
        form=[
            (
                "circle",
                t("circles", lang),
                [(c, n) for c, n in queries.living_categories(conn, lang)],
                circle,
            )
        ],
    )
    return _page(
        pages.coverage_page(
            conn, page, services.basemap.style, unit, reach_m, sites, circle, living
        )
    )
