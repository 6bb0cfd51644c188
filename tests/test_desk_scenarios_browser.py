"""Issue 15's "done when" scenarios end to end, in headless Chromium (Debian's) against a
real server on the demo district: every request to a host other than 127.0.0.1 blocked
and counted (zero), console errors zero, a screenshot per scenario at 1366×768
(tests/artifacts/desk-scenario-*.png).

1. The whole loop: a community supervisor signs in at ``/``, a grid worker's report
   arrives in "to accept" without a reload, the supervisor accepts it and dispatches it to
   the first suggested team on the case page, a member of that team starts and handles it
   on the phone (with the after photo), the supervisor verifies it on the desk and it
   closes, each step on the timeline.
2. A category change on the case page shows on the timeline with the old and new
   category.
3. A parked case leaves the overdue count and comes back on its review date (the dates
   moved with SQL: a time machine, in this test only).
4. An urged case shows its reply: urge on the case page, the team replies, the timeline
   and the case facts show the urges and the reply.
5. A subdistrict supervisor's queue rows, map points, tab counts and workload board never
   hold another subdistrict's cases (against the other subdistrict supervisor's and the
   district supervisor's API answers).

The pages are driven by their data-testid attributes only (case.js, desk.js, the phone's
app); what tests/test_desk_browser.py, test_case_page_browser.py and
test_mobile_browser.py prove step by step is not repeated here."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from gis_service.cases.desk import TABS
from gis_service.db.engine import get_engine
from tests.browser import browser_context, live_server, screenshot
from tests.test_case_page_browser import READY, wait_loads
from tests.test_desk_browser import DESK, api_counts, at_the_front_door, shown_counts, token
from tests.test_mobile_browser import phone, photo_file, points_apart
from tests.test_mobile_browser import sign_in as phone_sign_in

DISTRICT = "410105"
SUBDISTRICT = "410105001"
COMMUNITY = "410105001001"
SUPERVISOR = f"sup{COMMUNITY}"
WORKER = "gw41010500100101"
GRID = "41010500100101"  # the worker's grid, in COMMUNITY
CATEGORY = "environment.garbage"
DESK_READY = "() => window.gisDesk && window.gisDesk.ready && window.gisDesk.counts"


@pytest.fixture(scope="module")
def server(demo_settings):
    with live_server(demo_settings) as base:
        yield base


@pytest.fixture(scope="module")
def spots(demo_settings) -> list[tuple[float, float]]:
    """Points inside the worker's grid, apart enough not to be each other's duplicates."""
    return points_apart(demo_settings, GRID, 60, 15, 0.0008)


def report(base: str, spot: tuple[float, float], description: str) -> dict:
    r = httpx.post(
        f"{base}/api/v1/cases",
        headers=token(base, WORKER),
        json={"category": CATEGORY, "lon": spot[0], "lat": spot[1], "description": description},
    )
    assert r.status_code == 201, r.text
    return r.json()


def act(base: str, auth: dict, case_id: int, **body) -> dict:
    r = httpx.post(f"{base}/api/v1/cases/{case_id}/actions", headers=auth, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def api_case(base: str, case_id: int, who: str = SUPERVISOR) -> dict:
    r = httpx.get(f"{base}/api/v1/cases/{case_id}", headers=token(base, who))
    assert r.status_code == 200, r.text
    return r.json()


def community_team(base: str, auth: dict) -> int:
    teams = httpx.get(f"{base}/api/v1/teams", headers=auth).json()["teams"]
    return next(t["id"] for t in teams if t["unit_code"] == COMMUNITY)


def timeline_actions(page) -> list[str]:
    """The case page's timeline, newest first."""
    return page.get_by_test_id("event").evaluate_all("es => es.map(e => e.dataset.action)")


def submit(page, action: str) -> None:
    """Press the action's button on the case page and wait for the page to show its result."""
    loads = page.evaluate("() => window.gisCase.loads")
    page.get_by_test_id(f"do-{action}").click()
    wait_loads(page, loads)


def open_case(page, base: str, case_id: int) -> None:
    page.goto(f"{base}/desk/cases/{case_id}")
    page.wait_for_function(READY)


def status_shown(page) -> str | None:
    return page.get_by_test_id("fact-status").get_attribute("data-status")


def test_the_whole_loop_from_report_to_closed(server, demo_settings, spots):
    auth = token(server, SUPERVISOR)
    text_ = "场景一：小区门口垃圾成堆"
    # a browser on another clock: the desk still speaks the district's time
    with browser_context(**DESK, timezone_id="America/New_York") as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, SUPERVISOR, "/desk/")
        page.wait_for_function(DESK_READY)
        assert page.get_by_test_id("tab-to_accept").get_attribute("aria-selected") == "true"
        page.evaluate("() => { window.stillTheSamePage = true; }")
        case = report(server, spots[0], text_)
        cid = case["id"]
        row = page.locator(f'[data-testid="case-row"][data-id="{cid}"]')
        row.wait_for(timeout=30000)  # the desk polls its counts every 10 s
        assert page.evaluate("() => window.stillTheSamePage === true"), "the page reloaded"
        at = datetime.fromisoformat(case["reported_at"]).astimezone(
            ZoneInfo(demo_settings.timezone)
        )
        assert at.strftime("%m/%d %H:%M") in row.inner_text(), (at, row.inner_text())

        row.get_by_test_id("case-link").click()
        page.wait_for_url(f"**/desk/cases/{cid}")
        page.wait_for_function(READY)
        submit(page, "accept")
        assert status_shown(page) == "accepted"
        suggested = httpx.get(f"{server}/api/v1/cases/{cid}/team-suggestions", headers=auth).json()[
            "teams"
        ]
        assert suggested, "no team suggested"
        team_id = suggested[0]["id"]
        # the first suggestion is the form's choice: dispatch it as it stands
        assert page.get_by_test_id("field-team_id").input_value() == str(team_id)
        submit(page, "dispatch")
        assert status_shown(page) == "dispatched"
        assert api_case(server, cid)["team_id"] == team_id
        assert watch.external == [] and watch.console_errors == []

    # a member of that team, on the phone: start, then handled with the after photo
    member = f"team{team_id}"
    assert (
        httpx.get(f"{server}/api/v1/auth/me", headers=token(server, member)).json()["team_id"]
        == team_id
    )
    with browser_context(**phone(*spots[0])) as (context, watch):
        page = context.new_page()
        phone_sign_in(page, server, member)
        task = page.locator(f"[data-testid=tasks-team] [data-case-id='{cid}']")
        task.wait_for()
        task.click()
        page.get_by_test_id("action-start").click()
        page.wait_for_selector("[data-testid=case][data-status=in_progress]")
        page.get_by_test_id("note-text").fill("已清运完毕")
        page.get_by_test_id("handle-photo").set_input_files([photo_file(410)])
        page.get_by_test_id("action-handle").click()
        page.wait_for_selector("[data-testid=case][data-status=handled]")
        page.wait_for_selector("[data-testid=case-photo][data-stage=after]")
        assert watch.external == [] and watch.console_errors == []

    # back on the desk: the case waits to be verified; verify, passed: closed
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, SUPERVISOR, "/desk/")
        page.wait_for_function(DESK_READY)
        before = page.evaluate("() => window.gisDesk.reloads")
        page.get_by_test_id("tab-to_verify").click()
        page.wait_for_function("n => window.gisDesk.reloads > n", arg=before)
        row = page.locator(f'[data-testid="case-row"][data-id="{cid}"]')
        row.get_by_test_id("case-link").click()
        page.wait_for_url(f"**/desk/cases/{cid}")
        page.wait_for_function(READY)
        assert status_shown(page) == "handled"
        after = page.locator('[data-testid="photos-after"] [data-testid="photo"]')
        assert after.count() == 1
        page.get_by_test_id("field-passed").select_option("true")
        submit(page, "verify")
        assert status_shown(page) == "closed"
        shown = timeline_actions(page)
        screenshot(page, "desk-scenario-loop")
        assert watch.external == [] and watch.console_errors == []

    stored = api_case(server, cid)
    assert stored["status"] == "closed"
    steps = [e["action"] for e in stored["timeline"]]
    assert shown == steps[::-1]  # the page shows every event of the case, newest first
    loop = ["report", "accept", "dispatch", "start", "handle", "verify"]
    assert [a for a in steps if a in loop] == loop, steps
    dispatched = next(e for e in stored["timeline"] if e["action"] == "dispatch")
    assert dispatched["data"]["team_id"] == team_id


def test_a_category_change_shows_on_the_timeline(server, spots):
    auth = token(server, SUPERVISOR)
    case = report(server, spots[1], "场景二：井盖缺失，上报成了垃圾")
    cid = case["id"]
    act(server, auth, cid, action="accept")
    domains = httpx.get(f"{server}/api/v1/categories", headers=auth).json()["domains"]
    names = {k["code"]: k["name_zh"] for d in domains for k in d["children"]}
    new = next(code for code in names if code.split(".")[0] != CATEGORY.split(".")[0])
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, SUPERVISOR, "/desk/")
        open_case(page, server, cid)
        assert page.get_by_test_id("fact-category").get_attribute("title") == CATEGORY
        page.get_by_test_id("field-category").select_option(new)
        page.get_by_test_id("note-recategorize").fill("类别有误：实为井盖问题")
        submit(page, "recategorize")
        assert page.get_by_test_id("fact-category").get_attribute("title") == new
        assert page.get_by_test_id("fact-category").inner_text() == names[new]
        event = page.locator('[data-testid="event"][data-action="recategorize"]')
        assert event.count() == 1
        shown = event.inner_text()
        screenshot(page, "desk-scenario-recategorize")
        assert watch.external == [] and watch.console_errors == []
    stored = next(e for e in api_case(server, cid)["timeline"] if e["action"] == "recategorize")
    assert (stored["data"]["from_category"], stored["data"]["to_category"]) == (CATEGORY, new)
    assert "类别有误：实为井盖问题" in shown
    # the old and the new category, in the page's words (the event's data: from_category,
    # to_category; case.js showTimeline draws only a dispatch's team from an event's data)
    assert names[CATEGORY] in shown and names[new] in shown, (
        f"the case page's recategorize event names neither {names[CATEGORY]} nor "
        f"{names[new]}: {shown!r}"
    )


def test_a_parked_case_leaves_the_overdue_count_and_comes_back(server, demo_settings, spots):
    auth = token(server, SUPERVISOR)
    mark = "场景三挂账"
    case = report(server, spots[2], f"{mark}：违建拆除需等规划")
    cid = case["id"]
    act(server, auth, cid, action="accept")
    act(server, auth, cid, action="dispatch", team_id=community_team(server, auth))
    engine = get_engine(demo_settings)
    with engine.begin() as conn:  # the time machine: its deadline passed an hour ago
        conn.execute(
            text("UPDATE cases SET deadline_at = now() - interval '1 hour' WHERE id = :i"),
            {"i": cid},
        )
    mine = {"q": mark}  # the desk filtered to this case: its counts are this case's alone
    overdue_of_mine = httpx.get(f"{server}/api/v1/desk/counts", headers=auth, params=mine).json()
    assert overdue_of_mine["tabs"]["overdue"] == 1

    def shown_overdue(page, n: int) -> None:
        page.wait_for_function(
            "n => Number(document.querySelector('[data-testid=count-overdue]').textContent) === n",
            arg=n,
            timeout=30000,  # the desk polls every 10 s
        )

    review = datetime.now(ZoneInfo(demo_settings.timezone)).date() + timedelta(days=3)
    with browser_context(**DESK) as (context, watch):
        desk = context.new_page()
        at_the_front_door(desk, server, SUPERVISOR, "/desk/")
        desk.goto(f"{server}/desk/?tab=overdue&q={mark}")
        desk.wait_for_function(DESK_READY)
        shown_overdue(desk, 1)
        desk.locator(f'[data-testid="case-row"][data-id="{cid}"]').wait_for()
        desk.evaluate("() => { window.stillTheSamePage = true; }")

        page = context.new_page()
        open_case(page, server, cid)
        assert status_shown(page) == "dispatched"
        assert "late" in page.get_by_test_id("fact-deadline").get_attribute("class")
        page.get_by_test_id("field-review_on").fill(review.isoformat())
        page.get_by_test_id("note-park").fill("需等待规划部门批复")
        submit(page, "park")
        assert status_shown(page) == "parked"
        assert page.locator('[data-testid="event"][data-action="park"]').count() == 1

        desk.bring_to_front()
        shown_overdue(desk, 0)  # out of the overdue count, without a reload
        desk.locator(f'[data-testid="case-row"][data-id="{cid}"]').wait_for(state="detached")
        assert (
            httpx.get(f"{server}/api/v1/desk/counts", headers=auth, params=mine).json()["tabs"][
                "overdue"
            ]
            == 0
        )
        # still listed: among all the cases, as parked
        before = desk.evaluate("() => window.gisDesk.reloads")
        desk.get_by_test_id("tab-all").click()
        desk.wait_for_function("n => window.gisDesk.reloads > n", arg=before)
        desk.locator(f'[data-testid="case-row"][data-id="{cid}"]').wait_for()
        screenshot(desk, "desk-scenario-parked")

        with engine.begin() as conn:  # the time machine: the review date has come
            conn.execute(
                text("UPDATE cases SET parked_until = now() - interval '1 minute' WHERE id = :i"),
                {"i": cid},
            )
        before = desk.evaluate("() => window.gisDesk.reloads")
        desk.get_by_test_id("tab-overdue").click()
        desk.wait_for_function("n => window.gisDesk.reloads > n", arg=before)
        shown_overdue(desk, 1)
        desk.locator(f'[data-testid="case-row"][data-id="{cid}"]').wait_for()
        assert desk.evaluate("() => window.stillTheSamePage === true"), "the desk reloaded"
        assert (
            httpx.get(f"{server}/api/v1/desk/counts", headers=auth, params=mine).json()["tabs"][
                "overdue"
            ]
            == 1
        )
        # back to the status it left (case_status(), read time), on the API and the page
        assert api_case(server, cid)["status"] == "dispatched"
        page.reload()
        page.wait_for_function(READY)
        assert status_shown(page) == "dispatched"
        screenshot(desk, "desk-scenario-parked-back")
        assert watch.external == [] and watch.console_errors == []


def test_an_urged_case_shows_its_reply(server, spots):
    auth = token(server, SUPERVISOR)
    case = report(server, spots[3], "场景四：路灯不亮一周")
    cid = case["id"]
    team_id = community_team(server, auth)
    act(server, auth, cid, action="accept")
    act(server, auth, cid, action="dispatch", team_id=team_id)
    team = token(server, f"team{team_id}")
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, SUPERVISOR, "/desk/")
        open_case(page, server, cid)
        page.get_by_test_id("note-urge").fill("请今天之内处置")
        submit(page, "urge")
        assert timeline_actions(page)[0] == "urge"
        act(server, team, cid, action="reply", note="已安排电工，今晚修复")
        page.get_by_test_id("note-urge").fill("居民再次来电，请加快")
        submit(page, "urge")  # the page reloads the case: the team's reply is there too
        shown = timeline_actions(page)
        assert shown[:3] == ["urge", "reply", "urge"], shown
        reply = page.locator('[data-testid="event"][data-action="reply"]')
        assert "已安排电工，今晚修复" in reply.inner_text()
        facts = dict(
            zip(
                page.get_by_test_id("facts").locator("dt").all_inner_texts(),
                page.get_by_test_id("facts").locator("dd").all_inner_texts(),
                strict=True,
            )
        )
        screenshot(page, "desk-scenario-urged")
        assert watch.external == [] and watch.console_errors == []
    stored = api_case(server, cid)
    assert (stored["urge_count"], stored["urges_unreplied"]) == (2, 1)
    # the case facts count the urges and the replies: 2 urges, 1 answered (1 waiting)
    # (the case answer's urge_count and urges_unreplied; case.js showHead lists neither)
    urge_facts = {k: v for k, v in facts.items() if "督办" in k}
    assert urge_facts, f"the case page's facts hold no urge (督办) figures: {facts}"
    figures = " ".join(urge_facts.values())
    assert "2" in figures and "1" in figures, urge_facts


def subdistrict_with_cases(settings, other_than: str) -> str:
    """The subdistrict of the district, other than ``other_than``, holding most open cases."""
    with get_engine(settings).connect() as conn:
        return conn.execute(
            text(
                "SELECT u.code FROM admin_unit u JOIN cases c ON c.unit_code LIKE u.code || '%' "
                "WHERE u.level = 'subdistrict' AND u.code LIKE :d AND u.code <> :a "
                "GROUP BY u.code ORDER BY count(*) DESC, u.code LIMIT 1"
            ),
            {"d": DISTRICT + "%", "a": other_than},
        ).scalar_one()


def all_ids(base: str, auth: dict, tab: str | None) -> set[int]:
    """Every case id the API's queue gives this viewer in ``tab`` (None: every case)."""
    ids: set[int] = set()
    params: dict = {"limit": 1000, "offset": 0} | ({"tab": tab} if tab else {})
    while True:
        body = httpx.get(f"{base}/api/v1/desk/queue", headers=auth, params=params).json()
        ids |= {f["properties"]["id"] for f in body["features"]}
        params["offset"] += 1000
        if params["offset"] >= body["numberMatched"]:
            return ids


def test_a_subdistrict_never_sees_another_subdistricts_cases(server, demo_settings):
    mine, theirs = SUBDISTRICT, subdistrict_with_cases(demo_settings, SUBDISTRICT)
    auth = token(server, f"sup{mine}")
    other = token(server, f"sup{theirs}")
    district = token(server, f"sup{DISTRICT}")
    their_counts = api_counts(server, other)
    assert their_counts["open"] > 0 and api_counts(server, auth)["open"] > 0
    with browser_context(**DESK) as (context, watch):
        page = context.new_page()
        at_the_front_door(page, server, f"sup{mine}", "/desk/")
        page.wait_for_function(DESK_READY)
        # the counts: the district's own, cut to my subdistrict, and nothing of theirs
        shown = shown_counts(page)
        assert shown == api_counts(server, auth)
        # ("escalated" is the viewer's own: escalated to the viewer's level, so the district
        # supervisor's differs; its rows are compared below like every tab's)
        alike = [t for t in TABS if t != "escalated"]
        cut = httpx.get(f"{server}/api/v1/desk/counts", headers=district, params={"unit": mine})
        assert {t: shown[t] for t in alike} == {t: cut.json()["tabs"][t] for t in alike}
        assert shown["open"] == cut.json()["open"]
        everyone = api_counts(server, district)
        assert all(shown[t] + their_counts[t] <= everyone[t] for t in [*alike, "open"])
        # the rows and the map's points, tab by tab, against the other supervisor's cases
        seen = 0
        for tab in ["all", *TABS]:
            before = page.evaluate("() => window.gisDesk.reloads")
            page.get_by_test_id(f"tab-{tab}").click()
            page.wait_for_function("n => window.gisDesk.reloads > n", arg=before)
            rows = {
                int(x)
                for x in page.get_by_test_id("case-row").evaluate_all(
                    "rs => rs.map(r => r.dataset.id)"
                )
            }
            points = {
                int(x)
                for x in page.locator("path.desk-pt").evaluate_all(
                    "ps => ps.map(p => [...p.classList].find(c => /^desk-pt-\\d+$/.test(c))"
                    ".slice(8))"
                )
            }
            assert points == rows, tab
            theirs_here = all_ids(server, other, None if tab == "all" else tab)
            assert not rows & theirs_here, (tab, sorted(rows & theirs_here)[:5])
            if tab == "all":
                assert rows and theirs_here  # each side has cases
            seen += len(rows)
        assert seen > 0
        screenshot(page, "desk-scenario-subdistrict-queue")

        # the workload board: no team of theirs; shared teams counted on my cases only
        page.get_by_test_id("nav-workload").click()
        page.wait_for_url("**/desk/workload*")
        page.wait_for_function("() => window.gisBoard && window.gisBoard.ready")
        board = page.evaluate("() => window.gisBoard.board")
        their_board = httpx.get(f"{server}/api/v1/desk/workload", headers=other).json()
        assert board["teams"] and their_board["teams"]
        assert not any(t["unit_code"].startswith(theirs) for t in board["teams"])
        assert any(t["unit_code"].startswith(theirs) for t in their_board["teams"])
        workers = {w["id"] for w in board["grid_workers"]}
        assert workers and not workers & {w["id"] for w in their_board["grid_workers"]}
        shared = {t["id"] for t in board["teams"]} & {t["id"] for t in their_board["teams"]}
        assert shared, "no team serves both subdistricts"
        for t in board["teams"]:
            if t["id"] in shared:
                cut = httpx.get(
                    f"{server}/api/v1/desk/counts",
                    headers=district,
                    params={"unit": mine, "team_id": t["id"]},
                ).json()
                assert (t["open"], t["overdue"]) == (cut["open"], cut["tabs"]["overdue"]), t
        screenshot(page, "desk-scenario-subdistrict-workload")
        assert watch.external == [] and watch.console_errors == []
