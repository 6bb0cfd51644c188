"""The front door and the command desk in headless Chromium (Debian's), against a real
server on the demo: nothing fetched from outside 127.0.0.1, no console errors. A community
supervisor signs in at ``/``, lands on the desk, sees a report posted through the API
appear in "to accept" without a reload, the counts match the API's, and a row and its
point light each other up; a grid worker signing in at ``/`` lands on the phone app; a
subdistrict supervisor never sees another subdistrict's cases."""

from __future__ import annotations

import httpx
import pytest

from gis_service.cases.desk import TABS
from tests.browser import browser_context, live_server, screenshot

PASSWORD = "demo-2026"
COMMUNITY = "410105001001"
SUBDISTRICT = "410105001"
WORKER = "gw41010500100101"  # a grid of COMMUNITY
GRID_SPOT = (113.7965164, 34.8835355)  # inside the worker's grid (test_mobile_browser)
DESK = {"viewport": {"width": 1366, "height": 768}}


@pytest.fixture(scope="module")
def server(demo_settings):
    with live_server(demo_settings) as base:
        yield base


def token(base: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": "Bearer " + r.json()["access_token"]}


def at_the_front_door(page, base: str, username: str, landing: str) -> None:
    page.goto(base + "/")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"**{landing}*")


def shown_counts(page) -> dict[str, int]:
    return {tab: int(page.get_by_test_id(f"count-{tab}").inner_text() or -1) for tab in TABS} | {
        "approvals": int(page.get_by_test_id("count-approvals").inner_text() or -1),
        "open": int(page.get_by_test_id("count-open").inner_text() or -1),
    }


def api_counts(base: str, auth: dict) -> dict[str, int]:
    body = httpx.get(f"{base}/api/v1/desk/counts", headers=auth).json()
    return body["tabs"] | {"approvals": body["approvals"], "open": body["open"]}


def test_a_community_supervisor_sees_a_new_report_arrive(server):
    supervisor = f"sup{COMMUNITY}"
    auth = token(server, supervisor)
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, supervisor, "/desk/")
        page.wait_for_function("() => window.gisDesk && window.gisDesk.ready")
        page.wait_for_function("() => window.gisDesk.counts !== undefined")
        assert page.get_by_test_id("tab-to_accept").get_attribute("aria-selected") == "true"
        assert page.get_by_test_id("nav-desk").get_attribute("aria-current") == "page"
        assert shown_counts(page) == api_counts(server, auth)
        screenshot(page, "desk-queue")
        page.evaluate("() => { window.stillTheSamePage = true; }")

        r = httpx.post(
            f"{server}/api/v1/cases",
            headers=token(server, WORKER),
            json={
                "category": "environment.garbage",
                "lon": GRID_SPOT[0],
                "lat": GRID_SPOT[1],
                "description": "案件台测试：楼下垃圾堆放",
            },
        )
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        row = page.locator(f'[data-testid="case-row"][data-id="{case_id}"]')
        row.wait_for(timeout=30000)  # the desk polls every 10 s
        assert page.evaluate("() => window.stillTheSamePage === true"), "the page reloaded"
        page.wait_for_function(
            "n => Number(document.querySelector('[data-testid=count-to_accept]').textContent)"
            " === n",
            arg=api_counts(server, auth)["to_accept"],
        )
        assert shown_counts(page) == api_counts(server, auth)
        assert page.evaluate("() => window.gisDesk.notModified") >= 0

        # a row lights its point up, and a point its row
        row.click()
        page.wait_for_selector(f"path.desk-pt-{case_id}.lit")
        assert page.locator("path.lit").count() == 1
        assert "case=" + str(case_id) in page.url
        before = page.evaluate("() => window.gisDesk.reloads")
        page.get_by_test_id("tab-all").click()  # every case of the community
        page.wait_for_function("n => window.gisDesk.reloads > n", arg=before)
        other = page.locator('[data-testid="case-row"]').nth(3).get_attribute("data-id")
        page.locator(f"path.desk-pt-{other}").dispatch_event("click")
        page.wait_for_selector(f'[data-testid="case-row"][data-id="{other}"].sel')
        assert page.locator("path.lit").count() == 1
        assert page.locator('[data-testid="case-row"].sel').count() == 1
        screenshot(page, "desk-queue-selected")

        # the view is in the address: a tab and a filter survive a reload
        page.get_by_test_id("tab-in_progress").click()
        page.get_by_test_id("filter-q").fill("垃圾")
        page.get_by_test_id("filter-apply").click()
        page.wait_for_url("**tab=in_progress*")
        assert "q=" in page.url
        page.reload()
        page.wait_for_function("() => window.gisDesk && window.gisDesk.ready")
        assert page.get_by_test_id("tab-in_progress").get_attribute("aria-selected") == "true"
        assert page.get_by_test_id("filter-q").input_value() == "垃圾"
        total = int(page.get_by_test_id("list-status").get_attribute("data-total"))
        want = httpx.get(
            f"{server}/api/v1/desk/queue",
            headers=auth,
            params={"tab": "in_progress", "q": "垃圾", "limit": 1},
        ).json()["numberMatched"]
        assert total == want

        page.get_by_test_id("nav-lang").click()
        page.wait_for_url("**lang=en*")
        page.wait_for_function("() => window.gisDesk && window.gisDesk.ready")
        assert page.get_by_test_id("tab-to_accept").inner_text().startswith("To accept")
        screenshot(page, "desk-queue-en")
        assert watch.external == []
        assert watch.console_errors == []


def test_a_grid_worker_lands_on_the_phone_app_signed_in(server):
    """One sign-in at ``/``: the phone app takes it over (POST /api/v1/auth/handoff) and
    opens on its tabs, not on its own sign-in form, as the same account."""
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, WORKER, "/m/")
        page.wait_for_selector("[data-testid=tab-tasks]:visible")
        assert page.locator("[data-testid=login-form]").count() == 0
        assert page.url.endswith("/m/")  # the hand-off's mark is gone from the address
        held = page.evaluate("JSON.parse(localStorage.getItem('gis.m.session'))")
        assert held["user"]["username"] == WORKER and held["refresh"]
        me = httpx.get(
            f"{server}/api/v1/auth/me", headers={"Authorization": "Bearer " + held["token"]}
        )
        assert me.status_code == 200 and me.json()["username"] == WORKER
        assert watch.external == [] and watch.console_errors == []


def test_a_subdistrict_supervisor_sees_only_their_subdistrict(server):
    supervisor = f"sup{SUBDISTRICT}"
    auth = token(server, supervisor)
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, supervisor, "/desk/")
        page.wait_for_function("() => window.gisDesk && window.gisDesk.ready")
        page.wait_for_function("() => window.gisDesk.counts !== undefined")
        assert shown_counts(page) == api_counts(server, auth)
        for tab in ["all", *TABS]:
            before = page.evaluate("() => window.gisDesk.reloads")
            page.get_by_test_id(f"tab-{tab}").click()
            page.wait_for_function("n => window.gisDesk.reloads > n", arg=before)
            units = page.locator('[data-testid="case-row"] td.unit').all_inner_texts()
            assert all(u.startswith(SUBDISTRICT) for u in units), (tab, units)
            drawn = page.locator("path.desk-pt").count()
            assert drawn == len(units), (tab, drawn, len(units))
        screenshot(page, "desk-queue-subdistrict")
        assert watch.external == []
        assert watch.console_errors == []


SCREENS = {"laptop": (1366, 768), "dispatch-wall": (2560, 1440)}


def test_every_desk_page_fits_a_laptop_and_a_dispatch_screen(server):
    """Issue 15 item 8: each desk page (every /desk/ page route of the app, the case page
    with a case of the viewer's) at 1366×768 and 2560×1440: drawn without a horizontal
    scroll bar, its main parts inside the window; a screenshot of each."""
    from gis_service.app import create_app
    from gis_service.settings import Settings
    from tests.test_scope_matrix import _data_routes

    supervisor = f"sup{COMMUNITY}"
    case_id = httpx.get(
        f"{server}/api/v1/desk/queue", params={"limit": 1}, headers=token(server, supervisor)
    ).json()["features"][0]["id"]
    paths = sorted(
        p.replace("{case_id}", str(case_id))
        for p in _data_routes(create_app(Settings()))
        if p.startswith("/desk/")
    )
    assert "/desk/" in paths and f"/desk/cases/{case_id}" in paths
    with browser_context() as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, supervisor, "/desk/")
        for screen, (width, height) in SCREENS.items():
            page.set_viewport_size({"width": width, "height": height})
            for path in paths:
                page.goto(server + path)
                page.wait_for_load_state("networkidle")
                overflow = page.evaluate(
                    "document.scrollingElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, (screen, path, overflow)
                nav = page.get_by_test_id("nav").bounding_box()
                assert nav and nav["width"] <= width, (screen, path)
                name = path.strip("/").replace("/", "-").replace(str(case_id), "case")
                screenshot(page, f"screen-{screen}-{name}")
        assert watch.external == [] and watch.console_errors == []
