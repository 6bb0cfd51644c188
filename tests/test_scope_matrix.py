"""The jurisdiction rule, checked on every route that answers with cases, units, figures,
photos, tiles or pages, for every kind of viewer, against an oracle written here
independently of gis_service/auth/scope.py.

The list of routes comes from the app itself: a route added later that is neither in
``CHECKS`` nor in ``NO_JURISDICTION`` fails ``test_every_route_is_in_the_matrix`` until
someone says how it is scoped.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import LineString, box
from sqlalchemy import text

from gis_service.admin.pages import SECTIONS
from gis_service.app import create_app
from gis_service.db.engine import get_engine, transaction
from gis_service.tiles.basemap import lonlat_to_tile
from tests.conftest import GRIDS, make_user, map_pages, write
from tests.images import image_bytes

GRID_A1 = "41019900100101"  # community 410199001001, west half
GRID_A2 = "41019900100102"  # community 410199001001, east half
GRID_B1 = "41019900100201"  # community 410199001002
BUILDING = GRID_A1 + "001"


def _centre(code: str) -> tuple[float, float]:
    c = GRIDS[code].centroid
    return c.x, c.y


@pytest.fixture
def city(case_city, tmp_path: Path) -> dict:
    """The case test city plus buildings with residents, a walking network, one party
    organisation, a case in every grid and in one building, each with a photo, one case
    dispatched to team a outside its own community, the viewers of the matrix and the
    Open311 keys. For the public view: every third case is of a private category, every
    other photo is published, and one case of a public category is rejected."""
    from gis_service.imports.boundaries import BoundaryOptions, import_boundaries
    from gis_service.imports.points import PointOptions, import_points
    from gis_service.network.imports import import_network
    from gis_service.open311.keys import create_key
    from gis_service.units.codes import Level

    s = case_city["settings"]
    buildings = {}
    for code, cell in sorted(GRIDS.items()):
        x, y = cell.centroid.x, cell.centroid.y
        buildings[code + "001"] = box(x - 0.002, y - 0.002, x + 0.002, y + 0.002)
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        {
            "code": list(buildings),
            "name": [f"楼{c[-5:]}" for c in buildings],
            "population": [100 * (i + 1) for i in range(len(buildings))],
        },
        geometry=list(buildings.values()),
        crs=4326,
    )
    import_boundaries(
        write(frame, tmp_path / "b.geojson"), BoundaryOptions(level=Level.building), settings=s
    )
    lines = [LineString([(113.0, 34.0 + i / 100), (113.1, 34.0 + i / 100)]) for i in range(11)]
    lines += [LineString([(113.0 + i / 100, 34.0), (113.0 + i / 100, 34.1)]) for i in range(11)]
    net = gpd.GeoDataFrame({"highway": ["footway"] * len(lines)}, geometry=lines, crs=4326)
    import_network(write(net, tmp_path / "net.geojson"), settings=s)
    party = gpd.GeoDataFrame(
        {"name": ["党群服务中心"]}, geometry=gpd.points_from_xy([113.012], [34.072]), crs=4326
    )
    import_points(write(party, tmp_path / "p.geojson"), PointOptions(kind="party_org"), settings=s)
    with transaction(s) as conn:
        conn.execute(
            text(
                "INSERT INTO unit_staff (unit_code, role, name, phone, sort) VALUES "
                + ", ".join(
                    f"('{g}', 'grid_leader', '组长{g[-4:]}', '139{g[-8:]}', 1), "
                    f"('{g}', 'grid_worker', '网格员{g[-4:]}', '138{g[-8:]}', 2)"
                    for g in GRIDS
                )
            )
        )
        _, key_community = create_key(conn, "app-community", "410199001002")
        _, key_building = create_key(conn, "app-building", BUILDING)
        _, key_all = create_key(conn, "app-all")
    viewers: dict[str, dict] = {
        "admin": case_city["admin"],
        "worker_a1": case_city["worker1"],
        "worker_a2": make_user(s, "grid_worker", scopes=[GRID_A2], username="gw-a2"),
        "worker_multi": make_user(
            s, "grid_worker", scopes=[GRID_B1, "41019900200101"], username="gw-multi"
        ),
        "community_sup_a": make_user(s, "supervisor", scopes=["410199001001"], username="cs-a"),
        "community_sup_b": make_user(s, "supervisor", scopes=["410199001002"], username="cs-b"),
        "subdistrict_sup": case_city["sub1_sup"],
        "team_c": case_city["team_c"],
        "planner": make_user(s, "planner", scopes=["410199002"], username="planner-2"),
        "anonymous": {},
    }
    # one case per grid, one in the building, reported by the admin: a photo each
    cases = []
    api = TestClient(create_app(s))
    with api:
        points = [(code, _centre(code)) for code in sorted(GRIDS)]
        points.append((BUILDING, _centre(GRID_A1)))
        for i, (code, (x, y)) in enumerate(points):
            x += (i % 3) * 0.004 - 0.004 if code != BUILDING else 0.0
            r = api.post(
                "/api/v1/cases",
                headers=case_city["admin"],
                json={
                    "category": PRIVATE_CATEGORY if i % 3 == 1 else PUBLIC_CATEGORY,
                    "lon": x,
                    "lat": y,
                    "description": f"marker-{i:02d}",
                },
            )
            assert r.status_code == 201, r.text
            case = r.json()
            p = api.post(
                f"/api/v1/cases/{case['id']}/photos",
                headers=case_city["admin"],
                files={"file": ("p.jpg", image_bytes(seed=500 + i), "image/jpeg")},
                data={"stage": "before"},
            )
            assert p.status_code == 201, p.text
            if i % 2 == 0:
                r = api.post(
                    f"/api/v1/cases/{case['id']}/photos/{p.json()['id']}/publish",
                    headers=case_city["admin"],
                )
                assert r.status_code == 200, r.text
            if i == REJECTED:
                r = api.post(
                    f"/api/v1/cases/{case['id']}/actions",
                    headers=case_city["admin"],
                    json={"action": "reject", "note": "不属于网格事项"},
                )
                assert r.status_code == 200, r.text
            cases.append(case)
        # team c (the east subdistrict's volunteers) is sent to one case there
        far = next(c for c in cases if c["unit_code"].startswith("410199002"))
        for action, extra in (("accept", {}), ("dispatch", {"team_id": case_city["teams"]["c"]})):
            r = api.post(
                f"/api/v1/cases/{far['id']}/actions",
                headers=case_city["admin"],
                json={"action": action, **extra},
            )
            assert r.status_code == 200, r.text
    with get_engine(s).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, case_no, unit_code, team_history, description, category_code, "
                "status FROM cases"
            )
        ).mappings()
        facts = [dict(r) for r in rows]
        photos = dict(conn.execute(text("SELECT id, case_id FROM case_photo")).all())
        published = set(
            conn.execute(text("SELECT id FROM case_photo WHERE published_at IS NOT NULL")).scalars()
        )
    return {
        "settings": s,
        "viewers": viewers,
        "cases": facts,
        "photos": photos,
        "published": published,
        "team_c": case_city["teams"]["c"],
        "keys": {"key_community": key_community, "key_building": key_building, "key_all": key_all},
    }


# ------------------------------------------------------------------ the oracle

# The public view (the module table of auth/scope.py): categories taxonomy.json marks
# public, neither rejected nor duplicate; photos only once published.
PUBLIC_CATEGORY = "environment.garbage"  # taxonomy.json: environment is public
PRIVATE_CATEGORY = "disputes.neighbours"  # taxonomy.json: disputes are private
REJECTED = 2  # the fixture's third case (public category, published photo) is rejected

SCOPES = {
    "admin": None,
    "worker_a1": [GRID_A1],
    "worker_a2": [GRID_A2],
    "worker_multi": [GRID_B1, "41019900200101"],
    "community_sup_a": ["410199001001"],
    "community_sup_b": ["410199001002"],
    "subdistrict_sup": ["410199001"],
    "planner": ["410199002"],
    "key_community": ["410199001002"],
    "key_building": [BUILDING],
    "key_all": None,
}
CASE_READERS = {"admin", "worker_a1", "worker_a2", "worker_multi", "community_sup_a",
                "community_sup_b", "subdistrict_sup", "team_c"}  # fmt: skip


def visible(city: dict, who: str) -> set[int]:
    """Case ids the viewer may see, by the rule as documented (README, auth/scope.py)."""
    out = set()
    for c in city["cases"]:
        if who == "team_c":
            ok = city["team_c"] in (c["team_history"] or [])
        elif who == "anonymous":  # the public view
            ok = c["category_code"] == PUBLIC_CATEGORY and c["status"] not in (
                "rejected",
                "duplicate",
            )
        elif who == "planner":  # planners read figures, not cases
            ok = False
        elif SCOPES[who] is None:
            ok = True
        else:
            ok = any(c["unit_code"].startswith(s) for s in SCOPES[who])
        if ok:
            out.add(c["id"])
    return out


def case_numbers(city: dict, ids: set[int]) -> set[str]:
    return {c["case_no"] for c in city["cases"] if c["id"] in ids}


def unit_visible(who: str, code: str) -> bool:
    """Units a viewer's figures may be shown on: inside the scope or above it."""
    if SCOPES.get(who, ()) is None:
        return True
    if who == "team_c":
        team_unit = "410199002"
        return code.startswith(team_unit) or team_unit.startswith(code)
    return any(code.startswith(s) or s.startswith(code) for s in SCOPES.get(who) or [])


def _markers(body: str) -> set[str]:
    return set(re.findall(r"marker-\d\d", body))


def _markers_of(city: dict, ids: set[int]) -> set[str]:
    return {c["description"] for c in city["cases"] if c["id"] in ids}


# ------------------------------------------------------------------ the checks

Check = Callable[[TestClient, dict, str, dict], list[str]]


def check_case_list(api, city, who, auth) -> list[str]:
    r = api.get("/api/v1/cases", headers=auth, params={"limit": 1000})
    if who not in CASE_READERS:
        return [] if r.status_code in (401, 403) else [f"list answered {r.status_code}"]
    got = {f["id"] for f in r.json()["features"]}
    want = visible(city, who)
    return [] if got == want else [f"list: extra {got - want}, missing {want - got}"]


def check_case_detail(api, city, who, auth) -> list[str]:
    bad = []
    want = visible(city, who)
    for c in city["cases"]:
        r = api.get(f"/api/v1/cases/{c['id']}", headers=auth)
        # the public view is Open311's, not this route's
        expected = (200 if c["id"] in want else 404) if who in CASE_READERS else (401, 403)
        if r.status_code != expected and r.status_code not in np.atleast_1d(expected):
            bad.append(f"case {c['id']} ({c['unit_code']}): {r.status_code}")
    return bad


def check_case_lock(api, city, who, auth) -> list[str]:
    """The case lock reads like its case: 200 inside the jurisdiction, 404 outside."""
    bad = []
    want = visible(city, who)
    for c in city["cases"]:
        r = api.get(f"/api/v1/cases/{c['id']}/lock", headers=auth)
        expected = (200 if c["id"] in want else 404) if who in CASE_READERS else (401, 403)
        if r.status_code not in np.atleast_1d(expected):
            bad.append(f"lock of case {c['id']} ({c['unit_code']}): {r.status_code}")
    return bad


def check_photos(api, city, who, auth) -> list[str]:
    bad = []
    want = visible(city, who)
    for pid, cid in city["photos"].items():
        shown = cid in want and (who != "anonymous" or pid in city["published"])
        for thumb in ("false", "true"):
            r = api.get(f"/api/v1/cases/{cid}/photos/{pid}", headers=auth, params={"thumb": thumb})
            if (r.status_code == 200) != shown:
                bad.append(f"photo {pid} of case {cid}: {r.status_code}")
    return bad


def check_nearby(api, city, who, auth) -> list[str]:
    bad = []
    want = visible(city, who)
    for code in GRIDS:
        x, y = _centre(code)
        r = api.get(
            "/api/v1/cases/nearby",
            headers=auth,
            params={"lon": x, "lat": y, "category": "environment.garbage", "radius_m": 500},
        )
        if who not in CASE_READERS:
            if r.status_code not in (401, 403):
                bad.append(f"nearby answered {r.status_code}")
            continue
        got = {c["id"] for c in r.json()["cases"]}
        if got - want:
            bad.append(f"nearby {code}: outside cases {got - want}")
    return bad


def check_stats(api, city, who, auth) -> list[str]:
    bad = []
    want = visible(city, who) if who != "planner" else _by_units(city, who)
    for level in ("district", "subdistrict", "community", "grid"):
        r = api.get("/api/v1/stats/resolution", headers=auth, params={"level": level})
        if who == "anonymous":
            if r.status_code != 401:
                bad.append(f"stats answered {r.status_code}")
            break
        assert r.status_code == 200, r.text
        body = r.json()
        if body["totals"]["reported"] != len(want):
            bad.append(f"stats {level}: totals {body['totals']['reported']} != {len(want)}")
        for u in body["units"]:
            if not unit_visible(who, u["code"]):
                bad.append(f"stats {level}: unit {u['code']} shown")
            inside = {c["id"] for c in city["cases"] if c["unit_code"].startswith(u["code"])}
            if u["reported"] != len(inside & want):
                bad.append(f"stats {level}: {u['code']} counts {u['reported']}")
    return bad


def check_recurring_spots(api, city, who, auth) -> list[str]:
    """Spots list cases: case readers only, and only cases they see. The fixture's grid-A1
    case and building case (one category, ≈ 370 m apart) are a spot at min_cases 2 and
    radius 500 m for whoever sees both; no other pair lies that close."""
    r = api.get(
        "/api/v1/stats/recurring-spots",
        headers=auth,
        params={"min_cases": 2, "radius_m": 500},
    )
    if who not in CASE_READERS:
        return [] if r.status_code in (401, 403) else [f"spots answered {r.status_code}"]
    assert r.status_code == 200, r.text
    got = {i for f in r.json()["features"] for i in f["properties"]["case_ids"]}
    pair = {c["id"] for c in city["cases"] if c["unit_code"] in (GRID_A1, BUILDING)}
    want = pair if pair <= visible(city, who) else set()
    return [] if got == want else [f"spots hold {sorted(got)}, expected {sorted(want)}"]


def check_hotspots(api, city, who, auth) -> list[str]:
    """Gi* covers the grids inside the jurisdiction and counts the cases stats count."""
    r = api.get("/api/v1/stats/hotspots", headers=auth)
    if who == "anonymous":
        return [] if r.status_code == 401 else [f"hotspots answered {r.status_code}"]
    assert r.status_code == 200, r.text
    bad = []
    grids = {f["properties"]["code"]: f["properties"]["cases"] for f in r.json()["features"]}
    for code in grids:
        if who == "team_c" or (
            SCOPES[who] is not None and not any(code.startswith(s) for s in SCOPES[who])
        ):
            bad.append(f"hotspots show grid {code}")
    if who != "team_c":
        want = visible(city, who) if who != "planner" else _by_units(city, who)
        if sum(grids.values()) != len(want):
            bad.append(f"hotspots count {sum(grids.values())} cases, expected {len(want)}")
    return bad


def _by_units(city: dict, who: str) -> set[int]:
    return {
        c["id"]
        for c in city["cases"]
        if any(c["unit_code"].startswith(s) for s in SCOPES[who] or [""])
    }


def _city_tiles(z: int) -> list[tuple[int, int, int]]:
    x0, y1 = lonlat_to_tile(113.0, 34.0, z)
    x1, y0 = lonlat_to_tile(113.1, 34.1, z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def _decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})


def check_case_tiles(api, city, who, auth) -> list[str]:
    bad = []
    want = visible(city, who)
    assert len(_city_tiles(8)) == 1  # one tile holds the whole city: its counts add up
    for z in (8, 15):
        seen, counted = set(), 0
        for z_, x, y in _city_tiles(z):
            r = api.get(f"/tiles/cases/{z_}/{x}/{y}.pbf", headers=auth)
            if who not in CASE_READERS:
                if r.status_code not in (401, 403):
                    bad.append(f"case tile answered {r.status_code}")
                return bad
            layer = _decode(r.content).get("cases", {"features": []})
            for f in layer["features"]:
                if f["properties"].get("aggregated"):
                    counted += f["properties"]["count"]
                else:
                    seen.add(f["properties"]["case_id"])
        if seen - want:
            bad.append(f"z{z} tiles show outside cases {seen - want}")
        if z == 8 and counted + len(seen) != len(want):
            bad.append(f"z{z} tiles count {counted} cases, viewer sees {len(want)}")
    return bad


def check_pick(api, city, who, auth) -> list[str]:
    bad = []
    want = visible(city, who)
    with get_engine(city["settings"]).connect() as conn:
        where = conn.execute(text("SELECT id, ST_X(geom), ST_Y(geom) FROM cases")).all()
    for cid, x, y in where:
        r = api.get("/tiles/cases/pick", headers=auth, params={"lon": x, "lat": y, "z": 18})
        if who not in CASE_READERS:
            if r.status_code not in (401, 403):
                bad.append(f"pick answered {r.status_code}")
            break
        found = r.json()["id"]
        if found is not None and found not in want:
            bad.append(f"pick at case {cid} gave outside case {found}")
    return bad


def check_unit_tiles(api, city, who, auth) -> list[str]:
    bad = []
    want = visible(city, who) if who != "planner" else _by_units(city, who)
    for level in ("subdistrict", "community", "grid"):
        for z, x, y in _city_tiles(12):
            r = api.get(f"/tiles/units/{z}/{x}/{y}.pbf", headers=auth, params={"level": level})
            if who == "anonymous":
                if r.status_code != 401:
                    bad.append(f"units tile answered {r.status_code}")
                return bad
            for f in _decode(r.content).get("units", {"features": []})["features"]:
                code = f["properties"]["code"]
                if not unit_visible(who, code):
                    bad.append(f"units tile shows {code}")
                inside = {c["id"] for c in city["cases"] if c["unit_code"].startswith(code)}
                if f["properties"].get("reported", 0) != len(inside & want):
                    bad.append(
                        f"units tile {code} reports {f['properties'].get('reported')}, "
                        f"viewer's cases there: {len(inside & want)}"
                    )
    return bad


def check_pages(api, city, who, auth) -> list[str]:
    bad = []
    shown_to = visible(city, who) if who != "anonymous" else set()  # no page shows the public
    hidden = _markers_of(city, {c["id"] for c in city["cases"]} - shown_to)
    hidden_no = case_numbers(city, {c["id"] for c in city["cases"]} - shown_to)
    for path in (p + ("?level=grid" if p.endswith("resolution") else "") for p in map_pages()):
        r = api.get(path, headers=auth, follow_redirects=False)
        if r.status_code >= 500:
            bad.append(f"{path} answered {r.status_code}")
        if r.status_code != 200:
            continue  # refused or sent to sign in: nothing shown
        body = r.text
        if _markers(body) & hidden or any(n in body for n in hidden_no):
            bad.append(f"{path} shows cases outside the scope")
        for g in GRIDS:
            if f"138{g[-8:]}" in body and not unit_visible(who, g):
                bad.append(f"{path} shows the grid worker's phone of {g}")
    if who == "anonymous":
        r = api.get("/maps/resolution", follow_redirects=False)
        if r.status_code not in (303, 307, 401):
            bad.append(f"/maps/resolution for anonymous: {r.status_code}")
    return bad


def check_roster(api, city, who, auth) -> list[str]:
    bad = []
    for g in GRIDS:
        r = api.get(f"/api/v1/units/{g}", headers=auth, params={"geometry": "false"})
        assert r.status_code == 200, r.text
        roster = {p["role"]: p for p in r.json()["properties"]["roster"]}
        if "grid_leader" not in roster:
            bad.append(f"{g}: the responsible person is not public")
        staff_visible = who not in ("anonymous",) and unit_visible(who, g)
        if ("grid_worker" in roster) != staff_visible:
            bad.append(f"{g}: grid worker's entry shown={('grid_worker' in roster)}")
    return bad


def check_access(api, city, who, auth) -> list[str]:
    bad = []
    figures_ok = who in ("admin", "community_sup_a", "community_sup_b", "subdistrict_sup",
                         "planner")  # fmt: skip
    for path, params in (
        ("/api/v1/access/reach", {"level": "grid"}),
        ("/api/v1/access/gaps", {}),
        ("/api/v1/access/living-circle", {"level": "grid"}),
        ("/api/v1/access/siting", {"kind": "party_org", "k": 2}),
    ):
        r = api.get(path, headers=auth, params=params)
        if not figures_ok:
            if r.status_code not in (401, 403):
                bad.append(f"{path} answered {r.status_code}")
            continue
        assert r.status_code == 200, (path, r.text)
        body = r.json()
        codes = [u["code"] for u in body.get("units", [])] + [
            f["id"] for f in body.get("features", []) if "rank" not in f["properties"]
        ]
        for code in codes:
            if SCOPES[who] is not None and not any(code.startswith(s) for s in SCOPES[who]):
                bad.append(f"{path} shows {code}")
        if path.endswith("siting"):
            got = sum(f["properties"]["population_added"] for f in body["features"])
            pop_inside = _population_inside(city, who)
            if got > pop_inside:
                bad.append(f"siting counts {got} residents, the scope holds {pop_inside}")
    return bad


def _population_inside(city: dict, who: str) -> int:
    with get_engine(city["settings"]).connect() as conn:
        rows = conn.execute(
            text("SELECT code, population FROM admin_unit WHERE level = 'building'")
        ).all()
    return sum(
        p for c, p in rows if SCOPES[who] is None or any(c.startswith(s) for s in SCOPES[who])
    )


def check_open311(api, city, who, auth) -> list[str]:
    """Open311 reads: by key (``who`` names a key) or without one (anonymous: the public
    view, which also never shows a description nor an unpublished photo)."""
    bad = []
    if who not in city["keys"] and who != "anonymous":
        return bad
    key = {"api_key": city["keys"][who]} if who in city["keys"] else {}
    want = case_numbers(city, visible(city, who))
    r = api.get("/open311/v2/requests.json", params=key)
    if r.status_code != 200:
        return [f"open311 list answered {r.status_code}"]
    got = {x["service_request_id"] for x in r.json()}
    if got != want:
        bad.append(f"open311 list shows {got - want}, misses {want - got}")
    if who == "anonymous":
        if _markers(r.text):
            bad.append(f"open311 public view shows descriptions {_markers(r.text)}")
        published = {f"/photos/{p}" for p in city["published"]}
        for x in r.json():
            media = x["media_url"]
            if media is not None and not any(media.endswith(p) for p in published):
                bad.append(f"open311 public view shows the unpublished photo {media}")
    for c in city["cases"]:
        for path in ("requests", "tokens"):
            r = api.get(f"/open311/v2/{path}/{c['case_no']}.json", params=key)
            if (r.status_code == 200) != (c["case_no"] in want):
                bad.append(f"open311 {path}/{c['case_no']}: {r.status_code}")
    return bad


def check_ogc_cases(api, city, who, auth) -> list[str]:
    """OGC API – Features cases: case readers their jurisdiction, anonymous viewers the
    public view (as Open311: never a description), planners 403; one case 200 inside,
    404 outside."""
    bad = []
    r = api.get("/ogc/collections/cases/items", headers=auth, params={"limit": 1000})
    if who == "planner":
        return [] if r.status_code == 403 else [f"ogc cases answered {r.status_code}"]
    if r.status_code != 200:
        return [f"ogc cases answered {r.status_code}"]
    got = {f["id"] for f in r.json()["features"]}
    want = visible(city, who)
    if got != want:
        bad.append(f"ogc cases: extra {got - want}, missing {want - got}")
    if who == "anonymous" and _markers(r.text):
        bad.append(f"ogc public view shows descriptions {_markers(r.text)}")
    for c in city["cases"]:
        r = api.get(f"/ogc/collections/cases/items/{c['id']}", headers=auth)
        if r.status_code != (200 if c["id"] in want else 404):
            bad.append(f"ogc case {c['id']} ({c['unit_code']}): {r.status_code}")
    return bad


def check_ogc_gaps(api, city, who, auth) -> list[str]:
    """OGC gaps: the buildings /api/v1/access/gaps shows the same viewer (which computes
    the figures first), inside the scope; 401 anonymous, 403 other roles."""
    figures = api.get("/api/v1/access/gaps", headers=auth)
    r = api.get("/ogc/collections/gaps/items", headers=auth, params={"limit": 1000})
    if figures.status_code != 200:
        ok = r.status_code == figures.status_code
        return [] if ok else [f"ogc gaps answered {r.status_code}, access {figures.status_code}"]
    if r.status_code != 200:
        return [f"ogc gaps answered {r.status_code}"]
    got = {f["id"] for f in r.json()["features"]}
    bad = [] if got == {f["id"] for f in figures.json()["features"]} else ["ogc gaps differ"]
    for code in got:
        if SCOPES[who] is not None and not any(code.startswith(s) for s in SCOPES[who]):
            bad.append(f"ogc gaps show {code}")
    return bad


# The level above each handling level, as the length of its unit codes (README: codes
# of 6, 9, 12 and 14 digits): extension requests are decided there (cases/approvals.py).
ABOVE_LENGTH = {"grid": 12, "community": 9, "subdistrict": 6, "district": None}
APPROVERS = {"admin", "community_sup_a", "community_sup_b", "subdistrict_sup"}


def _extension_requests(api, city) -> dict[int, str | None]:
    """Once per city: every open case accepted and an extension asked by a second admin
    (nobody decides their own request). Approval id → the unit that decides it."""
    if "approvals" not in city:
        other = make_user(city["settings"], "admin", username="admin-ext")
        city["approvals"] = {}
        with get_engine(city["settings"]).connect() as conn:
            levels = dict(conn.execute(text("SELECT id, handling_level FROM cases")).all())
        for c in city["cases"]:
            if c["status"] == "rejected":
                continue
            if c["status"] == "reported":
                api.post(
                    f"/api/v1/cases/{c['id']}/actions", headers=other, json={"action": "accept"}
                )
            r = api.post(
                f"/api/v1/cases/{c['id']}/actions",
                headers=other,
                json={"action": "extend", "note": "需协调", "extension_hours": 24},
            )
            assert r.status_code == 200, r.text
            n = ABOVE_LENGTH[levels[c["id"]]]
            city["approvals"][r.json()["event"]["data"]["approval_id"]] = (
                None if n is None else c["unit_code"][:n]
            )
    return city["approvals"]


def check_approvals(api, city, who, auth) -> list[str]:
    """The approval inbox: admins all requests, a supervisor those whose deciding unit
    lies inside their scope, nobody else (401/403)."""
    if who in city["keys"]:
        return []
    requests = _extension_requests(api, city)
    r = api.get("/api/v1/approvals", headers=auth, params={"limit": 500})
    if who not in APPROVERS:
        return [] if r.status_code in (401, 403) else [f"approvals answered {r.status_code}"]
    got = {a["id"] for a in r.json()["approvals"]}
    want = {
        a
        for a, unit in requests.items()
        if SCOPES[who] is None
        or (unit is not None and any(unit.startswith(s) for s in SCOPES[who]))
    }
    return [] if got == want else [f"approvals: extra {got - want}, missing {want - got}"]


def check_desk(api, city, who, auth) -> list[str]:
    """The desk's queue (every tab and none) and its counts: dispatchers (APPROVERS are
    the supervisors and admins) see their jurisdiction's cases, everyone else 401/403."""
    from gis_service.cases.desk import TABS
    from gis_service.cases.workflow import OPEN_STATUSES

    q = api.get("/api/v1/desk/queue", headers=auth, params={"limit": 1000})
    n = api.get("/api/v1/desk/counts", headers=auth)
    if who not in APPROVERS:
        bad = [r.status_code for r in (q, n) if r.status_code not in (401, 403)]
        return [f"desk answered {bad}"] if bad else []
    want = visible(city, who)
    got = {f["id"] for f in q.json()["features"]}
    problems = [] if got == want else [f"desk queue: extra {got - want}, missing {want - got}"]
    opened = {c["id"] for c in city["cases"] if c["status"] in OPEN_STATUSES} & want
    if n.json()["open"] != len(opened):
        problems.append(f"desk counts: open {n.json()['open']}, not {len(opened)}")
    for tab in TABS:
        r = api.get("/api/v1/desk/queue", headers=auth, params={"tab": tab, "limit": 1000})
        extra = {f["id"] for f in r.json()["features"]} - want
        if extra or r.json()["numberMatched"] != n.json()["tabs"][tab]:
            problems.append(f"desk tab {tab}: extra {extra}, count {n.json()['tabs'][tab]}")
    return problems


def check_case_templates(api, city, who, auth) -> list[str]:
    """A case's reply templates: as the case itself (200 in scope, 404 outside)."""
    bad = []
    want = visible(city, who)
    for c in city["cases"]:
        r = api.get(f"/api/v1/cases/{c['id']}/templates", headers=auth)
        expected = (200 if c["id"] in want else 404) if who in CASE_READERS else (401, 403)
        if r.status_code not in np.atleast_1d(expected):
            bad.append(f"templates of case {c['id']}: {r.status_code}")
    return bad


def check_team_suggestions(api, city, who, auth) -> list[str]:
    """Suggested teams: dispatchers only, 404 outside the jurisdiction; every team listed
    serves the case's unit, and its open load counts exactly the open cases dispatched to
    it that the viewer sees (no case here is dispatched twice)."""
    from gis_service.cases.workflow import OPEN_STATUSES

    bad = []
    want = visible(city, who)
    for c in city["cases"]:
        r = api.get(f"/api/v1/cases/{c['id']}/team-suggestions", headers=auth)
        if who not in APPROVERS:
            if r.status_code not in (401, 403):
                bad.append(f"team suggestions answered {r.status_code}")
            break
        expected = 200 if c["id"] in want else 404
        if r.status_code != expected:
            bad.append(f"team suggestions of case {c['id']}: {r.status_code}")
            continue
        if expected == 404:
            continue
        for t in r.json()["teams"]:
            mine = {
                x["id"]
                for x in city["cases"]
                if t["id"] in (x["team_history"] or []) and x["status"] in OPEN_STATUSES
            }
            if not c["unit_code"].startswith(t["unit_code"]):
                bad.append(f"case {c['id']}: team {t['id']} does not serve {c['unit_code']}")
            if t["open_cases"] != len(mine & want):
                bad.append(f"case {c['id']}: team {t['id']} counts {t['open_cases']} open")
    return bad


def check_board(api, city, who, auth) -> list[str]:
    """The workload board and the shift view (cases/workload.py): dispatchers only; every
    figure and list counts the viewer's cases only, and a team is shown when its unit is
    inside the jurisdiction or above it, or it holds one of the viewer's cases."""
    from gis_service.cases.workflow import OPEN_STATUSES

    board = api.get("/api/v1/desk/workload", headers=auth)
    shift = api.get("/api/v1/desk/shift", headers=auth)
    if who not in APPROVERS:
        bad = [r.status_code for r in (board, shift) if r.status_code not in (401, 403)]
        return [f"board or shift answered {bad}"] if bad else []
    want = visible(city, who)
    problems = []
    opened = {
        c["id"]
        for c in city["cases"]
        if c["id"] in want and c["status"] in OPEN_STATUSES and c["team_history"]
    }
    teams = board.json()["teams"]
    if sum(t["open"] for t in teams) != len(opened):
        problems.append(f"board: open {sum(t['open'] for t in teams)}, not {len(opened)}")
    held = {c["team_history"][-1] for c in city["cases"] if c["id"] in opened}
    for t in teams:
        if not unit_visible(who, t["unit_code"]) and t["id"] not in held:
            problems.append(f"board shows team {t['id']} of unit {t['unit_code']}")
    for u in board.json()["grid_workers"]:
        if SCOPES[who] is not None and not any(
            g.startswith(s) for g in u["scopes"] for s in SCOPES[who]
        ):
            problems.append(f"board shows grid worker {u['username']} ({u['scopes']})")
    body = shift.json()
    arrived = {f["id"] for f in body["arrived"]["cases"]}
    if arrived != want:  # every case of the city was reported in the last hours
        problems.append(f"shift arrived: extra {arrived - want}, missing {want - arrived}")
    for name in ("urged_unreplied", "likely_late"):
        extra = {f["id"] for f in body[name]["cases"]} - want
        if extra:
            problems.append(f"shift {name}: outside cases {extra}")
    return problems


def check_case_page(api, city, who, auth) -> list[str]:
    """The case page: dispatchers (APPROVERS) get the cases they may see and the 404 page
    for the others, which names neither their number nor their text; other roles 403,
    anonymous viewers the sign-in."""
    bad = []
    want = visible(city, who)
    for c in city["cases"]:
        r = api.get(f"/desk/cases/{c['id']}", headers=auth, follow_redirects=False)
        if who == "anonymous":
            expected = 303
        elif who not in APPROVERS:
            expected = 403
        else:
            expected = 200 if c["id"] in want else 404
        if r.status_code != expected:
            bad.append(f"case page {c['id']} ({c['unit_code']}): {r.status_code}")
        elif expected != 200 and (c["case_no"] in r.text or c["description"] in r.text):
            bad.append(f"case page {c['id']}: a refusal names the case")
    return bad


REPORT_UNIT = "410199001001"  # community a: its monthly report (gis_service/reports/)
REPORT_READERS = {"admin", "community_sup_a", "subdistrict_sup"}  # supervisors covering it


def _monthly_report(api, city) -> dict:
    """Once per city: the admin's draft of community a's report for this month."""
    if "report" not in city:
        from gis_service.timezone import local_date

        month = local_date(city["settings"]).strftime("%Y-%m")
        admin = city["viewers"]["admin"]
        r = api.post(
            "/api/v1/reports/monthly", headers=admin, json={"unit": REPORT_UNIT, "month": month}
        )
        for _ in range(120):  # printing may outlast the wait: follow the job
            if r.status_code != 202:
                break
            time.sleep(0.5)
            job = api.get(r.json()["status_url"], headers=admin).json()
            if job["status"] != "running":
                r = api.get(job["summary"].rsplit(" ", 1)[1], headers=admin)
        assert r.status_code in (200, 201), r.text
        city["report"] = r.json()
    return city["report"]


def check_monthly_reports(api, city, who, auth) -> list[str]:
    """Monthly reports: supervisors and admins covering the unit read its versions, the
    PDF, the diff and the drill-down (the cases listed are theirs); another supervisor
    gets 403 for the unit's list and 404 for its versions; other roles 403, anonymous
    401."""
    v = _monthly_report(api, city)
    bad = []
    listed = api.get("/api/v1/reports/monthly", headers=auth, params={"unit": REPORT_UNIT})
    want = 200 if who in REPORT_READERS else 401 if who == "anonymous" else 403
    if listed.status_code != want:
        bad.append(f"report list answered {listed.status_code}, not {want}")
    for path in ("", "/pdf", "/diff", "/figures/totals.reported/cases"):
        r = api.get(v["url"] + path, headers=auth)
        want = (
            200
            if who in REPORT_READERS
            else 404
            if who in APPROVERS
            else 401
            if who == "anonymous"
            else 403
        )
        if r.status_code != want:
            bad.append(f"report {path or '/'} answered {r.status_code}, not {want}")
        elif path.endswith("/cases") and want == 200:
            ids = set(r.json()["case_ids"])
            inside = {c["id"] for c in city["cases"] if c["unit_code"].startswith(REPORT_UNIT)}
            if ids != inside or not ids <= visible(city, who):
                bad.append(f"report drill-down lists {sorted(ids)}")
    return bad


def check_exports(api, city, who, auth) -> list[str]:
    """The exports hold what the viewer may read: the cases of their jurisdiction (the
    public view without a sign-in; planners 403), figures of units inside their scope."""
    import csv
    import io

    bad = []
    r = api.get("/api/v1/exports/cases.csv", headers=auth, params={"lang": "en"})
    if who in CASE_READERS or who == "anonymous":
        if r.status_code != 200:
            return [f"case export answered {r.status_code}"]
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        got = {row["Case number"] for row in rows}
        want = case_numbers(city, visible(city, who))
        if got != want:
            bad.append(f"case export: extra {got - want}, missing {want - got}")
        if who == "anonymous" and any(row["Description"] for row in rows):
            bad.append("case export: the public view shows descriptions")
    elif r.status_code not in (401, 403):
        bad.append(f"case export answered {r.status_code}")
    figures_ok = who in ("admin", "community_sup_a", "community_sup_b", "subdistrict_sup",
                         "planner")  # fmt: skip
    for path, params in (
        ("/api/v1/exports/resolution.geojson", {"level": "grid"}),
        ("/api/v1/exports/gaps.geojson", {}),
        ("/api/v1/exports/living-circle.geojson", {"level": "grid"}),
    ):
        r = api.get(path, headers=auth, params=params)
        if who == "anonymous" or (not figures_ok and "resolution" not in path):
            if r.status_code not in (401, 403):
                bad.append(f"{path} answered {r.status_code}")
            continue
        if r.status_code != 200:
            bad.append(f"{path} answered {r.status_code}")
            continue
        for f in json.loads(r.content)["features"]:
            code = f["properties"].get("code") or f["properties"].get("unit_code")
            if (
                not unit_visible(who, code)
                if "resolution" in path
                else (SCOPES[who] is not None and not any(code.startswith(s) for s in SCOPES[who]))
            ):
                bad.append(f"{path} shows {code}")
    return bad


# Grid walks (gis_service/walks/): who walked where, made once per city through the API.
WALKS = {  # walker → grid walked
    "worker_a1": GRID_A1,
    "worker_a2": GRID_A2,
    "worker_multi": GRID_B1,
    "admin": "41019900200101",
}
WALK_READERS = {"admin", "worker_a1", "worker_a2", "worker_multi", "community_sup_a",
                "community_sup_b", "subdistrict_sup"}  # fmt: skip


def _walks(api, city) -> dict[int, tuple[str, str]]:
    """Once per city: one walk per WALKS entry with a few fixes at its grid's centre,
    ended. Walk id → (walker, grid)."""
    if "walks" not in city:
        from datetime import UTC, datetime, timedelta

        start = datetime.now(UTC) - timedelta(minutes=10)
        city["walks"] = {}
        for who, grid in WALKS.items():
            auth = city["viewers"][who]
            r = api.post(
                "/api/v1/walks",
                headers=auth,
                json={"grid_code": grid, "client_started_at": start.isoformat()},
            )
            assert r.status_code == 201, r.text
            walk_id = r.json()["id"]
            x, y = _centre(grid)
            points = [
                {
                    "t": (start + timedelta(seconds=5 * i)).isoformat(),
                    "lon": x + i * 5e-5,
                    "lat": y,
                    "accuracy_m": 5,
                }
                for i in range(20)
            ]
            r = api.post(
                f"/api/v1/walks/{walk_id}/points",
                headers=auth,
                json={"chunk_id": "c1", "points": points},
            )
            assert r.status_code == 200, r.text
            assert api.post(f"/api/v1/walks/{walk_id}/end", headers=auth).status_code == 200
            city["walks"][walk_id] = (who, grid)
    return city["walks"]


def walks_visible(city: dict, who: str) -> set[int]:
    """Walks a viewer may read, by the rule as documented (auth/scope.py walk_filter):
    a grid worker their own, supervisors and planners those of grids in their scope units,
    admins all, nobody else any."""
    out = set()
    for walk_id, (walker, grid) in city["walks"].items():
        if who == "admin":
            ok = True
        elif who.startswith("worker_"):
            ok = walker == who
        elif who in ("team_c", "anonymous"):
            ok = False
        else:
            ok = any(grid.startswith(s) for s in SCOPES[who])
        if ok:
            out.add(walk_id)
    return out


def check_walks(api, city, who, auth) -> list[str]:
    """The walk list and each walk: readers their walks (404 for the others'), planners
    and team members 403, anonymous 401."""
    walks = _walks(api, city)
    want = walks_visible(city, who)
    bad = []
    r = api.get("/api/v1/walks", headers=auth)
    refused = 401 if who == "anonymous" else 403
    if who not in WALK_READERS:
        if r.status_code != refused:
            bad.append(f"walk list answered {r.status_code}")
    else:
        got = {w["id"] for w in r.json()["walks"]}
        if got != want:
            bad.append(f"walk list: extra {got - want}, missing {want - got}")
    for walk_id, (walker, grid) in walks.items():
        r = api.get(f"/api/v1/walks/{walk_id}", headers=auth)
        expected = refused if who not in WALK_READERS else 200 if walk_id in want else 404
        if r.status_code != expected:
            bad.append(f"walk {walk_id} of {walker} in {grid}: {r.status_code}")
    return bad


def check_due_buildings(api, city, who, auth) -> list[str]:
    """A grid's due list: for walkers and planners of units holding the grid (and
    admins); 403 for other grids and roles, 401 anonymous."""
    _walks(api, city)
    bad = []
    for grid in GRIDS:
        r = api.get(f"/api/v1/grids/{grid}/due-buildings", headers=auth)
        if who == "anonymous":
            expected = 401
        elif who == "team_c":
            expected = 403
        else:
            inside = SCOPES[who] is None or any(grid.startswith(s) for s in SCOPES[who])
            expected = 200 if inside else 403
        if r.status_code != expected:
            bad.append(f"due list of {grid}: {r.status_code}")
        elif expected == 200:
            outside = [b["code"] for b in r.json()["buildings"] if not b["code"].startswith(grid)]
            if outside:
                bad.append(f"due list of {grid} lists {outside}")
    return bad


def check_due_route(api, city, who, auth) -> list[str]:
    """Today's suggested route of a grid: the due list's rule (check_due_buildings), from
    the grid's centre; its stops and the buildings left out all lie in that grid."""
    _walks(api, city)
    bad = []
    for grid in GRIDS:
        x, y = _centre(grid)
        r = api.get(f"/api/v1/grids/{grid}/due-route", headers=auth, params={"lon": x, "lat": y})
        if who == "anonymous":
            expected = 401
        elif who == "team_c":
            expected = 403
        else:
            inside = SCOPES[who] is None or any(grid.startswith(s) for s in SCOPES[who])
            expected = 200 if inside else 403
        if r.status_code != expected:
            bad.append(f"due route of {grid}: {r.status_code}")
        elif expected == 200:
            props = r.json()["properties"]
            codes = [b["code"] for b in props["stops"] + props["left_out"]]
            outside = [c for c in codes if not c.startswith(grid)]
            if outside or len(codes) != props["due"]:
                bad.append(f"due route of {grid} routes {codes} of {props['due']} due")
    return bad


def check_walk_stats(api, city, who, auth) -> list[str]:
    """Walk figures: the walks the viewer may see (planners: their units' walks) over the
    units they may see; 403 team members, 401 anonymous."""
    walks = _walks(api, city)
    r = api.get("/api/v1/stats/walks", headers=auth, params={"level": "grid"})
    if who in ("anonymous", "team_c"):
        want = 401 if who == "anonymous" else 403
        return [] if r.status_code == want else [f"walk stats answered {r.status_code}"]
    if r.status_code != 200:
        return [f"walk stats answered {r.status_code}"]
    body = r.json()
    if who == "planner":
        want = {w for w, (_, grid) in walks.items() if grid.startswith(SCOPES[who][0])}
    else:
        want = walks_visible(city, who)
    bad = []
    if body["totals"]["walks"] != len(want):
        bad.append(f"walk stats count {body['totals']['walks']} walks, not {len(want)}")
    for u in body["units"]:
        if not unit_visible(who, u["code"]):
            bad.append(f"walk stats show unit {u['code']}")
        inside = {w for w in want if walks[w][1].startswith(u["code"])}
        if u["walks"] != len(inside):
            bad.append(f"walk stats {u['code']}: {u['walks']} walks, not {len(inside)}")
    return bad


CHECKS: dict[str, list[Check]] = {
    "/api/v1/cases": [check_case_list],
    "/api/v1/cases/{case_id}/templates": [check_case_templates],
    "/api/v1/cases/{case_id}/team-suggestions": [check_team_suggestions],
    "/api/v1/approvals": [check_approvals],
    "/api/v1/desk/queue": [check_desk],
    "/api/v1/desk/counts": [check_desk],
    "/api/v1/desk/workload": [check_board],
    "/api/v1/desk/shift": [check_board],
    "/desk/cases/{case_id}": [check_case_page],
    "/api/v1/cases/{case_id}": [check_case_detail],
    "/api/v1/cases/{case_id}/lock": [check_case_lock],
    "/api/v1/cases/{case_id}/photos/{photo_id}": [check_photos],
    "/api/v1/cases/nearby": [check_nearby],
    "/api/v1/stats/resolution": [check_stats],
    "/api/v1/stats/recurring-spots": [check_recurring_spots],
    "/api/v1/stats/hotspots": [check_hotspots],
    "/tiles/{layer}/{z}/{x}/{y}.pbf": [check_case_tiles, check_unit_tiles],
    "/tiles/cases/pick": [check_pick],
    "/maps/resolution": [check_pages],
    "/maps/cases": [check_pages],
    "/maps/units": [check_pages],
    "/maps/coverage": [check_pages],
    "/maps/hotspots": [check_pages],
    "/maps/walks": [check_pages],
    "/api/v1/units/{code}": [check_roster],
    "/api/v1/access/reach": [check_access],
    "/api/v1/access/gaps": [check_access],
    "/api/v1/access/living-circle": [check_access],
    "/api/v1/access/siting": [check_access],
    "/open311/v2/requests.{fmt}": [check_open311],
    "/open311/v2/requests/{service_request_id}.{fmt}": [check_open311],
    "/open311/v2/tokens/{token}.{fmt}": [check_open311],
    "/api/v1/reports/monthly": [check_monthly_reports],
    "/api/v1/reports/monthly/{version_id}": [check_monthly_reports],
    "/api/v1/reports/monthly/{version_id}/pdf": [check_monthly_reports],
    "/api/v1/reports/monthly/{version_id}/diff": [check_monthly_reports],
    "/api/v1/reports/monthly/{version_id}/figures/{key}/cases": [check_monthly_reports],
    "/ogc/collections/{collectionId}/items": [check_ogc_cases, check_ogc_gaps],
    "/ogc/collections/{collectionId}/items/{featureId}": [check_ogc_cases],
    "/api/v1/exports/cases.{fmt}": [check_exports],
    "/api/v1/exports/resolution.{fmt}": [check_exports],
    "/api/v1/exports/gaps.{fmt}": [check_exports],
    "/api/v1/exports/living-circle.{fmt}": [check_exports],
    "/api/v1/walks": [check_walks],
    "/api/v1/walks/{walk_id}": [check_walks],
    "/api/v1/grids/{code}/due-buildings": [check_due_buildings],
    "/api/v1/grids/{code}/due-route": [check_due_route],
    "/api/v1/stats/walks": [check_walk_stats],
}

# Routes that answer nothing viewer-dependent, each with the reason.
NO_JURISDICTION = {
    "/healthz": "service health, no data",
    "/api/v1/locate": "public geography: which units hold a point",
    "/api/v1/units": "public geography: unit boundaries and names, no roster",
    "/api/v1/service-points": "public: service points are posted in the street",
    "/api/v1/service-points/{point_id}": "public: one service point",
    "/api/v1/service-kinds": "vocabulary",
    "/tiles/style.json": "the basemap's style",
    "/api/v1/categories": "vocabulary",
    "/api/v1/vocabulary": "vocabulary: the service's word lists",
    "/m/vocabulary.js": "the same word lists for the phone app",
    "/api/v1/teams": "the teams a viewer may dispatch to: names only, scoped by units_visible",
    "/api/v1/auth/me": "the viewer's own account",
    "/api/v1/approvals/delegations": "the viewer's own delegations (test_command_actions)",
    "/api/v1/imports/{run_id}": "admins only (tested in test_api)",
    "/api/v1/audit": "admins only (tested in test_audit)",
    "/api/v1/audit/export": "admins only (tested in test_audit)",
    "/api/v1/access/isochrone": "geometry of the walking network, no residents or cases",
    "/api/v1/access/nearest": "the nearest public service point",
    "/api/v1/access/circles": "quarter-hour areas of public service points",
    "/api/v1/access/jobs/{name}": "status of a computation, no figures",
    "/open311/v2/services.{fmt}": "vocabulary",
    "/open311/v2/services/{service_code}.{fmt}": "vocabulary",
    "/ogc/": "the OGC landing page: links",
    "/ogc/conformance": "the OGC conformance classes",
    "/ogc/collections": "the collections' metadata; their items are checked (check_ogc_cases)",
    "/ogc/collections/{collectionId}": "one collection's metadata",
    "/tiles/{layer}/tilejson.json": "the tiles' TileJSON: URLs and fields, no data",
    "/maps/login": "sign-in form",
    "/maps/logout": "sign-out",
    "/m": "the phone app's shell: data comes from the API",
    "/m/": "the phone app's shell",
    "/m/sw.js": "the phone app's service worker",
    "/m/manifest.webmanifest": "the phone app's manifest",
    "/m/icon-{size}.png": "an icon",
    "/": "the front door: the sign-in form, or a redirect to the role's page",
    "/desk": "a redirect to /desk/",
    "/desk/": "the desk's page shell: its data comes from /api/v1/desk/… (check_desk)",
    "/desk/approvals": "the approval inbox's page shell: its data is /api/v1/approvals'",
    "/desk/workload": "the workload board's page shell: its data is check_board's",
    "/desk/shift": "the shift view's page shell: its data is check_board's",
    "/desk/reports": "the monthly reports' page shell: its data is check_monthly_reports'",
    "/desk/notifications": "the inbox and settings page shell: its data is the caller's own "
    "inbox and preferences (/api/v1/notifications…)",
    "/api/v1/reports/jobs/{name}": "status of a report being printed, no figures",
    "/api/v1/desk/saved-searches": "the viewer's own saved searches (test_workload)",
    "/api/v1/notifications": "the viewer's own inbox, by user id (test_notify_api)",
    "/api/v1/notifications/unread": "the viewer's own unread count (test_notify_api)",
    "/api/v1/notifications/preferences": "the viewer's own choices (test_notify_api)",
    "/api/v1/admin/notify/dead-letters": "admins only; everyone else 403 (test_notify_sender)",
    "/api/v1/admin/webhooks": "admins only; everyone else 403 (test_notify_api)",
    "/api/v1/admin/webhooks/{webhook_id}": "admins only; everyone else 403 (test_notify_api)",
    "/api/v1/exports/jobs/{job_id}": "the viewer's own export job (test_exports)",
    "/api/v1/exports/jobs/{job_id}/file": "the viewer's own export job's file (test_exports)",
    **{
        f"/api/v1/admin{path}": "admins only; everyone else 403 (tested in test_admin_api)"
        for path in (
            "/users",
            "/teams",
            "/teams/{team_id}/members",
            "/rosters",
            "/categories",
            "/open311-keys",
            "/service-points",
        )
    },
    **{
        path: "an admin page's shell, admins only: its data comes from /api/v1/admin/…"
        # the admin pages from their one list (admin/pages.py SECTIONS)
        for path in ("/admin", "/admin/", *(section[0] for section in SECTIONS.values()))
    },
}


def _data_routes(app) -> set[str]:
    """Every GET route the app serves, pages included (those are not in the OpenAPI)."""
    out = set()
    for route in app.routes:
        contexts = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for r in contexts:
            if "GET" in (getattr(r, "methods", None) or ()) and r.path not in DOCS:
                out.add(r.path)
    return out


DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def test_every_route_is_in_the_matrix(settings):
    """A GET route that answers data must say how it is scoped."""
    routes = _data_routes(create_app(settings))
    missing = sorted(routes - set(CHECKS) - set(NO_JURISDICTION))
    assert not missing, f"routes without a jurisdiction check: {missing}"
    gone = sorted((set(CHECKS) | set(NO_JURISDICTION)) - routes)
    assert not gone, f"the matrix names routes the app no longer has: {gone}"


def test_every_viewer_sees_only_their_scope_everywhere(city):
    problems = []
    with TestClient(create_app(city["settings"])) as api:
        for who in [*city["viewers"], *city["keys"]]:
            auth = city["viewers"].get(who, {})
            done = set()
            for checks in CHECKS.values():
                for check in checks:
                    if check in done:
                        continue
                    done.add(check)
                    if who in city["keys"] and check is not check_open311:
                        continue  # keys read Open311 only
                    problems += [f"{who}: {p}" for p in check(api, city, who, auth)]
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def test_numpy_masks_equal_the_sql_rule_for_every_viewer(city):
    """The cube's masks (statistics, tiles) and the SQL filter are two compilations of
    one rule: for every viewer, including scopes no account can have today (a building),
    they select the same cases."""
    from gis_service.auth.principal import Principal, Role
    from gis_service.auth.scope import ANONYMOUS, case_filter, case_mask
    from gis_service.stats.cube import CaseCube

    s = city["settings"]
    viewers = [
        Principal(role=Role.admin),
        Principal(role=Role.supervisor, scopes=("410199001",)),
        Principal(role=Role.grid_worker, scopes=(GRID_A1, GRID_B1)),
        Principal(role=Role.client, scopes=(BUILDING,)),
        Principal(role=Role.supervisor, scopes=(BUILDING, "410199002")),
        Principal(role=Role.team_member, team_id=city["team_c"]),
        Principal(role=Role.planner, scopes=("410199002001",)),
        ANONYMOUS,
    ]
    cube = CaseCube(s)
    facts = cube.facts()
    with get_engine(s).connect() as conn:
        for p in viewers:
            cond, params = case_filter(p, "c")
            by_sql = set(
                conn.execute(text(f"SELECT id FROM cases c WHERE {cond}"), params).scalars()
            )
            by_mask = set(facts.ids[case_mask(conn, p, facts)].tolist())
            assert by_sql == by_mask, (p, by_sql ^ by_mask)
