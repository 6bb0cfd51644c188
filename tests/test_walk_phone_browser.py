"""A walk (巡查) on the phone (issue 18, gis_service/web/mobile/walk.js), in headless Chromium
as a phone with a scripted GPS track: Playwright moves the position step by step east along
the street of the walk test city (tests/walk_city.py), with an outage in the middle, a
report made offline and a reload while still offline. At the end every fix the phone kept
is stored once on the server, the hand-computed buildings are visited, the report is linked
to the walk, and the phone's due list shrank as the buildings were passed — and today's
suggested route with it, in the hand-computed order (tests/walk_city.py best_order), kept
and marked stale while offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from gis_service.db.engine import get_engine
from tests import walk_city
from tests.browser import browser_context, live_server, screenshot
from tests.walk_city import GRID, VISITED_EAST, best_order, ll

PASSWORD = "password-123"  # tests/conftest.py make_user
WORKER = "gw1"  # case_city: the grid worker of GRID
STEP_M = 11  # more than the app's 10 m: every step is a kept fix
ACCURACY_M = 10
CATEGORY = "environment.garbage"
# How long a wait for the server's answer to what the phone sent may take: walk.js sends a
# chunk when it holds CHUNK_FIXES fixes or its oldest has waited CHUNK_AGE_MS (30 s), tried
# every 10 s, so after a reconnect the last fixes can take 40 s to leave the phone before
# the server answers. A bare 30 s wait timed out on a slow, loaded VM (CI, stop 27).
SYNC_WAIT_MS = 30000 + 10000 + 20000

# The app's IndexedDB, read as the app wrote it: every fix it kept.
FIXES_JS = """() => new Promise((resolve, reject) => {
  const q = indexedDB.open("gis-m");
  q.onerror = () => reject(q.error);
  q.onsuccess = () => {
    const g = q.result.transaction("walk_fixes").objectStore("walk_fixes").getAll();
    g.onsuccess = () => { q.result.close(); resolve(g.result); };
  };
})"""


@pytest.fixture
def server(case_city, tmp_path: Path):
    walk_city.build(case_city["settings"], tmp_path)
    with live_server(case_city["settings"]) as base:
        yield base


def phone(x: float) -> dict:
    lon, lat = ll(x, 0)
    return {
        "viewport": {"width": 360, "height": 640},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
        "permissions": ["geolocation"],
        "geolocation": {"longitude": lon, "latitude": lat, "accuracy": ACCURACY_M},
    }


def due_codes(page) -> set[str]:
    return set(
        page.eval_on_selector_all(
            "[data-testid=due-building]", "els => els.map(e => e.dataset.code)"
        )
    )


def wait_due_without(page, codes: set[str]) -> set[str]:
    """Wait until the phone's due list is drawn and holds none of ``codes``."""
    page.wait_for_function(
        "codes => { const l = [...document.querySelectorAll('[data-testid=due-building]')];"
        " return l.length > 0 && l.every(e => !codes.includes(e.dataset.code)); }",
        arg=sorted(codes),
        timeout=SYNC_WAIT_MS,
    )
    return due_codes(page)


def route_codes(page) -> list[str]:
    """The suggested route's buildings as the phone lists them, in walking order."""
    return page.eval_on_selector_all(
        "[data-testid=route-stop]", "els => els.map(e => e.dataset.code)"
    )


def wait_route(page, codes: list[str], on_map: bool = True) -> None:
    """Wait until the phone lists the route ``codes`` in this order and (``on_map``) draws
    it: one numbered marker per stop on the walk map, and the line."""
    page.wait_for_function(
        "([codes, onMap]) => {"
        " const l = [...document.querySelectorAll('[data-testid=route-stop]')];"
        " return l.map(e => e.dataset.code).join() === codes.join() && (!onMap ||"
        " (document.querySelectorAll('#walk-map .route-num').length === codes.length"
        " && document.querySelectorAll('#walk-map path.route-line').length === 1)); }",
        arg=[codes, on_map],
        timeout=SYNC_WAIT_MS,
    )


def sign_in_to_walk(context, server: str):
    """A new page of the app, signed in as the worker, controlled by its service worker
    (so it works offline), on the walk tab."""
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())  # "end this walk?"
    page.goto(f"{server}/m/")
    page.get_by_test_id("login-username").fill(WORKER)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_selector("[data-testid=tab-walk]:visible")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=20000)
    page.get_by_test_id("tab-walk").click()
    return page


def report_on_the_walk(page, description: str) -> None:
    """Report a problem from the report tab (it waits in the outbox), back to the walk."""
    page.get_by_test_id("report-new").click()
    page.wait_for_selector(
        f"[data-testid=report-category] option[value='{CATEGORY}']", state="attached"
    )
    page.get_by_test_id("report-category").select_option(CATEGORY)
    page.get_by_test_id("report-description").fill(description)
    page.wait_for_selector("[data-testid=report-position][data-lat]", state="attached")
    page.get_by_test_id("report-submit").click()
    page.wait_for_selector("[data-testid=queue-item][data-state=queued]")
    page.get_by_test_id("tab-walk").click()


def walk_to(context, page, x: float) -> None:
    """Move the phone to x metres east of O on the street; wait until the app kept it."""
    lon, lat = ll(x, 0)
    context.set_geolocation({"longitude": lon, "latitude": lat, "accuracy": ACCURACY_M})
    page.wait_for_function(
        f"() => ({FIXES_JS})().then(fs => fs.some(f => Math.abs(f.lon - {lon}) < 1e-6"
        f" && Math.abs(f.lat - {lat}) < 1e-6))",
        timeout=15000,
    )


def db_rows(settings, sql: str, **params) -> list:
    with get_engine(settings).connect() as conn:
        return list(conn.execute(text(sql), params).all())


def test_a_walk_with_an_outage_and_a_reload_stores_every_fix_once(server, case_city):
    settings = case_city["settings"]
    xs = list(range(0, 331, STEP_M))  # 0 … 330 m: past the doors at 50, 150 and 300 m
    part_a = [x for x in xs if x <= 72]  # online, past 001
    part_b = [x for x in xs if 72 < x <= 204]  # offline: past 002, then a report
    part_c = [x for x in xs if 204 < x <= 290]  # still offline, across a reload
    part_d = [x for x in xs if x > 290]  # online again, past 003
    # the offline stretch is more than one chunk (walk.js CHUNK_FIXES): one is cut offline
    assert len(part_b) + len(part_c) >= 20
    doors = walk_city.doors(settings)
    with browser_context(**phone(xs[0])) as (context, watch):
        page = sign_in_to_walk(context, server)
        # nothing is recorded before the walk starts
        assert page.evaluate(FIXES_JS) == []
        page.get_by_test_id("walk-start").click()
        page.wait_for_selector("[data-testid=walk-running]")
        everything = due_codes_after_load(page)
        assert everything == {GRID + c for c in walk_city.FOOTPRINTS}
        # the route from the first fix (at O) through every door (005 and 006 have none)
        first, _ = best_order((xs[0], 0), doors, doors)
        wait_route(page, first)

        for x in part_a:
            walk_to(context, page, x)
        page.get_by_test_id("walk-sync").click()  # upload now: the due list follows
        assert wait_due_without(page, {GRID + "001"}) == everything - {GRID + "001"}
        # …and the route, from where the phone is now, without 001
        second, _ = best_order((part_a[-1], 0), doors, set(doors) - {GRID + "001"})
        wait_route(page, second)
        walk_id = db_rows(settings, "SELECT id FROM walk")[0][0]

        context.set_offline(True)
        for x in part_b:
            walk_to(context, page, x)
        report_on_the_walk(page, "巡查中发现垃圾堆放")  # a problem found on the walk, offline
        page.wait_for_selector("[data-testid=walk-running]")
        for x in part_c[:2]:
            walk_to(context, page, x)
        reloaded = page.reload()  # still offline: the service worker serves the app
        assert reloaded.from_service_worker
        page.wait_for_selector("[data-testid=tab-walk]:visible")
        page.get_by_test_id("tab-walk").click()
        page.wait_for_selector("[data-testid=walk-running]")  # the walk goes on
        # offline the last route stays, said to be stale
        page.wait_for_selector("[data-testid=walk-route-state][data-stale='1']")
        wait_route(page, second, on_map=False)
        for x in part_c[2:4]:
            walk_to(context, page, x)
        page.close()  # and a closed app loses nothing either
        page = context.new_page()
        page.on("dialog", lambda d: d.accept())
        page.goto(f"{server}/m/#walk")
        page.wait_for_selector("[data-testid=walk-running]")
        for x in part_c[4:]:
            walk_to(context, page, x)
        # a chunk cut offline (its chunk_id stored with its fixes), held until online
        page.wait_for_function(
            f"() => ({FIXES_JS})().then(fs => fs.some(f => f.chunk_id && !f.sent))", timeout=15000
        )
        assert page.evaluate("navigator.onLine") is False
        screenshot(page, "m-walk-offline")

        context.set_offline(False)
        # the stretch walked offline arrives: 002 leaves the list, and the route (from the
        # last fix of the offline stretch) turns round: 003 on this street, then 004
        left = wait_due_without(page, {GRID + "001", GRID + "002"})
        assert left == everything - {GRID + "001", GRID + "002"}
        third, _ = best_order((part_c[-1], 0), doors, {GRID + "003", GRID + "004"})
        assert third == [GRID + "003", GRID + "004"] and second[-1] == GRID + "003"
        wait_route(page, third)
        assert page.get_by_test_id("walk-route-state").get_attribute("data-stale") == "0"
        for x in part_d:
            walk_to(context, page, x)
        screenshot(page, "m-walk-running")
        page.get_by_test_id("walk-end").click()
        # ended on the server
        page.wait_for_selector("[data-testid=walk-idle]", timeout=SYNC_WAIT_MS)
        fixes = page.evaluate(FIXES_JS)
        # nothing is recorded after the end: a move now keeps no fix
        lon, lat = ll(xs[-1] + 40, 0)
        context.set_geolocation({"longitude": lon, "latitude": lat, "accuracy": ACCURACY_M})
        page.wait_for_timeout(1500)
        assert len(page.evaluate(FIXES_JS)) == len(fixes)
        assert watch.external == []

    # every fix the phone kept is stored once, and every scripted step is one of them
    assert all(f["sent"] and not f.get("refused") for f in fixes)
    stored = db_rows(
        settings,
        "SELECT (extract(epoch FROM client_ts) * 1000)::bigint, ST_X(geom), ST_Y(geom) "
        "FROM walk_point WHERE walk_id = :w",
        w=walk_id,
    )
    assert sorted(r[0] for r in stored) == sorted(f["t"] for f in fixes)
    for x in xs:
        lon, lat = ll(x, 0)
        assert any(abs(r[1] - lon) < 1e-6 and abs(r[2] - lat) < 1e-6 for r in stored), x
    # one chunk_id per chunk, each stored with its fixes and remembered once by the server
    chunk_ids = {f["chunk_id"] for f in fixes}
    chunks = db_rows(settings, "SELECT chunk_id FROM walk_chunk WHERE walk_id = :w", w=walk_id)
    assert sorted(r[0] for r in chunks) == sorted(chunk_ids)
    status = db_rows(settings, "SELECT status FROM walk WHERE id = :w", w=walk_id)
    assert status == [("ended",)]
    visited = db_rows(
        settings, "SELECT building_code FROM walk_visit WHERE walk_id = :w", w=walk_id
    )
    assert {r[0] for r in visited} == VISITED_EAST
    # the report made offline during the walk is linked to it
    cases = db_rows(settings, "SELECT description, walk_id FROM cases")
    assert cases == [("巡查中发现垃圾堆放", walk_id)]


def due_codes_after_load(page) -> set[str]:
    page.wait_for_selector("[data-testid=due-building]", timeout=30000)
    return due_codes(page)


def test_a_walk_started_offline_links_its_report_once_the_start_is_through(server, case_city):
    """The start itself waits in IndexedDB; a report made before the server knows the walk
    waits for its id, and the walk ends only after the report is in."""
    settings = case_city["settings"]
    xs = list(range(0, 111, STEP_M))  # past 001's door at 50 m only
    with browser_context(**phone(xs[0])) as (context, watch):
        page = sign_in_to_walk(context, server)
        page.wait_for_selector("[data-testid=walk-start]")
        context.set_offline(True)
        page.get_by_test_id("walk-start").click()
        page.wait_for_selector("[data-testid=walk-running]")
        for x in xs:
            walk_to(context, page, x)
        report_on_the_walk(page, "离线开始的巡查中上报")
        page.get_by_test_id("walk-end").click()  # ended offline: everything still waits
        page.wait_for_selector("[data-testid=walk-running] [data-testid=walk-sync]")
        assert db_rows(settings, "SELECT id FROM walk") == []
        context.set_offline(False)
        page.wait_for_selector("[data-testid=walk-idle]", timeout=SYNC_WAIT_MS)
        fixes = page.evaluate(FIXES_JS)
        assert watch.external == []
    (walk_id, status), *more = db_rows(settings, "SELECT id, status FROM walk")
    assert not more and status == "ended"
    stored = db_rows(
        settings,
        "SELECT (extract(epoch FROM client_ts) * 1000)::bigint FROM walk_point WHERE walk_id = :w",
        w=walk_id,
    )
    assert sorted(r[0] for r in stored) == sorted(f["t"] for f in fixes)
    assert len(fixes) >= len(xs)
    visited = db_rows(
        settings, "SELECT building_code FROM walk_visit WHERE walk_id = :w", w=walk_id
    )
    assert {r[0] for r in visited} == {GRID + "001"}
    cases = db_rows(settings, "SELECT description, walk_id FROM cases")
    assert cases == [("离线开始的巡查中上报", walk_id)]
