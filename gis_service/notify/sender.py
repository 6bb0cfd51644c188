"""The sender (``gis-service notify run``): one loop that fans the outbox out, queues due
reminders and delivers due deliveries, with retries, backoff and a dead-letter list.

Each loop:

1. **fan-out** (notify/fanout.py): outbox rows → inbox rows + deliveries, committed with
   the rows marked done;
2. **scheduler** (notify/scheduler.py), every ``notify_schedule_seconds``: due reminders
   → outbox rows (the next loop fans them out);
3. **delivery**: due deliveries are claimed (``FOR UPDATE SKIP LOCKED``) and marked
   ``sending`` with ``attempts + 1`` in a committed transaction *before* any channel is
   called, so a crash leaves them recognisable; then they go out through
   ``channels.deliver`` (``notify_workers`` threads) and each is marked ``sent``, or
   ``pending`` again at ``now + min(cap, base × 2^(attempts−1))`` with its last error
   (a non-urgent SMS's retry moved past the recipient's quiet hours: quiet.not_before),
   or ``dead`` (after ``notify_max_attempts`` tries, or at once for a non-retryable
   :class:`DeliveryError`). A delivery still ``sending`` after
   ``notify_sending_lease_seconds`` was cut off by a crash and is claimed again; every
   try carries the delivery's one id (``Message.delivery_id``), so the receiver
   recognises a retry;
4. **heartbeat**: this sender's ``notify_heartbeat`` row (``/healthz`` reads its age);
5. **pruning** (:meth:`Sender.prune`), every ``notify_prune_seconds``: done outbox rows
   and sent deliveries older than ``notify_retention_days``, dead letters older than
   ``notify_dead_retention_days``, deleted in batches of ``notify_prune_batch`` (one short
   transaction each). The inbox (``notification``) is never pruned here, nor the
   reminders (``notify_reminder``: their keys keep a reminder from firing twice).

The webhook channel needs its subscription's secret: the sender puts it in the message's
payload under :data:`channels.webhook.SECRET_KEY` (a private key the channel takes out
before it serialises the payload), read from the subscription at send time, so a rotated
secret applies to retries and no delivery row stores it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.notify import scheduler
from gis_service.notify.channels import DeliveryError, Message, deliver
from gis_service.notify.channels.webhook import SECRET_KEY
from gis_service.notify.fanout import fan_out_batch
from gis_service.notify.quiet import not_before, quiet_hours
from gis_service.settings import Settings

log = logging.getLogger(__name__)

CLAIM_SQL = """
UPDATE notify_delivery d
   SET status = 'sending', attempts = d.attempts + 1, updated_at = now()
 WHERE d.id IN (
        SELECT id FROM notify_delivery
         WHERE (status = 'pending' AND next_attempt_at <= now())
            OR (status = 'sending' AND updated_at < now() - make_interval(secs => :lease))
         ORDER BY next_attempt_at
         LIMIT :n
           FOR UPDATE SKIP LOCKED)
RETURNING d.id, d.channel, d.recipient, d.kind, d.source, d.subject, d.body, d.payload,
          d.created_at, d.attempts, d.subscription_id, d.urgent,
          (SELECT n.user_id FROM notification n
            WHERE n.id = d.notification_id AND n.district_code = d.district_code) AS user_id,
          (SELECT s.secret FROM webhook_subscription s WHERE s.id = d.subscription_id) AS secret,
          (SELECT s.url FROM webhook_subscription s WHERE s.id = d.subscription_id) AS url
"""


#: what the pruning deletes: (name, table, the rows that may go — a row that changed
#: meanwhile, e.g. a dead letter retried, no longer matches and stays; ``:secs`` is the
#: retention in seconds, ``:n`` the batch)
PRUNE: tuple[tuple[str, str, str, str], ...] = (
    ("outbox", "notify_outbox", "done_at < now() - make_interval(secs => :secs)", "retention"),
    (
        "sent",
        "notify_delivery",
        "status = 'sent' AND sent_at < now() - make_interval(secs => :secs)",
        "retention",
    ),
    (
        "dead",
        "notify_delivery",
        "status = 'dead' AND updated_at < now() - make_interval(secs => :secs)",
        "dead_retention",
    ),
)


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """The wait after the ``attempts``-th failed try: base × 2^(attempts−1), at most cap."""
    return min(
        settings.notify_retry_cap_seconds,
        settings.notify_retry_base_seconds * 2 ** max(0, attempts - 1),
    )


@dataclass
class Totals:
    """What a sender did since it started."""

    loops: int = 0
    events: int = 0
    notifications: int = 0
    reminders: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    pruned: int = 0
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> str:
        took = time.monotonic() - self.started
        return (
            f"{self.events:,} outbox rows → {self.notifications:,} notifications, "
            f"{self.reminders:,} reminders; {self.sent:,} delivered, {self.retried:,} to "
            f"retry, {self.dead:,} dead letters, {self.pruned:,} old rows pruned in "
            f"{took:,.1f} s ({self.loops:,} loops)"
        )


class Sender:
    """One sender process's state; :meth:`run` loops until ``stop`` is set."""

    def __init__(self, settings: Settings, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.totals = Totals()
        self._next_schedule = 0.0
        self._next_prune = 0.0
        self._pool: ThreadPoolExecutor | None = None

    # -- one loop --------------------------------------------------------------------
    def step(self) -> int:
        """One loop; returns how much work it found (0: idle)."""
        engine = get_engine(self.settings)
        s = self.settings
        with engine.begin() as conn:
            batch = fan_out_batch(conn, s, s.notify_batch)
        self.totals.events += batch.rows
        self.totals.notifications += batch.notifications
        reminders = 0
        if time.monotonic() >= self._next_schedule:
            with engine.begin() as conn:
                reminders = scheduler.schedule(conn, s)
            self.totals.reminders += reminders
            self._next_schedule = time.monotonic() + s.notify_schedule_seconds
        sent = self.deliver_due()
        self.beat()
        if time.monotonic() >= self._next_prune:
            self.totals.pruned += sum(self.prune().values())
            self._next_prune = time.monotonic() + s.notify_prune_seconds
        self.totals.loops += 1
        return batch.rows + reminders + sent

    def prune(self) -> dict[str, int]:
        """Delete what the retention lets go (:data:`PRUNE`), ``notify_prune_batch`` rows
        per transaction until none is left; returns the rows deleted per kind
        (``{"outbox": n, "sent": n, "dead": n}``). Rows another transaction holds are
        skipped (``SKIP LOCKED``) and the outer ``WHERE`` is checked again on the row
        deleted, so a dead letter an admin retries meanwhile stays."""
        s = self.settings
        days = {
            "retention": s.notify_retention_days,
            "dead_retention": s.notify_dead_retention_days,
        }
        engine = get_engine(s)
        done: dict[str, int] = {}
        for name, table, where, retention in PRUNE:
            sql = text(
                f"DELETE FROM {table} WHERE {where} AND id IN ("
                f"SELECT id FROM {table} WHERE {where} LIMIT :n FOR UPDATE SKIP LOCKED)"
            )
            params = {"secs": days[retention] * 86400, "n": s.notify_prune_batch}
            done[name] = 0
            while True:
                with engine.begin() as conn:
                    n = conn.execute(sql, params).rowcount
                done[name] += n
                if n < s.notify_prune_batch:
                    break
        return done

    def claim(self) -> list[dict[str, Any]]:
        """Claim due deliveries and mark them ``sending`` (committed before any send)."""
        with get_engine(self.settings).begin() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    text(CLAIM_SQL),
                    {
                        "lease": self.settings.notify_sending_lease_seconds,
                        "n": self.settings.notify_batch,
                    },
                ).mappings()
            ]

    def deliver_due(self) -> int:
        """Send what is due; returns how many deliveries were tried."""
        claimed = self.claim()
        if not claimed:
            return 0
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.settings.notify_workers)
        outcomes = list(self._pool.map(self._send, claimed))
        self._record(claimed, outcomes)
        return len(claimed)

    def _send(self, d: dict[str, Any]) -> tuple[str, str | None]:
        """('sent', None) | ('retry', error) | ('dead', error) for one delivery."""
        payload = dict(d["payload"] or {})
        recipient = d["recipient"]
        if d["channel"] == "webhook":
            if d["secret"] is None:
                return "dead", "the webhook subscription is gone"
            payload[SECRET_KEY] = d["secret"]
            recipient = d["url"]
        message = Message(
            delivery_id=str(d["id"]),
            event_id=d["source"],
            kind=d["kind"],
            recipient=recipient,
            subject=d["subject"],
            body=d["body"],
            created_at=d["created_at"],
            payload=payload,
        )
        try:
            deliver(d["channel"], message, self.settings)
        except DeliveryError as exc:
            return ("retry" if exc.retryable else "dead"), str(exc) or type(exc).__name__
        except Exception as exc:
            log.exception("delivery %s through %s raised", d["id"], d["channel"])
            return "retry", f"{type(exc).__name__}: {exc}"
        return "sent", None

    def _record(
        self, claimed: list[dict[str, Any]], outcomes: list[tuple[str, str | None]]
    ) -> None:
        s = self.settings
        now = datetime.now(UTC)
        sent: list[str] = []
        retries: list[dict[str, Any]] = []
        dead: list[dict[str, Any]] = []
        with get_engine(s).begin() as conn:
            # a retry's backoff respects the recipient's quiet hours (quiet.not_before)
            hours = quiet_hours(
                conn, sorted({d["user_id"] for d in claimed if d["user_id"] is not None})
            )
            for d, (outcome, error) in zip(claimed, outcomes, strict=True):
                if outcome == "retry" and d["attempts"] >= s.notify_max_attempts:
                    outcome = "dead"
                    error = f"{error} (gave up after {d['attempts']} attempts)"
                if outcome == "sent":
                    sent.append(str(d["id"]))
                elif outcome == "retry":
                    due = not_before(
                        now + timedelta(seconds=backoff_seconds(d["attempts"], s)),
                        d["channel"],
                        d["urgent"],
                        hours.get(d["user_id"]),
                        s,
                    )
                    retries.append({"id": d["id"], "due": due, "e": (error or "")[:2000]})
                else:
                    dead.append({"id": d["id"], "e": (error or "")[:2000]})
            if sent:
                conn.execute(
                    text(
                        "UPDATE notify_delivery SET status = 'sent', sent_at = now(), "
                        "updated_at = now(), last_error = NULL "
                        "WHERE id = ANY(CAST(:ids AS uuid[]))"
                    ),
                    {"ids": sent},
                )
            if retries:
                conn.execute(
                    text(
                        "UPDATE notify_delivery SET status = 'pending', updated_at = now(), "
                        "next_attempt_at = :due, last_error = :e WHERE id = :id"
                    ),
                    retries,
                )
            if dead:
                conn.execute(
                    text(
                        "UPDATE notify_delivery SET status = 'dead', updated_at = now(), "
                        "last_error = :e WHERE id = :id"
                    ),
                    dead,
                )
        self.totals.sent += len(sent)
        self.totals.retried += len(retries)
        self.totals.dead += len(dead)

    def beat(self) -> None:
        """Write this sender's heartbeat row (``/healthz``'s ``notifier`` part)."""
        t = self.totals
        with get_engine(self.settings).begin() as conn:
            conn.execute(
                text(
                    """
                    INSERT INTO notify_heartbeat (sender, pid, events, sent, failed)
                    VALUES (:sender, :pid, :events, :sent, :dead)
                    ON CONFLICT (sender) DO UPDATE
                       SET beat_at = now(), events = EXCLUDED.events, sent = EXCLUDED.sent,
                           failed = EXCLUDED.failed, pid = EXCLUDED.pid
                    """
                ),
                {
                    "sender": self.name,
                    "pid": os.getpid(),
                    "events": t.events,
                    "sent": t.sent,
                    "dead": t.dead,
                },
            )

    # -- the loop --------------------------------------------------------------------
    def run(
        self,
        stop: threading.Event | None = None,
        *,
        once: bool = False,
        report: Any = None,
    ) -> Totals:
        """Loop until ``stop`` is set (or one loop when ``once``); ``report(totals)`` is
        called after each loop that found work. A database fault is logged and the loop
        waits and tries again (the sender outlives a database restart)."""
        stop = stop or threading.Event()
        self._prune_heartbeats()
        while not stop.is_set():
            try:
                busy = self.step()
            except Exception:
                if once:
                    raise
                log.exception("notify loop failed; trying again")
                busy = 0
                stop.wait(max(1.0, self.settings.notify_poll_seconds))
            if busy and report is not None:
                report(self.totals)
            if once:
                break
            if not busy:
                stop.wait(self.settings.notify_poll_seconds)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        return self.totals

    def _prune_heartbeats(self) -> None:
        with get_engine(self.settings).begin() as conn:
            conn.execute(
                text("DELETE FROM notify_heartbeat WHERE beat_at < now() - interval '1 day'")
            )
