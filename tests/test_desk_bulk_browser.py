"""Bulk work and the queue's keyboard in headless Chromium (Debian's), against a real server
on the test city: a subdistrict supervisor moves through the queue with the keyboard,
selects the 20 cases waiting for dispatch on the page, dispatches them in one go while
another dispatcher holds one of them, and sees 19 applied and the held one refused with
its reason; nothing fetched from outside 127.0.0.1, no console errors."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from gis_service.db.engine import get_engine
from tests.browser import browser_context, live_server, screenshot, sign_in
from tests.conftest import IN_GRID_1

DESK = {"viewport": {"width": 1366, "height": 768}}
N = 20


@pytest.fixture
def server(case_city):
    with live_server(case_city["settings"]) as base:
        yield base


def test_a_supervisor_bulk_dispatches_twenty_one_refused(server, case_city):
    c, s = case_city, case_city["settings"]
    ids = []
    for i in range(N):
        r = httpx.post(
            f"{server}/api/v1/cases",
            headers=c["worker1"],
            json={
                "category": "environment.garbage",
                "lon": IN_GRID_1[0] + i * 0.0002,
                "lat": IN_GRID_1[1],
                "description": f"批量派遣测试 {i}",
            },
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = httpx.post(
        f"{server}/api/v1/desk/bulk",
        headers=c["sub1_sup"],
        json={"action": "accept", "case_ids": ids},
    )
    assert r.json()["counts"]["applied"] == N, r.text
    held = ids[5]
    r = httpx.put(f"{server}/api/v1/cases/{held}/lock", headers=c["district_sup"])
    assert r.status_code == 200, r.text
    held_no = httpx.get(f"{server}/api/v1/cases/{held}", headers=c["sub1_sup"]).json()["case_no"]

    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        sign_in(page, server, "sup-s1", "password-123", "/desk/?tab=to_dispatch")
        page.wait_for_function("() => window.gisDesk && window.gisDesk.ready")
        rows = page.locator('[data-testid="case-row"]')
        assert rows.count() == N

        # the keyboard: j/k move the current row, x selects it, ? shows the help
        page.keyboard.press("j")
        first = rows.nth(0).get_attribute("data-id")
        page.wait_for_selector(f'[data-testid="case-row"][data-id="{first}"].sel')
        page.keyboard.press("j")
        page.keyboard.press("ArrowDown")
        third = rows.nth(2).get_attribute("data-id")
        page.wait_for_selector(f'[data-testid="case-row"][data-id="{third}"].sel')
        page.keyboard.press("k")
        second = rows.nth(1).get_attribute("data-id")
        page.wait_for_selector(f'[data-testid="case-row"][data-id="{second}"].sel')
        page.keyboard.press("x")
        assert page.get_by_test_id("bulk-count").inner_text() == "1"
        assert rows.nth(1).locator('[data-testid="row-check"]').is_checked()
        page.keyboard.press("x")
        assert page.get_by_test_id("bulk-count").inner_text() == "0"
        page.keyboard.press("?")
        assert page.get_by_test_id("shortcut-help").is_visible()
        assert "快捷键" in page.get_by_test_id("shortcut-help").inner_text()
        screenshot(page, "desk-shortcut-help")
        page.keyboard.press("Escape")
        assert not page.get_by_test_id("shortcut-help").is_visible()
        page.keyboard.press("/")
        assert page.evaluate("() => document.activeElement.name") == "q"
        page.keyboard.press("Escape")

        # select all on the page, choose the team, dispatch
        page.get_by_test_id("select-page").check()
        assert page.get_by_test_id("bulk-count").inner_text() == str(N)
        page.get_by_test_id("bulk-team").select_option(str(c["teams"]["a"]))
        before = page.evaluate("() => window.gisDesk.reloads")
        page.get_by_test_id("bulk-dispatch").click()
        page.get_by_test_id("bulk-summary").wait_for()
        assert page.get_by_test_id("bulk-applied").inner_text() == str(N - 1)
        assert page.get_by_test_id("bulk-refused-count").inner_text() == "1"
        refused = page.locator('[data-testid="bulk-refused-case"]')
        assert refused.count() == 1
        assert refused.get_attribute("data-error") == "case_locked"
        text_ = refused.inner_text()
        assert held_no in text_ and "sup-d" in text_ and "他人正在处理" in text_
        # the list and the counts refresh: only the held case still waits
        page.wait_for_function("n => window.gisDesk.reloads > n", arg=before)
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=case-row]').length === 1"
        )
        assert rows.nth(0).get_attribute("data-id") == str(held)
        page.wait_for_function(
            "() => document.querySelector('[data-testid=count-to_dispatch]').textContent === '1'"
        )
        screenshot(page, "desk-bulk-dispatch")
        assert watch.external == []
        assert watch.console_errors == []

        # Enter or o opens the current case's page
        page.keyboard.press("j")
        page.keyboard.press("o")
        page.wait_for_url(f"**/desk/cases/{held}")

    with get_engine(s).connect() as conn:
        rows_ = conn.execute(
            text(
                "SELECT case_id, count(*) FROM case_event WHERE action = 'dispatch' "
                "AND case_id = ANY(:ids) GROUP BY case_id"
            ),
            {"ids": ids},
        ).all()
    assert dict(rows_) == {i: 1 for i in ids if i != held}
