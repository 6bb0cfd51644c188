"""The admin notification API's additions for the admin pages: dead letters filtered by
channel (422 naming an unknown one), and each webhook subscription's latest delivery."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import transaction
from gis_service.notify.channels import CHANNELS
from gis_service.notify.sender import Sender
from tests.test_notify_sender import SECRET, report, subscribe
from tests.webhook_receiver import WebhookReceiver

DEAD = "/api/v1/admin/notify/dead-letters"


def test_dead_letters_by_channel_and_webhooks_with_their_last_delivery(case_city) -> None:
    s = case_city["settings"]
    admin = case_city["admin"]
    with transaction(s) as conn:  # sup-s1 hears of new cases; no SMTP server: dead at once
        conn.execute(text("UPDATE app_user SET email = 's1@example.org' WHERE username = 'sup-s1'"))
    with (
        WebhookReceiver(SECRET, answer=400) as refusing,
        WebhookReceiver(SECRET) as ok,
        TestClient(create_app(s)) as api,
    ):
        bad_id = subscribe(s, refusing.url)
        good_id = subscribe(s, ok.url)
        quiet_id = subscribe(s, ok.url + "/other", kinds=["overdue"])
        report(api, case_city["worker1"])
        Sender(s).run(once=True)
        ok.wait_for(1)
        every = api.get(DEAD, headers=admin).json()
        assert every["total"] == 2
        assert sorted(d["channel"] for d in every["items"]) == ["email", "webhook"]
        for channel in CHANNELS:
            got = api.get(DEAD, headers=admin, params={"channel": channel}).json()
            want = [d for d in every["items"] if d["channel"] == channel]
            assert got == {"items": want, "total": len(want)}, channel
        r = api.get(DEAD, headers=admin, params={"channel": "pigeon"})
        assert r.status_code == 422 and r.json()["field"] == "channel", r.text
        hooks = {
            h["id"]: h for h in api.get("/api/v1/admin/webhooks", headers=admin).json()["webhooks"]
        }
        one = api.get(f"/api/v1/admin/webhooks/{bad_id}", headers=admin).json()
    assert one == hooks[bad_id]
    assert hooks[bad_id]["last_status"] == "dead" and "400" in hooks[bad_id]["last_error"]
    assert hooks[good_id]["last_status"] == "sent" and hooks[good_id]["last_error"] is None
    assert hooks[good_id]["last_delivery_at"] is not None
    assert hooks[quiet_id]["last_status"] is None and hooks[quiet_id]["last_delivery_at"] is None
