"""The demo city: sized like the seed article, clean QA, deterministic, locatable."""

from __future__ import annotations

import numpy as np
import shapely
from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.demo import hierarchy
from gis_service.demo.plane import Plane, centred_density
from gis_service.demo.run import CENTRES, DEMO_DISTRICT, DENSITY_FLOOR, load_demo


def scalar(settings, sql: str, **params):
    with get_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_demo_is_sized_like_the_seed_article(demo_settings):
    counts = dict(
        (r[0], r[1])
        for r in get_engine(demo_settings)
        .connect()
        .execute(
            text("SELECT level, count(*) FROM admin_unit WHERE code LIKE '410105%' GROUP BY level")
        )
    )
    assert counts == {
        "district": 1,
        "subdistrict": 17,
        "community": 160,
        "grid": 571,
        "building": 1276,
    }
    assert (
        scalar(demo_settings, "SELECT population FROM admin_unit WHERE code = '410105'")
        == 1_415_000
    )
    assert (
        scalar(demo_settings, "SELECT sum(population) FROM admin_unit WHERE level = 'grid'")
        == 1_415_000
    )
    assert scalar(demo_settings, "SELECT count(*) FROM service_point WHERE kind = 'red_home'") == 21
    assert (
        scalar(
            demo_settings, "SELECT count(*) FROM service_point WHERE kind = 'convenience_outlet'"
        )
        == 273
    )
    assert (
        scalar(demo_settings, "SELECT count(*) FROM unit_staff WHERE role = 'grid_leader'") == 571
    )


def test_demo_grid_is_a_clean_partition(demo_settings):
    # Every child inside its parent and the children cover it: what the QA report checks.
    worst_gap = scalar(
        demo_settings,
        """
        SELECT max(planar_area_m2(ST_Difference(p.geom, c.u))) FROM admin_unit p
          JOIN (SELECT parent_code, ST_Union(geom) AS u FROM admin_unit
                 WHERE level IN ('subdistrict', 'community', 'grid') GROUP BY parent_code) c
            ON c.parent_code = p.code""",
    )
    assert worst_gap < 1.0
    outside = scalar(
        demo_settings,
        """
        SELECT count(*) FROM admin_unit c JOIN admin_unit p ON p.code = c.parent_code
         WHERE planar_area_m2(ST_Difference(c.geom, p.geom)) > 1.0""",
    )
    assert outside == 0


def test_old_town_is_denser_than_the_edge(demo_settings):
    dense = scalar(
        demo_settings,
        """
        SELECT sum(population) / sum(area_m2) * 1e6 FROM admin_unit
         WHERE level = 'grid'
           AND ST_DWithin(geom, ST_SetSRID(ST_MakePoint(113.672, 34.775), 4326), 0.02)""",
    )
    sparse = scalar(
        demo_settings,
        """
        SELECT sum(population) / sum(area_m2) * 1e6 FROM admin_unit
         WHERE level = 'grid' AND ST_Y(ST_Centroid(geom)) > 34.86""",
    )
    assert dense > 5 * sparse


def test_random_points_in_the_district_locate_to_a_grid(demo_client, demo_settings):
    with get_engine(demo_settings).connect() as conn:
        pts = conn.execute(
            text(
                "SELECT ST_X(g), ST_Y(g) FROM (SELECT "
                "(ST_Dump(ST_GeneratePoints(geom, 50, 1))).geom "
                "AS g FROM admin_unit WHERE code = '410105') x"
            )
        ).all()
    for lon, lat in pts:
        body = demo_client.get("/api/v1/locate", params={"lon": lon, "lat": lat}).json()
        assert body["grid"] is not None, (lon, lat)
        assert body["grid"]["code"].startswith(body["community"]["code"])


def test_walking_network_is_one_connected_pgrouting_graph(demo_settings):
    edges = scalar(demo_settings, "SELECT count(*) FROM walk_edge")
    assert edges > 20_000
    biggest = scalar(
        demo_settings,
        """
        SELECT max(n) FROM (SELECT count(*) AS n FROM pgr_connectedComponents(
            'SELECT id, source, target, cost, reverse_cost FROM walk_edge')
            GROUP BY component) c""",
    )
    nodes = scalar(demo_settings, "SELECT count(*) FROM walk_node")
    assert biggest > 0.95 * nodes
    # the canal can be crossed only on bridges: few edges cross it
    assert (
        scalar(
            demo_settings, "SELECT count(*) FROM walk_edge WHERE kind IN ('bridge', 'footbridge')"
        )
        < 60
    )


def test_generator_is_deterministic(demo_settings):
    with get_engine(demo_settings).connect() as conn:
        wkb = conn.execute(
            text("SELECT ST_AsBinary(geom) FROM admin_unit WHERE code = :c"), {"c": DEMO_DISTRICT}
        ).scalar()
    district = shapely.from_wkb(bytes(wkb))
    plane = Plane.around(district.centroid.x, district.centroid.y)
    density = centred_density([(*plane.xy(a, b), w, s) for a, b, w, s in CENTRES], DENSITY_FLOOR)

    def run(seed: int):
        h = hierarchy.generate(
            DEMO_DISTRICT,
            "金水区",
            district,
            density,
            plane,
            hierarchy.DemoSize(),
            np.random.default_rng(seed),
        )
        return [(u.code, u.name, u.population, round(u.geom.area, 12)) for u in h.levels["grid"]]

    first = run(2026)
    assert first == run(2026)
    assert first != run(2027)


def test_loading_the_demo_twice_changes_nothing(demo_settings):
    before = scalar(
        demo_settings,
        "SELECT md5(string_agg(code || name || population, ',' ORDER BY code)) FROM admin_unit",
    )
    points = scalar(demo_settings, "SELECT count(*) FROM service_point")
    cases = scalar(demo_settings, "SELECT count(*) FROM cases")
    users = scalar(demo_settings, "SELECT count(*) FROM app_user")
    result = load_demo(demo_settings)
    assert result.cases is None and "already loaded" in result.summary()
    assert scalar(demo_settings, "SELECT count(*) FROM cases") == cases > 0
    assert scalar(demo_settings, "SELECT count(*) FROM app_user") == users > 0
    assert result.seconds < 120
    for report in result.reports[1:5]:  # the generated levels pass their own QA
        assert (report.overlaps, report.gaps, report.outside_parent, report.repaired) == (
            [],
            [],
            [],
            [],
        ), report.level
    assert (
        scalar(
            demo_settings,
            "SELECT md5(string_agg(code || name || population, ',' ORDER BY code)) FROM admin_unit",
        )
        == before
    )
    assert scalar(demo_settings, "SELECT count(*) FROM service_point") == points


def test_demo_history_reads_like_the_seed_through_the_api(demo_client, demo_settings):
    """Sign in as the demo's district supervisor; a year of cases resolves near 98 %."""
    from gis_service.demo.cases import DEMO_PASSWORD

    username = scalar(
        demo_settings,
        "SELECT username FROM app_user WHERE role = 'supervisor' "
        "AND scopes = ARRAY['410105'] LIMIT 1",
    )
    r = demo_client.post(
        "/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
    )
    assert r.status_code == 200, r.text
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    body = demo_client.get(
        "/api/v1/stats/resolution", headers=auth, params={"level": "subdistrict"}
    ).json()
    assert len(body["units"]) == 17
    assert 0.96 <= body["totals"]["resolution_rate"] <= 0.995
    assert body["totals"]["reported"] > 15_000 and body["totals"]["overdue_now"] > 0
    assert 50 <= len(body["weekly"]) <= 53
    rates = [u["resolution_rate"] for u in body["units"]]
    assert min(rates) < max(rates)  # units differ: something for the map to show
    cases = demo_client.get(
        "/api/v1/cases", headers=auth, params={"overdue": "true", "limit": 5}
    ).json()
    # The list is not limited to the last 52 weeks, so it holds at least as many.
    assert cases["numberMatched"] >= body["totals"]["overdue_now"]
