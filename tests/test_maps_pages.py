"""The map pages' HTML: sign-in, jurisdiction, and what a configuration changes."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from gis_service.app import create_app
from tests.conftest import map_pages


def _signed_in(settings, username: str = "admin") -> TestClient:
    client = TestClient(create_app(settings))
    r = client.post(
        "/maps/login",
        data={"username": username, "password": "demo-2026", "next": "/maps/units"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "gis_token" in r.cookies
    return client


def test_pages_need_a_sign_in_and_a_wrong_password_says_so(demo_settings):
    with TestClient(create_app(demo_settings)) as client:
        r = client.get("/maps/cases?status=closed", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/maps/login?next=/maps/cases%3Fstatus%3Dclosed"
        r = client.post(
            "/maps/login", data={"username": "admin", "password": "nope"}, follow_redirects=True
        )
        assert 'data-testid="login-error"' in r.text
        # the cookie is for reading: a write with it alone is refused
        client.post("/maps/login", data={"username": "admin", "password": "demo-2026"})
        r = client.post(
            "/api/v1/cases",
            json={
                "lon": 113.68,
                "lat": 34.78,
                "category": "environment.garbage",
                "description": "cookie only",
            },
        )
        assert r.status_code == 401


def test_a_pages_script_writes_with_the_cookie_only_with_its_header(demo_settings):
    """api/deps.py ``PAGE_WRITE_HEADER``: the sign-in cookie carries a write only with
    ``X-Requested-With: XMLHttpRequest`` and no Origin of another host (OWASP CSRF
    custom-header defence); the same request with the header is carried out."""
    with _signed_in(demo_settings, "admin") as client:
        case_id = client.get("/api/v1/cases", params={"limit": 1}).json()["features"][0]["id"]
        url = f"/api/v1/cases/{case_id}/actions"
        body = {"action": "comment", "note": "cookie write"}
        own = {"X-Requested-With": "XMLHttpRequest"}
        assert client.post(url, json=body).status_code == 401
        foreign = {**own, "Origin": "https://evil.example"}
        assert client.post(url, json=body, headers=foreign).status_code == 401
        assert client.post(url, json=body, headers={"X-Requested-With": "x"}).status_code == 401
        same = {**own, "Origin": "http://testserver"}
        for headers in (own, same):
            r = client.post(url, json=body, headers=headers)
            assert r.status_code in (200, 409), r.text  # signed in: the loop's rules decide


def test_pages_ask_nothing_of_other_hosts_by_default(demo_settings):
    with _signed_in(demo_settings) as client:
        for path in map_pages():
            html = client.get(path).text
            sources = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert sources and all(s.startswith(("/", "#", "?")) for s in sources), path
        coverage = client.get("/maps/coverage?circle=health&lang=en").text
        assert "Residents with all six services" in coverage  # the living-circle layer
        assert '<option value="health" selected>Health</option>' in coverage


def test_an_outside_basemap_can_be_configured_and_its_datum_is_flagged(demo_settings):
    settings = demo_settings.model_copy(
        update={
            "basemap_url": "https://wmts.gov.example/tiles/{z}/{x}/{y}.png",
            "basemap_coord_sys": "gcj02",
        }
    )
    with _signed_in(settings) as client:
        html = client.get("/maps/resolution").text
        assert "https://wmts.gov.example/tiles/{z}/{x}/{y}.png" in html
        assert "gisBasemap(" not in html
        assert "GCJ-02" in html


def _visible_text(html: str) -> str:
    """The page's words as a person reads them: no scripts, styles, tags or attributes."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    return re.sub(r"(?s)<[^>]+>", " ", html)


def test_chinese_pages_show_no_english_keys_and_local_times(demo_settings):
    """Every vocabulary key (statuses, levels, living-circle categories, roles) is shown by
    its Chinese name, and the coverage page's data date is the district's clock."""
    from sqlalchemy import text

    from gis_service.db.engine import get_engine
    from gis_service.timezone import local_text

    with get_engine(demo_settings).connect() as conn:
        keys = set(conn.execute(text("SELECT code FROM living_category")).scalars())
        at = conn.execute(text("SELECT max(computed_at) FROM building_access")).scalar()
    from gis_service.stats.cube import STATUSES
    from gis_service.units.codes import LEVELS

    keys |= set(STATUSES) | {str(lv) for lv in LEVELS}
    with _signed_in(demo_settings) as client:
        for path in map_pages():
            words = set(re.findall(r"[a-z_]+", _visible_text(client.get(path).text)))
            assert not words & keys, (path, words & keys)
        coverage = _visible_text(client.get("/maps/coverage").text)
    if at is not None:
        assert local_text(at, demo_settings) in coverage


def test_a_layer_without_features_renders(settings):
    """A viewer whose scope holds no buildings or units still gets the page (folium refuses
    a tooltip or popup on an empty layer; pages.finish drops them)."""
    import folium

    from gis_service.maps.pages import finish

    m = folium.Map()
    folium.GeoJson(
        {"type": "FeatureCollection", "features": []},
        tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=["名称"]),
        popup=folium.GeoJsonPopup(fields=["name"], aliases=["名称"]),
    ).add_to(m)
    assert "gisReady();" in finish(m)


def test_the_hotspot_map_shows_spots_only_to_those_who_read_cases(demo_settings):
    """Planners see the Gi* grids (figures) but not the recurring spots (they list cases)."""
    with _signed_in(demo_settings) as admin:
        page = admin.get("/maps/hotspots").text
        assert "spot-cases" in page and "/desk/cases/" in page
    with _signed_in(demo_settings, "planner") as planner:
        r = planner.get("/maps/hotspots")
        assert r.status_code == 200
        assert "gi_star_z" in r.text and "spot-cases" not in r.text
        assert "/desk/cases/" not in r.text
