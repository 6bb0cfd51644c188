"""The map pages in headless Chromium (Debian's), against a real server on the demo:
nothing fetched from outside 127.0.0.1, no console errors, features really drawn, a click
drills down, a subdistrict supervisor sees only their subdistrict."""

from __future__ import annotations

import pytest

from tests.browser import FEATURES_JS, browser_context, live_server, screenshot, sign_in
from tests.conftest import map_pages

PASSWORD = "demo-2026"
PAGES = map_pages()


@pytest.fixture(scope="module")
def server(demo_settings):
    with live_server(demo_settings) as base:
        yield base


def _wait_drawn(page) -> None:
    page.wait_for_function("() => window.gisStats && window.gisStats.ready")
    page.wait_for_function("() => window.gisStats.tilesLoaded > 0", timeout=20000)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_draws_offline_without_errors(server, path):
    with browser_context(viewport={"width": 1280, "height": 800}) as (context, watch):
        page = context.new_page()
        sign_in(page, server, "admin", PASSWORD, path)
        _wait_drawn(page)
        page.wait_for_load_state("networkidle")
        name = path.rsplit("/", 1)[-1]
        screenshot(page, f"map-{name}")
        assert watch.external == []
        assert watch.console_errors == []
        assert page.get_by_test_id("map-title").is_visible()
        assert page.get_by_test_id("legend").is_visible()
        assert page.get_by_test_id("data-date").inner_text().strip()
        stats = page.evaluate("() => window.gisStats")
        assert stats["tileErrors"] == 0
        # the basemap drew: its canvases hold pixels that are not blank
        painted = page.evaluate("""() => [...document.querySelectorAll(
            '.leaflet-tile-container canvas, canvas.leaflet-tile')].some(c => {
              const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) return true; }
              return false; })""")
        assert painted
        if name == "cases":
            assert stats["features"] > 0
            assert page.locator(".leaflet-tile-container svg path").count() > 0
        else:
            # every unit or building was drawn as a path (layers off by default aside)
            units = [f for f in page.evaluate(FEATURES_JS) if f["code"]]
            assert units and all(f["drawn"] for f in units)


def test_english_is_one_click_away(server):
    with browser_context() as (context, watch):
        page = context.new_page()
        sign_in(page, server, "admin", PASSWORD, "/maps/resolution")
        assert "问题办结率" in page.get_by_test_id("map-title").inner_text()
        page.get_by_test_id("lang-switch").click()
        page.wait_for_url("**lang=en*")
        assert "Case resolution rate" in page.get_by_test_id("map-title").inner_text()
        assert watch.external == []


def test_a_click_on_a_unit_drills_down(server):
    with browser_context(viewport={"width": 1280, "height": 800}) as (context, watch):
        page = context.new_page()
        sign_in(page, server, "admin", PASSWORD, "/maps/resolution?level=subdistrict")
        _wait_drawn(page)
        # A screen point where the largest subdistrict is what the mouse really hits: its
        # centroid may lie outside a concave outline or under another drawn layer, and the
        # map must be at rest (no zoom or pan animation) before its points are read.
        page.wait_for_function("""() => { for (const v of Object.values(window)) {
            if (v instanceof L.Map) return !v._animatingZoom && !v._panAnim?._inProgress; }
            return false; }""")
        target = page.evaluate("""() => {
          let best = null;
          for (const v of Object.values(window)) {
            if (v && v instanceof L.GeoJSON) {
              v.eachLayer(l => { const b = l.getBounds();
                const area = (b.getEast() - b.getWest()) * (b.getNorth() - b.getSouth());
                if (!best || area > best.area) best = {l, area}; });
            }
          }
          const map = best.l._map, r = map.getContainer().getBoundingClientRect();
          const c = map.latLngToContainerPoint(best.l.getCenter());
          const sw = map.latLngToContainerPoint(best.l.getBounds().getSouthWest());
          const ne = map.latLngToContainerPoint(best.l.getBounds().getNorthEast());
          const hits = [];
          for (let x = sw.x; x <= ne.x; x += 4) {
            for (let y = ne.y; y <= sw.y; y += 4) {
              const px = r.left + x, py = r.top + y;
              if (document.elementFromPoint(px, py) === best.l._path) {
                hits.push({x: px, y: py, d: (x - c.x) ** 2 + (y - c.y) ** 2});
              }
            }
          }
          hits.sort((a, b) => a.d - b.d);
          return {code: best.l.feature.properties.code, hit: hits[0] || null};
        }""")
        assert target["hit"], f"no visible point of {target['code']} to click"
        page.mouse.click(target["hit"]["x"], target["hit"]["y"])
        page.wait_for_url("**level=community**")
        assert f"unit={target['code']}" in page.url
        _wait_drawn(page)
        codes = [f["code"] for f in page.evaluate(FEATURES_JS)]
        assert codes and all(c.startswith(target["code"]) for c in codes)
        screenshot(page, "map-resolution-drilled")
        assert watch.external == [] and watch.console_errors == []


def test_a_subdistrict_supervisor_sees_no_other(server, demo_settings):
    from sqlalchemy import text

    from gis_service.db.engine import get_engine

    with get_engine(demo_settings).connect() as conn:
        sub = conn.execute(
            text(
                "SELECT code FROM admin_unit WHERE level = 'subdistrict' AND code LIKE '410105%' "
                "ORDER BY code LIMIT 1"
            )
        ).scalar()
    with browser_context(viewport={"width": 1280, "height": 800}) as (context, watch):
        page = context.new_page()
        sign_in(page, server, f"sup{sub}", PASSWORD, "/maps/resolution?level=community")
        _wait_drawn(page)
        codes = [f["code"] for f in page.evaluate(FEATURES_JS)]
        assert codes and all(c.startswith(sub) for c in codes)
        page.goto(f"{server}/maps/units")
        _wait_drawn(page)
        codes = [f["code"] for f in page.evaluate(FEATURES_JS)]
        assert codes and all(c.startswith(sub) for c in codes)
        screenshot(page, "map-units-supervisor")
        # another subdistrict's cases are not in its tiles either (checked by decoding in
        # tests/test_tiles.py); here: the page asks for nothing outside the machine
        assert watch.external == []


def test_exported_pages_work_from_a_file_with_no_server(demo_settings, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "GIS_DB_NAME": demo_settings.db_name}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "gis-service"),
            "maps",
            "export",
            "--out",
            str(tmp_path),
            "--lang",
            "zh",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "pages" in done.stderr
    names = sorted(p.name for p in tmp_path.glob("*.html"))
    assert {"resolution.html", "cases.html", "units.html"} <= set(names)
    with browser_context(viewport={"width": 1280, "height": 800}) as (context, watch):
        asked = []
        context.route(
            "**/*",
            lambda r: (
                r.continue_()
                if r.request.url.startswith(("file:", "data:"))
                else (asked.append(r.request.url), r.abort())
            ),
        )
        page = context.new_page()
        for name in names:
            page.goto((tmp_path / name).as_uri())
            page.wait_for_function("() => window.gisStats && window.gisStats.ready")
            screenshot(page, f"export-{name.removesuffix('.html')}")
            if name == "cases.html":  # inline cases (points or counted cells)
                assert page.evaluate("() => window.gisStats.features") > 0
            else:
                units = [f for f in page.evaluate(FEATURES_JS) if f["code"]]
                assert units and all(f["drawn"] for f in units)
            # the inline basemap drew its streets too
            assert page.locator(".leaflet-overlay-pane path").count() > 10
        assert asked == [] and watch.console_errors == []


def test_a_case_on_the_map_opens_its_timeline(server, demo_settings):
    from sqlalchemy import text

    from gis_service.db.engine import get_engine

    with get_engine(demo_settings).connect() as conn:
        grid = conn.execute(
            text(
                "SELECT left(unit_code, 14) FROM cases WHERE status = 'closed' GROUP BY 1 "
                "ORDER BY count(*) LIMIT 1"
            )
        ).scalar()
    with browser_context(viewport={"width": 1280, "height": 800}) as (context, watch):
        page = context.new_page()
        sign_in(page, server, "admin", PASSWORD, f"/maps/cases?unit={grid}")
        _wait_drawn(page)
        page.wait_for_function(
            "() => document.querySelectorAll('.leaflet-tile-container svg path').length > 0"
        )
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        # a click may land on a point another draws over while tiles still arrive: try the
        # points in turn until one opens its case (each must open one, or none did)
        points = page.locator(".leaflet-tile-container svg path.leaflet-interactive")
        popup = page.locator(".gis-case")
        for i in range(min(points.count(), 5)):
            points.nth(i).click(force=True)
            try:
                popup.wait_for(timeout=4000)
                break
            except PlaywrightTimeout:  # the next point
                continue
        popup.wait_for(timeout=10000)
        assert popup.locator("li").count() >= 1  # the timeline's events
        screenshot(page, "map-case-timeline")
        assert watch.external == [] and watch.console_errors == []


def test_the_filter_form_filters_the_cases(server):
    with browser_context(viewport={"width": 1280, "height": 800}) as (context, watch):
        page = context.new_page()
        sign_in(page, server, "admin", PASSWORD, "/maps/cases")
        _wait_drawn(page)
        page.get_by_test_id("filter-status").select_option("closed")
        page.get_by_test_id("filter-form").locator("button").click()
        page.wait_for_url("**status=closed**")
        _wait_drawn(page)
        page.wait_for_load_state("networkidle")
        assert "已结案" in page.get_by_test_id("filters").inner_text()
        tiles = [
            r
            for r in page.evaluate(
                "() => performance.getEntriesByType('resource').map(e => e.name)"
            )
            if "/tiles/cases/" in r
        ]
        assert tiles and all("status=closed" in u for u in tiles)
        assert watch.external == [] and watch.console_errors == []


def test_the_hotspot_map_shows_the_apis_spots_and_links_their_cases(server, demo_settings):
    """Every recurring spot of the API is on the page, and a spot's popup links each of its
    cases to the case page."""
    import httpx

    token = httpx.post(
        f"{server}/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
    ).json()["access_token"]
    spots = httpx.get(
        f"{server}/api/v1/stats/recurring-spots", headers={"Authorization": f"Bearer {token}"}
    ).json()["features"]
    assert spots, "the demo has recurring spots"
    with browser_context(viewport={"width": 1280, "height": 800}) as (context, watch):
        page = context.new_page()
        sign_in(page, server, "admin", PASSWORD, "/maps/hotspots")
        page.wait_for_function("() => window.gisStats && window.gisStats.ready")
        lists = page.evaluate("""() => {
          const out = [];
          for (const v of Object.values(window)) {
            if (v && v instanceof L.GeoJSON && v._map) {
              v.eachLayer(l => { if (l.feature.properties.list) out.push(l); });
            }
          }
          out[0].fire('click', {latlng: out[0].getLatLng()}, true);
          return out.map(l => l.feature.properties.cases);
        }""")
        assert sorted(lists) == sorted(f["properties"]["cases"] for f in spots)
        links = page.locator(".leaflet-popup [data-testid=spot-cases] a")
        links.first.wait_for()
        hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
        assert any(
            hrefs == {f"/desk/cases/{i}" for i in f["properties"]["case_ids"]} for f in spots
        )
        assert watch.console_errors == [] and watch.external == []
