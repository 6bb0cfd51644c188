"""The inbox badge on the desk and on the phone, in headless Chromium against a real
server: the badge counts the unread (the API's figure), the list shows them, and "all
read" brings the badge to nothing; no console errors, nothing fetched from outside."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from gis_service.app import create_app
from tests.browser import browser_context, live_server, screenshot, sign_in
from tests.test_mobile_browser import phone
from tests.test_notify_api import fan_out
from tests.test_notify_sender import act, report

PASSWORD = "password-123"  # tests/conftest.py make_user


@pytest.fixture
def city(case_city):
    """Three new cases in sub1 (its supervisor hears of each), one dispatched to team a."""
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        cases = [report(api, case_city["worker1"]) for _ in range(3)]
        act(api, case_city["sub1_sup"], cases[0]["id"], "accept")
        act(
            api,
            case_city["sub1_sup"],
            cases[0]["id"],
            "dispatch",
            team_id=case_city["teams"]["a"],
        )
    fan_out(s)
    with live_server(s) as base:
        yield {**case_city, "base": base}


def unread(base: str, auth: dict) -> int:
    return httpx.get(f"{base}/api/v1/notifications/unread", headers=auth).json()["unread"]


def test_the_desk_badge_counts_the_unread(city) -> None:
    base = city["base"]
    n = unread(base, city["sub1_sup"])
    assert n == 3
    with browser_context(viewport={"width": 1366, "height": 768}) as (context, watch):
        page = context.new_page()
        sign_in(page, base, "sup-s1", PASSWORD, "/desk/")
        badge = page.get_by_test_id("nav-unread")
        page.wait_for_function(
            "n => document.querySelector('[data-testid=nav-unread]').textContent === n", arg=str(n)
        )
        assert page.get_by_test_id("nav-inbox").is_visible()
        page.get_by_test_id("nav-inbox").click()
        items = page.get_by_test_id("inbox-item")
        items.first.wait_for()
        assert items.count() == n
        screenshot(page, "notify-desk-inbox")
        page.get_by_test_id("inbox-read-all").click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=nav-unread]').textContent === '0'"
        )
        assert badge.inner_text() == "0"
        assert unread(base, city["sub1_sup"]) == 0
    assert (watch.console_errors, watch.external, watch.failed) == ([], [], [])


def test_the_phone_badge_counts_the_unread(city) -> None:
    base = city["base"]
    assert unread(base, city["team_a"]) == 1  # the dispatch to the team
    with browser_context(**phone(113.01, 34.07)) as (context, watch):
        page = context.new_page()
        page.goto(f"{base}/m/")
        page.get_by_test_id("login-username").fill("ta")
        page.get_by_test_id("login-password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=inbox-count]').textContent === '1'"
        )
        page.get_by_test_id("tab-inbox").click()
        items = page.get_by_test_id("inbox-item")
        items.first.wait_for()
        assert items.count() == 1
        assert "派遣至本队" in items.first.inner_text()
        screenshot(page, "notify-phone-inbox")
        page.get_by_test_id("inbox-read-all").click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=inbox-count]').textContent === ''"
        )
        assert unread(base, city["team_a"]) == 0
    assert (watch.console_errors, watch.external, watch.failed) == ([], [], [])
