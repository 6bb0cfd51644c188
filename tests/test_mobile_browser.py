"""The grid worker's phone app in headless Chromium (Debian's) as a phone: 360×640, touch,
geolocation granted and set. Against a real server on the demo: report with a photo, work
offline across a reload, survive a connection cut mid-upload, and the whole task loop
(supervisor dispatches, team member handles with an after-photo, reporter verifies).
Every request must stay on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image
from sqlalchemy import text

from gis_service.db.engine import get_engine
from tests.browser import browser_context, live_server, screenshot
from tests.images import image_bytes
from tests.netcut import CUT_UPLOAD, DROP_RESPONSE, CuttingRelay

PASSWORD = "demo-2026"
WORKER = "gw41010500100101"
GRID = "41010500100101"
SUPERVISOR = "sup410105001"
TEAM_MEMBER = "team1"  # the committee of the grid's community
CATEGORY = "environment.garbage"
GRID_SPOT = (113.7965164, 34.8835355)  # any point: this test reports nothing


def phone(lon: float, lat: float) -> dict:
    return {
        "viewport": {"width": 360, "height": 640},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
        "permissions": ["geolocation"],
        "geolocation": {"longitude": lon, "latitude": lat, "accuracy": 12},
    }


@pytest.fixture(scope="module")
def server(demo_settings):
    with live_server(demo_settings) as base:
        yield base


def points_apart(
    settings, grid: str, count: int, seed: int, apart: float
) -> list[tuple[float, float]]:
    """Of ``count`` random points (``seed``) 20 m or more inside ``grid``, those at least
    ``apart`` degrees from each other on one axis: reports that are not each other's
    duplicates. At least five."""
    with get_engine(settings).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints("
                "ST_Buffer(geom::geography, -20)::geometry, :n, :seed))).geom AS g "
                "FROM admin_unit WHERE code = :c) p"
            ),
            {"c": grid, "n": count, "seed": seed},
        ).all()
    picked: list[tuple[float, float]] = []
    for x, y in rows:
        if all(abs(x - a) > apart or abs(y - b) > apart for a, b in picked):
            picked.append((x, y))
    assert len(picked) >= 5
    return picked


@pytest.fixture(scope="module")
def spots(demo_settings) -> list[tuple[float, float]]:
    """Points inside the worker's grid, far enough apart not to be each other's
    duplicates (one per test)."""
    return points_apart(demo_settings, GRID, 40, 7, 0.0012)


def token(base: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": "Bearer " + r.json()["access_token"]}


def last_case_id(settings) -> int:
    with get_engine(settings).connect() as conn:
        return conn.execute(text("SELECT coalesce(max(id), 0) FROM cases")).scalar_one()


def new_cases(settings, after: int) -> list[dict]:
    with get_engine(settings).connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT c.id, c.description, c.category_code, c.duplicate_of, u.username, "
                    "(SELECT count(*) FROM case_photo p WHERE p.case_id = c.id) AS photos "
                    "FROM cases c JOIN app_user u ON u.id = c.reporter_id WHERE c.id > :a "
                    "ORDER BY c.id"
                ),
                {"a": after},
            ).mappings()
        ]


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/m/")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_selector("[data-testid=tab-tasks]:visible")


@contextlib.contextmanager
def phone_signed_in(base: str, username: str, lon: float, lat: float) -> Iterator[tuple]:
    """A phone at (lon, lat) with the app open and this user signed in."""
    with browser_context(**phone(lon, lat)) as (context, watch):
        page = context.new_page()
        sign_in(page, base, username)
        yield context, page, watch


def photo_file(seed: int, size=(3000, 2250)) -> dict:
    return {
        "name": f"IMG_{seed}.jpg",
        "mimeType": "image/jpeg",
        "buffer": image_bytes(size=size, seed=seed),
    }


def fill_report(page, description: str, photos: list[dict], wait_position=True) -> None:
    page.get_by_test_id("report-new").click()
    page.wait_for_selector("[data-testid=report-form]")
    if wait_position:
        page.wait_for_function(
            "() => document.querySelector('[data-testid=report-position]').dataset.lat"
        )
    page.get_by_test_id("report-category").select_option(CATEGORY)
    page.get_by_test_id("report-description").fill(description)
    if photos:
        page.get_by_test_id("report-photo").set_input_files(photos)
        page.wait_for_function(
            f"() => document.querySelectorAll('[data-testid=report-photo-item]').length"
            f" === {len(photos)}"
        )


def assert_one_thumb(page) -> None:
    """Nothing wider than the 360-px screen; every control a test drives is at least
    44 px tall (a thumb, not a stylus)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    small = page.evaluate("""() => [...document.querySelectorAll(
        'button[data-testid], select[data-testid], a[data-testid], ' +
        'input[data-testid]:not([type=file])')]
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
        .map(e => e.dataset.testid)""")
    assert small == []


def queue_states(page) -> list[str]:
    return page.eval_on_selector_all(
        "[data-testid=queue-item]", "els => els.map(e => e.dataset.state)"
    )


def wait_controlled(page) -> None:
    """The service worker has installed and controls the page (needed to reload offline)."""
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=20000)


def test_report_with_a_photo_reaches_the_api(server, demo_settings, spots):
    lon, lat = spots[0]
    before = last_case_id(demo_settings)
    with browser_context(**phone(lon, lat)) as (context, watch):
        page = context.new_page()
        page.goto(f"{server}/m/")
        screenshot(page, "m-login")
        sign_in(page, server, WORKER)
        fill_report(page, "手机上报：3号楼东侧垃圾堆放", [photo_file(1)])
        # the photo was scaled on the phone, the unit chain looked up, the accuracy shown
        item = page.get_by_test_id("report-photo-item")
        assert (item.get_attribute("data-width"), item.get_attribute("data-height")) == (
            "1600",
            "1200",
        )
        page.wait_for_function(
            "() => document.querySelector('[data-testid=report-units]').dataset.grid"
        )
        assert page.get_by_test_id("report-units").get_attribute("data-grid") == GRID
        assert "12" in page.get_by_test_id("report-position").inner_text()
        page.wait_for_selector(".leaflet-marker-icon")
        assert_one_thumb(page)
        screenshot(page, "m-report")
        page.get_by_test_id("report-submit").dblclick()  # an impatient thumb: one report
        page.wait_for_selector("[data-testid=queue-item][data-state=sent]", timeout=20000)
        screenshot(page, "m-queue-sent")
        case_id = int(page.get_by_test_id("queue-item").first.get_attribute("data-case-id"))
        assert watch.external == [] and watch.console_errors == []

    cases = new_cases(demo_settings, before)
    assert [(c["id"], c["username"], c["photos"]) for c in cases] == [(case_id, WORKER, 1)]
    auth = token(server, SUPERVISOR)
    body = httpx.get(f"{server}/api/v1/cases/{case_id}", headers=auth).json()
    assert body["description"] == "手机上报：3号楼东侧垃圾堆放"
    assert body["category"] == CATEGORY
    assert (body["lon"], body["lat"]) == (
        pytest.approx(lon, abs=1e-6),
        pytest.approx(lat, abs=1e-6),
    )
    assert body["unit_code"].startswith(GRID)
    photo = body["photos"][0]
    assert (photo["width"], photo["height"]) == (1600, 1200)
    stored = httpx.get(f"{server}{photo['url']}", headers=auth)
    assert Image.open(io.BytesIO(stored.content)).size == (1600, 1200)


def test_a_possible_duplicate_is_linked_instead_of_filed_twice(server, demo_settings, spots):
    lon, lat = spots[1]
    before = last_case_id(demo_settings)
    first = httpx.post(
        f"{server}/api/v1/cases",
        headers=token(server, WORKER),
        json={"category": CATEGORY, "lon": lon + 0.0001, "lat": lat, "description": "垃圾桶满溢"},
    )
    assert first.status_code == 201, first.text
    with phone_signed_in(server, WORKER, lon, lat) as (_context, page, watch):
        fill_report(page, "", [], wait_position=True)
        link = page.get_by_test_id("duplicate-link")
        link.wait_for()
        assert link.get_attribute("data-case-id") == str(first.json()["id"])
        screenshot(page, "m-report-duplicates")
        link.click()
        page.wait_for_selector("[data-testid=queue-item][data-state=sent]", timeout=20000)
        assert watch.external == [] and watch.console_errors == []
    cases = new_cases(demo_settings, before)
    assert len(cases) == 2 and cases[1]["duplicate_of"] == first.json()["id"]


def test_offline_reports_survive_a_reload_and_are_sent_once(server, demo_settings, spots):
    lon, lat = spots[2]
    before = last_case_id(demo_settings)
    with phone_signed_in(server, WORKER, lon, lat) as (context, page, watch):
        wait_controlled(page)
        page.get_by_test_id("tab-cases").click()
        page.wait_for_selector("[data-testid=case-item]")
        seen = page.get_by_test_id("case-item").count()
        page.get_by_test_id("report-new").click()
        page.wait_for_selector(".leaflet-tile-loaded")  # the basemap here is cached
        context.set_offline(True)
        for n in (1, 2):
            fill_report(page, f"离线上报第{n}条", [photo_file(100 + n)])
            page.get_by_test_id("report-submit").click()
            page.wait_for_function(
                f"() => document.querySelectorAll('[data-testid=queue-item]').length === {n}"
            )
        assert queue_states(page) == ["queued", "queued"]
        assert page.get_by_test_id("network-state").get_attribute("data-online") == "false"
        reloaded = page.reload()  # still offline: the service worker serves the app
        assert reloaded.from_service_worker
        page.wait_for_selector("[data-testid=queue-item]")
        assert queue_states(page) == ["queued", "queued"]
        page.close()  # and closing the app loses nothing either
        page = context.new_page()
        page.goto(f"{server}/m/#queue")
        page.wait_for_selector("[data-testid=queue-item]")
        assert queue_states(page) == ["queued", "queued"]
        assert page.evaluate("navigator.onLine") is False
        page.get_by_test_id("tab-cases").click()  # read offline: the last answer, said so
        page.wait_for_selector("[data-testid=case-item]")
        assert page.get_by_test_id("case-item").count() == seen
        assert page.get_by_text("离线：显示上次的数据").is_visible()
        page.get_by_test_id("tab-queue").click()
        page.wait_for_selector("[data-testid=queue-item]")
        assert page.get_by_test_id("queue-count").inner_text() == "2"
        screenshot(page, "m-queue-offline")
        assert new_cases(demo_settings, before) == []
        context.set_offline(False)
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=queue-item]')]"
            ".every(e => e.dataset.state === 'sent')",
            timeout=30000,
        )
        assert watch.external == []
    cases = new_cases(demo_settings, before)
    assert sorted(c["description"] for c in cases) == ["离线上报第1条", "离线上报第2条"]
    assert [c["photos"] for c in cases] == [1, 1]


def test_a_connection_cut_mid_upload_still_stores_the_report_once(server, demo_settings, spots):
    """First attempt: the connection breaks half-way through the photo. Second: the server
    stores the case but the answer is lost. The phone retries until it hears back."""
    lon, lat = spots[3]
    before = last_case_id(demo_settings)
    relay = CuttingRelay(int(server.rsplit(":", 1)[1]), [CUT_UPLOAD, DROP_RESPONSE])
    base = f"http://127.0.0.1:{relay.port}"
    try:
        with phone_signed_in(base, WORKER, lon, lat) as (_context, page, watch):
            fill_report(page, "断网重传测试", [photo_file(200), photo_file(201)])
            page.get_by_test_id("report-submit").click()
            page.wait_for_selector("[data-testid=queue-item][data-state=sent]", timeout=40000)
            item = page.get_by_test_id("queue-item").first
            assert int(item.get_attribute("data-case-id")) > before
            assert watch.external == []
    finally:
        relay.close()
    assert relay.reports[:2] == [CUT_UPLOAD, DROP_RESPONSE] and len(relay.reports) >= 3
    cases = new_cases(demo_settings, before)
    assert [(c["description"], c["photos"]) for c in cases] == [("断网重传测试", 2)]


def test_dispatch_handle_with_after_photo_and_verify(server, demo_settings, spots):
    lon, lat = spots[4]
    reported = httpx.post(
        f"{server}/api/v1/cases",
        headers=token(server, WORKER),
        json={"category": CATEGORY, "lon": lon, "lat": lat, "description": "单元门口建筑垃圾"},
    )
    assert reported.status_code == 201, reported.text
    cid = reported.json()["id"]
    sup = token(server, SUPERVISOR)
    team_id = httpx.get(f"{server}/api/v1/auth/me", headers=token(server, TEAM_MEMBER)).json()[
        "team_id"
    ]

    with phone_signed_in(server, SUPERVISOR, lon, lat) as (_context, page, watch):
        page.get_by_test_id("tab-tasks").click()
        page.locator(f"[data-testid=tasks-dispatch] [data-case-id='{cid}']").click()
        page.get_by_test_id("action-accept").click()
        page.wait_for_selector("[data-testid=case][data-status=accepted]")
        # the community's own team is offered first
        assert page.get_by_test_id("dispatch-team").input_value() == str(team_id)
        screenshot(page, "m-case-dispatch")
        page.get_by_test_id("action-dispatch").click()
        page.wait_for_selector("[data-testid=case][data-status=dispatched]")
        assert watch.external == [] and watch.console_errors == []

    with browser_context(**phone(lon, lat)) as (context, watch):
        page = context.new_page()
        sign_in(page, server, TEAM_MEMBER)  # a team member starts on the task list
        task = page.locator(f"[data-testid=tasks-team] [data-case-id='{cid}']")
        task.wait_for()
        assert int(page.get_by_test_id("tasks-count").inner_text()) >= 1
        screenshot(page, "m-tasks-team")
        task.click()
        page.get_by_test_id("action-start").click()
        page.wait_for_selector("[data-testid=case][data-status=in_progress]")
        page.get_by_test_id("note-text").fill("已联系清运车，下午处理")
        page.get_by_test_id("action-comment").click()
        page.wait_for_selector("[data-testid=timeline] li[data-action=comment]")
        page.get_by_test_id("note-text").fill("已清理，运走两车")
        page.get_by_test_id("handle-photo").set_input_files([photo_file(300)])
        page.get_by_test_id("action-handle").click()
        page.wait_for_selector("[data-testid=case][data-status=handled]")
        page.wait_for_selector("[data-testid=case-photo][data-stage=after]")
        screenshot(page, "m-case-handled")
        assert watch.external == [] and watch.console_errors == []

    with phone_signed_in(server, WORKER, lon, lat) as (context, page, watch):
        page.get_by_test_id("tab-tasks").click()
        check = page.locator(f"[data-testid=tasks-check] [data-case-id='{cid}']")
        check.wait_for()
        screenshot(page, "m-tasks-check")
        check.click()
        page.get_by_test_id("verify-pass").click()
        page.wait_for_selector("[data-testid=case][data-status=closed]")
        actions = page.eval_on_selector_all(
            "[data-testid=timeline] li", "els => els.map(e => e.dataset.action)"
        )
        screenshot(page, "m-case-closed")
        assert watch.external == [] and watch.console_errors == []

    assert actions[:1] == ["report"] and {
        "accept",
        "dispatch",
        "start",
        "comment",
        "photo",
        "handle",
        "verify",
    } <= set(actions)
    case = httpx.get(f"{server}/api/v1/cases/{cid}", headers=sup).json()
    assert case["status"] == "closed"
    after = [p for p in case["photos"] if p["stage"] == "after"]
    assert len(after) == 1 and max(after[0]["width"], after[0]["height"]) == 1600


def test_my_grids_my_cases_and_english(server, spots):
    lon, lat = spots[0]
    with phone_signed_in(server, WORKER, lon, lat) as (_context, page, watch):
        page.get_by_test_id("tab-grids").click()
        page.wait_for_selector(f"[data-testid=grid][data-code='{GRID}']")
        page.wait_for_function(
            "() => window.gisMobile.gridLayer && "
            "document.querySelector('#grid-map path.leaflet-interactive')"
        )
        assert page.get_by_test_id("roster-item").count() >= 1
        # roles by their names from the served vocabulary, never a raw key
        roster = page.get_by_test_id("roster-item").all_inner_texts()
        assert not any("role." in r or "grid_" in r for r in roster), roster
        assert_one_thumb(page)
        screenshot(page, "m-grids")
        page.get_by_test_id("tab-cases").click()
        page.wait_for_selector("[data-testid=case-item]")
        statuses = page.eval_on_selector_all(
            "[data-testid=case-item]", "els => els.map(e => e.dataset.status)"
        )
        assert statuses
        assert_one_thumb(page)
        screenshot(page, "m-cases")
        page.get_by_test_id("case-item").first.click()
        page.wait_for_selector("[data-testid=timeline] li")
        assert_one_thumb(page)
        screenshot(page, "m-case")
        page.get_by_test_id("lang-toggle").click()
        page.get_by_test_id("report-new").click()
        page.wait_for_selector("[data-testid=report-form]")
        assert page.get_by_test_id("screen-title").inner_text() == "Report a problem"
        assert page.evaluate("document.documentElement.lang") == "en"
        screenshot(page, "m-report-en")
        assert watch.external == [] and watch.console_errors == []


def test_a_refused_report_fails_with_the_servers_reason(server, demo_settings):
    """Outside the worker's own grid the server refuses (403): the item is failed, says
    why, is not retried on its own, and can be deleted."""
    with get_engine(demo_settings).connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p "
                "FROM admin_unit WHERE code = '41010500100201') x"
            )
        ).one()
    before = last_case_id(demo_settings)
    with browser_context(**phone(lon, lat)) as (context, watch):
        page = context.new_page()
        page.goto(f"{server}/m/")
        page.get_by_test_id("login-username").fill(WORKER)
        page.get_by_test_id("login-password").fill("not-the-password")
        page.get_by_test_id("login-submit").click()
        page.wait_for_selector("[data-testid=login-error]:not([hidden])")
        assert page.get_by_test_id("login-error").inner_text() == "用户名或密码不正确"
        sign_in(page, server, WORKER)
        fill_report(page, "别的网格的问题", [])
        page.get_by_test_id("report-submit").click()
        page.wait_for_selector("[data-testid=queue-item][data-state=failed]", timeout=20000)
        reason = page.get_by_test_id("queue-error").inner_text()
        assert "41010500100201" in reason or "jurisdiction" in reason, reason
        screenshot(page, "m-queue-failed")
        page.wait_for_timeout(1500)  # no automatic retry of a refusal
        assert queue_states(page) == ["failed"]
        page.once("dialog", lambda d: d.accept())
        page.get_by_test_id("queue-delete").click()
        page.get_by_test_id("queue-empty").wait_for()
        assert watch.external == []
    assert new_cases(demo_settings, before) == []


def test_chromium_finds_the_app_installable(server, tmp_path):
    """Chromium's own installability check (manifest, icons, service worker, scope), in a
    browser with a profile on disk, as on a phone."""
    with browser_context(profile=tmp_path / "profile", **phone(*GRID_SPOT)) as (context, watch):
        page = context.new_page()
        page.goto(f"{server}/m/")
        wait_controlled(page)
        cdp = context.new_cdp_session(page)
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        assert errors == [], errors
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["url"].endswith("/m/manifest.webmanifest") and not manifest["errors"]
        assert watch.external == [] and watch.console_errors == []


def test_a_placed_pin_stays_until_the_worker_asks_for_gps_again(server, spots):
    lon, lat = spots[0]
    with phone_signed_in(server, WORKER, lon, lat) as (context, page, watch):
        page.get_by_test_id("report-new").click()
        page.wait_for_selector(".leaflet-marker-icon")
        position = page.get_by_test_id("report-position")
        page.locator("#report-map").click(position={"x": 80, "y": 60})  # tap to place
        page.wait_for_function(
            "() => document.querySelector("
            "'[data-testid=report-position]').innerText.includes('手动')"
        )
        placed = (position.get_attribute("data-lon"), position.get_attribute("data-lat"))
        assert placed != (str(round(lon, 7)), str(round(lat, 7)))
        context.set_geolocation({"longitude": lon + 0.001, "latitude": lat, "accuracy": 8})
        page.wait_for_timeout(1500)
        assert (position.get_attribute("data-lon"), position.get_attribute("data-lat")) == placed
        page.get_by_test_id("report-relocate").click()
        page.wait_for_function(
            f"() => Math.abs(document.querySelector('[data-testid=report-position]')"
            f".dataset.lon - {lon + 0.001}) < 1e-6"
        )
        assert "±8" in position.inner_text()
        assert watch.external == [] and watch.console_errors == []


def test_without_gps_the_worker_taps_the_map_inside_their_grid(server, demo_settings):
    """Indoors, or GPS refused: the map opens on the worker's own grid and a tap places
    the pin; the report is filed there."""
    before = last_case_id(demo_settings)
    options = {**phone(0, 0), "permissions": []}
    del options["geolocation"]
    with browser_context(**options) as (context, watch):
        page = context.new_page()
        sign_in(page, server, WORKER)
        page.get_by_test_id("report-new").click()
        page.wait_for_function(
            "() => document.querySelector("
            "'[data-testid=report-position]').innerText.includes('无法获取')"
        )
        page.wait_for_selector(".leaflet-tile-loaded")
        page.locator("#report-map").click()  # the middle of the map: the grid's centre
        page.wait_for_function(
            "() => document.querySelector('[data-testid=report-units]').dataset.grid"
        )
        assert page.get_by_test_id("report-units").get_attribute("data-grid") == GRID
        page.get_by_test_id("report-category").select_option(CATEGORY)
        page.get_by_test_id("report-description").fill("室内无GPS，手动选点")
        page.get_by_test_id("report-submit").click()
        page.wait_for_selector("[data-testid=queue-item][data-state=sent]", timeout=20000)
        assert watch.external == [] and watch.console_errors == []
    assert [c["description"] for c in new_cases(demo_settings, before)] == ["室内无GPS，手动选点"]


def test_times_on_the_phone_are_the_districts_whatever_the_phone_zone(server, demo_settings, spots):
    """A phone set to New York shows each case's time on the district's clock (the API
    speaks GIS_TIMEZONE, with its offset)."""
    from gis_service.timezone import local_text

    lon, lat = spots[0]
    with browser_context(**phone(lon, lat), timezone_id="America/New_York") as (context, watch):
        page = context.new_page()
        sign_in(page, server, WORKER)
        page.get_by_test_id("tab-cases").click()
        page.wait_for_selector("[data-testid=case-item]")
        first = page.get_by_test_id("case-item").first
        shown = first.inner_text()
        case_id = int(first.get_attribute("data-case-id"))
        with get_engine(demo_settings).connect() as conn:
            at = conn.execute(
                text("SELECT reported_at FROM cases WHERE id = :i"), {"i": case_id}
            ).scalar_one()
        district = local_text(at, demo_settings)  # "2026-12-01 02:30"
        month, day = int(district[5:7]), district[8:10]
        assert f"{month}-{day} {district[11:16]}" in shown, (shown, district)
        assert watch.external == [] and watch.console_errors == []
