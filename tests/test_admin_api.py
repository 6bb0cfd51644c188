"""The admin API (issue 15 item 7): every route of ``/api/v1/admin`` — the list comes from
the app's own route table — answers an admin and refuses every other role (403) and the
signed-out (401); bad input is a 422 naming the field with nothing written; each change
takes effect at once (a new account signs in, a new team is dispatched to, a deactivated
account's sessions end, a new service point is listed and counted in the access figures)
and lands in the audit log with the admin as its actor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import LineString, box
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine, transaction
from tests.conftest import GRIDS, IN_GRID_1, IN_GRID_2, make_user, write

PREFIX = "/api/v1/admin"
#: the tables the admin API writes: a refused request must leave each exactly as it was
WRITTEN = (
    "app_user",
    "team",
    "unit_staff",
    "case_category",
    "open311_client",
    "service_point",
    "webhook_subscription",
)
OTHERS = ("district_sup", "sub1_sup", "planner", "worker1", "team_a")


@pytest.fixture
def city(case_city) -> dict:
    """The case city plus what the routes act on: a spare team member, a roster entry, an
    Open311 client and a service point."""
    from gis_service.cases.categories import DEFAULT_TAXONOMY, load_taxonomy, read_taxonomy
    from gis_service.imports.roster import save_staff
    from gis_service.open311.keys import create_key
    from gis_service.service_points.service import add_point

    s = case_city["settings"]
    make_user(s, "team_member", team_id=case_city["teams"]["a"], username="spare")
    with transaction(s) as conn:  # the taxonomy outlives the db fixture's truncation
        conn.execute(text("DELETE FROM case_category WHERE code = 'environment.graffiti'"))
        load_taxonomy(conn, read_taxonomy(DEFAULT_TAXONOMY))
        staff = save_staff(
            conn, {"unit_code": "410199001001", "role": "grid_leader", "name": "李四"}
        )
        client, _ = create_key(conn, "hotline")
        point = add_point(
            conn, {"kind": "party_org", "name": "党群服务中心", "lon": 113.012, "lat": 34.072}
        )
        ids = dict(
            conn.execute(
                text("SELECT username, id FROM app_user WHERE username IN ('spare', 'gw2')")
            ).all()
        )
        webhook = conn.execute(
            text(
                "INSERT INTO webhook_subscription (name, url, secret) "
                "VALUES ('热线', 'http://127.0.0.1:9/hook', 'a-secret-of-sixteen+') RETURNING id"
            )
        ).scalar_one()
        dead = conn.execute(
            text(
                "INSERT INTO notify_delivery (district_code, subscription_id, kind, source, "
                "channel, recipient, subject, body, status, attempts, last_error) VALUES "
                "('410105', :w, 'overdue', 'event:1', 'webhook', 'http://127.0.0.1:9/hook', "
                "'s', 'b', 'dead', 8, 'HTTP 503') "
                "RETURNING id::text"
            ),
            {"w": webhook},
        ).scalar_one()
    return {
        **case_city,
        "ids": {
            "spare": ids["spare"],
            "gw2": ids["gw2"],
            "staff": staff["id"],
            "client": client["id"],
            "point": point["id"],
            "team": case_city["teams"]["c"],
            "webhook": webhook,
            "dead": dead,
        },
    }


#: (method, path) → a good request: (path with ids, JSON body or None). A route added to
#: the admin API without an entry here fails test_every_admin_route_is_sampled.
Sample = Callable[[dict], tuple[str, Any]]
SAMPLES: dict[tuple[str, str], Sample] = {
    ("GET", "/users"): lambda i: ("/users?role=grid_worker&active=true", None),
    ("POST", "/users"): lambda i: (
        "/users",
        {
            "username": "new-gw",
            "password": "password-123",
            "role": "grid_worker",
            "scopes": ["41019900100102"],
        },
    ),
    ("PATCH", "/users/{user_id}"): lambda i: (
        f"/users/{i['gw2']}",
        {"scopes": ["41019900200101", "41019900200102"], "display_name": "王五"},
    ),
    ("POST", "/users/{user_id}/deactivate"): lambda i: (f"/users/{i['gw2']}/deactivate", None),
    ("POST", "/users/{user_id}/activate"): lambda i: (f"/users/{i['gw2']}/activate", None),
    ("POST", "/users/{user_id}/password"): lambda i: (f"/users/{i['gw2']}/password", {}),
    ("GET", "/teams"): lambda i: ("/teams", None),
    ("POST", "/teams"): lambda i: (
        "/teams",
        {"name": "西北社区物业", "kind": "property_service", "unit_code": "410199001001"},
    ),
    ("PATCH", "/teams/{team_id}"): lambda i: (f"/teams/{i['team']}", {"phone": "0371-1234567"}),
    ("GET", "/teams/{team_id}/members"): lambda i: (f"/teams/{i['team']}/members", None),
    ("POST", "/teams/{team_id}/members"): lambda i: (
        f"/teams/{i['team']}/members",
        {"user_id": i["spare"]},
    ),
    ("DELETE", "/teams/{team_id}/members/{user_id}"): lambda i: (
        f"/teams/{i['team']}/members/{i['spare']}",
        None,
    ),
    ("GET", "/rosters"): lambda i: ("/rosters?unit=410199001001", None),
    ("POST", "/rosters"): lambda i: (
        "/rosters",
        {
            "unit_code": "410199001001",
            "role": "grid_worker",
            "name": "赵六",
            "phone": "13800000000",
        },
    ),
    ("PUT", "/rosters/{staff_id}"): lambda i: (
        f"/rosters/{i['staff']}",
        {
            "unit_code": "410199001001",
            "role": "grid_leader",
            "name": "李四",
            "phone": "13900000000",
        },
    ),
    ("DELETE", "/rosters/{staff_id}"): lambda i: (f"/rosters/{i['staff']}", None),
    ("GET", "/categories"): lambda i: ("/categories", None),
    ("PATCH", "/categories/{code}"): lambda i: (
        "/categories/environment.garbage",
        {"deadline_hours": 12},
    ),
    ("POST", "/categories"): lambda i: (
        "/categories",
        {
            "parent_code": "environment",
            "code": "environment.graffiti",
            "name_zh": "乱涂乱画",
            "name_en": "Graffiti",
        },
    ),
    ("GET", "/open311-keys"): lambda i: ("/open311-keys", None),
    ("POST", "/open311-keys"): lambda i: ("/open311-keys", {"name": "wechat-app"}),
    ("POST", "/open311-keys/{client_id}/revoke"): lambda i: (
        f"/open311-keys/{i['client']}/revoke",
        None,
    ),
    ("GET", "/service-points"): lambda i: ("/service-points?closed=false", None),
    ("POST", "/service-points"): lambda i: (
        "/service-points",
        {"kind": "party_org", "name": "新党群服务站", "lon": IN_GRID_2[0], "lat": IN_GRID_2[1]},
    ),
    ("POST", "/service-points/{point_id}/move"): lambda i: (
        f"/service-points/{i['point']}/move",
        {"lon": IN_GRID_1[0], "lat": IN_GRID_1[1]},
    ),
    ("POST", "/service-points/{point_id}/close"): lambda i: (
        f"/service-points/{i['point']}/close",
        None,
    ),
    ("POST", "/service-points/{point_id}/reopen"): lambda i: (
        f"/service-points/{i['point']}/reopen",
        None,
    ),
    # notifications (notify/routes.py): dead letters and webhook subscriptions
    ("GET", "/notify/dead-letters"): lambda i: ("/notify/dead-letters?limit=10", None),
    ("POST", "/notify/deliveries/{delivery_id}/retry"): lambda i: (
        f"/notify/deliveries/{i['dead']}/retry",
        None,
    ),
    ("GET", "/webhooks"): lambda i: ("/webhooks", None),
    ("POST", "/webhooks"): lambda i: (
        "/webhooks",
        {"name": "市级平台", "url": "https://127.0.0.1:8443/in", "kinds": ["overdue"]},
    ),
    ("GET", "/webhooks/{webhook_id}"): lambda i: (f"/webhooks/{i['webhook']}", None),
    ("PUT", "/webhooks/{webhook_id}"): lambda i: (f"/webhooks/{i['webhook']}", {"active": False}),
    ("DELETE", "/webhooks/{webhook_id}"): lambda i: (f"/webhooks/{i['webhook']}", None),
}

#: (method, path) → bad requests: (path, body, the field the 422 must name)
BAD: dict[tuple[str, str], Callable[[dict], list[tuple[str, Any, str]]]] = {
    ("GET", "/users"): lambda i: [("/users?role=mayor", None, "role")],
    ("POST", "/users"): lambda i: [
        ("/users", {**SAMPLES["POST", "/users"](i)[1], "role": "mayor"}, "role"),
        ("/users", {**SAMPLES["POST", "/users"](i)[1], "role": "public"}, "role"),
        ("/users", {**SAMPLES["POST", "/users"](i)[1], "password": "short"}, "password"),
        ("/users", {**SAMPLES["POST", "/users"](i)[1], "scopes": ["410199001"]}, "scopes"),
        ("/users", {**SAMPLES["POST", "/users"](i)[1], "scopes": []}, "scopes"),
        ("/users", {**SAMPLES["POST", "/users"](i)[1], "username": "a b"}, "username"),
        ("/users", {**SAMPLES["POST", "/users"](i)[1], "team_id": i["team"]}, "team_id"),
        ("/users", {**SAMPLES["POST", "/users"](i)[1], "colour": "red"}, "colour"),
    ],
    ("PATCH", "/users/{user_id}"): lambda i: [
        (f"/users/{i['gw2']}", {"scopes": ["410199002"]}, "scopes"),
        (f"/users/{i['gw2']}", {"role": "team_member"}, "team_id"),
        (f"/users/{i['gw2']}", {"role": "client"}, "role"),
    ],
    ("POST", "/users/{user_id}/deactivate"): lambda i: [("/users/-1/deactivate", None, "user_id")],
    ("POST", "/users/{user_id}/activate"): lambda i: [("/users/x/activate", None, "user_id")],
    ("POST", "/users/{user_id}/password"): lambda i: [
        (f"/users/{i['gw2']}/password", {"password": "short"}, "password")
    ],
    ("GET", "/teams"): lambda i: [("/teams?unit=" + "9" * 200, None, "unit")],
    ("POST", "/teams"): lambda i: [
        ("/teams", {**SAMPLES["POST", "/teams"](i)[1], "kind": "army"}, "kind"),
        ("/teams", {**SAMPLES["POST", "/teams"](i)[1], "unit_code": "999"}, "unit_code"),
        ("/teams", {**SAMPLES["POST", "/teams"](i)[1], "name": "  "}, "name"),
    ],
    ("PATCH", "/teams/{team_id}"): lambda i: [
        (f"/teams/{i['team']}", {"kind": "army"}, "kind"),
        (f"/teams/{i['team']}", {"active": "maybe"}, "active"),
    ],
    ("GET", "/teams/{team_id}/members"): lambda i: [("/teams/x/members", None, "team_id")],
    ("POST", "/teams/{team_id}/members"): lambda i: [
        (f"/teams/{i['team']}/members", {"user_id": i["gw2"]}, "user_id"),
        (f"/teams/{i['team']}/members", {}, "user_id"),
    ],
    ("DELETE", "/teams/{team_id}/members/{user_id}"): lambda i: [
        (f"/teams/{i['team']}/members/x", None, "user_id")
    ],
    ("GET", "/rosters"): lambda i: [("/rosters?unit=abc", None, "unit")],
    ("POST", "/rosters"): lambda i: [
        ("/rosters", {**SAMPLES["POST", "/rosters"](i)[1], "role": "mayor"}, "role"),
        ("/rosters", {**SAMPLES["POST", "/rosters"](i)[1], "phone": "call me"}, "phone"),
        ("/rosters", {**SAMPLES["POST", "/rosters"](i)[1], "unit_code": "4101"}, "unit_code"),
        ("/rosters", {**SAMPLES["POST", "/rosters"](i)[1], "sort": 40000}, "sort"),
        ("/rosters", {**SAMPLES["POST", "/rosters"](i)[1], "name": " "}, "name"),
    ],
    ("PUT", "/rosters/{staff_id}"): lambda i: [
        (f"/rosters/{i['staff']}", {**SAMPLES["POST", "/rosters"](i)[1], "role": "x"}, "role")
    ],
    ("DELETE", "/rosters/{staff_id}"): lambda i: [("/rosters/x", None, "staff_id")],
    ("GET", "/categories"): lambda i: [],
    ("PATCH", "/categories/{code}"): lambda i: [
        ("/categories/environment.garbage", {"deadline_hours": 0}, "deadline_hours"),
        ("/categories/environment.garbage", {"handling_level": "moon"}, "handling_level"),
        ("/categories/environment.garbage", {"public": "yes"}, "public"),
        ("/categories/environment.garbage", {"name_zh": ""}, "name_zh"),
    ],
    ("POST", "/categories"): lambda i: [
        ("/categories", {**SAMPLES["POST", "/categories"](i)[1], "code": "graffiti"}, "code"),
        (
            "/categories",
            {**SAMPLES["POST", "/categories"](i)[1], "code": "safety.graffiti"},
            "code",
        ),
        (
            "/categories",
            {**SAMPLES["POST", "/categories"](i)[1], "parent_code": "x"},
            "parent_code",
        ),
        (
            "/categories",
            {**SAMPLES["POST", "/categories"](i)[1], "deadline_hours": -1},
            "deadline_hours",
        ),
    ],
    ("GET", "/open311-keys"): lambda i: [],
    ("POST", "/open311-keys"): lambda i: [
        ("/open311-keys", {"name": ""}, "name"),
        ("/open311-keys", {"name": "x", "scope_code": "999"}, "scope_code"),
    ],
    ("POST", "/open311-keys/{client_id}/revoke"): lambda i: [
        ("/open311-keys/x/revoke", None, "client_id")
    ],
    ("GET", "/service-points"): lambda i: [("/service-points?kind=castle", None, "kind")],
    ("POST", "/service-points"): lambda i: [
        ("/service-points", {**SAMPLES["POST", "/service-points"](i)[1], "kind": "castle"}, "kind"),
        ("/service-points", {**SAMPLES["POST", "/service-points"](i)[1], "lon": 200}, "lon"),
        ("/service-points", {**SAMPLES["POST", "/service-points"](i)[1], "lon": 120.0}, "lon"),
        ("/service-points", {**SAMPLES["POST", "/service-points"](i)[1], "name": ""}, "name"),
        (
            "/service-points",
            {**SAMPLES["POST", "/service-points"](i)[1], "categories": ["magic"]},
            "categories",
        ),
    ],
    ("POST", "/service-points/{point_id}/move"): lambda i: [
        (f"/service-points/{i['point']}/move", {"lon": 113.0, "lat": 95}, "lat"),
        (f"/service-points/{i['point']}/move", {"lon": 100.0, "lat": 30.0}, "lon"),
    ],
    ("POST", "/service-points/{point_id}/close"): lambda i: [
        ("/service-points/x/close", None, "point_id")
    ],
    ("POST", "/service-points/{point_id}/reopen"): lambda i: [
        ("/service-points/x/reopen", None, "point_id")
    ],
    ("GET", "/notify/dead-letters"): lambda i: [("/notify/dead-letters?limit=0", None, "limit")],
    ("POST", "/notify/deliveries/{delivery_id}/retry"): lambda i: [
        ("/notify/deliveries/x/retry", None, "delivery_id")
    ],
    ("GET", "/webhooks"): lambda i: [],
    ("POST", "/webhooks"): lambda i: [
        ("/webhooks", {**SAMPLES["POST", "/webhooks"](i)[1], "url": "ftp://x/y"}, "url"),
        ("/webhooks", {**SAMPLES["POST", "/webhooks"](i)[1], "kinds": ["rain"]}, "kinds.0"),
        ("/webhooks", {**SAMPLES["POST", "/webhooks"](i)[1], "secret": "short"}, "secret"),
    ],
    ("GET", "/webhooks/{webhook_id}"): lambda i: [("/webhooks/x", None, "webhook_id")],
    ("PUT", "/webhooks/{webhook_id}"): lambda i: [
        (f"/webhooks/{i['webhook']}", {"url": "ftp://x/y"}, "url")
    ],
    ("DELETE", "/webhooks/{webhook_id}"): lambda i: [("/webhooks/x", None, "webhook_id")],
}


def admin_routes(app) -> set[tuple[str, str]]:
    out = set()
    for route in app.routes:
        contexts = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for r in contexts:
            path = getattr(r, "path", "")
            if path.startswith(PREFIX):
                out |= {(m, path.removeprefix(PREFIX)) for m in r.methods - {"HEAD"}}
    return out


def snapshot(settings) -> dict[str, str]:
    """Each written table's whole content, and the audit log's length."""
    with get_engine(settings).connect() as conn:
        out = {
            t: conn.execute(
                text(
                    f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                    f"FROM {t} x"
                )
            ).scalar_one()
            for t in WRITTEN
        }
        out["audit_log"] = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    return out


def call(api: TestClient, method: str, path: str, body: Any, auth: dict):
    kwargs = {"headers": auth}
    if body is not None:
        kwargs["json"] = body
    return api.request(method, PREFIX + path, **kwargs)


def test_every_admin_route_is_sampled(settings):
    routes = admin_routes(create_app(settings))
    assert routes, "no admin routes"
    assert routes == set(SAMPLES), routes ^ set(SAMPLES)
    assert routes == set(BAD), routes ^ set(BAD)


def test_only_admins(city):
    """Every route: 401 signed out, 403 for supervisors, planners, grid workers and team
    members (with nothing written), and then the admin's request answers 2xx."""
    s = city["settings"]
    with TestClient(create_app(s)) as api:
        for (method, _route), sample in SAMPLES.items():
            path, body = sample(city["ids"])
            before = snapshot(s)
            r = call(api, method, path, body, {})
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["error"] == "unauthorized"
            for who in OTHERS:
                r = call(api, method, path, body, city[who])
                assert r.status_code == 403, (who, method, path, r.text)
                assert r.json()["error"] == "forbidden"
            assert snapshot(s) == before, (method, path)
            r = call(api, method, path, body, city["admin"])
            assert 200 <= r.status_code < 300, (method, path, r.text)


def test_bad_input_names_the_field_and_writes_nothing(city):
    s = city["settings"]
    with TestClient(create_app(s)) as api:
        for (method, _route), bad in BAD.items():
            for path, body, field in bad(city["ids"]):
                before = snapshot(s)
                r = call(api, method, path, body, city["admin"])
                assert r.status_code == 422, (method, path, body, r.text)
                answer = r.json()
                assert answer["error"] == "invalid_input" or answer["error"].endswith("coverage"), (
                    answer
                )
                assert answer["field"] == field, (method, path, body, answer)
                assert answer["detail"]
                assert snapshot(s) == before, (method, path, body)


def sign_in(api: TestClient, username: str, password: str):
    return api.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_a_created_user_signs_in_at_once_and_a_deactivated_one_is_out_at_once(city):
    admin = city["admin"]
    with TestClient(create_app(city["settings"])) as api:
        r = call(api, "POST", "/users", SAMPLES["POST", "/users"](city["ids"])[1], admin)
        assert r.status_code == 201, r.text
        user = r.json()
        signed = sign_in(api, "new-gw", "password-123")
        assert signed.status_code == 200, signed.text
        auth = {"Authorization": "Bearer " + signed.json()["access_token"]}
        me = api.get("/api/v1/auth/me", headers=auth)
        assert me.status_code == 200 and me.json()["scopes"] == ["41019900100102"]

        r = call(api, "POST", f"/users/{user['id']}/deactivate", None, admin)
        assert r.status_code == 200 and r.json()["active"] is False
        assert api.get("/api/v1/auth/me", headers=auth).status_code == 401
        refresh = api.post(
            "/api/v1/auth/refresh",
            data={"grant_type": "refresh_token", "refresh_token": signed.json()["refresh_token"]},
        )
        assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
        assert sign_in(api, "new-gw", "password-123").status_code == 401
        with get_engine(city["settings"]).connect() as conn:
            why = (
                conn.execute(
                    text("SELECT revoked_why FROM auth_session WHERE user_id = :u"),
                    {"u": user["id"]},
                )
                .scalars()
                .all()
            )
        assert why == ["account_changed"]

        r = call(api, "POST", f"/users/{user['id']}/activate", None, admin)
        assert r.status_code == 200 and r.json()["active"] is True
        assert sign_in(api, "new-gw", "password-123").status_code == 200


def test_a_scope_change_and_a_password_reset_end_the_sessions(city):
    admin, ids = city["admin"], city["ids"]
    with TestClient(create_app(city["settings"])) as api:
        assert api.get("/api/v1/auth/me", headers=city["worker2"]).status_code == 200
        r = call(api, "PATCH", f"/users/{ids['gw2']}", {"scopes": ["41019900200102"]}, admin)
        assert r.status_code == 200 and r.json()["scopes"] == ["41019900200102"], r.text
        assert api.get("/api/v1/auth/me", headers=city["worker2"]).status_code == 401

        r = call(api, "POST", f"/users/{ids['gw2']}/password", {}, admin)
        assert r.status_code == 200, r.text
        one_time = r.json()["password"]
        assert one_time and len(one_time) >= 8
        assert sign_in(api, "gw2", "password-123").status_code == 401
        signed = sign_in(api, "gw2", one_time)
        assert signed.status_code == 200
        auth = {"Authorization": "Bearer " + signed.json()["access_token"]}
        r = call(api, "POST", f"/users/{ids['gw2']}/password", {"password": "chosen-pass-1"}, admin)
        assert r.status_code == 200 and r.json()["password"] is None
        assert api.get("/api/v1/auth/me", headers=auth).status_code == 401
        assert sign_in(api, "gw2", "chosen-pass-1").status_code == 200


def test_a_created_team_is_dispatched_to_at_once(city):
    admin = city["admin"]
    with TestClient(create_app(city["settings"])) as api:
        r = call(api, "POST", "/teams", SAMPLES["POST", "/teams"](city["ids"])[1], admin)
        assert r.status_code == 201, r.text
        team = r.json()
        listed = api.get("/api/v1/teams", headers=city["sub1_sup"]).json()["teams"]
        assert team["id"] in {t["id"] for t in listed}
        case = api.post(
            "/api/v1/cases",
            headers=city["worker1"],
            json={
                "category": "environment.garbage",
                "lon": IN_GRID_1[0],
                "lat": IN_GRID_1[1],
                "description": "楼下垃圾堆放",
            },
        )
        assert case.status_code == 201, case.text
        case_id = case.json()["id"]
        for action, body in (("accept", {}), ("dispatch", {"team_id": team["id"]})):
            done = api.post(
                f"/api/v1/cases/{case_id}/actions",
                headers=city["sub1_sup"],
                json={"action": action, **body},
            )
            assert done.status_code == 200, done.text
        got = api.get(f"/api/v1/cases/{case_id}", headers=city["sub1_sup"]).json()
        assert got["team"]["id"] == team["id"]

        r = call(api, "PATCH", f"/teams/{team['id']}", {"active": False}, admin)
        assert r.status_code == 200 and r.json()["active"] is False
        listed = api.get("/api/v1/teams", headers=city["sub1_sup"]).json()["teams"]
        assert team["id"] not in {t["id"] for t in listed}


def test_changes_are_audited_with_the_admin_as_actor(city):
    s = city["settings"]
    with get_engine(s).connect() as conn:
        after = conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()
        admin_id = conn.execute(text("SELECT id FROM app_user WHERE username = 'admin'")).scalar()
    with TestClient(create_app(s)) as api:
        for key in [k for k in SAMPLES if k[0] != "GET"]:
            path, body = SAMPLES[key](city["ids"])
            r = call(api, key[0], path, body, city["admin"])
            assert 200 <= r.status_code < 300, (key, r.text)
    with get_engine(s).connect() as conn:
        rows = conn.execute(
            text("SELECT DISTINCT table_name, actor, actor_id FROM audit_log WHERE id > :a"),
            {"a": after},
        ).all()
    assert {r.table_name for r in rows} >= set(WRITTEN)
    assert {(r.actor, r.actor_id) for r in rows} == {("user:admin", admin_id)}


def test_a_service_point_is_listed_and_counted_after_its_refresh(city, tmp_path: Path):
    """Add a party organisation far from the first one: it is in GET /service-points at
    once, has its circle, and the reach figures count it after the refresh the add
    started; closing it takes it out of each again."""
    from gis_service.imports.boundaries import BoundaryOptions, import_boundaries
    from gis_service.network.imports import import_network
    from gis_service.units.codes import Level

    s = city["settings"]
    buildings = {}
    for code, cell in sorted(GRIDS.items()):
        x, y = cell.centroid.x, cell.centroid.y
        buildings[code + "001"] = box(x - 0.002, y - 0.002, x + 0.002, y + 0.002)
    frame = gpd.GeoDataFrame(
        {"code": list(buildings), "name": list(buildings), "population": [100] * len(buildings)},
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
    far = GRIDS["41019900200202"].centroid  # the south-east community, far from the first

    def reached(api) -> int:
        r = api.get(
            "/api/v1/access/reach",
            headers=city["admin"],
            params={"level": "community", "unit": "410199002002"},
        )
        assert r.status_code == 200, r.text
        return r.json()["total"]["covered_population"]

    def listed(api) -> set[int]:
        fc = api.get("/api/v1/service-points", params={"kind": "party_org"}).json()
        return {f["id"] for f in fc["features"]}

    def circled(api) -> set[int]:
        fc = api.get("/api/v1/access/circles", params={"kind": "party_org"}).json()
        return {f["properties"]["point_id"] for f in fc["features"]}

    with TestClient(create_app(s)) as api:
        before = reached(api)
        body = {"kind": "party_org", "name": "东南党群服务站", "lon": far.x, "lat": far.y}
        r = call(api, "POST", "/service-points", body, city["admin"])
        assert r.status_code == 201, r.text
        point = r.json()
        assert point["unit_code"].startswith("41019900200202")  # its grid, or a building
        assert {j["job"] for j in point["refresh"]} == {"circles", "buildings"}
        assert point["id"] in listed(api)
        assert point["id"] in circled(api)
        grown = reached(api)
        assert grown > before, (before, grown)

        r = call(api, "POST", f"/service-points/{point['id']}/close", None, city["admin"])
        assert r.status_code == 200 and r.json()["closed_at"], r.text
        assert point["id"] not in listed(api)
        assert point["id"] not in circled(api)
        assert api.get(f"/api/v1/service-points/{point['id']}").status_code == 404
        assert reached(api) == before
        r = call(api, "POST", f"/service-points/{point['id']}/reopen", None, city["admin"])
        assert r.status_code == 200 and r.json()["closed_at"] is None
        assert point["id"] in listed(api) and reached(api) == grown


def test_the_pages_are_for_admins_only_and_carry_no_inline_code(city):
    """Every admin page: the admin gets the shell (strict CSP, no inline script or style,
    zh by default, en with ?lang=en); others 403; signed out, the sign-in."""
    import re

    from gis_service.admin.pages import SECTIONS

    paths = ["/admin/", *(path for path, *_ in SECTIONS.values())]
    with TestClient(create_app(city["settings"])) as api:
        for path in paths:
            r = api.get(path, headers=city["admin"])
            assert r.status_code == 200, (path, r.text)
            assert "script-src 'self'" in r.headers["content-security-policy"]
            assert "unsafe-inline" not in r.headers["content-security-policy"]
            assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), path
            assert "<style" not in r.text and " style=" not in r.text, path
            assert '<html lang="zh-CN">' in r.text
            assert '<html lang="en">' in api.get(path + "?lang=en", headers=city["admin"]).text
            for who in OTHERS:
                assert api.get(path, headers=city[who]).status_code == 403, (who, path)
            r = api.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/maps/login")
