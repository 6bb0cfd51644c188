"""How soon the desk's pages show their work (issue 15: desk first paint ≤ 1 s), in Debian's
Chromium driven by Playwright against ``gis-service serve`` on the bench database, signed in
as a supervisor through the front door.

Per page, the median over ``RUNS`` fresh loads (the browser's cache kept, as a supervisor's
is): first contentful paint (the browser's own ``first-contentful-paint`` entry) and
*ready* — the moment the page's script marks its data drawn (``window.gisDesk.ready`` and
its siblings), from the start of the navigation. Beside them, the peer: the same first page
as a plain paged SQL list (the viewer's units, open cases by deadline, 50 rows) and its
per-status counts, timed on the database alone — what a server-rendered list would wait for
before its first byte.

Run: ``.venv/bin/python benchmarks/desk_paint.py`` (``BENCH_DB``, ``RUNS``, ``VIEWER``).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from common import DB, server, setup
from sqlalchemy import text

from gis_service.cases.workflow import OPEN_STATUSES
from gis_service.db.engine import get_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.browser import CHROMIUM, CHROMIUM_ARGS

RUNS = int(os.environ.get("RUNS", "7"))
VIEWER = os.environ.get("VIEWER", "sup410105001")  # a subdistrict's supervisor of the demo
PASSWORD = "demo-2026"
#: page → the global its script sets ready
PAGES = {
    "/desk/": "gisDesk",
    "/desk/approvals": "gisApprovals",
    "/desk/workload": "gisBoard",
    "/desk/shift": "gisBoard",
}
PEER_PAGE = """
SELECT c.id, c.case_no, c.status, c.category_code, c.unit_code, c.reported_at,
       c.deadline_at, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, count(*) OVER () AS matched
  FROM cases c
 WHERE c.unit_code LIKE :unit AND c.status = ANY(:open)
 ORDER BY c.deadline_at NULLS LAST, c.id LIMIT 50
"""
PEER_COUNTS = """
SELECT c.status, count(*) FROM cases c
 WHERE c.unit_code LIKE :unit AND c.status = ANY(:open) GROUP BY c.status
"""


def first_case(settings) -> int:
    with get_engine(settings).connect() as conn:
        return conn.execute(
            text("SELECT id FROM cases WHERE unit_code LIKE :u ORDER BY id DESC LIMIT 1"),
            {"u": VIEWER.removeprefix("sup") + "%"},
        ).scalar_one()


def peer_ms(settings) -> float:
    params = {"unit": VIEWER.removeprefix("sup") + "%", "open": [s.value for s in OPEN_STATUSES]}
    samples = []
    with get_engine(settings).connect() as conn:
        for _ in range(RUNS + 1):
            t = time.perf_counter()
            conn.execute(text(PEER_PAGE), params).all()
            conn.execute(text(PEER_COUNTS), params).all()
            samples.append((time.perf_counter() - t) * 1e3)
    return statistics.median(samples[1:])


def main() -> None:
    from playwright.sync_api import sync_playwright

    settings = setup(os.environ.get("BENCH_DB", DB))
    pages = {**PAGES, f"/desk/cases/{first_case(settings)}": "gisCase"}
    with server(settings) as served, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.goto(served.base + "/")
        page.fill("[data-testid=login-username]", VIEWER)
        page.fill("[data-testid=login-password]", PASSWORD)
        page.click("[data-testid=login-submit]")
        page.wait_for_url("**/desk/*")
        print(f"desk pages in Chromium, {VIEWER}, median of {RUNS} loads (ms)")
        print(f"{'page':<26}{'first paint':>12}{'ready':>9}")
        for path, ready in pages.items():
            fcp, done = [], []
            for _ in range(RUNS + 1):  # the first load fills the browser's cache
                page.goto(served.base + path)
                page.wait_for_function(
                    f"() => window.{ready} && window.{ready}.ready", timeout=30_000
                )
                fcp.append(
                    page.evaluate(
                        "performance.getEntriesByName('first-contentful-paint')[0].startTime"
                    )
                )
                done.append(page.evaluate("performance.now()"))
            print(
                f"{path[:25]:<26}{statistics.median(fcp[1:]):>12.0f}"
                f"{statistics.median(done[1:]):>9.0f}"
            )
        browser.close()
    print(f"{'peer: plain SQL page+counts':<26}{peer_ms(settings):>12.1f}  (database only)")


if __name__ == "__main__":
    main()
