"""Deadline reminders (即将到期, 已超期) that survive restarts and never fire twice.

Each pass writes one ``notify_reminder`` row per (case, kind, threshold, deadline) whose
moment has come — ``INSERT … ON CONFLICT DO NOTHING`` on that unique key — and an outbox
row for each row it wrote, in one statement: a reminder written is a reminder queued,
and a second pass (or a restarted sender, or a second sender) finds the key taken. A
moved deadline (an approved extension) is a new key: its reminders come again.

* near deadline: ``accepted_at + share × (deadline_at − accepted_at)`` has passed, the
  deadline has not, and the case's deadline runs (``case_status()`` in
  ``deadline_statuses``: parked cases rest) — for each share of
  ``rules.reminder_shares``;
* overdue: ``case_overdue()`` (cases/report.sql, the one SQL home of the rule).

Thresholds crossed more than ``notify_reminder_lookback_hours`` before a pass are left
alone: a history load (the demo's year of cases) must not page everyone at once.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from gis_service.notify.kinds import Kind
from gis_service.notify.rules import reminder_shares
from gis_service.settings import Settings
from gis_service.vocabulary import render

NEAR_SQL = render(
    """
    WITH due AS (
        SELECT c.id, c.district_code, c.deadline_at,
               c.accepted_at + (c.deadline_at - c.accepted_at) * :share AS due_at
          FROM cases c
         WHERE c.status IN {{deadline_statuses}}
           AND c.deadline_at > now()
           AND case_status(c) IN {{deadline_statuses}}
           AND c.accepted_at IS NOT NULL
    ), made AS (
        INSERT INTO notify_reminder (district_code, case_id, kind, threshold, deadline_at,
                                     due_at)
        SELECT district_code, id, :kind, :share, deadline_at, due_at FROM due
         WHERE due_at <= now() AND due_at > now() - make_interval(secs => :lookback)
        ON CONFLICT (case_id, kind, threshold, deadline_at, district_code) DO NOTHING
        RETURNING id, district_code
    )
    INSERT INTO notify_outbox (district_code, reminder_id)
    SELECT district_code, id FROM made ORDER BY id
    """,
    "notify/scheduler.py",
)

OVERDUE_SQL = render(
    """
    WITH made AS (
        INSERT INTO notify_reminder (district_code, case_id, kind, threshold, deadline_at,
                                     due_at)
        SELECT c.district_code, c.id, :kind, 1, c.deadline_at, c.deadline_at
          FROM cases c
         WHERE c.status IN {{deadline_statuses}}
           AND c.deadline_at <= now()
           AND c.deadline_at > now() - make_interval(secs => :lookback)
           AND case_overdue(c)
        ON CONFLICT (case_id, kind, threshold, deadline_at, district_code) DO NOTHING
        RETURNING id, district_code
    )
    INSERT INTO notify_outbox (district_code, reminder_id)
    SELECT district_code, id FROM made ORDER BY id
    """,
    "notify/scheduler.py",
)


def schedule(conn: Connection, settings: Settings) -> int:
    """One pass in the caller's transaction; returns how many reminders it queued."""
    lookback = settings.notify_reminder_lookback_hours * 3600
    queued = 0
    for share in reminder_shares(settings):
        queued += conn.execute(
            text(NEAR_SQL),
            {"share": share, "kind": Kind.near_deadline.value, "lookback": lookback},
        ).rowcount
    queued += conn.execute(
        text(OVERDUE_SQL), {"kind": Kind.overdue.value, "lookback": lookback}
    ).rowcount
    return queued
