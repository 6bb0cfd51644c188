"""Where problems come back: recurring spots (DBSCAN rule) and Gi* hotspots (esda), on
seeded cases whose answer is known, through the API, scoped as everything else."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gis_service.app import create_app
from tests.conftest import (
    COMMUNITIES,
    GRIDS,
    IN_GRID_1,
    IN_GRID_2,
    frame,
    make_user,
    write,
)
from tests.test_cases import act, report

# about 9.2 m of longitude at 34° N
STEP = 1e-4


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


def _near(point, k, step=STEP):
    return (point[0] + k * step, point[1])


def _reported(api, who, point, category="environment.garbage"):
    r = report(api, who, point=point, category=category)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def spots(api, who, status=200, **params):
    r = api.get("/api/v1/stats/recurring-spots", headers=who, params=params)
    assert r.status_code == status, r.text
    return r.json()


def _seed_spots(api, c):
    """Spot A: 4 garbage reports within 28 m in grid 1 (+ a rejected one, which does not
    count); 2 sewage reports there (below min_cases); 3 garbage reports 100 m apart (no
    spot); spot B: 3 garbage reports within 19 m in grid 2 (another subdistrict)."""
    a = [_reported(api, c["worker1"], _near(IN_GRID_1, k)) for k in range(4)]
    rejected = _reported(api, c["worker1"], _near(IN_GRID_1, 1.5))
    assert act(api, c["sub1_sup"], rejected, "reject", note="重复上报").status_code == 200
    sewage = [
        _reported(api, c["worker1"], _near(IN_GRID_1, k), "environment.sewage") for k in (0, 1)
    ]
    apart = [_reported(api, c["worker1"], _near(IN_GRID_1, 30 + 11 * k)) for k in range(3)]
    b = [_reported(api, c["worker2"], _near(IN_GRID_2, k)) for k in range(3)]
    return {"a": a, "b": b, "sewage": sewage, "apart": apart, "rejected": rejected}


def test_recurring_spots_follow_the_rule_and_the_jurisdiction(api, case_city):
    c = case_city
    seeded = _seed_spots(api, c)

    body = spots(api, c["district_sup"])
    found = {tuple(f["properties"]["case_ids"]) for f in body["features"]}
    assert found == {tuple(seeded["a"]), tuple(seeded["b"])}
    first = body["features"][0]["properties"]
    assert first["case_ids"] == seeded["a"] and first["cases"] == 4 == first["open_cases"]
    assert first["category_code"] == "environment.garbage"
    assert first["unit_codes"] == ["41019900100101"]
    # the centre lies in the middle of the four reports (1.5 steps east of the first)
    lon, lat = body["features"][0]["geometry"]["coordinates"]
    assert lon == pytest.approx(IN_GRID_1[0] + 1.5 * STEP, abs=1e-6)
    assert lat == pytest.approx(IN_GRID_1[1], abs=1e-6)
    metres = 1.5 * STEP * 111_320 * math.cos(math.radians(IN_GRID_1[1]))
    assert first["extent_m"] == pytest.approx(metres, rel=0.02)
    assert body["parameters"]["radius_m"] == 30 and body["parameters"]["min_cases"] == 3

    # the subdistrict's supervisor sees only its own spot
    own = spots(api, c["sub1_sup"])
    assert [f["properties"]["case_ids"] for f in own["features"]] == [seeded["a"]]
    # two reports are a spot when min_cases is 2; a wider radius joins the far reports
    pairs = spots(api, c["district_sup"], min_cases=2)
    assert sorted(seeded["sewage"]) in [
        sorted(f["properties"]["case_ids"]) for f in pairs["features"]
    ]
    wide = spots(api, c["district_sup"], radius_m=120, category="environment.garbage")
    joined = [
        f for f in wide["features"] if set(seeded["apart"]) <= set(f["properties"]["case_ids"])
    ]
    assert len(joined) == 1
    # a domain takes in its sub-categories; another domain has none
    assert len(spots(api, c["district_sup"], category="environment")["features"]) == 2
    assert spots(api, c["district_sup"], category="safety")["features"] == []
    # a period that ended before the reports holds none
    assert (
        spots(api, c["district_sup"], **{"from": "2020-01-01", "to": "2020-03-01"})["features"]
        == []
    )


def test_recurring_spots_refuse_planners_and_bad_parameters(api, case_city):
    c = case_city
    body = spots(api, c["planner"], status=403)
    assert body["error"] and "planner" in body["detail"]
    for params, field in [
        ({"radius_m": 0}, "radius_m"),
        ({"radius_m": 5000}, "radius_m"),
        ({"min_cases": 1}, "min_cases"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "from"),
        ({"from": "2020-01-01", "to": "2026-04-01"}, "from"),
        ({"from": "yesterday"}, "from"),
    ]:
        body = spots(api, c["district_sup"], status=422, **params)
        assert field in str(body), (params, body)


def hotspots(api, who, status=200, **params):
    r = api.get("/api/v1/stats/hotspots", headers=who, params=params)
    assert r.status_code == status, r.text
    return r.json()


def _expected_gi(counts: dict[str, int], grids=GRIDS):
    """esda run directly on the grids: queen, binary, star."""
    import esda
    from libpysal.weights import Queen

    codes = sorted(grids)
    w = Queen.from_iterable([grids[k] for k in codes], ids=codes)
    w.transform = "B"
    y = np.array([counts.get(k, 0) for k in codes], dtype=float)
    g = esda.G_Local(y, w, transform="B", star=True, permutations=999, seed=20261130, n_jobs=1)
    return codes, g


def test_gi_star_hotspots_agree_with_esda_run_directly(api, case_city):
    c = case_city
    heavy, light = "41019900100101", "41019900200101"
    for k in range(12):  # a cluster in the north-west grid
        _reported(api, c["worker1"], _near(IN_GRID_1, k))
    for k in range(2):
        _reported(api, c["worker2"], _near(IN_GRID_2, k))
    original = _reported(api, c["worker2"], _near(IN_GRID_2, 4))
    linked = report(api, c["worker2"], point=_near(IN_GRID_2, 3), link_to=original).json()
    assert linked["status"] == "duplicate"

    body = hotspots(api, c["district_sup"])
    props = {f["properties"]["code"]: f["properties"] for f in body["features"]}
    assert set(props) == set(GRIDS)
    counts = {heavy: 12, light: 3}  # the duplicate is not counted
    assert {k: p["cases"] for k, p in props.items() if p["cases"]} == counts
    codes, g = _expected_gi(counts)
    for i, code in enumerate(codes):
        assert props[code]["gi_star_z"] == pytest.approx(g.Zs[i], abs=1e-3)
        assert props[code]["p_value"] == pytest.approx(min(1, 2 * g.p_norm[i]), abs=1e-5)
        assert props[code]["p_sim"] == pytest.approx(g.p_sim[i], abs=1e-4)
    hottest = max(props.values(), key=lambda p: p["gi_star_z"])
    assert hottest["code"] == heavy  # eight grids: too few neighbours for significance
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in body["features"])

    # a subdistrict's supervisor: its four grids only, too few for a statistic
    own = hotspots(api, c["sub1_sup"])
    assert {f["properties"]["code"] for f in own["features"]} == {
        k for k in GRIDS if k.startswith("410199001")
    }
    assert own["note"] and all(f["properties"]["gi_bin"] is None for f in own["features"])
    # the category filter counts through the same rule as every statistic
    assert hotspots(api, c["district_sup"], category="safety")["note"]
    bad = hotspots(api, c["district_sup"], status=422, unit="4101990011")
    assert "unit" in str(bad)


def test_gi_bins_are_arcgis_confidence_classes():
    from gis_service.hotspots.gistar import gi_bin

    assert [gi_bin(3.0, 0.005), gi_bin(2.1, 0.03), gi_bin(1.7, 0.09), gi_bin(1.0, 0.3)] == [
        3,
        2,
        1,
        0,
    ]
    assert [gi_bin(-3.0, 0.005), gi_bin(-2.1, 0.03)] == [-3, -2]


def _lattice(n: int = 6) -> dict[str, object]:
    """An n × n lattice of grids over the north-west community, codes row by row."""
    from shapely.geometry import box

    x0, y0, x1, y1 = COMMUNITIES["410199001001"].bounds
    dx, dy = (x1 - x0) / n, (y1 - y0) / n
    return {
        f"410199001001{r * n + k + 1:02d}": box(
            x0 + k * dx, y0 + r * dy, x0 + (k + 1) * dx, y0 + (r + 1) * dy
        )
        for r in range(n)
        for k in range(n)
    }


def test_a_dense_block_of_grids_is_a_hotspot_at_99_percent(test_city, tmp_path):
    """A 6 × 6 lattice; one case in every grid, twelve more in each of the four central
    grids: those four are hot at 99 % (z > 2.58), as esda computes it directly."""
    from gis_service.imports.boundaries import BoundaryOptions, import_boundaries
    from gis_service.units.codes import Level

    lattice = _lattice()
    path = write(frame(lattice, "网格"), tmp_path / "lattice.geojson")
    import_boundaries(path, BoundaryOptions(level=Level.grid), settings=test_city)
    worker = make_user(test_city, "supervisor", scopes=["410199001001"], username="gw")
    sup = make_user(test_city, "supervisor", scopes=["410199"], username="sup")
    centre = {"41019900100115", "41019900100116", "41019900100121", "41019900100122"}
    counts = {}
    with TestClient(create_app(test_city)) as api:
        for code, cell in lattice.items():
            counts[code] = 1 + (12 if code in centre else 0)
            x, y = cell.centroid.x, cell.centroid.y
            for k in range(counts[code]):
                _reported(api, worker, (x + k * STEP, y))
        body = hotspots(api, sup, unit="410199001001")
    props = {f["properties"]["code"]: f["properties"] for f in body["features"]}
    assert {k: p["cases"] for k, p in props.items()} == counts
    codes, g = _expected_gi(counts, lattice)
    for i, code in enumerate(codes):
        assert props[code]["gi_star_z"] == pytest.approx(g.Zs[i], abs=1e-3)
    assert {k for k, p in props.items() if p["gi_bin"] == 3} == centre
    assert all(
        p["gi_bin"] <= 0
        for k, p in props.items()
        if k not in centre and not any(_touches(lattice[k], lattice[c]) for c in centre)
    )


def _touches(a, b) -> bool:
    return a.touches(b) or a.intersects(b)
