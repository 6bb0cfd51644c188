"""The admin pages in headless Chromium (Debian's) against a real server on the small test
city: an admin signs in at ``/``, refuses nothing the server would not (a refusal shows
beside the form and its field), creates an account, a team and a service point (a click
on the map) through the pages, and each works at once — the account signs in at ``/``,
the team is in the dispatch list (``GET /api/v1/teams``), the point in
``GET /api/v1/service-points``. Nothing is fetched from outside 127.0.0.1, no console
errors; a screenshot of every admin page lands in tests/artifacts/."""

from __future__ import annotations

import httpx
import pytest

from gis_service.admin.pages import SECTIONS
from gis_service.db.engine import transaction
from tests.browser import browser_context, live_server, screenshot

PASSWORD = "password-123"
DESK = {"viewport": {"width": 1366, "height": 820}}


@pytest.fixture
def server(case_city):
    from gis_service.service_points.service import add_point

    with transaction(case_city["settings"]) as conn:  # a first point: the map fits to it
        add_point(
            conn, {"kind": "party_org", "name": "党群服务中心", "lon": 113.012, "lat": 34.072}
        )
    with live_server(case_city["settings"]) as base:
        yield base


def token(base: str, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": password})
    r.raise_for_status()
    return {"Authorization": "Bearer " + r.json()["access_token"]}


def at_the_front_door(page, base: str, username: str, password: str, landing: str) -> None:
    page.goto(base + "/")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"**{landing}*")


def open_section(page, base: str, section: str, lang: str = "zh") -> None:
    page.goto(f"{base}/admin/{section}" + ("?lang=en" if lang == "en" else ""))
    page.wait_for_function("() => window.gisAdmin && window.gisAdmin.ready")


def test_an_admin_creates_a_user_a_team_and_a_service_point(server):
    admin = token(server, "admin")
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, "admin", PASSWORD, "/desk/")
        assert page.get_by_test_id("nav-admin").get_attribute("href") == "/admin/"
        page.get_by_test_id("nav-admin").click()
        page.wait_for_url("**/admin/")
        for key in SECTIONS:
            assert page.get_by_test_id(f"card-{key}").is_visible()
        screenshot(page, "admin-index")

        # an account: first a refusal from the server, shown beside the form and the field
        open_section(page, server, "users")
        page.get_by_test_id("input-username").fill("gw-new")
        page.get_by_test_id("input-display_name").fill("新网格员")
        page.get_by_test_id("input-password").fill(PASSWORD)
        page.get_by_test_id("input-role").select_option("grid_worker")
        page.get_by_test_id("input-scopes").fill("410199001")  # a subdistrict: refused
        page.get_by_test_id("submit").click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=form-error]').textContent !== ''"
        )
        assert page.get_by_test_id("form-error").get_attribute("data-field") == "scopes"
        assert page.get_by_test_id("error-scopes").inner_text()
        assert page.get_by_test_id("row-gw-new").count() == 0
        assert page.evaluate("() => window.gisAdmin.errors") == 1
        page.get_by_test_id("input-scopes").fill("41019900100101")
        page.get_by_test_id("submit").click()
        page.get_by_test_id("row-gw-new").wait_for()
        assert page.get_by_test_id("form-error").inner_text() == ""
        screenshot(page, "admin-users")

        # a team
        open_section(page, server, "teams")
        page.get_by_test_id("input-name").fill("西北社区物业服务队")
        page.get_by_test_id("input-kind").select_option("property_service")
        page.get_by_test_id("input-unit_code").fill("410199001001")
        page.get_by_test_id("submit").click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=table] td[data-col=name]')]"
            ".some(td => td.textContent === '西北社区物业服务队')"
        )
        screenshot(page, "admin-teams")

        # a service point: a click on the map places it
        open_section(page, server, "service-points")
        page.wait_for_function("() => Object.keys(window.gisAdmin.markers || {}).length === 1")
        box = page.get_by_test_id("map").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2 + 40)
        page.wait_for_function("() => window.gisAdmin.placed !== undefined")
        lon, lat = page.evaluate("() => window.gisAdmin.placed")
        assert float(page.get_by_test_id("input-lon").input_value()) == pytest.approx(lon)
        page.get_by_test_id("input-name").fill("新红色驿站")
        page.get_by_test_id("input-kind").select_option("red_home")
        page.get_by_test_id("submit").click()
        page.get_by_test_id("saved-point").wait_for()
        page.wait_for_function("() => Object.keys(window.gisAdmin.markers).length === 2")
        screenshot(page, "admin-service-points")

        # dragging the first point moves it
        first = min(int(k) for k in page.evaluate("() => Object.keys(window.gisAdmin.markers)"))
        x, y = page.evaluate(
            "id => { const r = window.gisAdmin.markers[id].getElement().getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; }",
            first,
        )
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 30, y + 20, steps=8)
        page.mouse.move(x + 60, y + 40, steps=8)
        page.mouse.up()
        page.get_by_test_id("moved-point").wait_for()
        moved = httpx.get(f"{server}/api/v1/service-points/{first}").json()
        assert moved["geometry"]["coordinates"] != pytest.approx([113.012, 34.072], abs=1e-6)
        assert moved["geometry"]["coordinates"][0] > 113.012  # dragged east

        for section in ("rosters", "categories", "open311"):
            open_section(page, server, section)
            screenshot(page, f"admin-{section}")
        open_section(page, server, "users", "en")
        assert page.get_by_test_id("submit").inner_text() == "Create"
        screenshot(page, "admin-users-en")
        assert watch.external == []
        # the one refusal provoked above is the only error: Chromium logs a 4xx answer
        assert watch.console_errors == [
            "Failed to load resource: the server responded with a status of 422 "
            "(Unprocessable Entity)"
        ]

        # each works at once: the account signs in at /, the team is dispatched to, the
        # point is listed
        other = context.browser.new_context(locale="zh-CN") if context.browser else None
        page2 = (other or context).new_page()
        if other is None:
            context.clear_cookies()
        at_the_front_door(page2, server, "gw-new", PASSWORD, "/m/")
        if other is not None:
            other.close()
    teams = httpx.get(f"{server}/api/v1/teams", headers=admin).json()["teams"]
    assert "西北社区物业服务队" in {t["name"] for t in teams}
    points = httpx.get(f"{server}/api/v1/service-points").json()["features"]
    placed = [f for f in points if f["properties"]["name"] == "新红色驿站"]
    assert len(placed) == 1
    assert placed[0]["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-6)
    assert placed[0]["properties"]["unit_code"].startswith("4101990")
