"""What a bulk dispatch costs (issue 15 item 5, cases/bulk.py): 200 cases dispatched to one
team by ``apply_bulk`` — each case through ``apply_action`` (session re-check, the case
read and row-locked, the case lock, the team's unit, the UPDATE, its own event, the case
read again for what is allowed next) in its own SAVEPOINT — beside the peer: the same 200
updates as one plain SQL UPDATE and one INSERT … SELECT of their 200 events.

Measured in process on the bench database (the demo district; ``BENCH_DB`` picks another
one holding the demo). Each run, in one transaction that is rolled back afterwards (the
demo is left as it was): 200 cases of the demo (any status but parked or duplicate: the
demo holds few waiting for dispatch) are set to ``accepted`` (not timed), then the bulk
dispatch (or the peer) is timed. ``N`` cases (default 200), ``RUNS`` runs (default 5):
the p50 and the slowest in ms, as an admin with a real session. Target (issue 15): ≤ 2 s.
Run: ``.venv/bin/python benchmarks/desk_bulk.py``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from common import DB, setup
from sqlalchemy import Connection, text

from gis_service.auth import sessions, tokens
from gis_service.cases import bulk
from gis_service.cases.workflow import STATUSES, Action, Status
from gis_service.db.engine import get_engine

N = int(os.environ.get("N", "200"))
RUNS = int(os.environ.get("RUNS", "5"))
#: statuses whose other columns a move back to accepted would contradict (CHECKs)
UNFIT = {Status.parked, Status.duplicate}

PREPARE = """
UPDATE cases SET status = :accepted, accepted_at = coalesce(accepted_at, now()),
       team_id = NULL, parked_from = NULL, parked_until = NULL
 WHERE id = ANY(:ids)
"""
PEER_UPDATE = """
UPDATE cases SET status = :dispatched, team_id = :team, dispatched_at = now(),
       team_history = CASE WHEN :team = ANY(team_history) THEN team_history
                           ELSE team_history || :team END
 WHERE id = ANY(:ids) AND status = :accepted
"""
PEER_EVENTS = """
INSERT INTO case_event (district_code, case_id, actor_id, action, from_status, to_status, note,
                        data)
SELECT c.district_code, c.id, :actor, :action, :accepted, :dispatched, :note,
       jsonb_build_object('team_id', :team)
  FROM cases c WHERE c.id = ANY(CAST(:ids AS bigint[]))
"""


def timed(conn: Connection, ids: list[int], work: Callable[[], object]) -> float:
    """ms of ``work`` on the prepared cases, in a transaction rolled back afterwards."""
    tx = conn.begin()
    try:
        conn.execute(text("DELETE FROM case_lock WHERE case_id = ANY(:ids)"), {"ids": ids})
        conn.execute(text(PREPARE), {"ids": ids, "accepted": Status.accepted.value})
        t = time.perf_counter()
        work()
        return (time.perf_counter() - t) * 1e3
    finally:
        tx.rollback()


def main() -> None:
    settings = setup(os.environ.get("BENCH_DB", DB))
    engine = get_engine(settings)
    with engine.begin() as conn:
        user = dict(
            conn.execute(
                text("SELECT * FROM app_user WHERE role = 'admin' AND active ORDER BY id LIMIT 1")
            )
            .mappings()
            .one()
        )
        grant = sessions.start(conn, user, settings, "bearer")
    principal = tokens.read(grant.access_token, settings)
    with engine.connect() as conn:
        team_id, team_unit = conn.execute(
            text(
                "SELECT id, unit_code FROM team WHERE active ORDER BY length(unit_code), id LIMIT 1"
            )
        ).one()
        ids = list(
            conn.execute(
                text(
                    "SELECT id FROM cases WHERE status = ANY(:s) AND unit_code LIKE :u "
                    "ORDER BY id LIMIT :n"
                ),
                {"s": sorted(set(STATUSES) - UNFIT), "u": team_unit + "%", "n": N},
            ).scalars()
        )
        total = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    assert len(ids) == N, f"only {len(ids)} cases under {team_unit}"
    req = bulk.BulkRequest(
        action=Action.dispatch.value, case_ids=ids, team_id=team_id, note="bench"
    )
    params = {
        "ids": ids,
        "team": team_id,
        "actor": principal.user_id,
        "action": Action.dispatch.value,
        "accepted": Status.accepted.value,
        "dispatched": Status.dispatched.value,
        "note": "bench",
    }
    results: list[dict] = []

    def ours(conn: Connection) -> Callable[[], object]:
        def run() -> None:
            results.append(bulk.apply_bulk(conn, principal, req, settings))

        return run

    def peer(conn: Connection) -> Callable[[], object]:
        def run() -> None:
            conn.execute(text(PEER_UPDATE), params)
            conn.execute(text(PEER_EVENTS), params)

        return run

    print(f"bulk dispatch of {N} cases on {total:,} cases ({RUNS} runs, ms)")
    print(f"{'':<34}{'p50':>9}{'max':>9}")
    with engine.connect() as conn:
        for name, make in (
            ("apply_bulk (savepoint per case)", ours),
            ("peer: UPDATE + INSERT", peer),
        ):
            timed(conn, ids, make(conn))  # warm-up: plans, caches
            samples = [timed(conn, ids, make(conn)) for _ in range(RUNS)]
            print(f"{name:<34}{statistics.median(samples):>9.1f}{max(samples):>9.1f}")
    counts = results[-1]["counts"]
    print(f"(each run: {counts['applied']} applied, {counts['refused']} refused)")


if __name__ == "__main__":
    main()
