"""The sender's state for ``/healthz`` (api/health.py): its heartbeat's age and the queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.settings import Settings

#: a heartbeat older than this many poll intervals (and at least 30 s) is stale
STALE_POLLS = 20


def notifier_status(settings: Settings) -> dict[str, Any]:
    """``{"state": "running" | "stale" | "not_running", "heartbeat_age_s": float | None,
    "senders": n, "pending": n, "dead": n}``: ``pending`` counts deliveries waiting or on
    their way (quiet hours and backoff included), ``dead`` the dead-letter list. A sender
    that is not running is not a fault of the API (``down`` does not list it)."""
    with get_engine(settings).connect() as conn:
        row = conn.execute(
            text(
                """
                SELECT (SELECT extract(epoch FROM now() - max(beat_at)) FROM notify_heartbeat)
                           AS age,
                       (SELECT count(*) FROM notify_heartbeat
                         WHERE beat_at > now() - make_interval(secs => :stale)) AS senders,
                       (SELECT count(*) FROM notify_delivery
                         WHERE status IN ('pending', 'sending')) AS pending,
                       (SELECT count(*) FROM notify_delivery WHERE status = 'dead') AS dead
                """
            ),
            {"stale": stale_after(settings)},
        ).one()
    age = None if row.age is None else round(float(row.age), 1)
    state = "not_running" if age is None else "running" if row.senders else "stale"
    return {
        "state": state,
        "heartbeat_age_s": age,
        "senders": row.senders,
        "pending": row.pending,
        "dead": row.dead,
    }


def stale_after(settings: Settings) -> float:
    """Seconds after which a sender's heartbeat counts as stale."""
    return max(30.0, STALE_POLLS * settings.notify_poll_seconds)
