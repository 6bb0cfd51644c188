"""The case loop end to end over the API, against the real PostGIS of the test city."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine
from tests.conftest import IN_GRID_1, IN_GRID_2
from tests.images import image_bytes


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


# the desk's case actions a dispatcher may take on any open case (cases/workflow.py)
DESK_ACTIONS = ["recategorize", "reprioritize", "note", "merge"]


def report(api, who, point=IN_GRID_1, category="environment.garbage", key=None, **extra):
    headers = {**who, **({"Idempotency-Key": key} if key else {})}
    body = {
        "category": category,
        "lon": point[0],
        "lat": point[1],
        "description": "楼下垃圾堆放",
        **extra,
    }
    return api.post("/api/v1/cases", headers=headers, json=body)


def act(api, who, case_id, action, **body):
    return api.post(
        f"/api/v1/cases/{case_id}/actions", headers=who, json={"action": action, **body}
    )


def photo(api, who, case_id, stage="after", data=None, name="p.jpg"):
    return api.post(
        f"/api/v1/cases/{case_id}/photos",
        headers=who,
        files={"file": (name, data or image_bytes(seed=case_id), "image/jpeg")},
        data={"stage": stage},
    )


def count(settings, table: str) -> int:
    with get_engine(settings).connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_the_whole_loop_with_rework_and_rating(api, case_city):
    c = case_city
    r = report(api, c["worker1"])
    assert r.status_code == 201, r.text
    case = r.json()
    cid = case["id"]
    assert case["status"] == "reported" and case["unit_code"] == "41019900100101"
    assert [u["level"] for u in case["units"]] == ["district", "subdistrict", "community", "grid"]
    assert case["case_no"].startswith("410199") and len(case["case_no"]) == 20

    r = act(api, c["sub1_sup"], cid, "accept", note="立案")
    assert r.status_code == 200, r.text
    assert r.json()["case"]["deadline_at"] is not None
    assert r.json()["allowed_actions"] == [
        "dispatch",
        "escalate",
        "comment",
        "extend",
        "park",
        "void",
        *DESK_ACTIONS,
    ]
    assert act(api, c["sub1_sup"], cid, "dispatch", team_id=c["teams"]["a"]).status_code == 200
    assert act(api, c["team_a"], cid, "start").json()["case"]["status"] == "in_progress"

    r = act(api, c["team_a"], cid, "handle", note="已清运")
    assert r.status_code == 409 and "after photo" in r.json()["detail"]
    assert photo(api, c["team_a"], cid).status_code == 201
    assert act(api, c["team_a"], cid, "handle", note="已清运").json()["case"]["status"] == "handled"

    r = act(api, c["worker1"], cid, "verify", passed=False, note="还有残留")
    assert r.status_code == 200 and r.json()["case"]["status"] == "dispatched"
    assert r.json()["case"]["rework_count"] == 1
    act(api, c["team_a"], cid, "start")
    # The after photo of the first round does not count for the rework.
    assert act(api, c["team_a"], cid, "handle", note="再次清运").status_code == 409
    assert photo(api, c["team_a"], cid, data=image_bytes(seed=99)).status_code == 201
    assert act(api, c["team_a"], cid, "handle", note="再次清运").status_code == 200
    r = act(api, c["worker1b"], cid, "verify", passed=True)
    assert r.json()["case"]["status"] == "closed" and r.json()["case"]["closed_at"]
    r = act(api, c["worker1"], cid, "rate", score=5, note="居民满意")
    assert r.json()["case"]["rating"] == 5

    detail = api.get(f"/api/v1/cases/{cid}", headers=c["worker1"]).json()
    actions = [e["action"] for e in detail["timeline"]]
    assert actions == [
        "report",
        "accept",
        "dispatch",
        "start",
        "photo",
        "handle",
        "verify",
        "start",
        "photo",
        "handle",
        "verify",
        "rate",
    ]
    assert detail["timeline"][6]["data"] == {"passed": False}
    assert detail["timeline"][1]["actor_role"] == "supervisor"
    assert [p["stage"] for p in detail["photos"]] == ["after", "after"]
    assert detail["allowed_actions"] == []


def test_timeline_is_append_only(api, case_city):
    cid = report(api, case_city["worker1"]).json()["id"]
    with (
        get_engine(case_city["settings"]).begin() as conn,
        pytest.raises(Exception, match="append-only"),
    ):
        conn.execute(text("UPDATE case_event SET note = 'x' WHERE case_id = :c"), {"c": cid})


def test_escalation_and_return(api, case_city):
    c = case_city
    cid = report(api, c["worker1"]).json()["id"]
    r = act(api, c["worker1"], cid, "escalate", note="网格内无法解决")
    assert r.status_code == 200
    assert r.json()["case"]["handling_level"] == "community"
    assert r.json()["case"]["status"] == "reported"
    act(api, c["sub1_sup"], cid, "accept")
    act(api, c["sub1_sup"], cid, "dispatch", team_id=c["teams"]["a"])
    assert act(api, c["team_a"], cid, "return").status_code == 422  # a note is required
    r = act(api, c["team_a"], cid, "return", note="不属于本队职责")
    assert r.json()["case"]["status"] == "accepted" and r.json()["case"]["team_id"] is None
    # Having worked on it, team A still sees the case, but may no longer act on it.
    assert api.get(f"/api/v1/cases/{cid}", headers=c["team_a"]).status_code == 200
    assert act(api, c["team_a"], cid, "start").status_code == 409
    act(api, c["sub1_sup"], cid, "dispatch", team_id=c["teams"]["b"])
    r = act(api, c["team_b"], cid, "escalate", note="需街道协调")
    assert r.json()["case"]["handling_level"] == "subdistrict"
    assert r.json()["case"]["status"] == "accepted"
    assert r.json()["case"]["escalation_count"] == 2
    for _ in range(2):
        r = act(api, c["sub1_sup"], cid, "escalate", note="上报")
    assert r.status_code == 409 and "district" in r.json()["detail"]


@pytest.mark.parametrize(
    ("status_path", "action", "body"),
    [
        ([], "verify", {"passed": True}),
        ([], "dispatch", {}),
        ([], "rate", {"score": 4}),
        (["accept"], "accept", {}),
        (["accept"], "start", {}),
        (["reject"], "accept", {}),
    ],
)
def test_illegal_actions_get_409_with_the_allowed_ones(api, case_city, status_path, action, body):
    c = case_city
    cid = report(api, c["worker1"]).json()["id"]
    for step in status_path:
        act(api, c["sub1_sup"], cid, step, note="理由")
    before = count(c["settings"], "case_event")
    r = act(api, c["sub1_sup"], cid, action, **body)
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "conflict" and isinstance(body["allowed"], list)
    expected = {
        (): ["accept", "reject", "escalate", "comment", "void", *DESK_ACTIONS],
        ("accept",): ["dispatch", "escalate", "comment", "extend", "park", "void", *DESK_ACTIONS],
        ("reject",): ["note"],  # an internal note may follow a case's end
    }[tuple(status_path)]
    assert body["allowed"] == expected
    assert count(c["settings"], "case_event") == before


def test_wrong_role_and_bad_action_input(api, case_city):
    c = case_city
    cid = report(api, c["worker1"]).json()["id"]
    r = act(api, c["worker1"], cid, "accept")
    assert r.status_code == 403 and r.json()["allowed"] == ["escalate", "comment"]
    assert act(api, c["sub1_sup"], cid, "fly").status_code == 422
    assert act(api, c["sub1_sup"], cid, "reject").json()["field"] == "note"
    act(api, c["sub1_sup"], cid, "accept")
    assert act(api, c["sub1_sup"], cid, "dispatch").json()["field"] == "team_id"
    # Team C serves the other subdistrict: it cannot take a case here.
    r = act(api, c["sub1_sup"], cid, "dispatch", team_id=c["teams"]["c"])
    assert r.status_code == 422 and "does not include" in r.json()["detail"]
    assert act(api, c["sub1_sup"], cid, "dispatch", team_id=999).status_code == 422
    assert act(api, c["sub1_sup"], 999999, "accept").status_code == 404


def test_jurisdiction_through_every_case_endpoint(api, case_city):
    c = case_city
    mine = report(api, c["worker1"]).json()["id"]
    theirs = report(api, c["worker2"], point=IN_GRID_2).json()["id"]
    assert photo(api, c["worker1"], mine, stage="before").status_code == 201
    # A worker reporting outside their own grid is refused, with the unit named.
    r = report(api, c["worker1"], point=IN_GRID_2)
    assert r.status_code == 403 and "41019900200101" in r.json()["detail"]

    for who, sees in (
        ("worker1", {mine}),
        ("worker2", {theirs}),
        ("sub1_sup", {mine}),
        ("sub2_sup", {theirs}),
        ("district_sup", {mine, theirs}),
        ("admin", {mine, theirs}),
        ("team_a", set()),
    ):
        ids = {f["id"] for f in api.get("/api/v1/cases", headers=c[who]).json()["features"]}
        assert ids == sees, who
        for cid in (mine, theirs):
            status = api.get(f"/api/v1/cases/{cid}", headers=c[who]).status_code
            assert status == (200 if cid in sees else 404), (who, cid)
    photo_id = api.get(f"/api/v1/cases/{mine}", headers=c["worker1"]).json()["photos"][0]["id"]
    url = f"/api/v1/cases/{mine}/photos/{photo_id}"
    assert api.get(url, headers=c["worker1"]).status_code == 200
    assert api.get(url, headers=c["worker2"]).status_code == 404
    assert photo(api, c["worker2"], mine).status_code == 404
    assert act(api, c["worker2"], mine, "comment", note="x").status_code == 404
    assert act(api, c["sub2_sup"], mine, "accept").status_code == 404
    r = api.get(
        "/api/v1/cases/nearby",
        headers=c["worker2"],
        params={"lon": IN_GRID_1[0], "lat": IN_GRID_1[1]},
    )
    assert r.json()["cases"] == []
    # Planners read statistics, not cases.
    assert api.get("/api/v1/cases", headers=c["planner"]).status_code == 403
    assert api.get(f"/api/v1/cases/{mine}", headers=c["planner"]).status_code == 403
    assert report(api, c["planner"]).status_code == 403
    # Nobody without a token.
    assert api.get("/api/v1/cases").status_code == 401
    assert api.get("/api/v1/cases", headers={"Authorization": "Bearer junk"}).status_code == 401
    # After dispatch the team sees the case, and only it.
    act(api, c["sub1_sup"], mine, "accept")
    act(api, c["sub1_sup"], mine, "dispatch", team_id=c["teams"]["a"])
    ids = {f["id"] for f in api.get("/api/v1/cases", headers=c["team_a"]).json()["features"]}
    assert ids == {mine}
    assert api.get(f"/api/v1/cases/{mine}", headers=c["team_b"]).status_code == 404


def test_idempotent_retries_make_one_case(api, case_city):
    c = case_city
    first = report(api, c["worker1"], key="phone-1-report-7")
    again = report(api, c["worker1"], key="phone-1-report-7")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and again.json()["created"] is False
    # Keys are per sender: another worker's same key is another report.
    other = report(api, c["worker1b"], key="phone-1-report-7")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert report(api, c["worker1"], key="bad key with spaces").status_code == 422


def test_concurrent_retries_make_one_case(case_city):
    c = case_city
    app = create_app(c["settings"])
    results: list[tuple[int, int]] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        with TestClient(app) as client:
            barrier.wait()
            r = report(client, c["worker1"], key="same-key-from-a-flaky-network")
            results.append((r.status_code, r.json()["id"]))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({cid for _, cid in results}) == 1
    assert sorted(s for s, _ in results) == [200] * 7 + [201]
    assert count(c["settings"], "cases") == 1
    assert count(c["settings"], "case_event") == 1


def test_possible_duplicates_and_linking(api, case_city):
    c = case_city
    first = report(api, c["worker1"]).json()
    near = (IN_GRID_1[0] + 0.0003, IN_GRID_1[1])  # ≈ 28 m east
    far = (IN_GRID_1[0] + 0.0009, IN_GRID_1[1])  # ≈ 83 m east (55 m from near)
    assert report(api, c["worker1"], point=far).json()["possible_duplicates"] == []
    r = report(api, c["worker1"], point=near).json()
    assert [d["id"] for d in r["possible_duplicates"]] == [first["id"]]
    assert 20 < r["possible_duplicates"][0]["distance_m"] < 35
    other = report(api, c["worker1b"], point=near, category="public_order.noise").json()
    assert other["possible_duplicates"] == []
    r = api.get(
        "/api/v1/cases/nearby",
        headers=c["worker1"],
        params={"lon": near[0], "lat": near[1], "category": "environment.garbage"},
    )
    assert first["id"] in [x["id"] for x in r.json()["cases"]]

    linked = report(api, c["worker1b"], point=near, link_to=first["id"]).json()
    assert linked["status"] == "duplicate" and linked["duplicate_of"] == first["id"]
    timeline = api.get(f"/api/v1/cases/{first['id']}", headers=c["worker1"]).json()["timeline"]
    assert timeline[-1]["action"] == "link" and timeline[-1]["data"]["case_id"] == linked["id"]
    r = report(api, c["worker1"], link_to=987654)
    assert r.status_code == 422 and r.json()["field"] == "link_to"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"lon": 200.0}, 422, "lon"),
        ({"lat": -91.0}, 422, "lat"),
        ({"lon": 120.0, "lat": 30.0}, 422, "location"),
        ({"category": "no.such"}, 422, "category"),
        ({"description": ""}, 422, "description"),
        ({"coord_sys": "mars"}, 422, "coord_sys"),
        ({"surprise": 1}, 422, "surprise"),
    ],
)
def test_bad_reports_are_refused_and_nothing_is_stored(api, case_city, body, status, field):
    c = case_city
    payload = {
        "category": "environment.garbage",
        "lon": IN_GRID_1[0],
        "lat": IN_GRID_1[1],
        "description": "测试",
        **body,
    }
    r = api.post("/api/v1/cases", headers=c["worker1"], json=payload)
    assert r.status_code == status, r.text
    err = r.json()
    assert field in (err.get("field") or err["detail"])
    if field == "location":
        assert err["error"] == "outside_coverage" and "outside every district" in err["detail"]
    assert count(c["settings"], "cases") == 0


def test_bad_photos_are_refused_and_nothing_is_stored(api, case_city):
    c = case_city
    cid = report(api, c["worker1"]).json()["id"]
    root: Path = c["settings"].photos_path
    files_before = sorted(root.rglob("*")) if root.exists() else []
    jpeg = image_bytes(size=(800, 600))
    r = photo(api, c["worker1"], cid, data=b"\xff" * (20 * 1024 * 1024))
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    r = photo(api, c["worker1"], cid, data=b"just some text\n" * 10, name="evil.jpg")
    assert r.status_code == 422 and r.json()["field"] == "file"
    r = photo(api, c["worker1"], cid, data=jpeg[: len(jpeg) // 2])
    assert r.status_code == 422 and "truncated" in r.json()["detail"]
    gif = image_bytes("GIF")
    assert photo(api, c["worker1"], cid, data=gif, name="x.gif").status_code == 415
    assert photo(api, c["worker1"], cid, stage="during").status_code == 422
    assert count(c["settings"], "case_photo") == 0
    assert (sorted(root.rglob("*")) if root.exists() else []) == files_before


def test_a_report_with_a_bad_photo_is_refused_whole(api, case_city):
    """One good photo and one that is not an image: no case, no photo, no file."""
    c = case_city
    root: Path = c["settings"].photos_path
    files_before = sorted(root.rglob("*")) if root.exists() else []
    cases_before = count(c["settings"], "cases")
    r = api.post(
        "/api/v1/cases",
        headers={**c["worker1"], "Idempotency-Key": "bad-photo"},
        data={
            "category": "environment.garbage",
            "lon": str(IN_GRID_1[0]),
            "lat": str(IN_GRID_1[1]),
            "description": "楼下垃圾堆放",
        },
        files=[
            ("photo", ("a.jpg", image_bytes(seed=5), "image/jpeg")),
            ("photo", ("b.jpg", b"not a picture\n" * 50, "image/jpeg")),
        ],
    )
    assert r.status_code == 422 and r.json()["field"] == "file", r.text
    assert count(c["settings"], "cases") == cases_before
    assert count(c["settings"], "case_photo") == 0
    assert (sorted(root.rglob("*")) if root.exists() else []) == files_before


def test_photos_are_stripped_deduplicated_and_thumbnailed(api, case_city):
    c = case_city
    cid = report(api, c["worker1"]).json()["id"]
    data = image_bytes(size=(2000, 1500), gps=(113.0105, 34.0705))
    r = photo(api, c["worker1"], cid, stage="before", data=data)
    assert r.status_code == 201
    body = r.json()
    assert body["exif_location"]["lat"] == pytest.approx(34.0705, abs=1e-6)
    again = photo(api, c["worker1"], cid, stage="before", data=data)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    served = api.get(body["url"], headers=c["worker1"])
    assert served.headers["content-type"] == "image/jpeg"
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(served.content))
    assert img.size == (2000, 1500) and 0x8825 not in img.getexif()
    thumb = Image.open(io.BytesIO(api.get(body["thumbnail_url"], headers=c["worker1"]).content))
    assert max(thumb.size) == 320
    assert count(c["settings"], "case_photo") == 1


def test_multipart_report_takes_the_location_from_the_photo(api, case_city):
    c = case_city
    data = image_bytes(gps=IN_GRID_1)
    r = api.post(
        "/api/v1/cases",
        headers={**c["worker1"], "Idempotency-Key": "mp-1"},
        data={"category": "safety.fire_lane", "description": "消防通道堵塞"},
        files=[("photo", ("a.jpg", data, "image/jpeg"))],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["lon"] == pytest.approx(IN_GRID_1[0], abs=1e-6)
    assert body["photos"][0]["stage"] == "before"
    r = api.post(
        "/api/v1/cases",
        headers={**c["worker1"], "Idempotency-Key": "mp-1"},
        data={"category": "safety.fire_lane", "description": "消防通道堵塞"},
        files=[("photo", ("a.jpg", data, "image/jpeg"))],
    )
    assert r.status_code == 200 and r.json()["id"] == body["id"]
    assert count(c["settings"], "case_photo") == 1


def test_a_replay_stores_the_photos_a_broken_first_attempt_did_not(api, case_city):
    """The phone's connection broke after the case was written but before its photos
    were: the resend (same key, same photos) completes the report, once."""
    c = case_city
    data = image_bytes(seed=77)
    resend = {
        "category": "environment.garbage",
        "lon": str(IN_GRID_1[0]),
        "lat": str(IN_GRID_1[1]),
        "description": "楼下垃圾堆放",
    }
    # The first attempt writes the case, then storing its photo fails (the photo
    # directory is, for the moment, a file).
    photo_dir = c["settings"].photos_path
    aside = photo_dir.with_name(photo_dir.name + ".aside")
    photo_dir.mkdir(parents=True, exist_ok=True)
    photo_dir.rename(aside)
    photo_dir.write_bytes(b"not a directory")
    try:
        with TestClient(create_app(c["settings"]), raise_server_exceptions=False) as broken:
            r = broken.post(
                "/api/v1/cases",
                headers={**c["worker1"], "Idempotency-Key": "lost-photos"},
                data=resend,
                files=[("photo", ("a.jpg", data, "image/jpeg"))],
            )
        assert r.status_code == 500
    finally:
        photo_dir.unlink()
        aside.rename(photo_dir)
    with get_engine(c["settings"]).connect() as conn:
        cid = conn.execute(text("SELECT id FROM cases")).scalar_one()
    for _ in range(2):
        r = api.post(
            "/api/v1/cases",
            headers={**c["worker1"], "Idempotency-Key": "lost-photos"},
            data=resend,
            files=[("photo", ("a.jpg", data, "image/jpeg"))],
        )
        assert r.status_code == 200 and r.json()["id"] == cid, r.text
        assert len(r.json()["photos"]) == 1
    with get_engine(c["settings"]).connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM case_photo WHERE case_id = :c"), {"c": cid}
            ).scalar_one()
            == 1
        )
        assert (
            conn.execute(text("SELECT count(*) FROM cases WHERE id >= :c"), {"c": cid}).scalar_one()
            == 1
        )


def test_sign_in_and_deactivation(api, case_city):
    from gis_service.auth.users import create_user, set_active
    from gis_service.db.engine import transaction

    s = case_city["settings"]
    with transaction(s) as conn:
        create_user(
            conn,
            username="li.wei",
            password="correct-horse",
            role="grid_worker",
            scopes=["41019900100101"],
            display_name="李伟",
        )
    r = api.post("/api/v1/auth/token", data={"username": "li.wei", "password": "wrong-pass"})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = api.post("/api/v1/auth/token", data={"username": "nobody", "password": "whatever1"})
    assert r.status_code == 401
    r = api.post("/api/v1/auth/token", data={"username": "li.wei", "password": "correct-horse"})
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    me = api.get("/api/v1/auth/me", headers=headers).json()
    assert me["role"] == "grid_worker" and me["scopes"] == ["41019900100101"]
    assert report(api, headers).status_code == 201
    with transaction(s) as conn:
        set_active(conn, "li.wei", False)
    r = report(api, headers)
    assert r.status_code == 401 and "no longer valid" in r.json()["detail"]


def test_public_rating_link(api, case_city):
    c = case_city
    cid = report(api, c["worker1"]).json()["id"]
    for step, body in (("accept", {}), ("dispatch", {"team_id": c["teams"]["a"]}), ("start", {})):
        act(api, c["sub1_sup"], cid, step, **body)
    photo(api, c["sub1_sup"], cid)
    act(api, c["sub1_sup"], cid, "handle", note="done")
    act(api, c["sub1_sup"], cid, "verify", passed=True)
    link = api.get(f"/api/v1/cases/{cid}", headers=c["worker1"]).json()["rating_url"]
    assert link.startswith("/api/v1/public/rate/")
    assert api.post(link, data={"score": 6}).status_code == 422
    assert api.post(link, data={"score": 4, "note": "很好"}).json()["rating"] == 4
    assert api.post(link, data={"score": 5}).status_code == 409
    assert api.post("/api/v1/public/rate/not-a-token", data={"score": 5}).status_code == 422


def test_categories_and_teams(api, case_city):
    c = case_city
    domains = api.get("/api/v1/categories").json()["domains"]
    assert len(domains) == 7 and all(d["children"] for d in domains)
    assert {d["code"] for d in domains} >= {"environment", "safety", "courtyard"}
    teams = {t["id"] for t in api.get("/api/v1/teams", headers=c["sub1_sup"]).json()["teams"]}
    assert teams == {c["teams"]["a"], c["teams"]["b"]}
    teams = {t["id"] for t in api.get("/api/v1/teams", headers=c["admin"]).json()["teams"]}
    assert teams == set(c["teams"].values())


def test_password_guessing_is_throttled(api, case_city):
    for _ in range(5):
        r = api.post("/api/v1/auth/token", data={"username": "gw1", "password": "guess-123"})
        assert r.status_code == 401
    r = api.post("/api/v1/auth/token", data={"username": "gw1", "password": "password-123"})
    assert r.status_code == 429 and r.json()["error"] == "too_many_attempts"
    assert 0 < int(r.headers["retry-after"]) <= 900
    # Another account from the same address is not held up.
    r = api.post("/api/v1/auth/token", data={"username": "gw2", "password": "password-123"})
    assert r.status_code == 200
