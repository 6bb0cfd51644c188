"""The monthly reports' desk page in headless Chromium (Debian's) against a real server on
the demo: a subdistrict supervisor finds it in the navigation, makes a community's report
with the button, sees the draft listed, sends it, and its PDF link gives the stored PDF;
nothing is fetched from outside 127.0.0.1 and the console stays clean."""

from __future__ import annotations

import httpx

from tests.browser import browser_context, screenshot
from tests.test_desk_browser import SUBDISTRICT, at_the_front_door, server, token

__all__ = ["server"]  # the module's live server on the demo (test_desk_browser)

COMMUNITY = SUBDISTRICT + "002"


def test_a_supervisor_makes_and_sends_a_monthly_report_from_the_desk(server):
    supervisor = f"sup{SUBDISTRICT}"
    with browser_context(viewport={"width": 1366, "height": 768}) as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, supervisor, "/desk/")
        page.get_by_test_id("nav-reports").click()
        page.wait_for_url("**/desk/reports*")
        page.wait_for_function("() => window.gisReports && window.gisReports.ready")
        page.wait_for_selector(
            f"[data-testid=report-unit] option[value='{COMMUNITY}']", state="attached"
        )
        page.get_by_test_id("report-unit").select_option(COMMUNITY)
        month = page.get_by_test_id("report-month").input_value()
        page.get_by_test_id("report-make").click()
        row = page.locator("[data-testid=report-version][data-status=draft]").first
        row.wait_for(timeout=60_000)
        assert month in row.inner_text()
        screenshot(page, "monthly-report-desk")
        row.get_by_test_id("report-send").click()
        sent = page.locator("[data-testid=report-version][data-status=sent]").first
        sent.wait_for(timeout=60_000)
        href = sent.get_by_test_id("report-pdf").get_attribute("href")
        body = page.request.get(server + href).body()
        assert body.startswith(b"%PDF")
        listed = httpx.get(
            f"{server}/api/v1/reports/monthly",
            params={"unit": COMMUNITY, "month": month},
            headers=token(server, supervisor),
        ).json()["versions"]
        assert listed[0]["status"] == "sent" and listed[0]["pdf_url"] == href
        api_pdf = httpx.get(server + href, headers=token(server, supervisor)).content
        assert api_pdf == body
        assert watch.external == [] and watch.console_errors == []
