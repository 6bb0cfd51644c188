"""Siting is the exact maximal-covering optimum: compared with PySAL spopt's MCLP solved
by CBC on walking distances computed independently with networkx."""

from __future__ import annotations

import numpy as np
import pulp
import pytest
from spopt.locate import MCLP
from sqlalchemy import text

from gis_service.db.engine import get_engine
from tests.access_reference import Reference
from tests.conftest import ADMIN_AUTH, make_user


@pytest.fixture(scope="module")
def demo_reference(demo_settings) -> Reference:
    return Reference.load(demo_settings)


def _rows(settings, sql: str) -> list:
    with get_engine(settings).connect() as conn:
        return conn.execute(text(sql)).all()


def test_siting_among_candidates_equals_spopt_mclp(demo_client, demo_settings, demo_reference):
    max_m, k = 1000.0, 3
    party = _rows(
        demo_settings,
        """
        SELECT ST_X(p.geom), ST_Y(p.geom) FROM service_point p
        JOIN service_kind k ON k.code = p.kind WHERE k.counts_for_party_reach""",
    )
    walk = demo_reference.nearest_of([(x, y) for x, y in party])
    buildings = _rows(
        demo_settings,
        """
        SELECT code, population, ST_X(p), ST_Y(p) FROM admin_unit,
        LATERAL ST_PointOnSurface(geom) p WHERE level = 'building' AND population > 0""",
    )
    gaps = [(c, pop, x, y) for c, pop, x, y in buildings if walk(x, y) > max_m]
    assert len(gaps) > 20
    # candidates: points near the gaps (some good, some useless), named c0, c1, ...
    rng = np.random.default_rng(11)
    picks = rng.choice(len(gaps), 30, replace=False)
    cands = [(gaps[i][2] + rng.normal(0, 0.004), gaps[i][3] + rng.normal(0, 0.004)) for i in picks]
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": f"c{j}",
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [x, y]},
            }
            for j, (x, y) in enumerate(cands)
        ],
    }
    r = demo_client.post(
        "/api/v1/access/siting",
        json={"kind": "party_org", "k": k, "max_m": max_m, "candidates": fc},
        headers=ADMIN_AUTH,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["uncovered_buildings"] == len(gaps)
    assert body["uncovered_population"] == sum(g[1] for g in gaps)

    # the independent model: walking distance building -> candidate with networkx
    cost = np.full((len(gaps), len(cands)), np.inf)
    for i, (_, _, x, y) in enumerate(gaps):
        origin = demo_reference.from_point(x, y, cutoff=max_m + 400)
        for j, (cx, cy) in enumerate(cands):
            cost[i, j] = demo_reference.distance_to(origin, cx, cy)
    cost[~np.isfinite(cost)] = 1e9
    weights = np.array([g[1] for g in gaps], float)
    model = MCLP.from_cost_matrix(cost, weights, service_radius=max_m, p_facilities=k)
    model.solve(pulp.PULP_CBC_CMD(msg=False))
    optimum = pulp.value(model.problem.objective)
    assert body["population_covered"] == pytest.approx(optimum, abs=0.5)
    chosen = {f["properties"]["candidate"] for f in body["features"]}
    assert len(chosen) == k
    # our choice, scored with the independent distances, reaches the optimum too
    cols = [int(c[1:]) for c in chosen]
    covered = (cost[:, cols] <= max_m).any(axis=1)
    assert weights[covered].sum() == pytest.approx(optimum, abs=0.5)
    added = [f["properties"]["population_added"] for f in body["features"]]
    assert added == sorted(added, reverse=True) and sum(added) == body["population_covered"]


def test_siting_on_network_nodes_covers_more_than_any_single_site(demo_client):
    one = demo_client.get(
        "/api/v1/access/siting", params={"kind": "party_org", "k": 1}, headers=ADMIN_AUTH
    ).json()
    three = demo_client.get(
        "/api/v1/access/siting", params={"kind": "party_org", "k": 3}, headers=ADMIN_AUTH
    ).json()
    assert len(three["features"]) == 3
    assert three["population_covered"] > one["population_covered"] > 0
    # the best single site is the first site of the best three, or as good as it
    assert (
        three["features"][0]["properties"]["population_added"]
        == one["features"][0]["properties"]["population_added"]
    )
    assert three["features"][0]["properties"]["candidate"].startswith("node:")


def test_siting_needs_a_planner_and_says_what_is_wrong(demo_client, demo_settings):
    worker = make_user(
        demo_settings, "grid_worker", scopes=["41010500100101"], username="siting-worker"
    )
    assert (
        demo_client.get(
            "/api/v1/access/siting", params={"kind": "party_org"}, headers=worker
        ).status_code
        == 403
    )
    r = demo_client.get("/api/v1/access/siting", headers=ADMIN_AUTH)
    assert r.status_code == 422 and "kind or category" in r.json()["detail"]
    r = demo_client.post(
        "/api/v1/access/siting",
        headers=ADMIN_AUTH,
        json={
            "kind": "party_org",
            "candidates": {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "geometry": {"type": "LineString", "coordinates": []}}
                ],
            },
        },
    )
    assert r.status_code == 422 and "feature 0 is not a Point" in r.json()["detail"]
