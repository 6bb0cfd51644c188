"""From the outbox to notifications and deliveries, in one transaction per batch.

:func:`fan_out_batch` claims pending ``notify_outbox`` rows (``FOR UPDATE SKIP LOCKED``:
two senders never take the same row), turns each into inbox rows (``notification``) and
deliveries (``notify_delivery``) by the rules (notify/rules.py), and marks the rows done
— all in the caller's transaction, so a crash before the commit leaves the rows pending
and writes nothing, and a commit writes everything at once. The unique keys
(notification: user, kind, source; delivery: notification, channel, recipient and
subscription, kind, source; each with the district) make a repeated fan-out write nothing
twice anyway. Inbox rows and deliveries carry their case's district (migration 0023), so on
Citus a batch's writes for one case sit on that case's shard.
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
from gis_service.notify.kinds import (
    CHANNEL_ADDRESS,
    DEFAULT_ON,
    KIND_LABELS,
    PERSONAL_CHANNELS,
    Kind,
)
from gis_service.notify.quiet import not_before, quiet_hours
from gis_service.settings import Settings
from gis_service.timezone import local_text

log = logging.getLogger(__name__)

CASE_SQL = """
SELECT c.id, c.district_code, c.case_no, c.status, case_status(c) AS status_now, c.priority,
       c.unit_code, c.handling_level, c.team_id, c.assignee_id, c.category_code, c.deadline_at,
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
    events = _by_id(
        conn,
        "SELECT id, case_id, at, actor_id, action, data FROM case_event "
        "WHERE id = ANY(CAST(:ids AS bigint[]))",
        [r["event_id"] for r in rows if r["event_id"] is not None],
    )
    reminders = _by_id(
        conn,
        "SELECT id, case_id, kind, threshold, deadline_at FROM notify_reminder "
        "WHERE id = ANY(CAST(:ids AS bigint[]))",
        [r["reminder_id"] for r in rows if r["reminder_id"] is not None],
    )
    work = []
    for row in rows:
        if row["event_id"] is not None:
            event = events.get(row["event_id"])
            if event is None:
                continue
            pairs = rules.event_kinds(event, settings)
            work.append((row, event, pairs, event["case_id"], f"event:{event['id']}"))
        else:
            reminder = reminders[row["reminder_id"]]
            kind = Kind(reminder["kind"])
            pairs = [(kind, a) for a in rules.reminder_audiences(kind)]
            work.append((row, None, pairs, reminder["case_id"], f"reminder:{reminder['id']}"))
    work = [w for w in work if w[2]]  # most events (comments, notes…) notify nobody
    cases = _by_id(
        conn,
        CASE_SQL.replace("c.id = :id", "c.id = ANY(CAST(:ids AS bigint[]))"),
        list({w[3] for w in work}),
    )
    work = [(w, cases[w[3]]) for w in work if w[3] in cases]
    errors: list[dict[str, Any]] = []
    # The whole batch under one savepoint (few round trips); should a row raise, the
    # batch is done again row by row, each under its own savepoint, and only the row
    # that raises is skipped (and its error kept on the outbox row).
    try:
        with conn.begin_nested():
            hooks: list[dict[str, Any]] = []
            n = d = 0
            for (row, event, pairs, _, source), case in work:
                got = _fan_out_one(
                    conn, settings, event, pairs, case, source, row, accounts, subscriptions, hooks
                )
                n, d = n + got[0], d + got[1]
            d += _insert_webhooks(conn, hooks)
        batch.notifications += n
        batch.deliveries += d
    except Exception:
        log.exception("fan-out of a batch failed; doing it row by row")
        for (row, event, pairs, _, source), case in work:
            try:
                with conn.begin_nested():
                    hooks = []
                    n, d = _fan_out_one(
                        conn,
                        settings,
                        event,
                        pairs,
                        case,
                        source,
                        row,
                        accounts,
                        subscriptions,
                        hooks,
                    )
                    d += _insert_webhooks(conn, hooks)
                batch.notifications += n
                batch.deliveries += d
            except Exception as exc:
                log.exception("fan-out of outbox row %s failed", row["id"])
                batch.failed += 1
                errors.append({"id": row["id"], "e": f"{type(exc).__name__}: {exc}"[:2000]})
    conn.execute(
        text("UPDATE notify_outbox SET done_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))"),
        {"ids": [r["id"] for r in rows]},
    )
    if errors:
        conn.execute(text("UPDATE notify_outbox SET error = :e WHERE id = :id"), errors)
    return batch


def _by_id(conn: Connection, sql: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    return {r["id"]: dict(r) for r in conn.execute(text(sql), {"ids": ids}).mappings()}


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
    event: dict[str, Any] | None,
    pairs: list[tuple[Kind, rules.Audience]],
    case: dict[str, Any],
    source: str,
    row: dict[str, Any],
    accounts: list[rules.Account],
    subscriptions: list[dict[str, Any]],
    hooks: list[dict[str, Any]],
) -> tuple[int, int]:
    """Inbox rows and personal deliveries written; webhook deliveries appended to
    ``hooks`` (written by :func:`_insert_webhooks`, one statement per batch)."""
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
        _webhooks(
            hooks, kind, source, case["district_code"], subscriptions, message, payload, urgent
        )
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
            INSERT INTO notification (district_code, user_id, kind, source, case_id, event_id,
                                      title, body, urgent)
            SELECT :district, u, :kind, :source, :case, :event, :title, :body, :urgent
              FROM unnest(CAST(:users AS integer[])) AS u
            ON CONFLICT (user_id, kind, source, district_code) DO NOTHING
            RETURNING id, user_id
            """
        ),
        {
            "district": case["district_code"],
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
    quiet = quiet_hours(conn, users)
    now = datetime.now(UTC)
    values = []
    for notification_id, user_id in made:
        person = by_id[user_id]
        for channel in PERSONAL_CHANNELS:
            address = getattr(person, CHANNEL_ADDRESS[channel])
            if not address:
                continue
            on = prefs.get((user_id, kind.value, channel), kind in DEFAULT_ON[channel])
            if not on:
                continue
            due = not_before(now, channel, urgent, quiet.get(user_id), settings)
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
            INSERT INTO notify_delivery (district_code, notification_id, kind, source, channel,
                                         recipient, subject, body, payload, urgent,
                                         next_attempt_at)
            VALUES (:district, :n, :kind, :source, :channel, :recipient, :subject, :body,
                    CAST(:payload AS jsonb), :urgent, :due)
            ON CONFLICT DO NOTHING
            """
        ),
        [
            {
                **v,
                "district": case["district_code"],
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
    hooks: list[dict[str, Any]],
    kind: Kind,
    source: str,
    district: str,
    subscriptions: list[dict[str, Any]],
    message: tuple[str, str],
    payload: dict[str, Any],
    urgent: bool,
) -> None:
    """Append a webhook delivery for each active subscription that takes ``kind``, in
    the case's district (the delivery is written beside its case's outbox row)."""
    title, body = message
    for s in subscriptions:
        if not s["kinds"] or kind.value in s["kinds"]:
            hooks.append(
                {
                    "district_code": district,
                    "subscription_id": s["id"],
                    "url": s["url"],
                    "kind": kind.value,
                    "source": source,
                    "subject": title,
                    "body": body,
                    "payload": payload,
                    "urgent": urgent,
                }
            )


def _insert_webhooks(conn: Connection, hooks: list[dict[str, Any]]) -> int:
    """Write the webhook deliveries in one statement; a repeat writes nothing (unique
    subscription, kind, source). Returns how many were written."""
    if not hooks:
        return 0
    return conn.execute(
        text(
            """
            INSERT INTO notify_delivery (district_code, subscription_id, kind, source, channel,
                                         recipient, subject, body, payload, urgent)
            SELECT x.district_code, x.subscription_id, x.kind, x.source, 'webhook', x.url,
                   x.subject, x.body, x.payload, x.urgent
              FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(
                   district_code text, subscription_id integer, kind text, source text,
                   url text, subject text, body text, payload jsonb, urgent boolean)
            ON CONFLICT DO NOTHING
            """
        ),
        {"rows": json.dumps(hooks, ensure_ascii=False)},
    ).rowcount


def _preferences(conn: Connection, users: list[int]) -> dict[tuple[int, str, str], bool]:
    rows = conn.execute(
        text(
            "SELECT user_id, kind, channel, enabled FROM notify_preference "
            "WHERE user_id = ANY(CAST(:u AS integer[]))"
        ),
        {"u": users},
    ).all()
    return {(r.user_id, r.kind, r.channel): r.enabled for r in rows}
