"""The case page in headless Chromium (Debian's), against a real server on the demo
district and the real routes it calls (the lock, templates, team suggestions, actions):
nothing fetched from outside 127.0.0.1, console errors only those a test provokes. A
community supervisor opens a new report (with a photo) from the queue, accepts it with the
keyboard, dispatches it to the suggested team (first in the list) and assigns it to a
member of that team by name, seeing each event on the timeline without a reload; the map
shows the case and its grid; the photo opens full size; on a stale page the server's 409
shows beside the form with what is allowed now. Two supervisors of the same community:
the first holds the case's lock, the second sees "正在处理：<name>" with every form
disabled; once the first leaves, the second, after a reload, takes the lock, fills a note
from a template and changes the category with a reason, the old and new category on the
timeline. Screenshots in zh and en at 1366×768 are kept in tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from gis_service.auth.users import create_user
from gis_service.db.engine import transaction
from tests.browser import browser_context, browser_contexts, live_server, screenshot, sign_in
from tests.images import image_bytes
from tests.test_desk_browser import COMMUNITY, GRID_SPOT, PASSWORD, WORKER, token

SUPERVISOR = f"sup{COMMUNITY}"
SCREEN = {"viewport": {"width": 1366, "height": 768}}
READY = "() => window.gisCase && window.gisCase.ready"


@pytest.fixture(scope="module")
def server(demo_settings):
    with live_server(demo_settings) as base:
        yield base


def new_report(base: str, text: str, with_photo: bool = False) -> dict:
    """A report from the worker's grid, with a photo (multipart) when asked."""
    fields = {
        "category": "environment.garbage",
        "lon": str(GRID_SPOT[0]),
        "lat": str(GRID_SPOT[1]),
        "description": text,
    }
    auth = token(base, WORKER)
    if with_photo:
        photo = {"photo": ("p.jpg", image_bytes(seed=7, size=(800, 600)), "image/jpeg")}
        r = httpx.post(f"{base}/api/v1/cases", headers=auth, data=fields, files=photo, timeout=30)
    else:
        r = httpx.post(f"{base}/api/v1/cases", headers=auth, json=fields, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def api_case(base: str, case_id: int) -> dict:
    return httpx.get(f"{base}/api/v1/cases/{case_id}", headers=token(base, SUPERVISOR)).json()


def wait_loads(page, after: int) -> None:
    page.wait_for_function("n => window.gisCase.loads > n", arg=after, timeout=15000)


def test_a_supervisor_accepts_and_dispatches_on_the_case_page(server):
    case = new_report(server, "案件页测试：楼道垃圾", with_photo=True)
    cid = case["id"]
    with browser_context(**SCREEN) as (context, watch):
        page = context.new_page()
        sign_in(page, server, SUPERVISOR, PASSWORD, "/desk/?tab=to_accept")
        page.wait_for_function("() => window.gisDesk && window.gisDesk.ready")
        # the queue's case number is the way in
        page.locator(f'[data-testid="case-row"][data-id="{cid}"] [data-testid="case-link"]').click()
        page.wait_for_url(f"**/desk/cases/{cid}")
        page.wait_for_function(READY)
        ready_ms = page.evaluate("() => window.gisCase.ready_ms")
        print(f"case page: every part shown {ready_ms} ms after the click in the queue")
        page.evaluate("() => { window.stillTheSamePage = true; }")
        assert page.get_by_test_id("case-no").inner_text() == case["case_no"]
        assert page.get_by_test_id("fact-status").get_attribute("data-status") == "reported"
        unit_path = page.get_by_test_id("fact-unit").inner_text()
        assert all(u["name"] in unit_path for u in case["units"])

        # the map: the case's point and its grid (the grid of its unit chain)
        grid = next(u["code"] for u in case["units"] if u["level"] == "grid")
        page.wait_for_function("g => window.gisCase.grid === g", arg=grid)
        assert page.locator("path.case-pt-self").count() == 1
        assert page.locator("path.case-grid").count() >= 1
        assert page.locator("path.case-grid").first.get_attribute("d")

        # the photo before the work, full size in the lightbox
        before = page.locator('[data-testid="photos-before"] [data-testid="photo"]')
        assert before.count() == 1
        before.click()
        full = page.get_by_test_id("lightbox-img")
        full.wait_for()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=lightbox-img]').naturalWidth > 0"
        )
        assert full.evaluate("i => i.naturalWidth") == case["photos"][0]["width"]
        assert "thumb" not in full.get_attribute("src")
        screenshot(page, "case-page-photo")
        page.keyboard.press("Escape")
        page.wait_for_function("() => !document.querySelector('dialog').open")
        assert f"/desk/cases/{cid}" in page.url  # Esc closed the photo, not the page

        # the forms are the allowed actions; the keys are on their buttons
        allowed = api_case(server, cid)["allowed_actions"]
        shown = page.locator("form.case-form").evaluate_all("fs => fs.map(f => f.dataset.action)")
        assert sorted(shown) == sorted(allowed)
        assert page.get_by_test_id("do-accept").locator("kbd").inner_text() == "a"

        # accept with the keyboard: a focuses the button, Enter submits
        loads = page.evaluate("() => window.gisCase.loads")
        page.locator("body").click(position={"x": 700, "y": 740})
        page.keyboard.press("a")
        assert page.evaluate("() => document.activeElement.dataset.testid") == "do-accept"
        page.keyboard.press("Enter")
        wait_loads(page, loads)
        assert page.get_by_test_id("fact-status").get_attribute("data-status") == "accepted"
        page.locator('[data-testid="event"][data-action="accept"]').wait_for()

        # dispatch through its generated form: the suggested team first, and chosen
        suggested = httpx.get(
            f"{server}/api/v1/cases/{cid}/team-suggestions", headers=token(server, SUPERVISOR)
        ).json()["teams"]
        assert suggested and suggested[0]["responsible"]
        team = page.get_by_test_id("field-team_id")
        options = team.locator("option").evaluate_all("os => os.map(o => o.value).filter(v => v)")
        assert options == [str(t["id"]) for t in suggested]
        assert team.input_value() == options[0]
        first_group = team.locator("optgroup").first
        assert first_group.get_attribute("label") == "建议队伍"
        assert suggested[0]["name"] in first_group.inner_text()
        assert f"在办 {suggested[0]['open_cases']}" in first_group.inner_text()
        loads = page.evaluate("() => window.gisCase.loads")
        page.get_by_test_id("do-dispatch").click()
        wait_loads(page, loads)
        assert page.get_by_test_id("fact-status").get_attribute("data-status") == "dispatched"
        events = page.locator('[data-testid="event"]').evaluate_all(
            "es => es.map(e => e.dataset.action)"
        )
        assert events[:2] == ["dispatch", "accept"], events  # newest first
        assert page.evaluate("() => window.stillTheSamePage === true"), "the page reloaded"
        stored = api_case(server, cid)
        assert stored["status"] == "dispatched" and stored["team_id"] == int(options[0])
        assert page.get_by_test_id("fact-team").inner_text() == stored["team"]["name"]
        assert page.get_by_test_id("contact-team").is_visible()

        # assign to a member of that team, chosen by name
        members = stored["team_members"]
        assert members, "the team has no member to assign"
        member = members[-1]
        assignee = page.get_by_test_id("field-assignee_id")
        names = assignee.locator("option").evaluate_all(
            "os => os.filter(o => o.value).map(o => o.textContent)"
        )
        assert names == [m["display_name"] for m in members]
        assignee.select_option(label=member["display_name"])
        loads = page.evaluate("() => window.gisCase.loads")
        page.get_by_test_id("do-assign").click()
        wait_loads(page, loads)
        assert api_case(server, cid)["assignee"]["id"] == member["id"]
        assert page.get_by_test_id("fact-assignee").inner_text() == member["display_name"]
        event = page.locator('[data-testid="event"][data-action="assign"]')
        assert member["display_name"] in event.get_by_test_id("ev-assignee").inner_text()
        # the priority select speaks the vocabulary's words
        vocabulary = page.evaluate("() => window.gisVocabulary.priority_labels")
        shown = (
            page.get_by_test_id("field-priority")
            .locator("option")
            .evaluate_all("os => os.filter(o => o.value).map(o => [o.value, o.textContent])")
        )
        assert shown == [[p["code"], p["label"]["zh"]] for p in vocabulary]
        priority = page.get_by_test_id("fact-priority")
        assert priority.inner_text() == next(
            p["label"]["zh"] for p in vocabulary if p["code"] == stored["priority"]
        )
        page.evaluate("() => { document.querySelector('.case-side').scrollTop = 0; }")
        screenshot(page, "case-page-zh")

        page.goto(f"{server}/desk/cases/{cid}?lang=en")
        page.wait_for_function(READY)
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator(".case-facts dt").first.inner_text() == "Status"
        page.wait_for_function("g => window.gisCase.grid === g", arg=grid)
        labels = page.locator("form.case-form button[type=submit]").all_inner_texts()
        assert len(set(labels)) == len(labels), labels  # no two actions named alike
        assert page.get_by_test_id("field-priority").locator("option").all_inner_texts()[1:] == [
            p["label"]["en"] for p in vocabulary
        ]
        screenshot(page, "case-page-en")
        page.keyboard.press("Escape")
        page.wait_for_url("**/desk/?lang=en")
        assert watch.external == []
        assert watch.console_errors == []


def test_a_stale_page_shows_the_servers_409_beside_the_form(server):
    twin = new_report(server, "案件页测试：同一处的另一份上报")
    case = new_report(server, "案件页测试：过时的页面")
    cid = case["id"]
    with browser_context(**SCREEN) as (context, watch):
        page = context.new_page()
        sign_in(page, server, SUPERVISOR, PASSWORD, f"/desk/cases/{cid}")
        page.wait_for_function(READY)
        assert page.get_by_test_id("do-accept").is_visible()
        # the other report at the same spot: a possible duplicate, and a marker on the map
        page.locator(f'[data-testid="duplicate"][data-id="{twin["id"]}"]').wait_for()
        page.wait_for_function("() => window.gisCase.nearby > 0")
        assert page.locator(f"path.case-pt-{twin['id']}").count() == 1
        assert page.locator(f"path.case-pt-{cid}").count() == 0  # itself: the big point
        merge = "merge" in page.evaluate("() => window.gisVocabulary.actions")
        assert (page.get_by_test_id("merge-into").count() > 0) == merge
        # meanwhile another request accepts it
        r = httpx.post(
            f"{server}/api/v1/cases/{cid}/actions",
            headers=token(server, SUPERVISOR),
            json={"action": "accept"},
        )
        assert r.status_code == 200, r.text
        page.get_by_test_id("do-accept").click()
        refusal = page.get_by_test_id("error-accept").get_by_test_id("refusal")
        refusal.wait_for()
        assert refusal.inner_text().startswith("409")
        assert "accepted" in refusal.inner_text()  # the server's detail
        allowed = page.get_by_test_id("error-accept").get_by_test_id("allowed").inner_text()
        assert "派遣" in allowed  # dispatch, in the page's words
        screenshot(page, "case-page-409")
        # Refresh brings the page up to date: the dispatch form replaces accept
        page.get_by_test_id("error-accept").get_by_test_id("refresh").click()
        page.get_by_test_id("form-dispatch").wait_for()
        assert page.get_by_test_id("form-accept").count() == 0
        # a 422 names the missing field beside its form: parking without a review date
        page.get_by_test_id("note-park").fill("等待规划")
        page.get_by_test_id("do-park").click()
        refusal = page.get_by_test_id("error-park").get_by_test_id("refusal")
        refusal.wait_for()
        assert refusal.inner_text().startswith("422") and "review_on" in refusal.inner_text()
        assert api_case(server, cid)["status"] == "accepted"
        assert watch.external == []
        # the errors Chromium logs are the two refused requests themselves
        assert len(watch.console_errors) == 2, watch.console_errors
        assert "409" in watch.console_errors[0] and "422" in watch.console_errors[1]


@pytest.fixture(scope="module")
def second_supervisor(demo_settings) -> Iterator[dict]:
    """Another supervisor of COMMUNITY (the demo has one per unit): two people, one scope;
    deactivated afterwards, so the demo's other tests see the demo's own accounts at work."""
    with transaction(demo_settings) as conn:
        user = create_user(
            conn,
            username=f"case-page-sup2-{COMMUNITY}",
            password=PASSWORD,
            role="supervisor",
            scopes=[COMMUNITY],
            display_name="王二",
        )
    yield user
    with transaction(demo_settings) as conn:
        conn.execute(text("UPDATE app_user SET active = false WHERE id = :id"), {"id": user["id"]})


def lock_of(base: str, case_id: int) -> dict:
    r = httpx.get(f"{base}/api/v1/cases/{case_id}/lock", headers=token(base, SUPERVISOR))
    assert r.status_code == 200, r.text
    return r.json()


def test_two_supervisors_one_lock_then_a_template_and_a_new_category(server, second_supervisor):
    """The first supervisor's page takes the case's lock; the second's shows who holds it
    and disables every form (the server refuses them too); the first leaves (pagehide
    gives the lock back) and the second, after a reload, holds it and acts: a note filled
    from a template, then a new category with a reason, shown on the timeline."""
    case = new_report(server, "案件页测试：两位值班员")
    cid = case["id"]
    r = httpx.post(
        f"{server}/api/v1/cases/{cid}/actions",
        headers=token(server, SUPERVISOR),
        json={"action": "accept"},
    )
    assert r.status_code == 200, r.text
    first = httpx.get(f"{server}/api/v1/auth/me", headers=token(server, SUPERVISOR)).json()
    second = second_supervisor["username"]
    with browser_contexts(2, **SCREEN) as [(context_a, watch_a), (context_b, watch_b)]:
        page_a = context_a.new_page()
        sign_in(page_a, server, SUPERVISOR, PASSWORD, f"/desk/cases/{cid}")
        page_a.wait_for_function(READY)
        page_a.wait_for_function("() => window.gisCase.lock && window.gisCase.lock.mine")
        assert page_a.get_by_test_id("lock").is_hidden()
        held = lock_of(server, cid)
        assert held["holder"]["user_id"] == first["user_id"]

        # the second supervisor: who holds it, and nothing to press
        page_b = context_b.new_page()
        sign_in(page_b, server, second, PASSWORD, f"/desk/cases/{cid}")
        page_b.wait_for_function(READY)
        lock = page_b.get_by_test_id("lock")
        lock.wait_for()
        assert lock.inner_text() == "正在处理：" + held["holder"]["name"]
        controls = page_b.locator(".case-actions").locator("input, select, textarea, button")
        assert controls.count() > 3
        assert controls.evaluate_all("xs => xs.every(x => x.disabled)")
        assert page_b.get_by_test_id("do-dispatch").is_disabled()
        page_b.get_by_test_id("template-note").wait_for()  # drawn after the lock: disabled too
        assert page_b.get_by_test_id("template-note").is_disabled()
        screenshot(page_b, "case-page-locked")
        # the server says the same to the second supervisor
        auth_b = token(server, second)
        r = httpx.post(
            f"{server}/api/v1/cases/{cid}/actions",
            headers=auth_b,
            json={"action": "note", "note": "试一下"},
        )
        assert r.status_code == 409 and r.json()["error"] == "case_locked", r.text

        # the first leaves: the page's pagehide gives the lock back
        page_a.goto(f"{server}/desk/")
        for _ in range(50):
            if lock_of(server, cid)["holder"] is None:
                break
            page_a.wait_for_timeout(100)
        assert lock_of(server, cid)["holder"] is None, "the lock was not released on leaving"

        # the second, after a reload, holds it and may act
        page_b.reload()
        page_b.wait_for_function(READY)
        page_b.wait_for_function("() => window.gisCase.lock && window.gisCase.lock.mine")
        assert page_b.get_by_test_id("lock").is_hidden()
        assert lock_of(server, cid)["holder"]["user_id"] == second_supervisor["id"]
        assert not page_b.get_by_test_id("do-dispatch").is_disabled()

        # a template fills the note (the templates the API keeps for this case's notes)
        kept = httpx.get(
            f"{server}/api/v1/cases/{cid}/templates", headers=auth_b, params={"action": "note"}
        ).json()["templates"]
        assert kept, "no template for the internal note"
        picker = page_b.get_by_test_id("template-note")
        picker.wait_for()
        offered = picker.locator("option").evaluate_all(
            "os => os.filter(o => o.value).map(o => o.value)"
        )
        assert offered == [str(t["id"]) for t in kept]
        picker.select_option(str(kept[0]["id"]))
        assert page_b.get_by_test_id("note-note").input_value() == kept[0]["text_zh"]
        loads = page_b.evaluate("() => window.gisCase.loads")
        page_b.get_by_test_id("do-note").click()
        wait_loads(page_b, loads)
        note = page_b.locator('[data-testid="event"][data-action="note"]')
        assert note.locator(".ev-note").inner_text() == kept[0]["text_zh"]
        assert "王二" in note.inner_text()

        # a new category, with a reason: old and new on the timeline
        domains = httpx.get(f"{server}/api/v1/categories").json()["domains"]
        names = {k["code"]: k["name_zh"] for d in domains for k in d["children"]}
        old = case["category"]
        new = next(code for code in names if code != old)
        page_b.get_by_test_id("field-category").select_option(new)
        page_b.get_by_test_id("note-recategorize").fill("实为其他类问题，改类")
        loads = page_b.evaluate("() => window.gisCase.loads")
        page_b.get_by_test_id("do-recategorize").click()
        wait_loads(page_b, loads)
        assert api_case(server, cid)["category"] == new
        event = page_b.locator('[data-testid="event"][data-action="recategorize"]')
        assert event.get_by_test_id("ev-category").inner_text() == (
            f"类别: {names[old]} → {names[new]}"
        )
        assert "实为其他类问题，改类" in event.inner_text()
        assert page_b.get_by_test_id("fact-category").inner_text() == names[new]
        page_b.evaluate("() => { document.querySelector('.case-side').scrollTop = 0; }")
        screenshot(page_b, "case-page-recategorized")
        assert watch_a.external == [] and watch_b.external == []
        assert watch_a.console_errors == [] and watch_b.console_errors == []
