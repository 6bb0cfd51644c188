"""The phone app's own weight and start-up (issue 7), beside the desk map page in the same
run, in Debian's Chromium emulating a 360×640 phone.

For each of ROUNDS fresh browser contexts (an empty cache: a phone opening the app for
the first time):
- bytes transferred (response headers + encoded bodies, as the browser counts them) before
  photos and map tiles: until the page is interactive, and in total once its service
  worker has precached the app for offline use;
- time to interactive: the app's own mark (``gisMobile.ready``, set when the first screen
  is drawn with its handlers bound), from navigation start;
- a signed-in reopen (the service worker answering from its cache): time until the
  report form is interactive.
Also three cold loads on a slow phone (4× slower CPU, "fast 3G"), for the reader on a
busy cell. Peer in the same run: the desk page /maps/cases (folium + Leaflet + VectorGrid), and our
app with compression refused (Accept-Encoding: identity), to show what gzip buys.

Targets: first load ≤ 300 KB transferred before photos and tiles; interactive ≤ 1 s.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from common import server, setup

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.browser import browser_context, sign_in
from tests.test_mobile_browser import phone

ROUNDS = 10
EXCLUDED = ("/tiles/", "/photos/")
SPOT = (113.7965164, 34.8835355)


class Bytes:
    """Transferred bytes of every network response (the page's and its service worker's),
    photos and tiles excepted; answers the service worker gave from its cache cost none."""

    def __init__(self, context) -> None:
        self.page = 0
        self.total = 0
        self.marked = False
        context.on("requestfinished", self._count)

    def _count(self, request) -> None:
        try:
            response = request.response()
            sizes = request.sizes()
        except Exception:
            return
        if (
            response is None
            or any(p in request.url for p in EXCLUDED)
            or response.from_service_worker
        ):
            return
        n = sizes["responseHeadersSize"] + max(sizes["responseBodySize"], 0)
        self.total += n
        if not self.marked:
            self.page += n


# a mid-range phone on a busy cell: 4× slower CPU, "fast 3G" (150 ms, 1.6 / 0.75 Mbit/s)
SLOW_CPU = 4
SLOW_NET = {
    "offline": False,
    "latency": 150,
    "downloadThroughput": 1_600_000 / 8,
    "uploadThroughput": 750_000 / 8,
}


def first_load(
    base: str, *, identity: bool = False, slow: bool = False
) -> tuple[int, int, float, float]:
    with browser_context(
        **phone(*SPOT),
        **({"extra_http_headers": {"Accept-Encoding": "identity"}} if identity else {}),
    ) as (context, watch):
        counter = Bytes(context)
        page = context.new_page()
        if slow:
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", SLOW_NET)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": SLOW_CPU})
        page.goto(base + "/m/")
        page.wait_for_function("() => window.gisMobile && window.gisMobile.ready !== null")
        counter.marked = True
        ready = page.evaluate("() => window.gisMobile.ready")
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        page.wait_for_load_state("networkidle")
        # reopen signed in: the service worker answers, the report form is the first screen
        page.get_by_test_id("login-username").fill("gw41010500100101")
        page.get_by_test_id("login-password").fill("demo-2026")
        page.get_by_test_id("login-submit").click()
        page.wait_for_selector("[data-testid=report-form]")
        page.wait_for_load_state("networkidle")
        again = context.new_page()
        again.goto(base + "/m/#report")
        again.wait_for_function("() => window.gisMobile && window.gisMobile.ready !== null")
        reopen = again.evaluate("() => window.gisMobile.ready")
        assert watch.external == [], watch.external
        return counter.page, counter.total, ready, reopen


def desk_page(base: str) -> tuple[int, float]:
    with browser_context(viewport={"width": 1280, "height": 800}) as (context, _):
        counter = Bytes(context)
        page = context.new_page()
        sign_in(page, base, "admin", "demo-2026", "/maps/cases")
        page.wait_for_function("() => window.gisStats && window.gisStats.ready")
        page.wait_for_load_state("networkidle")
        ready = page.evaluate("() => performance.getEntriesByType('navigation')[0].domInteractive")
        return counter.total, ready


def main() -> None:
    settings = setup()
    with server(settings) as srv:
        rows = [first_load(srv.base) for _ in range(ROUNDS)]
        plain = first_load(srv.base, identity=True)
        slow = sorted(first_load(srv.base, slow=True)[2] for _ in range(3))
        desk = desk_page(srv.base)
    kb = 1024
    page_b = statistics.median(r[0] for r in rows)
    total_b = statistics.median(r[1] for r in rows)
    ready = sorted(r[2] for r in rows)
    reopen = sorted(r[3] for r in rows)
    print(f"phone app /m/, {ROUNDS} cold loads in Chromium (360×640, touch):")
    print(f"  transferred until interactive   {page_b / kb:7.1f} KB")
    print(f"  with the offline precache       {total_b / kb:7.1f} KB   (target ≤ 300 KB)")
    print(
        f"  interactive p50 {statistics.median(ready):6.0f} ms, max {ready[-1]:.0f} ms"
        "   (target ≤ 1,000 ms)"
    )
    print(
        f"  signed-in reopen (service worker) p50 {statistics.median(reopen):.0f} ms, "
        f"max {reopen[-1]:.0f} ms"
    )
    print(
        f"  a slow phone (CPU ÷{SLOW_CPU}, fast 3G), 3 cold loads: interactive "
        f"p50 {statistics.median(slow):.0f} ms, max {slow[-1]:.0f} ms"
    )
    print("same run, peers:")
    print(
        f"  /m/ without compression         {plain[0] / kb:7.1f} KB until interactive, "
        f"{plain[1] / kb:.1f} KB with the precache"
    )
    print(
        f"  desk page /maps/cases (folium)  {desk[0] / kb:7.1f} KB, DOM interactive "
        f"{desk[1]:.0f} ms"
    )
    ok = total_b <= 300 * kb and ready[-1] <= 1000
    print(
        f"summary: first load {total_b / kb:.0f} KB, interactive p50 "
        f"{statistics.median(ready):.0f} ms — targets {'met' if ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
