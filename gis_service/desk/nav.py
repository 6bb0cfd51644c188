"""The navigation bar shared by the desk, the map pages and the admin pages, and
where each role starts (the front door, ``/``)."""

from __future__ import annotations

import html

from gis_service.auth.principal import Principal, Role
from gis_service.cases.workflow import DISPATCHER

#: where the front door sends each role: dispatchers the desk, planners the coverage
#: map, grid workers and team members the phone app (issue 15 item 1)
HOMES: dict[Role, str] = {
    Role.supervisor: "/desk/",
    Role.admin: "/desk/",
    Role.planner: "/maps/coverage",
    # the phone app takes the front door's sign-in over (POST /api/v1/auth/handoff)
    Role.grid_worker: "/m/#handoff",
    Role.team_member: "/m/#handoff",
}

#: (key, path, 中文, English, roles that see it); admin: the admin pages (admin/pages.py)
LINKS: tuple[tuple[str, str, str, str, frozenset[Role]], ...] = (
    ("desk", "/desk/", "案件台", "Desk", DISPATCHER),
    ("approvals", "/desk/approvals", "审批", "Approvals", DISPATCHER),
    ("workload", "/desk/workload", "工作量", "Workload", DISPATCHER),
    ("shift", "/desk/shift", "交接班", "Shift", DISPATCHER),
    ("reports", "/desk/reports", "月度报告", "Reports", DISPATCHER),
    (
        "maps",
        "/maps/resolution",
        "地图",
        "Maps",
        frozenset({Role.supervisor, Role.admin, Role.planner}),
    ),
    (
        "hotspots",
        "/maps/hotspots",
        "热点",
        "Hotspots",
        frozenset({Role.supervisor, Role.admin, Role.planner}),
    ),
    (
        "walks",
        "/maps/walks",
        "巡查",
        "Walks",
        frozenset({Role.supervisor, Role.admin, Role.planner}),
    ),
    (
        "coverage",
        "/maps/coverage",
        "覆盖分析",
        "Coverage",
        frozenset({Role.supervisor, Role.admin, Role.planner}),
    ),
    ("admin", "/admin/", "管理", "Admin", frozenset({Role.admin})),
)


def home_of(principal: Principal) -> str:
    """The page a signed-in viewer starts on (``HOMES``); the maps for any other role."""
    return HOMES.get(principal.role, "/maps/resolution")


#: the script that fills the inbox badge (the unread count) and its list
BADGE_JS = "/static/app/notify-badge.js"
#: the whole inbox and the notification settings (desk/notifications_page.py), and the
#: roles that open it (the desk's: grid workers and team members set theirs on the phone)
INBOX_PAGE = "/desk/notifications"
INBOX_PAGE_ROLES = DISPATCHER


def inbox_badge(principal: Principal, zh: bool) -> str:
    """The inbox button with the unread count (hidden until notify-badge.js has read
    ``GET /api/v1/notifications/unread``) and its drop-down list; accounts only. For the
    roles of :data:`INBOX_PAGE_ROLES` the list ends with a link to :data:`INBOX_PAGE`
    (``data-page``)."""
    if principal.user_id is None:
        return ""
    label = "通知" if zh else "Notifications"
    target = ""
    if principal.role in INBOX_PAGE_ROLES:
        target = f' data-page="{INBOX_PAGE if zh else INBOX_PAGE + "?lang=en"}"'
    return (
        f'<button type="button" class="gis-inbox-btn" data-testid="nav-inbox" hidden '
        f'aria-expanded="false" aria-controls="gis-inbox">{label} '
        '<b class="gis-unread" data-testid="nav-unread">0</b></button>'
        f'<div id="gis-inbox" class="gis-inbox" data-testid="nav-inbox-list"{target} hidden>'
        "</div>"
    )


def nav_bar(principal: Principal, lang: str, current: str, other_lang_url: str) -> str:
    """``<nav>`` with the links the viewer's role may open (``current`` marked), the
    viewer's name, the language switch and sign-out. Text only, no inline script or style,
    so it fits the strictest page policy (api/security.py)."""
    zh = lang == "zh"
    items = []
    for key, path, name_zh, name_en, roles in LINKS:
        if principal.role not in roles:
            continue
        mark = ' aria-current="page" class="on"' if key == current else ""
        sep = "&" if "?" in path else "?"
        href = path if zh else f"{path}{sep}lang=en"
        items.append(
            f'<a href="{href}" data-testid="nav-{key}"{mark}>{name_zh if zh else name_en}</a>'
        )
    who = principal.display_name or principal.username or principal.role.value
    return (
        f'<nav class="gis-nav" data-testid="nav" lang="{lang}">'
        f'<span class="brand">{"网格治理" if zh else "Grid service"}</span>{"".join(items)}'
        f'<span class="who" data-testid="nav-who">{html.escape(who)}</span>'
        f"{inbox_badge(principal, zh)}"
        f'<a href="{html.escape(other_lang_url)}" data-testid="nav-lang">'
        f"{'English' if zh else '中文'}</a>"
        f'<a href="/maps/logout" data-testid="nav-logout">{"退出" if zh else "Sign out"}</a>'
        "</nav>"
    )
