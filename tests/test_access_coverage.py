"""The one-kilometre reach, its gaps and the living circle on the demo district, checked
against networkx (tests/access_reference.py), with jurisdiction and staleness."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from gis_service.db.engine import get_engine
from tests.access_reference import Reference
from tests.conftest import ADMIN_AUTH, make_user


@pytest.fixture(scope="module")
def demo_reference(demo_settings) -> Reference:
    return Reference.load(demo_settings)


def _rows(settings, sql: str, **params) -> list:
    with get_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).all()


def test_reach_matches_networkx_for_sampled_buildings(demo_client, demo_settings, demo_reference):
    r = demo_client.get("/api/v1/access/reach", params={"level": "subdistrict"}, headers=ADMIN_AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    total_pop = _rows(
        demo_settings, "SELECT sum(population) FROM admin_unit WHERE level = 'building'"
    )[0][0]
    assert body["total"]["population"] == total_pop
    assert 0 < body["total"]["covered_share"] < 1
    party = _rows(
        demo_settings,
        """
        SELECT ST_X(p.geom), ST_Y(p.geom) FROM service_point p
        JOIN service_kind k ON k.code = p.kind WHERE k.counts_for_party_reach""",
    )
    walk = demo_reference.nearest_of([(x, y) for x, y in party])
    stored = _rows(
        demo_settings,
        "SELECT unit_code, ST_X(geom), ST_Y(geom), party_m, method "
        "FROM building_access ORDER BY unit_code",
    )
    rng = np.random.default_rng(7)
    for i in rng.choice(len(stored), 60, replace=False):
        code, lon, lat, party_m, method = stored[i]
        assert method == "network"
        expected = walk(lon, lat)
        if expected > 3000:
            assert party_m is None
        else:
            assert party_m == pytest.approx(expected, abs=0.5), code


def test_gaps_are_the_uncovered_buildings_with_their_residents(demo_client, demo_settings):
    reach = demo_client.get(
        "/api/v1/access/reach", params={"level": "community"}, headers=ADMIN_AUTH
    ).json()
    gaps = demo_client.get("/api/v1/access/gaps", headers=ADMIN_AUTH)
    assert gaps.status_code == 200
    assert gaps.headers["content-type"].startswith("application/geo+json")
    fc = gaps.json()
    assert len(fc["features"]) == reach["total"]["uncovered_buildings"] > 0
    assert fc["uncovered_population"] == reach["total"]["uncovered_population"]
    for f in fc["features"]:
        d = f["properties"]["distance_m"]
        assert d is None or d > 1000
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
    # a longer reach leaves fewer gaps
    wider = demo_client.get(
        "/api/v1/access/gaps", params={"max_m": 1500}, headers=ADMIN_AUTH
    ).json()
    assert len(wider["features"]) < len(fc["features"])


def test_a_new_party_point_closes_its_gap_at_the_next_question(demo_client, demo_settings):
    fc = demo_client.get("/api/v1/access/gaps", headers=ADMIN_AUTH).json()
    worst = fc["features"][0]["properties"]
    before = fc["uncovered_population"]
    lon, lat = worst["point"]
    with get_engine(demo_settings).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO service_point (external_id, kind, categories, name, geom) VALUES "
                "('test-gap-closer', 'party_org', '{government}', '新建党支部', "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            ),
            {"lon": lon, "lat": lat},
        )
    try:
        after = demo_client.get("/api/v1/access/gaps", headers=ADMIN_AUTH).json()
        codes = {f["id"] for f in after["features"]}
        assert worst["unit_code"] not in codes
        assert after["uncovered_population"] <= before - worst["population"]
        assert after["versions"]["points"] > fc["versions"]["points"]
    finally:
        with get_engine(demo_settings).begin() as conn:
            conn.execute(text("DELETE FROM service_point WHERE external_id = 'test-gap-closer'"))


def test_reach_follows_the_viewers_jurisdiction(demo_client, demo_settings):
    sub = _rows(
        demo_settings,
        "SELECT code FROM admin_unit WHERE level = 'subdistrict' "
        "AND code LIKE '410105%' ORDER BY code LIMIT 1",
    )[0][0]
    sup = make_user(demo_settings, "supervisor", scopes=[sub], username=f"reach-sup-{sub}")
    body = demo_client.get(
        "/api/v1/access/reach", params={"level": "community"}, headers=sup
    ).json()
    assert body["units"] and all(u["code"].startswith(sub) for u in body["units"])
    gaps = demo_client.get("/api/v1/access/gaps", headers=sup).json()
    assert all(f["id"].startswith(sub) for f in gaps["features"])
    worker = make_user(
        demo_settings, "grid_worker", scopes=[sub + "00101"], username=f"reach-worker-{sub}"
    )
    r = demo_client.get("/api/v1/access/reach", headers=worker)
    assert r.status_code == 403 and "planner" in r.json()["detail"]
    assert demo_client.get("/api/v1/access/gaps").status_code == 401


def test_living_circle_per_community_and_per_building(demo_client, demo_settings):
    r = demo_client.get(
        "/api/v1/access/living-circle", params={"level": "community"}, headers=ADMIN_AUTH
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["code"] for c in body["categories"]] == [
        "government",
        "daily_life",
        "culture_education",
        "health",
        "public_welfare",
        "safety",
    ]
    buildings = demo_client.get(
        "/api/v1/access/living-circle", params={"level": "building"}, headers=ADMIN_AUTH
    ).json()["units"]
    by_community: dict[str, list] = {}
    for b in buildings:
        assert b["complete"] == (not b["missing"])
        for c in b["within"]:
            assert b["distance_m"][c] <= 1000
        by_community.setdefault(b["code"][:12], []).append(b)
    for unit in body["units"]:
        members = by_community[unit["code"]]
        pop = sum(b["population"] for b in members)
        assert unit["population"] == pop
        assert unit["complete_population"] == sum(b["population"] for b in members if b["complete"])
        missing = {
            c["code"]: sum(b["population"] for b in members if c["code"] in b["missing"])
            for c in body["categories"]
        }
        if unit["most_missing"]:
            assert unit["most_missing"]["population_missing"] == max(missing.values())
            assert missing[unit["most_missing"]["category"]] == max(missing.values())
    shares = [u["complete_share"] for u in body["units"]]
    assert 0 < np.mean(shares) < 1
    # twenty minutes cover at least as many residents as fifteen
    wider = demo_client.get(
        "/api/v1/access/living-circle",
        params={"level": "community", "minutes": 20},
        headers=ADMIN_AUTH,
    ).json()
    for a, b in zip(body["units"], wider["units"], strict=True):
        assert b["complete_population"] >= a["complete_population"]
