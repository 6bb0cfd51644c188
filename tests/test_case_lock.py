"""The case lock (issue 15 item 4, cases/locks.py) over the API against the real PostGIS of
the test city: taking, renewing, the conflict naming the holder, expiry, who may release,
an admin's take-over, workflow actions refused for the other dispatcher and never for the
phone's roles, and the jurisdiction."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine
from tests.test_cases import act, count, report
from tests.test_command_actions import case_at


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


def lock(api, who, cid, method="put", **params):
    return getattr(api, method)(f"/api/v1/cases/{cid}/lock", headers=who, params=params)


def name_of(settings, username: str) -> tuple[int, str]:
    with get_engine(settings).connect() as conn:
        row = conn.execute(
            text(
                "SELECT id, coalesce(nullif(display_name, ''), username) FROM app_user "
                "WHERE username = :u"
            ),
            {"u": username},
        ).one()
    return row[0], row[1]


def expire(settings, cid: int) -> None:
    """Move the lock's clock back: it ran out a second ago."""
    with get_engine(settings).begin() as conn:
        conn.execute(
            text(
                "UPDATE case_lock SET acquired_at = now() - interval '1 hour', "
                "expires_at = now() - interval '1 second' WHERE case_id = :c"
            ),
            {"c": cid},
        )


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_take_renew_and_the_conflict_names_the_holder(api, case_city):
    c, s = case_city, case_city["settings"]
    cid = report(api, c["worker1"]).json()["id"]
    free = lock(api, c["sub1_sup"], cid, "get")
    assert free.status_code == 200, free.text
    assert free.json()["holder"] is None and free.json()["mine"] is False

    r = lock(api, c["sub1_sup"], cid)
    assert r.status_code == 200, r.text
    got = r.json()
    uid, name = name_of(s, "sup-s1")
    assert got["case_id"] == cid and got["mine"] is True
    assert got["holder"] == {"user_id": uid, "name": name}
    life = when(got["expires_at"]) - when(got["acquired_at"])
    assert life.total_seconds() == s.case_lock_seconds

    again = lock(api, c["sub1_sup"], cid).json()  # the heartbeat
    assert again["acquired_at"] == got["acquired_at"]
    assert when(again["expires_at"]) >= when(got["expires_at"])

    other = lock(api, c["district_sup"], cid)
    assert other.status_code == 409, other.text
    body = other.json()
    assert body["error"] == "case_locked"
    assert body["holder"] == {"user_id": uid, "name": name}
    assert when(body["expires_at"]) == when(again["expires_at"])
    assert name in body["detail"]

    seen = lock(api, c["district_sup"], cid, "get").json()
    assert seen["holder"]["user_id"] == uid and seen["mine"] is False
    detail = api.get(f"/api/v1/cases/{cid}", headers=c["district_sup"]).json()
    assert detail["lock"]["holder"]["user_id"] == uid and detail["lock"]["mine"] is False
    mine = api.get(f"/api/v1/cases/{cid}", headers=c["sub1_sup"]).json()
    assert mine["lock"]["mine"] is True


def test_an_expired_lock_is_free(api, case_city):
    c, s = case_city, case_city["settings"]
    cid = report(api, c["worker1"]).json()["id"]
    assert lock(api, c["sub1_sup"], cid).status_code == 200
    expire(s, cid)
    assert lock(api, c["district_sup"], cid, "get").json()["holder"] is None
    assert api.get(f"/api/v1/cases/{cid}", headers=c["district_sup"]).json()["lock"] is None
    assert act(api, c["district_sup"], cid, "accept").status_code == 200
    r = lock(api, c["district_sup"], cid)
    assert r.status_code == 200, r.text
    assert r.json()["holder"]["user_id"] == name_of(s, "sup-d")[0]
    life = when(r.json()["expires_at"]) - when(r.json()["acquired_at"])
    assert life.total_seconds() == s.case_lock_seconds  # a fresh lock, not the old one's


def test_only_the_holder_or_an_admin_releases(api, case_city):
    c = case_city
    cid = report(api, c["worker1"]).json()["id"]
    assert lock(api, c["district_sup"], cid).status_code == 200
    r = lock(api, c["sub1_sup"], cid, "delete")
    assert r.status_code == 409 and r.json()["error"] == "case_locked", r.text
    assert lock(api, c["sub1_sup"], cid, "get").json()["holder"] is not None
    r = lock(api, c["district_sup"], cid, "delete")
    assert r.status_code == 200 and r.json()["holder"] is None, r.text
    assert lock(api, c["district_sup"], cid, "delete").status_code == 200  # free: no-op
    assert lock(api, c["sub1_sup"], cid).status_code == 200
    r = lock(api, c["admin"], cid, "delete")
    assert r.status_code == 200, r.text
    assert lock(api, c["sub1_sup"], cid, "get").json()["holder"] is None


def test_an_admin_takes_a_lock_over(api, case_city):
    c, s = case_city, case_city["settings"]
    cid = report(api, c["worker1"]).json()["id"]
    assert lock(api, c["sub1_sup"], cid).status_code == 200
    r = lock(api, c["admin"], cid)
    assert r.status_code == 409 and r.json()["error"] == "case_locked"
    r = lock(api, c["district_sup"], cid, take_over="true")
    assert r.status_code == 403, r.text
    r = lock(api, c["admin"], cid, take_over="true")
    assert r.status_code == 200, r.text
    uid, name = name_of(s, "sup-s1")
    assert r.json()["taken_over_from"] == {"user_id": uid, "name": name}
    assert r.json()["holder"]["user_id"] == name_of(s, "admin")[0]
    # the former holder is now the one refused
    r = act(api, c["sub1_sup"], cid, "accept")
    assert r.status_code == 409 and r.json()["error"] == "case_locked"


def test_actions_are_refused_for_the_other_dispatcher_only(api, case_city):
    c, s = case_city, case_city["settings"]
    cid = report(api, c["worker1"]).json()["id"]
    assert lock(api, c["sub1_sup"], cid).status_code == 200
    events = count(s, "case_event")
    for who in ("district_sup", "admin"):
        r = act(api, c[who], cid, "accept")
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "case_locked"
        assert r.json()["holder"]["user_id"] == name_of(s, "sup-s1")[0]
    assert count(s, "case_event") == events  # nothing written
    detail = api.get(f"/api/v1/cases/{cid}", headers=c["sub1_sup"]).json()
    assert detail["status"] == "reported"
    r = act(api, c["sub1_sup"], cid, "accept")  # the holder acts
    assert r.status_code == 200, r.text


def test_the_phone_roles_are_never_blocked(api, case_city):
    c = case_city
    cid = case_at(api, c, "dispatched")
    assert lock(api, c["sub1_sup"], cid).status_code == 200
    r = act(api, c["team_a"], cid, "start")
    assert r.status_code == 200, r.text
    r = act(api, c["worker1"], cid, "comment", note="现场已有人处理")
    assert r.status_code == 200, r.text
    for who in ("team_a", "worker1"):  # they read the lock, never take it
        assert lock(api, c[who], cid, "get").json()["holder"] is not None
        assert lock(api, c[who], cid).status_code == 403
        assert lock(api, c[who], cid, "delete").status_code == 403


def test_the_lock_is_scoped_like_its_case(api, case_city):
    c = case_city
    cid = report(api, c["worker1"]).json()["id"]  # subdistrict 1
    for method in ("get", "put", "delete"):
        r = lock(api, c["sub2_sup"], cid, method)
        assert r.status_code == 404, (method, r.text)
        assert lock(api, c["worker2"], cid, method).status_code in (403, 404)
        assert lock(api, {}, cid, method).status_code == 401
    assert lock(api, c["planner"], cid, "get").status_code == 403
    assert lock(api, c["sub2_sup"], 10**9, "get").status_code == 404
    assert lock(api, c["sub1_sup"], cid, "get").json()["holder"] is None  # nothing taken
