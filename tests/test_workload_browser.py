"""The workload board, the shift view and saved searches (issue 15 item 6) in headless
Chromium (Debian's), against a real server on the demo: nothing fetched from outside
127.0.0.1, no console errors, screenshots at 1366×768 in tests/artifacts/. The board and
the shift view render in Chinese and English and hold the API's figures; a subdistrict
supervisor's board holds only their subdistrict (each team's figures equal the queue's
counts for that team, which the scope rule cuts); a saved search, saved and reopened,
restores the queue's tab and filters."""

from __future__ import annotations

import httpx
import pytest

from tests.browser import browser_context, live_server, screenshot, sign_in
from tests.test_desk_browser import COMMUNITY, DESK, GRID_SPOT, PASSWORD, SUBDISTRICT, WORKER, token


@pytest.fixture(scope="module")
def server(demo_settings):
    with live_server(demo_settings) as base:
        yield base


def ready(page) -> None:
    page.wait_for_function("() => window.gisBoard && window.gisBoard.ready")


def test_the_board_and_the_shift_view_in_chinese_and_english(server):
    supervisor = f"sup{COMMUNITY}"
    auth = token(server, supervisor)
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        sign_in(page, server, supervisor, PASSWORD, "/desk/workload")
        ready(page)
        assert page.get_by_test_id("nav-workload").get_attribute("aria-current") == "page"
        assert page.locator("h1").inner_text() == "工作量看板"
        api = httpx.get(f"{server}/api/v1/desk/workload", headers=auth).json()
        rows = page.get_by_test_id("teams-row")
        assert [int(x) for x in rows.evaluate_all("r => r.map(x => x.dataset.id)")] == [
            t["id"] for t in api["teams"]
        ]
        assert api["teams"] and page.get_by_test_id("workers-row").count() == len(
            api["grid_workers"]
        )
        # each overdue cell opens the queue filtered to that team's overdue cases
        late = [t for t in api["teams"] if t["overdue"]]
        links = page.get_by_test_id("overdue-link")
        assert links.count() == len(late)
        for t, a in zip(late, links.all(), strict=True):
            assert a.get_attribute("href") == f"/desk/?tab=overdue&team_id={t['id']}"
            assert a.inner_text() == str(t["overdue"])
        # sortable: the open column, most first, then fewest first
        page.get_by_test_id("teams-sort-open").click()
        shown = [int(x) for x in page.locator('[data-testid=teams-row] td[data-key="open"]')
                 .all_inner_texts()]  # fmt: skip
        assert shown == sorted((t["open"] for t in api["teams"]), reverse=True)
        page.get_by_test_id("teams-sort-open").click()
        shown = [int(x) for x in page.locator('[data-testid=teams-row] td[data-key="open"]')
                 .all_inner_texts()]  # fmt: skip
        assert shown == sorted(t["open"] for t in api["teams"])
        # times in the district's time: the week starts on Monday 00:00 there
        assert page.get_by_test_id("board-status").inner_text().split()[2] == "00:00"
        screenshot(page, "desk-workload")

        before = page.evaluate("() => window.gisBoard.loads")
        page.get_by_test_id("period").select_option("quarter")
        page.wait_for_function("n => window.gisBoard.loads > n", arg=before)
        assert "period=quarter" in page.url
        quarter = httpx.get(
            f"{server}/api/v1/desk/workload", headers=auth, params={"period": "quarter"}
        ).json()
        assert page.evaluate("() => window.gisBoard.board.teams") == quarter["teams"]

        page.get_by_test_id("nav-lang").click()
        page.wait_for_url("**lang=en*")
        ready(page)
        assert page.locator("h1").inner_text() == "Workload board"
        assert page.get_by_test_id("teams-sort-open").inner_text().startswith("Open")
        assert page.get_by_test_id("period").input_value() == "quarter"
        screenshot(page, "desk-workload-en")

        # something to hand over: a new report and an urge the team has not answered
        r = httpx.post(
            f"{server}/api/v1/cases",
            headers=token(server, WORKER),
            json={"category": "environment.garbage", "lon": GRID_SPOT[0], "lat": GRID_SPOT[1],
                  "description": "交接班测试：垃圾堆放"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        teams = httpx.get(f"{server}/api/v1/teams", headers=auth).json()["teams"]
        team = next(t["id"] for t in teams if t["unit_code"] == COMMUNITY)
        for body in (
            {"action": "accept"},
            {"action": "dispatch", "team_id": team},
            {"action": "urge", "note": "请今天处置"},
        ):
            done = httpx.post(
                f"{server}/api/v1/cases/{r.json()['id']}/actions", headers=auth, json=body
            )
            assert done.status_code == 200, done.text
        page.get_by_test_id("nav-shift").click()
        page.wait_for_url("**/desk/shift?lang=en")
        ready(page)
        assert page.locator("h1").inner_text() == "Shift view"
        shift = httpx.get(f"{server}/api/v1/desk/shift", headers=auth).json()
        assert shift["arrived"]["total"] >= 1 and shift["urged_unreplied"]["total"] >= 1
        for name, key in (("arrived", "arrived"), ("urged", "urged_unreplied"),
                          ("late", "likely_late")):  # fmt: skip
            assert page.get_by_test_id(f"total-{name}").inner_text() == str(shift[key]["total"])
            ids = page.get_by_test_id(f"shift-{name}-row").evaluate_all(
                "r => r.map(x => Number(x.dataset.id))"
            )
            assert sorted(ids) == sorted(c["id"] for c in shift[key]["cases"]), name
        hrefs = page.get_by_test_id("case-link").evaluate_all(
            "a => a.map(x => x.getAttribute('href'))"
        )
        assert hrefs and all(
            h.startswith("/desk/cases/") and h.endswith("?lang=en") for h in hrefs
        ), hrefs[:3]
        screenshot(page, "desk-shift-en")
        page.get_by_test_id("nav-lang").click()
        page.wait_for_url("**/desk/shift")
        ready(page)
        assert page.locator("h1").inner_text() == "交接班"
        screenshot(page, "desk-shift")
        assert watch.external == []
        assert watch.console_errors == []


def test_a_subdistrict_supervisors_board_holds_only_their_subdistrict(server):
    supervisor = f"sup{SUBDISTRICT}"
    auth = token(server, supervisor)
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        sign_in(page, server, supervisor, PASSWORD, "/desk/workload")
        ready(page)
        board = page.evaluate("() => window.gisBoard.board")
        assert board["teams"]
        units = page.locator('[data-testid=teams-row] td[data-key="unit_code"]').all_inner_texts()
        assert units and all(
            u.startswith(SUBDISTRICT) or SUBDISTRICT.startswith(u) for u in units
        ), units
        for t in board["teams"]:  # the queue, cut by the same scope rule, agrees team by team
            counts = httpx.get(
                f"{server}/api/v1/desk/counts", headers=auth, params={"team_id": t["id"]}
            ).json()
            assert (t["open"], t["overdue"]) == (counts["open"], counts["tabs"]["overdue"]), t
        grids = [g for u in board["grid_workers"] for g in u["scopes"]]
        assert grids and all(g.startswith(SUBDISTRICT) for g in grids)
        screenshot(page, "desk-workload-subdistrict")
        page.goto(f"{server}/desk/shift")
        ready(page)
        shift = page.evaluate("() => window.gisBoard.shift")
        for key in ("arrived", "urged_unreplied", "likely_late"):
            assert all(c["unit_code"].startswith(SUBDISTRICT) for c in shift[key]["cases"]), key
        screenshot(page, "desk-shift-subdistrict")
        assert watch.external == []
        assert watch.console_errors == []


def test_a_saved_search_restores_the_queues_filters(server):
    supervisor = f"sup{COMMUNITY}"
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        sign_in(page, server, supervisor, PASSWORD, "/desk/")
        page.wait_for_function("() => window.gisDesk && window.gisDesk.ready")
        page.wait_for_function("() => window.gisSaved && window.gisSaved.ready")
        before = page.evaluate("() => window.gisDesk.reloads")
        page.get_by_test_id("tab-overdue").click()
        page.wait_for_function("n => window.gisDesk.reloads > n", arg=before)
        page.get_by_test_id("filter-q").fill("垃圾")
        page.get_by_test_id("filter-status").select_option("in_progress")
        page.get_by_test_id("filter-apply").click()
        page.wait_for_url("**q=*")
        page.get_by_test_id("saved-name").fill("超期垃圾")
        page.get_by_test_id("saved-save").click()
        item = page.get_by_test_id("saved-item").filter(has_text="超期垃圾")
        item.wait_for()
        screenshot(page, "desk-saved-search")

        page.goto(f"{server}/desk/")  # a fresh queue: the default tab, no filters
        page.wait_for_function("() => window.gisDesk && window.gisDesk.ready")
        page.wait_for_function("() => window.gisSaved && window.gisSaved.ready")
        assert page.get_by_test_id("filter-q").input_value() == ""
        page.get_by_test_id("saved-item").filter(has_text="超期垃圾").get_by_test_id(
            "saved-open"
        ).click()
        page.wait_for_url("**tab=overdue*")
        page.wait_for_function("() => window.gisDesk && window.gisDesk.ready")
        assert page.get_by_test_id("tab-overdue").get_attribute("aria-selected") == "true"
        assert page.get_by_test_id("filter-q").input_value() == "垃圾"
        assert page.get_by_test_id("filter-status").input_value() == "in_progress"
        rows = page.locator('[data-testid="case-row"]').evaluate_all(
            "r => r.map(x => x.dataset.status)"
        )
        assert set(rows) <= {"in_progress"}

        # and it can be deleted
        page.wait_for_function("() => window.gisSaved && window.gisSaved.ready")
        page.get_by_test_id("saved-item").filter(has_text="超期垃圾").get_by_test_id(
            "saved-delete"
        ).click()
        page.get_by_test_id("saved-item").filter(has_text="超期垃圾").wait_for(state="detached")
        assert watch.external == []
        assert watch.console_errors == []
