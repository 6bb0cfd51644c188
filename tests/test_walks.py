"""Grid walks (issue 18, gis_service/walks/): the visited rule on a noisy track against a
hand-computed answer (tests/walk_city.py), chunks stored exactly once whatever the
retries and order, every bad fix named, the scope rule, reports linked to a walk, the
due list, the figures and retention — all through the API on the real PostGIS."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine
from gis_service.walks.rules import CHUNK_MAX_POINTS
from tests import walk_city
from tests.walk_city import GRID, VISITED_EAST, fix, ll, walk_east


@pytest.fixture
def place(case_city, tmp_path: Path):
    walk_city.build(case_city["settings"], tmp_path)
    with TestClient(create_app(case_city["settings"])) as api:
        yield {**case_city, "api": api}


def _start(api, auth, start: datetime, key: str | None = None, **body) -> dict:
    headers = {**auth, **({"Idempotency-Key": key} if key else {})}
    r = api.post(
        "/api/v1/walks",
        headers=headers,
        json={"grid_code": GRID, "client_started_at": start.isoformat(), **body},
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def _send(api, auth, walk_id: int, chunk_id: str, points: list[dict]):
    return api.post(
        f"/api/v1/walks/{walk_id}/points",
        headers=auth,
        json={"chunk_id": chunk_id, "points": points},
    )


def _chunks(points: list[dict], size: int) -> list[tuple[str, list[dict]]]:
    return [(f"c{i:04d}", points[i : i + size]) for i in range(0, len(points), size)]


def _stored(settings, walk_id: int) -> list:
    with get_engine(settings).connect() as conn:
        return list(
            conn.execute(
                text("SELECT client_ts FROM walk_point WHERE walk_id = :w ORDER BY client_ts"),
                {"w": walk_id},
            ).scalars()
        )


def test_noisy_walk_visits_the_hand_computed_buildings(place):
    api, worker = place["api"], place["worker1"]
    start = datetime.now(UTC) - timedelta(hours=2)
    points = walk_east(start)
    walk = _start(api, worker, start)
    for chunk_id, chunk in _chunks(points, 40):
        r = _send(api, worker, walk["id"], chunk_id, chunk)
        assert r.status_code == 200, r.text
    r = api.post(f"/api/v1/walks/{walk['id']}/end", headers=worker)
    assert r.status_code == 200, r.text
    feature = r.json()
    props = feature["properties"]
    assert {v["building_code"] for v in props["visited"]} == VISITED_EAST
    # the noise was dropped for the reasons it was made with
    assert props["dropped"]["jump"] >= 2
    assert props["dropped"]["accuracy"] == 3
    assert props["dropped"]["stop"] >= 100  # 120 fixes of the stop, one kept
    assert props["points_received"] == len(points)
    assert props["points_kept"] + props["points_dropped"] == len(points)
    # the track runs along the street: 400 m east, wobbling with the fixes' noise
    assert 380 <= props["distance_m"] <= 520, props["distance_m"]
    assert feature["geometry"]["type"] == "MultiLineString"
    # matched to the network: every vertex on the street (its latitude) or, near the
    # crossing, on the cross street (its longitude)
    cross_lon = ll(200, 0)[0]
    off = [
        (lon, lat)
        for line in feature["geometry"]["coordinates"]
        for lon, lat in line
        if abs(lat - walk_city.O_LAT) > 1e-7 and abs(lon - cross_lon) > 1e-7
    ]
    assert not off, off
    # 002 was visited while standing at its door, ten minutes after the start
    times = {v["building_code"]: v["visited_at"] for v in props["visited"]}
    assert times[GRID + "001"] < times[GRID + "002"] < times[GRID + "003"]


def test_the_same_fixes_without_the_network_still_visit_by_footprint_only(place):
    """Without a door on the network only the footprint counts: walking the street 20 m
    from the footprints (more than 15 m) then visits nothing — the door makes the
    difference (docs/walks.md)."""
    s = place["settings"]
    with get_engine(s).begin() as conn:
        conn.execute(text("TRUNCATE walk_edge, walk_node CASCADE"))
    api, worker = place["api"], place["worker1"]
    start = datetime.now(UTC) - timedelta(hours=2)
    walk = _start(api, worker, start)
    points = [fix(start + timedelta(seconds=5 * i), 6.5 * i, 0.0) for i in range(62)]
    assert _send(api, worker, walk["id"], "all", points).status_code == 200
    # and a detour right past 003's footprint (8 m from it)
    later = start + timedelta(seconds=5 * 62)
    detour = [fix(later + timedelta(seconds=5 * i), 300, 4 + 1.0 * i) for i in range(5)]
    assert _send(api, worker, walk["id"], "detour", detour).status_code == 200
    props = api.post(f"/api/v1/walks/{walk['id']}/end", headers=worker).json()["properties"]
    assert {v["building_code"] for v in props["visited"]} == {GRID + "003"}


def test_retried_and_shuffled_chunks_store_every_fix_once(place):
    api, worker, s = place["api"], place["worker1"], place["settings"]
    start = datetime.now(UTC) - timedelta(hours=2)
    points = walk_east(start)
    walk = _start(api, worker, start)
    chunks = _chunks(points, 25)
    rng = random.Random(18)
    order = chunks + rng.sample(chunks, 5)  # five chunks sent twice (retries)
    rng.shuffle(order)
    replays = 0
    for chunk_id, chunk in order:
        r = _send(api, worker, walk["id"], chunk_id, chunk)
        assert r.status_code == 200, r.text
        replays += r.json()["replayed"]
    assert replays == 5
    # a phone that lost its outbox sends the same fixes again under new chunk ids
    r = _send(api, worker, walk["id"], "rebuilt-1", points[10:60])
    assert r.status_code == 200 and r.json()["stored"] == 0 and not r.json()["replayed"]
    stored = _stored(s, walk["id"])
    assert len(stored) == len(points) == len({p["t"] for p in points})
    got = api.get(f"/api/v1/walks/{walk['id']}", headers=worker).json()["properties"]
    assert got["points_received"] == len(points)
    # the same chunk id with other fixes is refused, nothing stored
    first_id, first = chunks[0]
    r = _send(api, worker, walk["id"], first_id, first[:-1])
    assert r.status_code == 422 and r.json()["error"] == "idempotency_key_reused"
    assert r.json()["field"] == "chunk_id"
    assert len(_stored(s, walk["id"])) == len(points)


def test_bad_fixes_are_each_named_and_nothing_is_stored(place):
    api, worker, s = place["api"], place["worker1"], place["settings"]
    start = datetime.now(UTC) - timedelta(hours=1)
    walk = _start(api, worker, start)
    good = fix(start + timedelta(minutes=1), 10, 0)
    before = fix(start - timedelta(minutes=5), 10, 0)
    future = fix(datetime.now(UTC) + timedelta(hours=1), 10, 0)
    far_lon, far_lat = ll(0, 0)
    outside = {**good, "t": (start + timedelta(minutes=2)).isoformat(), "lon": far_lon + 0.5}
    north = {**good, "t": (start + timedelta(minutes=3)).isoformat(), "lat": far_lat + 0.5}
    twice = {**good}
    r = _send(api, worker, walk["id"], "bad", [good, before, future, outside, north, twice])
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid_input"
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"points[1].t", "points[2].t", "points[3].lon", "points[4].lat", "points[5].t"}
    assert _stored(s, walk["id"]) == []
    # the model's own checks name the field too
    for points, field in (
        ([{**good, "accuracy_m": 0}], "points.0.accuracy_m"),
        ([{**good, "lon": 200}], "points.0.lon"),
        ([{**good, "t": "2026-11-30T10:00:00"}], "points.0.t"),  # no offset
        ([good] * (CHUNK_MAX_POINTS + 1), "points"),
    ):
        r = _send(api, worker, walk["id"], "x", points)
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    r = api.post(f"/api/v1/walks/{walk['id']}/points", headers=worker, json={"points": [good]})
    assert r.status_code == 422 and r.json()["field"] == "chunk_id"
    # after the end: fixes of the walk's time are still taken, later ones refused
    assert api.post(f"/api/v1/walks/{walk['id']}/end", headers=worker).status_code == 200
    r = _send(api, worker, walk["id"], "late", [good])
    assert r.status_code == 200 and r.json()["stored"] == 1
    after = fix(datetime.now(UTC) + timedelta(minutes=10), 10, 0)
    r = _send(api, worker, walk["id"], "after", [after])
    assert r.status_code == 409, r.text
    assert len(_stored(s, walk["id"])) == 1


def test_start_is_idempotent_and_one_walk_runs_at_a_time(place):
    api, worker = place["api"], place["worker1"]
    start = datetime.now(UTC)
    a = api.post(
        "/api/v1/walks",
        headers={**worker, "Idempotency-Key": "w-1"},
        json={"grid_code": GRID, "client_started_at": start.isoformat()},
    )
    b = api.post(
        "/api/v1/walks",
        headers={**worker, "Idempotency-Key": "w-1"},
        json={"grid_code": GRID, "client_started_at": start.isoformat()},
    )
    assert (a.status_code, b.status_code) == (201, 200)
    assert a.json()["id"] == b.json()["id"]
    assert a.headers["location"] == f"/api/v1/walks/{a.json()['id']}"
    c = api.post(
        "/api/v1/walks", headers={**worker, "Idempotency-Key": "w-1"}, json={"grid_code": GRID}
    )
    assert c.status_code == 422 and c.json()["error"] == "idempotency_key_reused"
    d = api.post("/api/v1/walks", headers=worker, json={})  # one grid: it is implied
    assert d.status_code == 409 and d.json()["walk_id"] == a.json()["id"]
    # a grid outside the jurisdiction, a grid that is not one, a role that does not walk
    other = api.post("/api/v1/walks", headers=place["worker2"], json={"grid_code": GRID})
    assert other.status_code == 403 and other.json()["field"] == "grid_code"
    none = api.post("/api/v1/walks", headers=place["admin"], json={"grid_code": GRID[:-2] + "99"})
    assert none.status_code == 422 and none.json()["field"] == "grid_code"
    for who in ("planner", "team_a"):
        r = api.post("/api/v1/walks", headers=place[who], json={"grid_code": GRID})
        assert r.status_code == 403, (who, r.text)


def test_walks_are_seen_by_their_worker_and_the_supervisors_of_their_grid(place):
    api = place["api"]
    start = datetime.now(UTC) - timedelta(hours=1)
    walk = _start(api, place["worker1"], start)
    url = f"/api/v1/walks/{walk['id']}"
    expected = {
        "worker1": 200,
        "worker1b": 404,  # the same grid, another worker: not theirs
        "worker2": 404,
        "sub1_sup": 200,
        "district_sup": 200,
        "sub2_sup": 404,
        "admin": 200,
        "planner": 403,  # figures only
        "team_a": 403,
    }
    for who, status in expected.items():
        r = api.get(url, headers=place[who])
        assert r.status_code == status, (who, r.text)
        listed = api.get("/api/v1/walks", headers=place[who])
        if status == 403:
            assert listed.status_code == 403, who
        else:
            ids = {w["id"] for w in listed.json()["walks"]}
            assert (walk["id"] in ids) == (status == 200), who
    # only the walker records it
    point = [fix(start + timedelta(minutes=1), 10, 0)]
    assert _send(api, place["worker1b"], walk["id"], "x", point).status_code == 404
    assert _send(api, place["sub1_sup"], walk["id"], "x", point).status_code == 403
    assert api.post(f"{url}/end", headers=place["sub1_sup"]).status_code == 403
    assert api.get(url).status_code == 401
    # filters
    r = api.get("/api/v1/walks", headers=place["admin"], params={"grid": "410199002"})
    assert r.json()["total"] == 0
    r = api.get("/api/v1/walks", headers=place["admin"], params={"worker": 999999})
    assert r.json()["total"] == 0
    r = api.get(
        "/api/v1/walks", headers=place["admin"], params={"from": "2026-02-01", "to": "2026-01-01"}
    )
    assert r.status_code == 422 and r.json()["field"] == "from"


def test_a_report_made_during_a_walk_is_linked_to_it(place):
    api, worker = place["api"], place["worker1"]
    walk = _start(api, worker, datetime.now(UTC))
    lon, lat = ll(50, 0)
    report = {"category": "environment.garbage", "lon": lon, "lat": lat, "description": "垃圾堆放"}
    r = api.post("/api/v1/cases", headers=worker, json={**report, "walk_id": walk["id"]})
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["walk_id"] == walk["id"]
    # not one's own walk, no such walk: refused naming walk_id, no case written
    for who, walk_id in (("worker1b", walk["id"]), ("worker1", 999999)):
        r = api.post("/api/v1/cases", headers=place[who], json={**report, "walk_id": walk_id})
        assert r.status_code == 422 and r.json()["field"] == "walk_id", r.text
    got = api.get(f"/api/v1/walks/{walk['id']}", headers=worker).json()["properties"]
    assert got["case_ids"] == [case["id"]] and got["problems"] == 1
    api.post(f"/api/v1/walks/{walk['id']}/end", headers=worker)
    r = api.post("/api/v1/cases", headers=worker, json={**report, "walk_id": walk["id"]})
    assert r.status_code == 422 and r.json()["field"] == "walk_id"  # ended
    with get_engine(place["settings"]).connect() as conn:
        linked = conn.execute(text("SELECT count(*) FROM cases WHERE walk_id IS NOT NULL"))
        assert linked.scalar_one() == 1


def test_the_due_list_shrinks_as_buildings_are_passed(place):
    api, worker = place["api"], place["worker1"]
    url = f"/api/v1/grids/{GRID}/due-buildings"
    before = api.get(url, headers=worker).json()
    assert before["days"] == 7  # GIS_WALK_DUE_DAYS
    assert before["due"] == before["buildings_total"] == 6
    start = datetime.now(UTC) - timedelta(minutes=30)
    walk = _start(api, worker, start)
    # the first 70 m: past 001's door, the walk still running
    first = [fix(start + timedelta(seconds=5 * i), 6.5 * i, 0) for i in range(12)]
    assert _send(api, worker, walk["id"], "a", first).status_code == 200
    during = api.get(url, headers=worker).json()
    assert {b["code"] for b in during["buildings"]} == {
        GRID + c for c in ("002", "003", "004", "005", "006")
    }
    rest = [fix(start + timedelta(seconds=5 * i), 6.5 * i, 0) for i in range(12, 62)]
    assert _send(api, worker, walk["id"], "b", rest).status_code == 200
    after = api.get(url, headers=worker).json()
    assert {b["code"] for b in after["buildings"]} == {GRID + c for c in ("004", "005", "006")}
    # days=0: everything not visited in the last 0 days, i.e. every building again
    assert api.get(url, headers=worker, params={"days": 0}).json()["due"] == 6
    # scope: another grid's worker and planner of another subdistrict cannot; no such grid
    assert api.get(url, headers=place["worker2"]).status_code == 403
    assert api.get(url, headers=place["sub2_sup"]).status_code == 403
    assert api.get(url, headers=place["sub1_sup"]).status_code == 200
    assert (
        api.get(f"/api/v1/grids/{GRID[:-2]}99/due-buildings", headers=place["admin"]).status_code
        == 404
    )
    assert api.get(url, headers=worker, params={"days": -1}).json()["field"] == "days"


def test_figures_and_prune_keeps_them(place):
    from gis_service.walks.retention import prune

    api, worker, s = place["api"], place["worker1"], place["settings"]
    start = datetime.now(UTC) - timedelta(hours=2)
    walk = _start(api, worker, start)
    for chunk_id, chunk in _chunks(walk_east(start), 50):
        assert _send(api, worker, walk["id"], chunk_id, chunk).status_code == 200
    lon, lat = ll(150, 0)
    for i in range(2):
        r = api.post(
            "/api/v1/cases",
            headers=worker,
            json={
                "category": "environment.garbage",
                "lon": lon,
                "lat": lat,
                "description": f"问题{i}",
                "walk_id": walk["id"],
            },
        )
        assert r.status_code == 201, r.text
    ended = api.post(f"/api/v1/walks/{walk['id']}/end", headers=worker).json()
    stats = api.get(
        "/api/v1/stats/walks", headers=place["sub1_sup"], params={"level": "grid", "unit": GRID}
    ).json()
    (unit,) = stats["units"]
    km = ended["properties"]["distance_m"] / 1000
    assert unit["code"] == GRID and unit["walks"] == 1
    assert unit["distance_km"] == pytest.approx(km, abs=0.001)
    assert unit["buildings"] == 6 and unit["buildings_visited"] == 3
    assert unit["visited_share_7d"] == unit["visited_share_30d"] == 0.5
    assert unit["problems"] == 2
    assert unit["problems_per_km"] == pytest.approx(2 / km, rel=1e-3)
    assert stats["totals"]["walks"] == 1
    # scoped like everything else: the east subdistrict's supervisor sees no walk
    other = api.get("/api/v1/stats/walks", headers=place["sub2_sup"], params={"level": "grid"})
    assert other.json()["totals"]["walks"] == 0
    assert api.get("/api/v1/stats/walks", headers=place["team_a"]).status_code == 403
    bad = api.get("/api/v1/stats/walks", headers=place["admin"], params={"level": "building"})
    assert bad.status_code == 422 and bad.json()["field"] == "level"

    done = prune(s, older_than_days=0)
    assert done.walks == 1 and done.points == ended["properties"]["points_received"]
    assert _stored(s, walk["id"]) == []
    kept = api.get(f"/api/v1/walks/{walk['id']}", headers=worker).json()
    assert kept["geometry"] == ended["geometry"]
    assert kept["properties"]["visited"] == ended["properties"]["visited"]
    assert kept["properties"]["raw_pruned"] is True
    again = api.get(
        "/api/v1/stats/walks", headers=place["sub1_sup"], params={"level": "grid", "unit": GRID}
    ).json()
    assert again["units"] == stats["units"]
    assert prune(s, older_than_days=0).walks == 0  # nothing left to prune


def test_cleaning_rules_on_their_own():
    """The cleaning in isolation, on a straight walk with one of each kind of noise."""
    from gis_service.walks.cleaning import clean, local_xy  # noqa: F401

    n = 40
    t = np.arange(n, dtype=float) * 5
    x = np.arange(n) * 6.0
    y = np.zeros(n)
    acc = np.full(n, 8.0)
    x[10], y[10] = x[10], 300.0  # a spike
    acc[20] = 100.0  # poor accuracy
    lon, lat = ll(0, 0)
    k = 1 / walk_city.M_PER_DEG_LON, 1 / walk_city.M_PER_DEG_LAT
    cleaned = clean(t, lon + x * k[0], lat + y * k[1], acc)
    assert cleaned.dropped[10] == "jump" and cleaned.dropped[20] == "accuracy"
    assert cleaned.kept == n - 2
    # a relocation: from fix 30 on the walk goes on 2 km away; one part becomes two
    x2 = x.copy()
    x2[30:] += 2000
    cleaned = clean(t, lon + x2 * k[0], lat + y * k[1], np.full(n, 8.0))
    kept_parts = {int(p) for p, d in zip(cleaned.part, cleaned.dropped, strict=True) if d is None}
    assert kept_parts == {0, 1}
    assert all(d is None for d in cleaned.dropped[33:])
