"""The notification pages in headless Chromium against a real server (issue 16 item 1,
"per-user preferences and quiet hours"): the desk's /desk/notifications and the phone's
inbox settings change the choices and the quiet hours that GET /preferences then answers;
bad quiet hours show the server's own error text and change nothing; marking read on the
page lowers the navigation badge; the kinds, channels and reasons on the pages are the
API's. Every figure compared is read from the API, never typed here."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from gis_service.app import create_app
from gis_service.auth.users import update_user
from gis_service.db.engine import transaction
from gis_service.desk.nav import INBOX_PAGE
from gis_service.desk.notifications_page import PAGE_SIZE
from tests.browser import browser_context, live_server, screenshot, sign_in
from tests.test_mobile_browser import phone
from tests.test_notify_api import fan_out
from tests.test_notify_sender import act, report

PASSWORD = "password-123"  # tests/conftest.py make_user
PREFS = "/api/v1/notifications/preferences"
#: what Chromium logs for the one refusal each settings test provokes (a 4xx answer)
REFUSED = (
    "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
)


@pytest.fixture
def city(case_city):
    """sub1's supervisor (sup-s1) hears of PAGE_SIZE + 1 new cases (one page and one
    more), has an e-mail address and no phone; team a's member (ta) hears of one dispatch
    and has a phone and no e-mail address."""
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        cases = [report(api, case_city["worker1"]) for _ in range(PAGE_SIZE + 1)]
        act(api, case_city["sub1_sup"], cases[0]["id"], "accept")
        act(
            api,
            case_city["sub1_sup"],
            cases[0]["id"],
            "dispatch",
            team_id=case_city["teams"]["a"],
        )
    with transaction(s) as conn:
        update_user(conn, "sup-s1", email="sup-s1@example.org")
        update_user(conn, "ta", phone="13800000001")
    fan_out(s)
    with live_server(s) as base:
        yield {**case_city, "base": base}


def get(base: str, auth: dict, path: str) -> dict:
    r = httpx.get(base + path, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def choices(prefs: dict) -> dict[tuple[str, str], dict]:
    return {(c["kind"], c["channel"]): c for c in prefs["choices"]}


def flip_one(prefs: dict) -> tuple[str, str, bool]:
    """The first kind × reachable channel of the answer, and its setting flipped."""
    reachable = [ch["code"] for ch in prefs["channels"] if ch["reachable"]]
    assert reachable, prefs["channels"]
    c = next(c for c in prefs["choices"] if c["channel"] in reachable)
    return c["kind"], c["channel"], not c["enabled"]


def other_times(quiet: dict) -> tuple[str, str]:
    """Quiet hours differing from the answer's in both ends (an hour later)."""

    def later(hhmm: str) -> str:
        h, m = hhmm.split(":")
        return f"{(int(h) + 1) % 24:02d}:{m}"

    return later(quiet["starts"]), later(quiet["ends"])


def no_overflow(page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")


def test_the_desk_page_sets_choices_and_quiet_hours(city) -> None:
    base, sup = city["base"], city["sub1_sup"]
    before = get(base, sup, PREFS)
    kind, channel, value = flip_one(before)
    starts, ends = other_times(before["quiet_hours"])
    with browser_context(viewport={"width": 1366, "height": 768}) as (context, watch):
        page = context.new_page()
        sign_in(page, base, "sup-s1", PASSWORD, INBOX_PAGE)
        page.wait_for_function("() => window.gisNotifyPage && window.gisNotifyPage.ready")
        # the table is the API's kinds × channels, its words the API's labels
        for k in before["kinds"]:
            assert k["label"]["zh"] in page.get_by_test_id(f"prefs-kind-{k['code']}").inner_text()
        for ch in before["channels"]:
            boxes = page.locator(f"[data-testid^=pref-][data-channel={ch['code']}]")
            assert boxes.count() == len(before["kinds"])
            if ch["reachable"]:
                assert all(boxes.nth(i).is_enabled() for i in range(boxes.count()))
            else:  # disabled, with the reason under the channel's name
                assert not any(boxes.nth(i).is_enabled() for i in range(boxes.count()))
                assert not any(boxes.nth(i).is_checked() for i in range(boxes.count()))
                reason = page.get_by_test_id(f"channel-reason-{ch['code']}").inner_text()
                assert reason == ch["unreachable_reason"]["zh"]
        assert {ch["code"]: ch["reachable"] for ch in before["channels"]} == {
            "email": True,
            "sms": False,
        }
        box = page.get_by_test_id(f"pref-{kind}-{channel}")
        assert box.is_checked() is not value
        box.set_checked(value)
        page.get_by_test_id("quiet-starts").fill(starts)
        page.get_by_test_id("quiet-ends").fill(ends)
        page.get_by_test_id("prefs-save").click()
        result = page.get_by_test_id("prefs-result")
        page.wait_for_function("() => window.gisNotifyPage.saves === 1")
        assert result.inner_text() == "已保存"
        after = get(base, sup, PREFS)
        assert choices(after)[(kind, channel)] == {
            "kind": kind,
            "channel": channel,
            "enabled": value,
            "chosen": True,
        }
        # only the change was sent: every other choice still follows its default
        assert [k for k, c in choices(after).items() if c["chosen"]] == [(kind, channel)]
        assert after["quiet_hours"] == {"starts": starts, "ends": ends, "chosen": True}
        assert page.get_by_test_id(f"pref-{kind}-{channel}").is_checked() is value
        assert no_overflow(page) <= 0
        screenshot(page, "notify-desk-settings")

        # bad quiet hours: the server's error text, the field marked, nothing stored
        page.get_by_test_id("quiet-starts").fill("")
        page.get_by_test_id("prefs-save").click()
        page.wait_for_selector("[data-testid=prefs-result].error")
        said = httpx.put(
            base + PREFS, headers=sup, json={"quiet_hours": {"starts": "", "ends": ends}}
        )
        assert said.status_code == 422
        assert said.json()["detail"] in result.inner_text()
        assert page.get_by_test_id("quiet-starts").get_attribute("aria-invalid") == "true"
        assert get(base, sup, PREFS) == after
        screenshot(page, "notify-desk-settings-error")
    assert (watch.console_errors, watch.external) == ([REFUSED], [])


def test_the_desk_page_lists_pages_and_marks_read_with_the_badge(city) -> None:
    base, sup = city["base"], city["sub1_sup"]
    inbox = get(base, sup, f"/api/v1/notifications?limit={PAGE_SIZE}")
    total = inbox["unread"]
    assert total == PAGE_SIZE + 1 and inbox["next_before_id"] is not None
    with browser_context(viewport={"width": 1366, "height": 768}) as (context, watch):
        page = context.new_page()
        sign_in(page, base, "sup-s1", PASSWORD, "/desk/")
        # the navigation's inbox list leads to the page
        badge = page.get_by_test_id("nav-unread")
        page.wait_for_function(
            "n => document.querySelector('[data-testid=nav-unread]').textContent === n",
            arg=str(total),
        )
        page.get_by_test_id("nav-inbox").click()
        link = page.get_by_test_id("inbox-page")
        assert link.inner_text() == "全部通知与设置"
        link.click()
        page.wait_for_url(f"**{INBOX_PAGE}")
        page.wait_for_function("() => window.gisNotifyPage && window.gisNotifyPage.ready")
        rows = page.get_by_test_id("notify-row")
        assert rows.count() == PAGE_SIZE
        assert [int(rows.nth(i).get_attribute("data-id")) for i in range(PAGE_SIZE)] == [
            n["id"] for n in inbox["items"]
        ]
        # each links to its case page
        first = inbox["items"][0]
        assert rows.first.get_by_test_id("notify-case").get_attribute("href") == (
            f"/desk/cases/{first['case_id']}"
        )
        assert rows.first.get_by_test_id("notify-case").inner_text() == first["case_no"]
        # the next page holds the rest
        page.get_by_test_id("notify-older").click()
        page.wait_for_function("() => window.gisNotifyPage.loads === 2")
        rest = get(base, sup, f"/api/v1/notifications?before_id={inbox['next_before_id']}")
        assert rows.count() == len(rest["items"]) == 1
        assert int(rows.first.get_attribute("data-id")) == rest["items"][0]["id"]
        page.get_by_test_id("notify-newer").click()
        page.wait_for_function("() => window.gisNotifyPage.loads === 3")
        # marking one read lowers the badge, the page's count and the API's
        rows.nth(1).get_by_test_id("notify-mark-read").click()
        page.wait_for_function(
            "n => document.querySelector('[data-testid=nav-unread]').textContent === n",
            arg=str(total - 1),
        )
        assert get(base, sup, "/api/v1/notifications/unread")["unread"] == total - 1
        assert str(total - 1) in page.get_by_test_id("notify-unread").inner_text()
        assert "unread" not in (rows.nth(1).get_attribute("class") or "")
        assert rows.nth(1).get_by_test_id("notify-mark-read").count() == 0
        # only the unread
        page.get_by_test_id("notify-unread-only").check()
        page.wait_for_function("() => window.gisNotifyPage.loads === 5")
        assert rows.count() == PAGE_SIZE  # 20 of the 20 still unread
        screenshot(page, "notify-desk-inbox-page")
        page.get_by_test_id("notify-read-all").click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=nav-unread]').textContent === '0'"
        )
        assert badge.inner_text() == "0"
        assert get(base, sup, "/api/v1/notifications/unread")["unread"] == 0
        assert rows.count() == 0
        assert no_overflow(page) <= 0
        # English on ?lang=en: the kinds' English labels, from the API
        page.goto(f"{base}{INBOX_PAGE}?lang=en")
        page.wait_for_function("() => window.gisNotifyPage && window.gisNotifyPage.ready")
        kinds = get(base, sup, PREFS)["kinds"]
        for k in kinds:
            assert k["label"]["en"] in page.get_by_test_id(f"prefs-kind-{k['code']}").inner_text()
    assert (watch.console_errors, watch.external) == ([], [])


def test_the_phone_sets_choices_and_quiet_hours(city) -> None:
    base, ta = city["base"], city["team_a"]
    before = get(base, ta, PREFS)
    assert {ch["code"]: ch["reachable"] for ch in before["channels"]} == {
        "email": False,
        "sms": True,
    }
    kind, channel, value = flip_one(before)
    assert channel == "sms"
    starts, ends = other_times(before["quiet_hours"])
    with browser_context(**phone(113.01, 34.07)) as (context, watch):
        page = context.new_page()
        page.goto(f"{base}/m/")
        page.get_by_test_id("login-username").fill("ta")
        page.get_by_test_id("login-password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        page.get_by_test_id("tab-inbox").click()
        page.get_by_test_id("inbox-settings").click()
        page.get_by_test_id("prefs-form").wait_for()
        for k in before["kinds"]:
            assert k["label"]["zh"] in page.get_by_test_id(f"prefs-kind-{k['code']}").inner_text()
        email = next(ch for ch in before["channels"] if ch["code"] == "email")
        assert email["unreachable_reason"]["zh"] in (
            page.get_by_test_id("channel-reason-email").inner_text()
        )
        assert not page.get_by_test_id(f"pref-{kind}-email").is_enabled()
        # a thumb's targets: the check boxes' labels are 48 px high; no sideways scroll
        box = page.get_by_test_id(f"pref-{kind}-{channel}")
        label = box.locator("xpath=..").bounding_box()
        assert label and label["height"] >= 48
        assert no_overflow(page) <= 0
        box.set_checked(value)
        page.get_by_test_id("quiet-starts").fill(starts)
        page.get_by_test_id("quiet-ends").fill(ends)
        screenshot(page, "notify-phone-settings")
        page.get_by_test_id("prefs-save").click()
        result = page.get_by_test_id("prefs-result")
        result.wait_for()
        assert result.inner_text() == "已保存"
        after = get(base, ta, PREFS)
        assert choices(after)[(kind, channel)]["enabled"] is value
        assert [k for k, c in choices(after).items() if c["chosen"]] == [(kind, channel)]
        assert after["quiet_hours"] == {"starts": starts, "ends": ends, "chosen": True}

        # bad quiet hours: the server's error text on the phone too, nothing stored
        page.get_by_test_id("quiet-ends").fill("")
        page.get_by_test_id("prefs-save").click()
        error = page.get_by_test_id("prefs-error")
        error.wait_for()
        said = httpx.put(
            base + PREFS, headers=ta, json={"quiet_hours": {"starts": starts, "ends": ""}}
        )
        assert said.status_code == 422
        assert said.json()["detail"] in error.inner_text()
        assert get(base, ta, PREFS) == after
        screenshot(page, "notify-phone-settings-error")
        # English: the API's English labels
        page.get_by_test_id("lang-toggle").click()
        page.get_by_test_id("prefs-form").wait_for()
        for k in before["kinds"]:
            page.wait_for_function(
                "([id, s]) => (document.querySelector(`[data-testid=${id}]`) || {}).textContent"
                "?.includes(s)",
                arg=[f"prefs-kind-{k['code']}", k["label"]["en"]],
            )
    assert (watch.console_errors, watch.external) == ([REFUSED], [])
