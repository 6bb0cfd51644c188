"""Notification throughput and delay (issue 16): case events → delivered signed webhooks.

A real sender process (``gis-service notify run``, default settings) against its own
database (``gis_service_bench_notify``: migrated, one synthetic case, one webhook
subscription to a receiver on 127.0.0.1 that verifies every signature,
tests/webhook_receiver.py). Every event is a ``case_event`` row written in its own
transaction, as a workflow action writes it; the outbox trigger queues it.

1. **paced**: events at ``--rate`` per second for ``--seconds``; the delay of each is
   from its ``case_event.at`` to its webhook's arrival (same clock). Target: p99 ≤ 2 s
   at 200 events/s.
2. **burst**: ``--burst`` events written while the sender is down, then the sender
   starts: delivered webhooks per second from its start to the last arrival.

No peer is named for this figure; the target is printed beside ours. Run:
``.venv/bin/python benchmarks/notify.py`` (full: ``--rate 200 --seconds 60 --burst 20000``).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis_service.db import cluster, migrate  # noqa: E402
from gis_service.db.engine import get_engine  # noqa: E402
from gis_service.settings import Settings  # noqa: E402
from tests.webhook_receiver import WebhookReceiver  # noqa: E402

DB = "gis_service_bench_notify"
SECRET = "benchmark-webhook-secret-0123456789"
# the one case the benchmark writes events for (its id carries its month: cases/partitions.py)
BENCH_CASE = "SELECT id FROM cases WHERE case_no = 'BENCH-1'"
TARGET_P99_S = 2.0


def setup(receiver_url: str) -> Settings:
    settings = Settings(db_name=DB)
    cluster.start(settings)
    cluster.ensure_database(settings, DB)
    migrate.upgrade(settings)
    with get_engine(settings).begin() as conn:
        conn.execute(
            text(
                "TRUNCATE notify_outbox, notify_delivery, notification, webhook_subscription, "
                "notify_heartbeat, notify_reminder"
            )
        )
        conn.execute(
            text(
                "INSERT INTO cases (district_code, case_no, category_code, description, geom, "
                "unit_code, handling_level, reporter_id) VALUES (district_of('410105'), "
                "'BENCH-1', 'environment.garbage', 'bench', 'SRID=4326;POINT(113.68 34.78)', "
                "'410105', 'community', 0) "
                "ON CONFLICT DO NOTHING"
            )
        )
        conn.execute(
            text("INSERT INTO webhook_subscription (name, url, secret) VALUES ('bench', :u, :s)"),
            {"u": receiver_url, "s": SECRET},
        )
    return settings


def write_events(settings: Settings, n: int, rate: float | None) -> None:
    """n 'report' events on the synthetic case, one transaction each, paced at rate/s."""
    engine = get_engine(settings)
    start = time.perf_counter()
    for i in range(n):
        if rate:
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO case_event (district_code, case_id, action, to_status) "
                    f"SELECT c.district_code, c.id, 'report', 'reported' FROM cases c "
                    f"WHERE c.id = ({BENCH_CASE})"
                )
            )


def start_sender(settings: Settings) -> subprocess.Popen:
    env = {**os.environ, "GIS_DB_NAME": settings.db_name}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "gis-service"), "notify", "run", "--quiet"],
        env=env,
        cwd=ROOT,
    )


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def event_times(settings: Settings) -> dict[str, float]:
    with get_engine(settings).connect() as conn:
        return {
            f"event:{r.id}": r.at.timestamp()
            for r in conn.execute(
                text(f"SELECT id, at FROM case_event WHERE case_id = ({BENCH_CASE})")
            )
        }


def delays(hook: WebhookReceiver, settings: Settings, ids: set[str]) -> list[float]:
    at = event_times(settings)
    return sorted(
        hook.arrived[d] - at[b["event_id"]] for d, b in hook.bodies.items() if b["event_id"] in ids
    )


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=200.0, help="paced events per second")
    ap.add_argument("--seconds", type=float, default=10.0, help="paced run length")
    ap.add_argument("--burst", type=int, default=2000, help="events queued before start")
    args = ap.parse_args()
    with WebhookReceiver(SECRET) as hook:
        settings = setup(hook.url)
        # 1. paced
        sender = start_sender(settings)
        time.sleep(2.0)
        before = set(event_times(settings))
        n = int(args.rate * args.seconds)
        t0 = time.perf_counter()
        write_events(settings, n, args.rate)
        wrote = time.perf_counter() - t0
        hook.wait_for(n, timeout=120)
        ids = set(event_times(settings)) - before
        d = delays(hook, settings, ids)
        stop(sender)
        print(f"paced: {n:,} events at {n / wrote:,.0f}/s (asked {args.rate:,.0f}/s)")
        print(
            f"  delay event→webhook: p50 {statistics.median(d):.3f} s, p99 {pct(d, 99):.3f} s, "
            f"max {d[-1]:.3f} s   (target p99 ≤ {TARGET_P99_S:.1f} s)"
        )
        # 2. burst
        got = hook.received()
        write_events(settings, args.burst, None)
        t0 = time.perf_counter()
        sender = start_sender(settings)
        hook.wait_for(got + args.burst, timeout=600)
        took = time.perf_counter() - t0
        stop(sender)
        print(
            f"burst: {args.burst:,} queued events → {args.burst / took:,.0f} delivered "
            f"webhooks/s (sender start to last arrival, {took:.1f} s)"
        )
        doubled = sum(1 for c in hook.counts.values() if c > 1)
        print(f"  signatures refused: {hook.bad}; deliveries received twice: {doubled}")


if __name__ == "__main__":
    main()
