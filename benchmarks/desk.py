"""What the desk's queue costs (issue 15 item 2, cases/desk.py): its first page and its
tab counts, beside the peer — the same page as a plain paged SQL list (the viewer's units,
open cases, by deadline, 50 rows) and plain per-status counts (GROUP BY status).

Measured in process on the bench database (the demo district; ``BENCH_DB`` picks another
one holding the demo), for three viewers (the desk's first page of its default tab,
to_accept, and of overdue; the counts; page and counts together, what a poll that moved
costs): the admin (the whole district), a subdistrict's
and a community's supervisor. Each figure is the p50 of ``RUNS`` calls after a warm-up.
Run: ``.venv/bin/python benchmarks/desk.py`` (a few seconds on the demo). The 1 M-case
figure of the issue needs a district of that size (not run here).

Then the workload board (cases/workload.py ``board``, this week) and the shift view's
likely-late list (``likely_late``: a percentile per team and category over 90 days of
closed cases) for the same viewers, beside their peer: a plain GROUP BY team of the
viewer's open cases (open and overdue per team).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from common import DB, setup
from sqlalchemy import text

from gis_service.auth.principal import Principal, Role
from gis_service.cases import desk, workload
from gis_service.cases.workflow import OPEN_STATUSES
from gis_service.db.engine import get_engine

RUNS = int(os.environ.get("RUNS", "30"))
PAGE = 50

PEER_PAGE = """
SELECT c.id, c.case_no, c.status, c.category_code, c.unit_code, c.reported_at,
       c.deadline_at, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, count(*) OVER () AS matched
  FROM cases c
 WHERE c.unit_code LIKE :unit AND c.status = ANY(:open)
 ORDER BY c.deadline_at NULLS LAST, c.id LIMIT :limit
"""
PEER_COUNTS = """
SELECT c.status, count(*) FROM cases c
 WHERE c.unit_code LIKE :unit AND c.status = ANY(:open) GROUP BY c.status
"""

PEER_TEAMS = """
SELECT c.team_id, count(*) AS open, count(*) FILTER (WHERE c.deadline_at < now()) AS overdue
  FROM cases c
 WHERE c.unit_code LIKE :unit AND c.status = ANY(:open) AND c.team_id IS NOT NULL
 GROUP BY c.team_id
"""


def p50(fn: Callable[[], object]) -> float:
    fn()  # warm-up: plans, caches
    samples = []
    for _ in range(RUNS):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e3


def main() -> None:
    settings = setup(os.environ.get("BENCH_DB", DB))
    share = settings.desk_near_deadline_share
    tz = settings.timezone
    with get_engine(settings).connect() as conn:
        district = conn.execute(
            text("SELECT code FROM admin_unit WHERE level = 'district' ORDER BY code LIMIT 1")
        ).scalar_one()
        sub = conn.execute(
            text("SELECT code FROM admin_unit WHERE level = 'subdistrict' ORDER BY code LIMIT 1")
        ).scalar_one()
        comm = conn.execute(
            text(
                "SELECT code FROM admin_unit WHERE level = 'community' AND code LIKE :s "
                "ORDER BY code LIMIT 1"
            ),
            {"s": sub + "%"},
        ).scalar_one()
        total = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        print(f"desk queue on {total:,} cases ({RUNS} runs each, p50 in ms)")
        print(
            f"{'viewer':<26}{'to_accept':>11}{'overdue':>9}{'counts':>9}{'both':>9}   {'peer':>9}"
        )
        viewers = [
            ("admin (district)", Principal(Role.admin, username="bench"), district),
            (f"supervisor {sub}", Principal(Role.supervisor, scopes=(sub,)), sub),
            (f"supervisor {comm}", Principal(Role.supervisor, scopes=(comm,)), comm),
        ]
        opened = [s.value for s in OPEN_STATUSES]
        for name, who, unit in viewers:

            def page(who=who, tab="to_accept") -> object:
                return desk.queue(
                    conn,
                    who,
                    desk.DeskFilters(tab=tab, near_share=share),
                    tz=tz,
                    limit=PAGE,
                    offset=0,
                )

            def counts(who=who) -> object:
                return desk.counts(conn, who, desk.DeskFilters(), tz=tz, near_share=share)

            def both() -> None:
                page()
                counts()

            def busiest(who=who) -> object:  # the tab with the most cases on the demo
                return page(who, "overdue")

            def peer(unit=unit) -> None:
                params = {"unit": unit + "%", "open": opened}
                conn.execute(text(PEER_PAGE), {**params, "limit": PAGE}).all()
                conn.execute(text(PEER_COUNTS), params).all()

            print(
                f"{name:<26}{p50(page):>11.2f}{p50(busiest):>9.2f}{p50(counts):>9.2f}{p50(both):>9.2f}"
                f"   {p50(peer):>9.2f}"
            )

        print(f"\nworkload board and shift view ({RUNS} runs each, p50 in ms)")
        print(f"{'viewer':<26}{'board':>9}{'likely late':>13}   {'peer':>9}")
        for name, who, unit in viewers:

            def board(who=who) -> object:
                return workload.board(conn, who, settings, "week")

            def late(who=who) -> object:
                return workload.likely_late(conn, who)

            def peer_teams(unit=unit) -> object:
                params = {"unit": unit + "%", "open": opened}
                return conn.execute(text(PEER_TEAMS), params).all()

            print(f"{name:<26}{p50(board):>9.2f}{p50(late):>13.2f}   {p50(peer_teams):>9.2f}")


if __name__ == "__main__":
    main()
