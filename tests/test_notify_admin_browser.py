"""The notification admin pages in headless Chromium against a real server: real dead
letters (a webhook receiver on 127.0.0.1 answering 500, an e-mail with no SMTP server
configured) made by a real sender run, listed and filtered by channel on
``/admin/dead-letters`` and retried from it (per-row results, one refused because it was
retried meanwhile); the retried webhook reaches the now-working receiver exactly once.
A webhook subscription created on ``/admin/webhooks`` (its kinds ticked from the server's
list) receives a delivery signed with the secret the page showed once."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import transaction
from gis_service.notify.kinds import KINDS, Kind
from gis_service.notify.sender import Sender
from tests.browser import browser_context, live_server, screenshot
from tests.test_admin_browser import DESK, at_the_front_door, open_section
from tests.test_notify_sender import SECRET, act, report, rows, subscribe
from tests.webhook_receiver import WebhookReceiver

PASSWORD = "password-123"
ROWS = "() => document.querySelectorAll('[data-testid=table] tbody tr').length"


def dead(settings) -> list:
    return rows(
        settings,
        "SELECT id::text, channel, status, attempts, last_error FROM notify_delivery "
        "WHERE status = 'dead' ORDER BY channel",
    )


def test_dead_letters_are_listed_filtered_and_retried_from_the_page(case_city) -> None:
    s = case_city["settings"].model_copy(update={"notify_max_attempts": 1})
    with transaction(s) as conn:  # ta's e-mail: no SMTP server is configured → dead at once
        conn.execute(text("UPDATE app_user SET email = 'ta@example.org' WHERE username = 'ta'"))
    with WebhookReceiver(SECRET, answer=500) as hook, TestClient(create_app(s)) as api:
        subscribe(s, hook.url, kinds=[Kind.dispatched.value])
        case = report(api, case_city["worker1"])
        act(api, case_city["sub1_sup"], case["id"], "accept")
        act(api, case_city["sub1_sup"], case["id"], "dispatch", team_id=case_city["teams"]["a"])
        Sender(s).run(once=True)
        letters = {d["channel"]: d for d in dead(s)}
        assert set(letters) == {"email", "webhook"}, letters
        assert hook.requests == 1 and "500" in letters["webhook"]["last_error"]
        webhook_id, email_id = letters["webhook"]["id"], letters["email"]["id"]

        with live_server(s) as base, browser_context(**DESK) as (context, watch):
            page = context.new_page()
            at_the_front_door(page, base, "admin", PASSWORD, "/desk/")
            open_section(page, base, "dead-letters")
            assert page.evaluate(ROWS) == 2
            row = page.get_by_test_id(f"row-{webhook_id}")
            assert row.locator("[data-col=channel]").inner_text() == "Webhook"
            assert row.locator("[data-col=kind]").inner_text() == "派遣至本队"
            assert row.locator("[data-col=recipient]").inner_text() == hook.url
            assert row.locator("[data-col=attempts]").inner_text() == "1"
            assert "500" in row.locator("[data-col=last_error]").inner_text()
            email_row = page.get_by_test_id(f"row-{email_id}")
            assert email_row.locator("[data-col=channel]").inner_text() == "电子邮件"
            assert email_row.locator("[data-col=recipient]").inner_text() == "ta@example.org"
            screenshot(page, "admin-dead-letters")

            # filter by channel: the server answers only that channel's letters
            page.get_by_test_id("filter-channel").select_option("webhook")
            loads = page.evaluate("() => window.gisAdmin.loads")
            page.get_by_test_id("filter-submit").click()
            page.wait_for_function(f"() => window.gisAdmin.loads > {loads}")
            assert page.evaluate(ROWS) == 1 and page.get_by_test_id(f"row-{webhook_id}").count()
            page.get_by_test_id("filter-channel").select_option("")
            page.get_by_test_id("filter-submit").click()
            page.wait_for_function(f"() => {ROWS}() === 2")

            # retry both; the e-mail was retried meanwhile by someone else: refused (409)
            hook.answer = 200
            page.get_by_test_id("pick-all").click()
            r = api.post(
                f"/api/v1/admin/notify/deliveries/{email_id}/retry", headers=case_city["admin"]
            )
            assert r.status_code == 200, r.text
            page.get_by_test_id("retry-selected").click()
            page.get_by_test_id("retried").wait_for()
            ok = page.get_by_test_id(f"result-{webhook_id}")
            refused = page.get_by_test_id(f"result-{email_id}")
            assert ok.get_attribute("data-ok") == "true" and ok.inner_text() == "已重新排队"
            assert refused.get_attribute("data-ok") == "false"
            assert "pending" in refused.inner_text() and "not dead" in refused.inner_text()
            assert page.get_by_test_id("retried").inner_text() == "重发结果：成功 1 条，失败 1 条"
            assert page.get_by_test_id(f"retry-{webhook_id}").is_disabled()
            screenshot(page, "admin-dead-letters-retried")

            # the sender delivers the retried letter once, with its one id
            Sender(s).run(once=True)
            hook.wait_for(1)
            assert dict(hook.counts) == {webhook_id: 1} and hook.bad == 0
            assert hook.bodies[webhook_id]["kind"] == Kind.dispatched.value
            # reloaded: the delivered letter is gone, the e-mail is dead again
            open_section(page, base, "dead-letters", "en")
            assert page.evaluate(ROWS) == 1
            en_row = page.get_by_test_id(f"row-{email_id}")
            assert en_row.locator("[data-col=channel]").inner_text() == "E-mail"
            assert page.get_by_test_id(f"retry-{email_id}").inner_text() == "Retry"
            assert watch.external == []
            assert watch.console_errors == [
                "Failed to load resource: the server responded with a status of 409 (Conflict)"
            ]
    assert {d["channel"] for d in dead(s)} == {"email"}
    sent = rows(s, "SELECT status FROM notify_delivery WHERE id = CAST(:i AS uuid)", i=webhook_id)
    assert [r["status"] for r in sent] == ["sent"]


def test_a_webhook_created_on_the_page_receives_a_signed_delivery(case_city) -> None:
    s = case_city["settings"]
    # the receiver learns its secret from the page, which shows it once
    with (
        WebhookReceiver("not-yet-known-secret") as hook,
        live_server(s) as base,
        browser_context(**DESK) as (context, watch),
    ):
        page = context.new_page()
        at_the_front_door(page, base, "admin", PASSWORD, "/desk/")
        open_section(page, base, "webhooks")
        # the kinds offered are the server's list, in its order
        boxes = page.locator("[data-testid=input-kinds] input[type=checkbox]")
        assert boxes.evaluate_all("bs => bs.map(b => b.value)") == [k.value for k in KINDS]
        # a refusal from the server shows beside its field
        page.get_by_test_id("input-name").fill("城管平台")
        page.get_by_test_id("input-url").fill("ftp://127.0.0.1/hook")
        page.get_by_test_id("submit").click()
        page.get_by_test_id("error-url").wait_for()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=error-url]').textContent !== ''"
        )
        assert page.evaluate(ROWS) == 0
        page.get_by_test_id("input-url").fill(hook.url)
        page.get_by_test_id("input-kinds-new_case").check()
        page.get_by_test_id("submit").click()
        page.get_by_test_id("new-secret").wait_for()
        hook.secret = page.get_by_test_id("new-secret").inner_text()
        assert len(hook.secret) >= 16
        row = page.get_by_test_id("row-城管平台")
        assert row.locator("[data-col=kinds]").inner_text() == "辖区新案件"
        assert row.locator("[data-col=last_status]").inner_text() == "无"
        screenshot(page, "admin-webhooks")
        (made,) = rows(s, "SELECT id, kinds, active FROM webhook_subscription")
        assert made["kinds"] == ["new_case"] and made["active"]

        with TestClient(create_app(s)) as api:
            case = report(api, case_city["worker1"])
            act(api, case_city["sub1_sup"], case["id"], "accept")
        Sender(s).run(once=True)
        hook.wait_for(1)
        assert hook.bad == 0 and set(hook.counts.values()) == {1}
        (body,) = hook.bodies.values()
        assert body["kind"] == "new_case" and body["payload"]["case_id"] == case["id"]

        # the page shows the delivery; disable, then delete, from the page
        open_section(page, base, "webhooks")
        row = page.get_by_test_id("row-城管平台")
        assert row.locator("[data-col=last_status]").inner_text().startswith("已送达 · ")
        page.get_by_test_id("deactivate-城管平台").click()
        page.get_by_test_id("activate-城管平台").wait_for()
        assert row.locator("[data-col=active]").inner_text() == "否"
        assert [r["active"] for r in rows(s, "SELECT active FROM webhook_subscription")] == [False]
        page.on("dialog", lambda d: d.accept())
        page.get_by_test_id("delete-城管平台").click()
        page.get_by_test_id("deleted").wait_for()
        assert page.evaluate(ROWS) == 0
        open_section(page, base, "webhooks", "en")
        assert page.get_by_test_id("submit").inner_text() == "Create"
        assert "New case in my area" in page.get_by_test_id("input-kinds").inner_text()
        assert watch.external == []
        assert watch.console_errors == [
            "Failed to load resource: the server responded with a status of 422 "
            "(Unprocessable Entity)"
        ]
    assert rows(s, "SELECT id FROM webhook_subscription") == []
