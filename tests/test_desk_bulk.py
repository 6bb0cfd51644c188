"""Bulk work at the desk (issue 15 item 5, cases/bulk.py, ``POST /api/v1/desk/bulk``) over
the API against the real PostGIS of the test city: each case through the workflow rule
with its own event, refused cases listed with their reason and the rest applied, and a
bad request refused whole with nothing written."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.cases.bulk import BULK_ACTIONS, MAX_CASES
from gis_service.cases.workflow import ACTIONS
from gis_service.db.engine import get_engine
from tests.conftest import IN_GRID_2
from tests.test_cases import count, report

URL = "/api/v1/desk/bulk"


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


def new_cases(api, who, n: int, point=None) -> list[int]:
    out = []
    for i in range(n):
        extra = {"point": point} if point else {}
        r = report(api, who, description=f"bulk-{i}", **extra)
        assert r.status_code == 201, r.text
        out.append(r.json()["id"])
    return out


def bulk(api, who, action, ids, **extra):
    return api.post(URL, headers=who, json={"action": action, "case_ids": ids, **extra})


def events(settings, ids: list[int], action: str) -> dict[int, list[int | None]]:
    """case id → the actors of its ``action`` events."""
    with get_engine(settings).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT case_id, actor_id FROM case_event WHERE case_id = ANY(:ids) "
                "AND action = :a ORDER BY id"
            ),
            {"ids": ids, "a": action},
        ).all()
    out: dict[int, list[int | None]] = {}
    for case_id, actor in rows:
        out.setdefault(case_id, []).append(actor)
    return out


def statuses(settings, ids: list[int]) -> dict[int, str]:
    with get_engine(settings).connect() as conn:
        rows = conn.execute(
            text("SELECT id, status FROM cases WHERE id = ANY(:ids)"), {"ids": ids}
        ).all()
    return dict(rows)


def test_twenty_dispatched_one_refused_each_with_its_own_event(api, case_city):
    c, s = case_city, case_city["settings"]
    ids = new_cases(api, c["worker1"], 20)
    r = bulk(api, c["sub1_sup"], "accept", ids)
    assert r.status_code == 200, r.text
    assert r.json()["counts"] == {"requested": 20, "applied": 20, "refused": 0}
    # another dispatcher is working on one of them
    held = ids[7]
    assert api.put(f"/api/v1/cases/{held}/lock", headers=c["district_sup"]).status_code == 200
    r = bulk(api, c["sub1_sup"], "dispatch", ids, team_id=c["teams"]["a"], note="统一派遣")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == {"requested": 20, "applied": 19, "refused": 1}
    assert [a["case_id"] for a in body["applied"]] == [i for i in ids if i != held]
    assert {a["status"] for a in body["applied"]} == {"dispatched"}
    [refused] = body["refused"]
    assert refused["case_id"] == held and refused["error"] == "case_locked"
    assert refused["case_no"] and refused["holder"]["name"] == "sup-d"
    assert "sup-d" in refused["detail"]
    dispatched = events(s, ids, "dispatch")
    assert set(dispatched) == set(ids) - {held}
    assert all(len(actors) == 1 for actors in dispatched.values())  # one event each
    now = statuses(s, ids)
    assert now[held] == "accepted"
    assert {now[i] for i in ids if i != held} == {"dispatched"}
    detail = api.get(f"/api/v1/cases/{ids[0]}", headers=c["sub1_sup"]).json()
    last = detail["timeline"][-1]
    assert last["action"] == "dispatch" and last["note"] == "统一派遣"
    assert last["data"]["team_id"] == c["teams"]["a"]


def test_each_refusal_says_why_and_hides_what_is_out_of_scope(api, case_city):
    c, s = case_city, case_city["settings"]
    mine = new_cases(api, c["worker1"], 3)
    other = new_cases(api, c["worker2"], 1, point=list(IN_GRID_2))
    r = bulk(api, c["sub1_sup"], "accept", [mine[0]])
    assert r.status_code == 200, r.text
    ids = [mine[0], mine[1], other[0], 10**9]
    r = bulk(api, c["sub1_sup"], "dispatch", ids, team_id=c["teams"]["c"])
    assert r.status_code == 200, r.text
    refused = {x["case_id"]: x for x in r.json()["refused"]}
    assert r.json()["applied"] == []
    # team c serves the other subdistrict: the rule of apply_action, naming the field
    assert refused[mine[0]]["error"] == "invalid_input"
    assert refused[mine[0]]["field"] == "team_id"
    # still reported: the state refuses, saying what is allowed
    assert refused[mine[1]]["error"] == "conflict"
    assert "accept" in refused[mine[1]]["allowed"]
    assert refused[mine[1]]["case_no"]
    # outside the jurisdiction, or no such case: the same 404, no number shown
    for cid in (other[0], 10**9):
        assert refused[cid]["error"] == "not_found"
        assert "case_no" not in refused[cid]
    assert events(s, ids, "dispatch") == {}
    # a comment goes on every case the viewer may see
    r = bulk(api, c["sub1_sup"], "comment", mine, note="请尽快处理")
    assert r.json()["counts"]["applied"] == 3, r.text
    assert {k: len(v) for k, v in events(s, mine, "comment").items()} == dict.fromkeys(mine, 1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "accept", "case_ids": []}, "case_ids"),
        ({"action": "accept", "case_ids": list(range(1, MAX_CASES + 2))}, "case_ids"),
        ({"action": "accept", "case_ids": "ids"}, "case_ids"),
        ({"action": "accept", "case_ids": [0]}, "case_ids.0"),
        ({"action": "accept"}, "case_ids"),
        ({"action": "launch", "case_ids": "ALL"}, "action"),
        ({"action": "accept", "case_ids": "ALL", "colour": "red"}, "colour"),
        ({"action": "comment", "case_ids": "ALL", "note": "x" * 2001}, "note"),
        ({"action": "accept", "case_ids": "ALL", "team_id": "TEAM"}, "team_id"),
        ({"action": "comment", "case_ids": "ALL", "team_id": "TEAM"}, "team_id"),
    ],
)
def test_a_bad_request_is_refused_whole(api, case_city, body, field):
    c, s = case_city, case_city["settings"]
    ids = new_cases(api, c["worker1"], 3)
    if body.get("case_ids") == "ALL":
        body = {**body, "case_ids": ids}
    if body.get("team_id") == "TEAM":
        body = {**body, "team_id": c["teams"]["a"]}
    before = count(s, "case_event")
    r = api.post(URL, headers=c["sub1_sup"], json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.json()
    assert count(s, "case_event") == before
    assert set(statuses(s, ids).values()) == {"reported"}


def test_duplicates_are_named(api, case_city):
    c, s = case_city, case_city["settings"]
    ids = new_cases(api, c["worker1"], 2)
    before = count(s, "case_event")
    r = bulk(api, c["sub1_sup"], "accept", [ids[0], ids[1], ids[0]])
    assert r.status_code == 422 and r.json()["field"] == "case_ids", r.text
    assert str(ids[0]) in r.json()["detail"]
    assert count(s, "case_event") == before


def test_only_the_bulk_actions_and_only_dispatchers(api, case_city):
    c = case_city
    ids = new_cases(api, c["worker1"], 1)
    for action in ACTIONS:
        r = bulk(api, c["sub1_sup"], action.value, ids, note="n")
        if action in BULK_ACTIONS:
            assert r.status_code == 200, r.text
        else:
            assert r.status_code == 422 and r.json()["field"] == "action", r.text
    for who in ("worker1", "team_a", "planner"):
        assert bulk(api, c[who], "comment", ids, note="n").status_code == 403
    assert bulk(api, {}, "comment", ids, note="n").status_code == 401


def test_the_desk_page_writes_with_its_cookie_only_from_its_own_origin(api, case_city):
    """The desk's bulk bar posts with the sign-in cookie (api/deps.py
    ``PAGE_WRITE_HEADER``): counted only with our pages' header, and never when the
    browser or the Origin says another site sent it."""
    c, s = case_city, case_city["settings"]
    ids = new_cases(api, c["worker1"], 1)
    r = api.post(
        "/maps/login",
        data={"username": "sup-s1", "password": "password-123", "next": "/desk/"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "gis_token" in r.cookies
    body = {"action": "comment", "case_ids": ids, "note": "n"}
    own = {"X-Requested-With": "XMLHttpRequest"}
    refused = [
        {},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
        {**own, "Origin": "http://elsewhere.example"},
        {**own, "Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
        {**own, "Sec-Fetch-Site": "same-site"},
    ]
    for headers in refused:
        assert api.post(URL, json=body, headers=headers).status_code == 401, headers
    assert count(s, "case_event") == len(ids)  # only the reports
    for headers in (
        {**own, "Sec-Fetch-Site": "same-origin"},
        {**own, "Origin": "http://testserver"},
    ):
        r = api.post(URL, json=body, headers=headers)
        assert r.status_code == 200 and r.json()["counts"]["applied"] == 1, (headers, r.text)
