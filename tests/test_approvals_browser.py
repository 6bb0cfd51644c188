"""The approval inbox page (/desk/approvals) in headless Chromium against a real server on
the demo: a team asks for a deadline extension (延期) over the API, the supervisor of the
level above finds it through the desk's navigation, refuses without a note (the server's
reason shown), approves it, and the case's deadline moves and is counted as extended;
nothing fetched from outside 127.0.0.1, no console errors."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from tests.browser import browser_context, live_server, screenshot
from tests.test_desk_browser import COMMUNITY, DESK, GRID_SPOT, SUBDISTRICT, WORKER, token

TEAM_MEMBER = "team1"  # a member of team 1, the committee of COMMUNITY
HOURS = 24


@pytest.fixture(scope="module")
def server(demo_settings):
    with live_server(demo_settings) as base:
        yield base


def act(base: str, auth: dict, case_id: int, action: str, **body) -> dict:
    r = httpx.post(
        f"{base}/api/v1/cases/{case_id}/actions", headers=auth, json={"action": action, **body}
    )
    assert r.status_code == 200, r.text
    return r.json()


def a_case_asking_for_more_time(base: str) -> tuple[dict, str]:
    """A new case of COMMUNITY dispatched to team 1, started, and its extension asked for;
    the case and the username of the supervisor who decides (the level above its
    handling level: cases/approvals.py approver_unit)."""
    lon, lat = GRID_SPOT
    r = httpx.post(
        f"{base}/api/v1/cases",
        headers=token(base, WORKER),
        json={"lon": lon, "lat": lat, "category": "environment.garbage", "description": "延期"},
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    supervisor = token(base, f"sup{COMMUNITY}")
    act(base, supervisor, case_id, "accept")
    team = httpx.get(f"{base}/api/v1/teams", headers=supervisor).json()
    team_id = next(t["id"] for t in team["teams"] if t["unit_code"] == COMMUNITY)
    act(base, supervisor, case_id, "dispatch", team_id=team_id)
    member = token(base, TEAM_MEMBER)
    act(base, member, case_id, "start")
    act(base, member, case_id, "extend", extension_hours=HOURS, note="等待配件到货")
    case = httpx.get(f"{base}/api/v1/cases/{case_id}", headers=supervisor).json()
    approver = {"grid": f"sup{COMMUNITY}", "community": f"sup{SUBDISTRICT}"}[case["handling_level"]]
    return case, approver


def test_a_supervisor_approves_an_extension_on_the_desk(server):
    case, approver = a_case_asking_for_more_time(server)
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        page.goto(server + "/")
        page.get_by_test_id("login-username").fill(approver)
        page.get_by_test_id("login-password").fill("demo-2026")
        page.get_by_test_id("login-submit").click()
        page.wait_for_url("**/desk/*")
        page.get_by_test_id("nav-approvals").click()
        page.wait_for_url("**/desk/approvals*")
        row = page.locator(f'[data-testid="approval-row"]:has-text("{case["case_no"]}")')
        row.wait_for()
        assert "等待配件到货" in row.inner_text()
        screenshot(page, "desk-approvals-zh")
        row.get_by_test_id("select-approval").check()
        page.get_by_test_id("refuse").click()  # without a note: the server says why
        error = page.get_by_test_id("decision-error")
        error.wait_for()
        assert "note" in error.inner_text()
        row.get_by_test_id("select-approval").check()
        page.get_by_test_id("approve").click()
        page.get_by_test_id("decision-applied").wait_for()
        assert page.get_by_test_id("decision-applied").inner_text().endswith("1")
        row.wait_for(state="detached")
        page.get_by_test_id("approval-tab-approved").click()
        page.locator(f'[data-testid="approval-row"]:has-text("{case["case_no"]}")').wait_for()
        page.goto(server + "/desk/approvals?lang=en")
        page.get_by_test_id("approvals").wait_for()
        screenshot(page, "desk-approvals-en")
        # Chromium logs the one refusal the test asked for (422) as a failed resource
        refused = [e for e in watch.console_errors if "status of 422" in e]
        assert watch.external == [] and len(refused) == 1
        assert [e for e in watch.console_errors if e not in refused] == []

    after = httpx.get(f"{server}/api/v1/cases/{case['id']}", headers=token(server, approver)).json()
    assert after["extension_count"] == 1
    assert after["original_deadline_at"] == case["deadline_at"]
    moved = datetime.fromisoformat(after["deadline_at"]) - datetime.fromisoformat(
        case["deadline_at"]
    )
    assert moved == timedelta(hours=HOURS)
    assert after["timeline"][-1]["action"] == "extension_approved"
