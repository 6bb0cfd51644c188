"""The sender's pruning (notify/sender.py ``Sender.prune``): done outbox rows and sent
deliveries older than ``notify_retention_days`` go, in batches; newer ones stay; dead
letters stay until their own longer retention (and a retried one is no dead letter);
the inbox is never pruned. Rows are made by the real path (cases reported through the
API, a real sender delivering to real receivers on 127.0.0.1), then aged."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import transaction
from gis_service.notify.sender import Sender
from tests.test_notify_sender import SECRET, report, rows, subscribe
from tests.webhook_receiver import WebhookReceiver


def age(settings, table: str, column: str, ids: list, days: float) -> None:
    """Move ``column`` of the rows ``ids`` back ``days`` days."""
    key = "id::text" if table == "notify_delivery" else "id"
    with transaction(settings) as conn:
        conn.execute(
            text(
                f"UPDATE {table} SET {column} = {column} - make_interval(days => :d) "
                f"WHERE {key} = ANY(:ids)"
            ),
            {"d": days, "ids": [str(i) if key != "id" else i for i in ids]},
        )


def ids(settings, sql: str) -> list:
    return [r["id"] for r in rows(settings, sql)]


def test_old_outbox_rows_and_sent_deliveries_go_newer_and_dead_letters_stay(case_city) -> None:
    s = case_city["settings"].model_copy(
        update={
            "notify_retention_days": 30,
            "notify_dead_retention_days": 180,
            "notify_prune_batch": 2,  # several batches
        }
    )
    with (
        WebhookReceiver(SECRET) as ok,
        WebhookReceiver(SECRET, answer=400) as refusing,
        TestClient(create_app(s)) as api,
    ):
        subscribe(s, ok.url)
        subscribe(s, refusing.url)
        for _ in range(6):
            report(api, case_city["worker1"])
        sender = Sender(s)
        sender.run(once=True)
        ok.wait_for(6)
    outbox = ids(s, "SELECT id FROM notify_outbox WHERE done_at IS NOT NULL ORDER BY id")
    sent = ids(s, "SELECT id::text AS id FROM notify_delivery WHERE status = 'sent' ORDER BY 1")
    dead = ids(s, "SELECT id::text AS id FROM notify_delivery WHERE status = 'dead' ORDER BY 1")
    assert len(outbox) == 6 and len(sent) == 6 and len(dead) == 6
    inbox = rows(s, "SELECT count(*) AS n FROM notification")[0]["n"]
    assert inbox > 0
    # a day either side of the retention; the dead letters a day either side of theirs
    age(s, "notify_outbox", "done_at", outbox[:4], 31)
    age(s, "notify_outbox", "done_at", outbox[4:], 29)
    age(s, "notify_delivery", "sent_at", sent[:5], 31)
    age(s, "notify_delivery", "sent_at", sent[5:], 29)
    age(s, "notify_delivery", "updated_at", dead[:3], 31)  # past 30 days, not past 180
    age(s, "notify_delivery", "updated_at", dead[3:4], 181)
    with transaction(s) as conn:  # the inbox is older than any retention: it stays
        conn.execute(text("UPDATE notification SET created_at = now() - interval '400 days'"))

    pruned = Sender(s).prune()

    assert pruned == {"outbox": 4, "sent": 5, "dead": 1}
    assert ids(s, "SELECT id FROM notify_outbox ORDER BY id") == outbox[4:]
    assert ids(s, "SELECT id::text AS id FROM notify_delivery WHERE status = 'sent'") == sent[5:]
    left = ids(s, "SELECT id::text AS id FROM notify_delivery WHERE status = 'dead' ORDER BY 1")
    assert left == sorted(dead[:3] + dead[4:])
    assert rows(s, "SELECT count(*) AS n FROM notification")[0]["n"] == inbox
    # a second pass finds nothing; the sender's own loop prunes too (its first loop)
    assert Sender(s).prune() == {"outbox": 0, "sent": 0, "dead": 0}
    age(s, "notify_delivery", "updated_at", dead[:1], 200)
    looped = Sender(s)
    looped.run(once=True)
    assert looped.totals.pruned == 1
    assert dead[0] not in ids(s, "SELECT id::text AS id FROM notify_delivery")


def test_a_retried_dead_letter_is_not_pruned_as_dead(case_city) -> None:
    s = case_city["settings"].model_copy(update={"notify_dead_retention_days": 1})
    with WebhookReceiver(SECRET, answer=400) as refusing, TestClient(create_app(s)) as api:
        subscribe(s, refusing.url)
        report(api, case_city["worker1"])
        Sender(s).run(once=True)
        (letter,) = ids(s, "SELECT id::text AS id FROM notify_delivery WHERE status = 'dead'")
        age(s, "notify_delivery", "updated_at", [letter], 2)
        r = api.post(f"/api/v1/admin/notify/deliveries/{letter}/retry", headers=case_city["admin"])
        assert r.status_code == 200, r.text
    assert Sender(s).prune()["dead"] == 0
    assert ids(s, "SELECT id::text AS id FROM notify_delivery WHERE status = 'pending'") == [letter]
