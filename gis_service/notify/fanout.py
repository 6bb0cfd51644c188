"""From the outbox to notifications and deliveries, in one transaction per batch.

:func:`fan_out_batch` claims pending ``notify_outbox`` rows (``FOR UPDATE SKIP LOCKED``:
two senders never take the same row), turns each into inbox rows (``notification``) and
deliveries (``notify_delivery``) by the rules (notify/rules.py), and marks the rows done
— all in the caller's transaction, so a crash before the commit leaves the rows pending
and writes nothing, and a commit writes everything at once. The unique keys
(notification: user, kind, source; delivery: notification, channel, recipient and
subscription, kind, source) make a repeated fan-out write nothing twice anyway.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from gis_service.cases.workflow import STATUS_LABELS, Status
from gis_service.notify import rules
from gis_service.notify.kinds import DEFAULT_ON, KIND_LABELS, PERSONAL_CHANNELS, Kind
from gis_service.notify.quiet import quiet_until
from gis_service.settings import Settings
from gis_service.timezone import local_text

log = logging.getLogger(__name__)

CASE_SQL = """
SELECT c.id, c.case_no, c.status, case_status(c) AS status_now, c.priority, c.unit_code,
       c.handling_level, c.team_id, c.assignee_id, c.category_code, c.deadline_at,
       cat.name_zh AS category_name, u.name AS unit_name
  FROM cases c
  LEFT JOIN case_category cat ON cat.code = c.category_code
  LEFT JOIN admin_unit u ON u.code = c.unit_code
 WHERE c.id = :id
"""


@dataclass
class Batch:
    """What one call did: outbox rows done, inbox rows and deliveries written."""

    rows: int = 0
    notifications: int = 0
    deliveries: int = 0
    failed: int = 0


def fan_out_batch(conn: Connection, settings: Settings, limit: int) -> Batch:
    """Claim up to ``limit`` pending outbox rows (oldest first) and fan each out; rows are
    marked done (``done_at``), a row whose fan-out raised also gets ``error`` (a bug, not
    a delivery failure: it is logged and not retried forever)."""
    rows = (
        conn.execute(
            text(
                "SELECT id, event_id, reminder_id FROM notify_outbox WHERE done_at IS NULL "
                "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
            ),
            {"n": limit},
        )
        .mappings()
        .all()
    )
    batch = Batch(rows=len(rows))
    if not rows:
        return batch
    accounts = rules.load_accounts(conn)
    subscriptions = _subscriptions(conn)
    for row in rows:
        try:
            with conn.begin_nested():
                n, d = _fan_out_one(conn, settings, row, accounts, subscriptions)
            batch.notifications += n
            batch.deliveries += d
            error = None
        except Exception as exc:
            log.exception("fan-out of outbox row %s failed", row["id"])
            batch.failed += 1
            error = f"{type(exc).__name__}: {exc}"[:2000]
        conn.execute(
            text("UPDATE notify_outbox SET done_at = now(), error = :e WHERE id = :id"),
            {"id": row["id"], "e": error},
        )
    return batch


def _subscriptions(conn: Connection) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in conn.execute(
            text("SELECT id, url, kinds FROM webhook_subscription WHERE active ORDER BY id")
        ).mappings()
    ]


def _fan_out_one(
    conn: Connection,
    settings: Settings,
    row: dict[str, Any],
    accounts: list[rules.Account],
    subscriptions: list[dict[str, Any]],
) -> tuple[int, int]:
    if row["event_id"] is not None:
        event = (
            conn.execute(
                text(
                    "SELECT id, case_id, at, actor_id, action, data FROM case_event WHERE id = :id"
                ),
                {"id": row["event_id"]},
            )
            .mappings()
            .one_or_none()
        )
        if event is None:
            return 0, 0
        event = dict(event)
        pairs = rules.event_kinds(event, settings)
        case_id, source = event["case_id"], f"event:{event['id']}"
    else:
        reminder = (
            conn.execute(
                text(
                    "SELECT id, case_id, kind, threshold, deadline_at FROM notify_reminder "
                    "WHERE id = :id"
                ),
                {"id": row["reminder_id"]},
            )
            .mappings()
            .one()
        )
        event = None
        kind = Kind(reminder["kind"])
        pairs = [(kind, a) for a in rules.reminder_audiences(kind)]
        case_id, source = reminder["case_id"], f"reminder:{reminder['id']}"
    if not pairs:
        return 0, 0
    case = conn.execute(text(CASE_SQL), {"id": case_id}).mappings().one_or_none()
    if case is None:
        return 0, 0
    case = dict(case)
    notifications = deliveries = 0
    for kind in dict.fromkeys(k for k, _ in pairs):
        people: dict[int, rules.Account] = {}
        for k, audience in pairs:
            if k is kind:
                for a in rules.recipients(accounts, audience, case, event):
                    people.setdefault(a.id, a)
        message = _message(kind, case, event, settings)
        payload = _payload(kind, case, event, row, source)
        urgent = rules.is_urgent(kind, case)
        n, d = _notify(
            conn,
            settings,
            kind,
            source,
            case,
            event,
            list(people.values()),
            message,
            payload,
            urgent,
        )
        notifications += n
        deliveries += d
        deliveries += _webhooks(conn, kind, source, subscriptions, message, payload, urgent)
    return notifications, deliveries


def _message(
    kind: Kind, case: dict[str, Any], event: dict[str, Any] | None, settings: Settings
) -> tuple[str, str]:
    """(title, body) in Simplified Chinese: the kind and case number; the category, unit,
    status, and for reminders the deadline, for a bad rating the score."""
    title = f"{KIND_LABELS[kind][0]}：{case['case_no']}"
    status = STATUS_LABELS.get(Status(case["status_now"]), (case["status_now"],))[0]
    parts = [
        case["category_name"] or case["category_code"],
        case["unit_name"] or case["unit_code"],
        status,
    ]
    if kind in (Kind.near_deadline, Kind.overdue) and case["deadline_at"] is not None:
        parts.append(f"期限 {local_text(case['deadline_at'], settings)}")
    if kind is Kind.rated_badly and event is not None:
        parts.append(f"评分 {(event.get('data') or {}).get('score')}")
    return title, " · ".join(str(p) for p in parts)


def _payload(
    kind: Kind,
    case: dict[str, Any],
    event: dict[str, Any] | None,
    row: dict[str, Any],
    source: str,
) -> dict[str, Any]:
    """The machine facts of a notification (no free text a person typed: the public
    view's rule, auth/scope.py PUBLIC_HIDDEN_FIELDS)."""
    return {
        "kind": kind.value,
        "source": source,
        "case_id": case["id"],
        "case_no": case["case_no"],
        "status": case["status_now"],
        "priority": case["priority"],
        "category": case["category_code"],
        "unit_code": case["unit_code"],
        "team_id": case["team_id"],
        "deadline_at": case["deadline_at"].isoformat() if case["deadline_at"] else None,
        "action": event["action"] if event else None,
        "event_id": event["id"] if event else None,
        "reminder_id": row["reminder_id"],
    }


def _notify(
    conn: Connection,
    settings: Settings,
    kind: Kind,
    source: str,
    case: dict[str, Any],
    event: dict[str, Any] | None,
    people: list[rules.Account],
    message: tuple[str, str],
    payload: dict[str, Any],
    urgent: bool,
) -> tuple[int, int]:
    if not people:
        return 0, 0
    title, body = message
    made = conn.execute(
        text(
            """
            INSERT INTO notification (user_id, kind, source, case_id, event_id, title, body,
                                      urgent)
            SELECT u, :kind, :source, :case, :event, :title, :body, :urgent
              FROM unnest(CAST(:users AS integer[])) AS u
            ON CONFLICT (user_id, kind, source) DO NOTHING
            RETURNING id, user_id
            """
        ),
        {
            "users": [p.id for p in people],
            "kind": kind.value,
            "source": source,
            "case": case["id"],
            "event": event["id"] if event else None,
            "title": title,
            "body": body,
            "urgent": urgent,
        },
    ).all()
    if not made:
        return 0, 0
    by_id = {p.id: p for p in people}
    users = [u for _, u in made]
    prefs = _preferences(conn, users)
    quiet = _quiet_hours(conn, users)
    now = datetime.now(UTC)
    values = []
    for notification_id, user_id in made:
        person = by_id[user_id]
        for channel in PERSONAL_CHANNELS:
            address = person.email if channel == "email" else person.phone
            if not address:
                continue
            on = prefs.get((user_id, kind.value, channel), kind in DEFAULT_ON[channel])
            if not on:
                continue
            due = now
            if channel == "sms" and not urgent:
                starts, ends = quiet.get(
                    user_id, (settings.notify_quiet_start, settings.notify_quiet_end)
                )
                due = quiet_until(now, starts, ends, settings) or now
            values.append(
                {
                    "n": notification_id,
                    "channel": channel,
                    "recipient": address,
                    "due": due,
                }
            )
    if not values:
        return len(made), 0
    inserted = conn.execute(
        text(
            """
            INSERT INTO notify_delivery (notification_id, kind, source, channel, recipient,
                                         subject, body, payload, urgent, next_attempt_at)
            VALUES (:n, :kind, :source, :channel, :recipient, :subject, :body,
                    CAST(:payload AS jsonb), :urgent, :due)
            ON CONFLICT DO NOTHING
            """
        ),
        [
            {
                **v,
                "kind": kind.value,
                "source": source,
                "subject": title,
                "body": body,
                "payload": json.dumps(payload, ensure_ascii=False),
                "urgent": urgent,
            }
            for v in values
        ],
    )
    return len(made), inserted.rowcount if inserted.rowcount >= 0 else len(values)


def _webhooks(
    conn: Connection,
    kind: Kind,
    source: str,
    subscriptions: list[dict[str, Any]],
    message: tuple[str, str],
    payload: dict[str, Any],
    urgent: bool,
) -> int:
    chosen = [s for s in subscriptions if not s["kinds"] or kind.value in s["kinds"]]
    if not chosen:
        return 0
    title, body = message
    result = conn.execute(
        text(
            """
            INSERT INTO notify_delivery (subscription_id, kind, source, channel, recipient,
                                         subject, body, payload, urgent)
            VALUES (:s, :kind, :source, 'webhook', :url, :subject, :body,
                    CAST(:payload AS jsonb), :urgent)
            ON CONFLICT DO NOTHING
            """
        ),
        [
            {
                "s": s["id"],
                "url": s["url"],
                "kind": kind.value,
                "source": source,
                "subject": title,
                "body": body,
                "payload": json.dumps(payload, ensure_ascii=False),
                "urgent": urgent,
            }
            for s in chosen
        ],
    )
    return result.rowcount if result.rowcount >= 0 else len(chosen)


def _preferences(conn: Connection, users: list[int]) -> dict[tuple[int, str, str], bool]:
    rows = conn.execute(
        text(
            "SELECT user_id, kind, channel, enabled FROM notify_preference "
            "WHERE user_id = ANY(CAST(:u AS integer[]))"
        ),
        {"u": users},
    ).all()
    return {(r.user_id, r.kind, r.channel): r.enabled for r in rows}


def _quiet_hours(conn: Connection, users: list[int]) -> dict[int, tuple[Any, Any]]:
    rows = conn.execute(
        text(
            "SELECT user_id, starts, ends FROM notify_quiet_hours "
            "WHERE user_id = ANY(CAST(:u AS integer[]))"
        ),
        {"u": users},
    ).all()
    return {r.user_id: (r.starts, r.ends) for r in rows}
