"""The notification sender as a real process: the outbox, deliveries that are never lost
nor doubled across a crash (SIGKILL), signed webhooks checked by a real receiver on
127.0.0.1, deadline reminders across restarts, quiet hours and the dead-letter list."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine, transaction
from gis_service.notify.fanout import fan_out_batch
from gis_service.notify.kinds import Kind
from gis_service.notify.quiet import quiet_until
from gis_service.notify.sender import Sender, backoff_seconds
from gis_service.timezone import zone
from tests.conftest import IN_GRID_1
from tests.webhook_receiver import WebhookReceiver

SECRET = "test-webhook-secret-0123456789"
ROOT = Path(__file__).resolve().parent.parent


def report(api, who, point=IN_GRID_1, **extra) -> dict:
    r = api.post(
        "/api/v1/cases",
        headers=who,
        json={
            "category": "environment.garbage",
            "lon": point[0],
            "lat": point[1],
            "description": "楼下垃圾堆放",
            **extra,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


def act(api, who, case_id, action, **body) -> dict:
    r = api.post(f"/api/v1/cases/{case_id}/actions", headers=who, json={"action": action, **body})
    assert r.status_code == 200, r.text
    return r.json()


def subscribe(settings, url: str, kinds: list[str] | None = None, secret: str = SECRET) -> int:
    with transaction(settings) as conn:
        return conn.execute(
            text(
                "INSERT INTO webhook_subscription (name, url, secret, kinds) "
                "VALUES (:n, :u, :s, :k) RETURNING id"
            ),
            {"n": f"hook-{url}", "u": url, "s": secret, "k": kinds or []},
        ).scalar_one()


def start_sender(settings, **env: object) -> subprocess.Popen:
    """``gis-service notify run`` as a real process against the test database."""
    environ = {
        **os.environ,
        "GIS_DB_NAME": settings.db_name,
        "GIS_SECRET_KEY": settings.secret_key or "",
        "GIS_NOTIFY_POLL_SECONDS": "0.05",
        "GIS_NOTIFY_SCHEDULE_SECONDS": "0.2",
        **{f"GIS_{k.upper()}": str(v) for k, v in env.items()},
    }
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gis-service"), "notify", "run", "--quiet"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    end = time.monotonic() + 30  # running once its first loop wrote its heartbeat
    while not rows(settings, "SELECT 1 FROM notify_heartbeat WHERE pid = :p", p=proc.pid):
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < end, "the sender did not start"
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    return err.decode()


def rows(settings, sql: str, **params) -> list:
    with get_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).mappings().all()


def webhook_deliveries(settings) -> list:
    return rows(
        settings,
        "SELECT id::text, status, attempts, kind, source, last_error FROM notify_delivery "
        "WHERE channel = 'webhook' ORDER BY created_at, id",
    )


def test_a_case_dispatched_while_the_sender_is_down_is_delivered_once_after_it_starts(
    case_city,
) -> None:
    s = case_city["settings"]
    with WebhookReceiver(SECRET) as hook, TestClient(create_app(s)) as api:
        subscribe(s, hook.url)
        case = report(api, case_city["worker1"])
        act(api, case_city["sub1_sup"], case["id"], "accept")
        act(api, case_city["sub1_sup"], case["id"], "dispatch", team_id=case_city["teams"]["a"])
        # the events are in the outbox, written with them; nothing went out yet
        pending = rows(s, "SELECT event_id FROM notify_outbox WHERE done_at IS NULL")
        events = rows(s, "SELECT id FROM case_event WHERE case_id = :c", c=case["id"])
        assert sorted(r["event_id"] for r in pending) == sorted(r["id"] for r in events)
        assert hook.requests == 0
        sender = start_sender(s)
        try:
            hook.wait_for(2)  # new_case (report) and dispatched
            time.sleep(1.0)  # time for a double to show, were there one
        finally:
            stop(sender)
        # the team's member and the supervisors covering the case's unit got inbox rows
        inbox = rows(
            s,
            "SELECT u.username, n.kind FROM notification n JOIN app_user u ON u.id = n.user_id "
            "ORDER BY 1, 2",
        )
    assert hook.bad == 0
    assert set(hook.counts.values()) == {1}
    assert sorted(b["kind"] for b in hook.bodies.values()) == ["dispatched", "new_case"]
    sent = webhook_deliveries(s)
    assert [d["status"] for d in sent] == ["sent", "sent"]
    assert {d["id"] for d in sent} == set(hook.counts)
    assert ("ta", "dispatched") in {(r["username"], r["kind"]) for r in inbox}
    assert {r["username"] for r in inbox if r["kind"] == "new_case"} == {"sup-d", "sup-s1"}
    assert rows(s, "SELECT count(*) AS n FROM notify_outbox WHERE done_at IS NULL")[0]["n"] == 0


def test_a_sender_killed_mid_batch_redelivers_nothing_twice(case_city) -> None:
    s = case_city["settings"]
    n = 24
    with WebhookReceiver(SECRET, delay=0.3) as hook, TestClient(create_app(s)) as api:
        subscribe(s, hook.url, kinds=[Kind.new_case.value])
        for _ in range(n):
            report(api, case_city["worker1"])
        sender = start_sender(s, notify_workers=4, notify_batch=8)
        end = time.monotonic() + 30  # kill it while a batch is on its way
        while not rows(s, "SELECT 1 FROM notify_delivery WHERE status = 'sending'"):
            assert time.monotonic() < end and sender.poll() is None
            time.sleep(0.02)
        time.sleep(0.1)
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=10)
        before = {d["id"]: d["status"] for d in webhook_deliveries(s)}
        received_before = Counter(hook.counts)
        # the crash left claimed deliveries "sending": recognisable, retried after the lease
        in_flight = {i for i, st in before.items() if st == "sending"}
        assert in_flight, before
        sender = start_sender(s, notify_sending_lease_seconds=1)
        try:
            hook.wait_for(n, timeout=60)
            time.sleep(1.0)
        finally:
            stop(sender)
    after = webhook_deliveries(s)
    assert len(after) == n  # one delivery per event, however often the fan-out ran
    assert {d["status"] for d in after} == {"sent"}
    assert set(hook.counts) == {d["id"] for d in after}
    assert hook.bad == 0
    twice = {i for i, c in hook.counts.items() if c > 1}
    # only a delivery cut off mid-send may arrive again, and then with the same id
    assert twice <= in_flight
    assert all(hook.counts[i] == 1 for i, st in before.items() if st == "sent")
    assert all(received_before[i] <= 1 for i in received_before)


def test_a_wrong_signature_is_refused_by_the_receiver_and_dead_at_once(case_city) -> None:
    s = case_city["settings"]
    with WebhookReceiver(SECRET) as hook, TestClient(create_app(s)) as api:
        subscribe(s, hook.url, secret="another-secret-0123456789")
        report(api, case_city["worker1"])
        sender = Sender(s)
        sender.run(once=True)
    dead = webhook_deliveries(s)
    assert hook.bad == 1 and hook.received() == 0
    assert [(d["status"], d["attempts"]) for d in dead] == [("dead", 1)]
    assert "401" in dead[0]["last_error"]


def test_retries_back_off_then_dead_letter_and_an_admin_retry_delivers_with_the_same_id(
    case_city,
) -> None:
    s = case_city["settings"].model_copy(
        update={"notify_retry_base_seconds": 0.0, "notify_max_attempts": 3}
    )
    with WebhookReceiver(SECRET, answer=503) as hook, TestClient(create_app(s)) as api:
        subscribe(s, hook.url)
        report(api, case_city["worker1"])
        sender = Sender(s)
        for _ in range(5):
            sender.run(once=True)
        (dead,) = webhook_deliveries(s)
        assert (dead["status"], dead["attempts"]) == ("dead", 3)
        assert "503" in dead["last_error"] and "3 attempts" in dead["last_error"]
        assert hook.requests == 3
        r = api.get("/api/v1/admin/notify/dead-letters", headers=case_city["admin"])
        assert r.status_code == 200, r.text
        assert [(d["id"], d["last_error"]) for d in r.json()["items"]] == [
            (dead["id"], dead["last_error"])
        ]
        r = api.get("/api/v1/admin/notify/dead-letters", headers=case_city["sub1_sup"])
        assert r.status_code == 403
        hook.answer = 200
        r = api.post(
            f"/api/v1/admin/notify/deliveries/{dead['id']}/retry", headers=case_city["admin"]
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "pending"
        sender.run(once=True)
    (sent,) = webhook_deliveries(s)
    assert sent["status"] == "sent" and sent["id"] == dead["id"]
    assert dict(hook.counts) == {dead["id"]: 1}


def test_backoff_doubles_up_to_the_cap(settings) -> None:
    s = settings.model_copy(
        update={"notify_retry_base_seconds": 10, "notify_retry_cap_seconds": 60}
    )
    assert [backoff_seconds(n, s) for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_a_reminder_fires_once_per_case_and_threshold_across_a_restart(case_city) -> None:
    s = case_city["settings"]
    with WebhookReceiver(SECRET) as hook, TestClient(create_app(s)) as api:
        subscribe(s, hook.url, kinds=[Kind.near_deadline.value, Kind.overdue.value])
        near = report(api, case_city["worker1"])
        late = report(api, case_city["worker1"])
        for c in (near, late):
            act(api, case_city["sub1_sup"], c["id"], "accept")
            act(api, case_city["sub1_sup"], c["id"], "dispatch", team_id=case_city["teams"]["a"])
        with transaction(s) as conn:  # 80 % of a 10-hour span gone; 1 hour overdue
            conn.execute(
                text(
                    "UPDATE cases SET accepted_at = now() - interval '8 hours', "
                    "deadline_at = now() + interval '2 hours' WHERE id = :id"
                ),
                {"id": near["id"]},
            )
            conn.execute(
                text(
                    "UPDATE cases SET accepted_at = now() - interval '11 hours', "
                    "deadline_at = now() - interval '1 hour' WHERE id = :id"
                ),
                {"id": late["id"]},
            )
        for _ in range(2):  # a sender, stopped and started again
            sender = start_sender(s, notify_reminder_shares="[0.5, 0.75]")
            try:
                hook.wait_for(3)
                time.sleep(1.0)
            finally:
                stop(sender)
    reminders = rows(
        s, "SELECT case_id, kind, threshold::float AS t FROM notify_reminder ORDER BY 1, 2, 3"
    )
    assert [(r["case_id"], r["kind"], r["t"]) for r in reminders] == [
        (near["id"], "near_deadline", 0.5),
        (near["id"], "near_deadline", 0.75),
        (late["id"], "overdue", 1.0),
    ]
    assert hook.requests == 3 and set(hook.counts.values()) == {1}
    inbox = rows(
        s,
        "SELECT u.username, n.kind, n.case_id FROM notification n "
        "JOIN app_user u ON u.id = n.user_id WHERE n.source LIKE 'reminder:%' ORDER BY 1, 2, 3",
    )
    # the team hears of both; the supervisors covering the case only of the overdue one
    assert Counter((r["username"], r["kind"]) for r in inbox) == {
        ("ta", "near_deadline"): 2,
        ("ta", "overdue"): 1,
        ("sup-d", "overdue"): 1,
        ("sup-s1", "overdue"): 1,
    }


def dispatch_to_quiet_sms(s, case_city: dict, starts, ends) -> tuple[dict, dict]:
    """Team a's member (ta) gets a phone, quiet hours ``starts``–``ends`` and SMS for
    dispatches; a normal and an urgent case are then dispatched to team a. Returns both."""
    with transaction(s) as conn:
        conn.execute(text("UPDATE app_user SET phone = '13800000001' WHERE username = 'ta'"))
        conn.execute(
            text(
                "INSERT INTO notify_quiet_hours (user_id, starts, ends) "
                "SELECT id, :a, :b FROM app_user WHERE username = 'ta'"
            ),
            {"a": starts, "b": ends},
        )
        conn.execute(
            text(
                "INSERT INTO notify_preference (user_id, kind, channel, enabled) "
                "SELECT id, 'dispatched', 'sms', true FROM app_user WHERE username = 'ta'"
            )
        )
    with TestClient(create_app(s)) as api:
        calm = report(api, case_city["worker1"])
        urgent = report(api, case_city["worker1"], priority="urgent")
        for c in (calm, urgent):
            act(api, case_city["sub1_sup"], c["id"], "accept")
            act(api, case_city["sub1_sup"], c["id"], "dispatch", team_id=case_city["teams"]["a"])
    return calm, urgent


def test_quiet_hours_hold_a_non_urgent_sms_until_their_end(case_city) -> None:
    s = case_city["settings"]
    now_local = datetime.now(UTC).astimezone(zone(s))
    starts = (now_local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    ends = (now_local + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    calm, urgent = dispatch_to_quiet_sms(s, case_city, starts, ends)
    before = datetime.now(UTC)
    with transaction(s) as conn:
        fan_out_batch(conn, s, 100)
    sms = rows(
        s,
        "SELECT (d.payload ->> 'case_id')::bigint AS case_id, d.next_attempt_at, d.urgent "
        "FROM notify_delivery d WHERE d.channel = 'sms' ORDER BY 1",
    )
    assert [r["case_id"] for r in sms] == [calm["id"], urgent["id"]]
    held, sent_now = sms
    end = quiet_until(before, starts, ends, s)
    assert end is not None and held["next_attempt_at"] == end and not held["urgent"]
    assert sent_now["urgent"] and sent_now["next_attempt_at"] <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("23:30", "2026-12-02 07:00"),
        ("03:00", "2026-12-01 07:00"),
        ("07:00", None),
        ("12:00", None),
        ("22:00", "2026-12-02 07:00"),
    ],
)
def test_quiet_until_spans_midnight_in_service_time(settings, at, expected) -> None:
    z = zone(settings)
    h, m = map(int, at.split(":"))
    moment = datetime(2026, 12, 1, h, m, tzinfo=z)
    end = quiet_until(moment, clock(22), clock(7), settings)
    got = end.astimezone(z).strftime("%Y-%m-%d %H:%M") if end else None
    assert got == expected
