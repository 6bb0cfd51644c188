"""The report path's rules, each in one place that every path uses:

- the location rule (units/locate.sql: locate_unit): a point on an edge or vertex shared
  by units belongs to exactly one — the deepest, then the smallest code — the same
  through locate, the API's JSON and multipart (EXIF GPS) reports, Open311, the nearby
  check and statistics;
- the duplicate radius and window (Settings), read by the report and /cases/nearby;
- Idempotency-Key fingerprints (IETF httpapi draft): a key reused with another payload
  is refused with 422 and stores nothing.
"""

from __future__ import annotations

import threading

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine
from gis_service.timezone import local_date
from gis_service.units.codes import level_of
from tests.conftest import IN_GRID_1, make_user
from tests.images import image_bytes
from tests.test_cases import count, report
from tests.test_open311 import make_key
from tests.test_open311 import post as open311_post

# One point on every vertex and one inside every edge that two units of one level share
# (diagonal neighbours share only a vertex), read from the stored polygons so that the
# point lies exactly on both outlines.
SHARED_POINTS_SQL = """
    WITH pair AS (
        SELECT a.code AS a, b.code AS b, a.level,
               ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom)) AS shared
          FROM admin_unit a JOIN admin_unit b
            ON a.level = b.level AND a.code < b.code AND ST_Touches(a.geom, b.geom)),
    line AS (
        SELECT a, b, level, ST_GeometryN(ST_LineMerge(ST_CollectionExtract(shared, 2)), 1) AS g
          FROM pair WHERE NOT ST_IsEmpty(ST_CollectionExtract(shared, 2))),
    point AS (
        SELECT a, b, level, 'edge' AS kind, ST_LineInterpolatePoint(g, 0.5) AS g FROM line
        UNION ALL
        SELECT a, b, level, 'vertex', ST_StartPoint(g) FROM line
        UNION ALL
        SELECT a, b, level, 'vertex', ST_GeometryN(ST_CollectionExtract(shared, 1), 1)
          FROM pair WHERE ST_IsEmpty(ST_CollectionExtract(shared, 2)))
    SELECT a, b, level, kind, ST_X(g) AS lon, ST_Y(g) AS lat FROM point ORDER BY level, a, b
"""


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


def units(settings) -> dict[str, shapely.Geometry]:
    with get_engine(settings).connect() as conn:
        rows = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM admin_unit")).all()
    return {code: shapely.from_wkb(bytes(wkb)) for code, wkb in rows}


def rule(polygons: dict[str, shapely.Geometry], lon: float, lat: float) -> tuple[str, int]:
    """The stated rule, computed here on its own: of the units whose closed polygon covers
    the point, the deepest, then the smallest code. Also returns how many units of that
    depth cover it (2 or more: a tie the rule had to break)."""
    pt = shapely.Point(lon, lat)
    covering = [code for code, g in polygons.items() if g.covers(pt)]
    deepest = max(len(c) for c in covering)
    tied = sorted(c for c in covering if len(c) == deepest)
    return tied[0], len(tied)


def shared_points(settings) -> list[dict]:
    with get_engine(settings).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(SHARED_POINTS_SQL))]


def stored_case(settings, where: str, params: dict) -> dict:
    with get_engine(settings).connect() as conn:
        return dict(
            conn.execute(
                text(
                    f"SELECT id, unit_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM cases "
                    f"WHERE {where}"
                ),
                params,
            )
            .mappings()
            .one()
        )


def test_shared_edges_and_vertices_belong_to_one_unit_on_every_path(api, case_city):
    c = case_city
    s = c["settings"]
    polygons = units(s)
    points = shared_points(s)
    # every level of the test city has neighbours, sharing edges and vertices
    assert {(p["level"], p["kind"]) for p in points} == {
        (lvl, kind) for lvl in ("subdistrict", "community", "grid") for kind in ("edge", "vertex")
    }
    key = make_key(s)
    exif_ties: set[str] = set()
    for i, p in enumerate(points):
        lon, lat = p["lon"], p["lat"]
        expected, tied = rule(polygons, lon, lat)
        assert tied >= 2, p  # the point is on a shared outline: the tie-break decides
        assert level_of(expected).value == "grid"
        where = f"{p['level']} {p['kind']} of {p['a']}/{p['b']} at {lon!r}, {lat!r}"

        located = api.get("/api/v1/locate", params={"lon": lon, "lat": lat})
        assert located.status_code == 200, where
        assert located.json()["chain"][-1]["code"] == expected, where

        r = report(api, c["admin"], point=(lon, lat), key=f"json-{i}")
        assert r.status_code == 201, r.text
        assert r.json()["unit_code"] == expected, where
        assert [u["code"] for u in r.json()["units"]] == [
            u["code"] for u in located.json()["chain"]
        ]

        r = open311_post(api, key, point=(lon, lat))
        assert r.status_code == 201, r.text
        no = r.json()[0]["service_request_id"]
        assert stored_case(s, "case_no = :n", {"n": no})["unit_code"] == expected, where

        r = api.post(
            "/api/v1/cases",
            headers={**c["admin"], "Idempotency-Key": f"exif-{i}"},
            data={"category": "safety.fire_lane", "description": "消防通道堵塞"},
            files=[("photo", ("a.jpg", image_bytes(gps=(lon, lat), seed=i), "image/jpeg"))],
        )
        assert r.status_code == 201, r.text
        case = stored_case(s, "id = :i", {"i": r.json()["id"]})
        # EXIF keeps seconds to 1/10,000: some points arrive a hair off the outline
        on_outline = (case["lon"], case["lat"]) == (lon, lat)
        exif_expected = expected if on_outline else rule(polygons, case["lon"], case["lat"])[0]
        assert case["unit_code"] == exif_expected == r.json()["unit_code"], where
        if on_outline:
            exif_ties.add(p["level"])
    assert exif_ties == {"subdistrict", "community", "grid"}  # ties came through EXIF too


def test_a_worker_reports_on_the_edge_of_the_grid_the_phone_shows(api, case_city):
    """The phone shows the grid that locate picks; the report agrees: on the edge its grid
    wins the worker is in scope, on the edge it loses the report is refused — as locate
    said — and the other grid's worker files it."""
    c = case_city
    s = c["settings"]
    worker_02 = make_user(s, "grid_worker", scopes=["41019900100102"], username="gw102")
    polygons = units(s)
    edge = next(
        p
        for p in shared_points(s)
        if (p["a"], p["b"], p["kind"]) == ("41019900100101", "41019900100102", "edge")
    )
    point = (edge["lon"], edge["lat"])
    assert rule(polygons, *point) == ("41019900100101", 2)
    shown = api.get("/api/v1/locate", params={"lon": point[0], "lat": point[1]}).json()
    assert shown["grid"]["code"] == "41019900100101"
    mine = report(api, c["worker1"], point=point)
    assert mine.status_code == 201 and mine.json()["unit_code"] == "41019900100101"
    assert report(api, worker_02, point=point).status_code == 403

    # the nearby check and statistics place the case in the same grid
    def nearby(who):
        r = api.get("/api/v1/cases/nearby", headers=who, params={"lon": point[0], "lat": point[1]})
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["cases"]]

    assert nearby(c["worker1"]) == [mine.json()["id"]]
    assert nearby(worker_02) == []
    today = local_date(c["settings"]).isoformat()  # the district's day, as stats count
    stats = api.get(
        "/api/v1/stats/resolution",
        headers=c["admin"],
        params={"level": "grid", "from": "2000-01-01", "to": today},
    ).json()
    reported = {u["code"]: u["reported"] for u in stats["units"] if u["reported"]}
    assert reported == {"41019900100101": 1}


def test_the_duplicate_radius_has_one_home(case_city):
    """Settings.duplicate_radius_m moves both the report's possible duplicates and
    /cases/nearby; nothing else needs changing."""
    c = case_city
    s = c["settings"]
    far = (IN_GRID_1[0] + 0.0009, IN_GRID_1[1])  # ≈ 83 m east
    params = {"lon": far[0], "lat": far[1], "category": "environment.garbage"}
    found = {}
    for radius in (50.0, 100.0):
        with TestClient(create_app(s.model_copy(update={"duplicate_radius_m": radius}))) as api:
            first = report(api, c["worker1"]).json()
            second = report(api, c["worker1"], point=far).json()
            near = api.get("/api/v1/cases/nearby", headers=c["worker1"], params=params).json()
            found[radius] = (
                first["id"] in [d["id"] for d in second["possible_duplicates"]],
                first["id"] in [x["id"] for x in near["cases"]],
            )
        with get_engine(s).begin() as conn:  # the next radius starts from no open cases
            conn.execute(text("UPDATE cases SET status = 'closed', closed_at = now()"))
    assert found == {50.0: (False, False), 100.0: (True, True)}


def test_an_idempotency_key_reused_for_another_report_is_refused(api, case_city):
    c = case_city
    s = c["settings"]
    first = report(api, c["worker1"], key="k-1")
    assert first.status_code == 201
    same = report(api, c["worker1"], key="k-1")
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    other = report(api, c["worker1"], key="k-1", description="另一个问题：路灯不亮")
    assert other.status_code == 422, other.text
    body = other.json()
    assert body["error"] == "idempotency_key_reused" and body["idempotency_key"] == "k-1"
    assert "k-1" in body["detail"]
    assert (count(s, "cases"), count(s, "case_event")) == (1, 1)
    # the same key from another sender is that sender's own key
    assert report(api, c["worker1b"], key="k-1", description="另一个问题").status_code == 201


def test_a_key_claimed_by_an_uncommitted_report_replays_it_once_committed(case_city):
    """report_case() writes the case, then claims its key (cases/report.sql): a second
    request with the key waits at the claim while the first is uncommitted, then takes
    back the case it wrote and answers the first one's — one case, one timeline event,
    one key row."""
    s = case_city["settings"]
    with get_engine(s).connect() as conn:
        uid, ver = conn.execute(
            text("SELECT id, token_version FROM app_user WHERE username = 'gw1'")
        ).one()
    call = text(
        "SELECT case_id, created FROM report_case(:uid, :ver, NULL, NULL, NULL, :key, "
        "'environment.garbage', :lon, :lat, 'x', NULL, 'normal', 'app', NULL, NULL, :tz, "
        "'fp', 50, 7, 5, NULL)"
    )
    params = {
        "uid": uid,
        "ver": ver,
        "key": f"u{uid}:race",
        "lon": IN_GRID_1[0],
        "lat": IN_GRID_1[1],
        "tz": s.timezone,
    }
    answers: list[tuple[int, bool]] = []
    engine = get_engine(s)
    with engine.connect() as first:
        won = first.execute(call, params).one()
        second = threading.Thread(
            target=lambda: answers.append(tuple(_call_alone(engine, call, params)))
        )
        second.start()
        second.join(1.0)
        assert second.is_alive(), "the second request did not wait for the first's claim"
        first.commit()
    second.join(30)
    assert won.created is True
    assert answers == [(won.case_id, False)]
    assert (count(s, "cases"), count(s, "case_event"), count(s, "case_idempotency")) == (
        1,
        1,
        1,
    )


def _call_alone(engine, call, params):
    with engine.begin() as conn:
        return conn.execute(call, params).one()


def test_a_reused_key_with_other_photos_is_refused_and_stores_nothing(api, case_city):
    c = case_city
    s = c["settings"]
    fields = {"category": "safety.fire_lane", "description": "消防通道堵塞"}

    def send(seed: int):
        return api.post(
            "/api/v1/cases",
            headers={**c["worker1"], "Idempotency-Key": "mp-photos"},
            data=fields,
            files=[("photo", ("a.jpg", image_bytes(gps=IN_GRID_1, seed=seed), "image/jpeg"))],
        )

    first = send(1)
    assert first.status_code == 201, first.text
    assert send(1).status_code == 200
    other = send(2)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    assert (count(s, "cases"), count(s, "case_photo")) == (1, 1)
    # the same report as JSON is another request too (it has no photo)
    r = report(api, c["worker1"], point=IN_GRID_1, key="mp-photos", **fields)
    assert r.status_code == 422


def test_open311_refuses_a_reused_key_with_another_request(api, case_city):
    s = case_city["settings"]
    key = make_key(s)
    first = open311_post(api, key, headers={"Idempotency-Key": "311-1"})
    assert first.status_code == 201
    again = open311_post(api, key, headers={"Idempotency-Key": "311-1"})
    assert again.status_code == 200
    assert again.json()[0]["service_request_id"] == first.json()[0]["service_request_id"]
    other = open311_post(
        api, key, headers={"Idempotency-Key": "311-1"}, description="路灯不亮已经三天"
    )
    # GeoReport answers every refused request 400, with the reason in its error list
    assert other.status_code == 400, other.text
    [error] = other.json()
    assert "311-1" in error["description"] and "different request" in error["description"]
    assert count(s, "cases") == 1


def test_a_busy_spot_answers_the_nearest_few_and_a_count(case_city):
    """OWASP API4: thirty open cases within the radius do not make every report's answer
    (or /cases/nearby) carry thirty; the nearest Settings.duplicate_list_max come with the
    count of all, the same in both."""
    c = case_city
    s = c["settings"].model_copy(update={"duplicate_list_max": 4})
    with TestClient(create_app(s)) as api:
        ids = []
        for i in range(30):  # ≈ 1 m apart, eastwards
            r = report(api, c["worker1"], point=(IN_GRID_1[0] + i * 1e-5, IN_GRID_1[1]))
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        last = r.json()
        assert last["possible_duplicates_total"] == 29
        nearest = [d["id"] for d in last["possible_duplicates"]]
        assert nearest == ids[-2:-6:-1]  # the four reported just west of it, nearest first
        params = {"lon": IN_GRID_1[0], "lat": IN_GRID_1[1], "category": "environment.garbage"}
        near = api.get("/api/v1/cases/nearby", headers=c["worker1"], params=params).json()
        assert near["total"] == 30 and [x["id"] for x in near["cases"]] == ids[:4]
        # a report on the busiest spot carries the same bounded list
        again = report(api, c["worker1"], key="busy", point=(IN_GRID_1[0], IN_GRID_1[1]))
        assert len(again.json()["possible_duplicates"]) == 4
