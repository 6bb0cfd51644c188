"""The command-centre actions (issue 15 item 3, GB/T 30428's dispatch seat) over the API,
against the real PostGIS of the test city: extension (延期) with its approval inbox,
delegation and batch decisions; parking (挂账) and its review date; voiding (作废);
urging (督办) with replies; a team's return (回退) and the re-dispatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.auth.principal import Role
from gis_service.cases.workflow import (
    DEADLINE_STATUSES,
    OPEN_STATUSES,
    STEPS,
    Action,
    Status,
)
from gis_service.db.engine import get_engine
from gis_service.stats.cube import STATUS_CODE, CaseCube
from gis_service.timezone import local_date
from tests.conftest import make_user
from tests.images import image_bytes
from tests.test_cases import DESK_ACTIONS, act, count, photo, report


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


def sql(settings, statement: str, **params):
    with get_engine(settings).begin() as conn:
        return conn.execute(text(statement), params)


def user_id(settings, username: str) -> int:
    with get_engine(settings).connect() as conn:
        return conn.execute(
            text("SELECT id FROM app_user WHERE username = :u"), {"u": username}
        ).scalar_one()


def case_at(api, c, status: str) -> int:
    """A new case of grid 41019900100101 (category handled at grid level) brought to
    ``status`` along the loop by subdistrict 1's supervisor and team A."""
    cid = report(api, c["worker1"]).json()["id"]
    path = {
        "reported": [],
        "accepted": [("sub1_sup", "accept", {})],
        "dispatched": [
            ("sub1_sup", "accept", {}),
            ("sub1_sup", "dispatch", {"team_id": c["teams"]["a"]}),
        ],
        "in_progress": [
            ("sub1_sup", "accept", {}),
            ("sub1_sup", "dispatch", {"team_id": c["teams"]["a"]}),
            ("team_a", "start", {}),
        ],
    }[status]
    for who, action, body in path:
        r = act(api, c[who], cid, action, **body)
        assert r.status_code == 200, r.text
    return cid


def case(api, who, cid) -> dict:
    r = api.get(f"/api/v1/cases/{cid}", headers=who)
    assert r.status_code == 200, r.text
    return r.json()


def inbox(api, who, **params) -> list[dict]:
    r = api.get("/api/v1/approvals", headers=who, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] >= len(body["approvals"])
    return body["approvals"]


def decide(api, who, ids, decision, note=None):
    body = {"ids": ids, "decision": decision, **({"note": note} if note else {})}
    return api.post("/api/v1/approvals/decisions", headers=who, json=body)


def totals(api, who) -> dict:
    r = api.get("/api/v1/stats/resolution", headers=who, params={"level": "subdistrict"})
    assert r.status_code == 200, r.text
    return r.json()["totals"]


def close(api, c, cid):
    """Handle (with its after photo) and verify: closed."""
    if case(api, c["sub1_sup"], cid)["status"] == "dispatched":
        assert act(api, c["team_a"], cid, "start").status_code == 200
    assert photo(api, c["team_a"], cid).status_code == 201
    assert act(api, c["team_a"], cid, "handle", note="已处置").status_code == 200
    r = act(api, c["worker1"], cid, "verify", passed=True)
    assert r.json()["case"]["status"] == "closed", r.text


# --- the loop's data ------------------------------------------------------------------


def test_the_new_states_are_in_the_loops_lists():
    """Parked is open (Open311 "open") but out of the deadline count; voided is an end."""
    assert Status.parked in OPEN_STATUSES and Status.parked not in DEADLINE_STATUSES
    assert Status.voided not in OPEN_STATUSES
    for action in (Action.park, Action.void, Action.urge, Action.resume):
        assert not STEPS[action].team and not STEPS[action].reporter  # dispatchers only
    assert STEPS[Action.reply].team and not STEPS[Action.reply].dispatcher
    assert STEPS[Action.extend].team and STEPS[Action.extend].dispatcher


def test_the_database_checks_follow_the_loop(case_city):
    s = case_city["settings"]
    with get_engine(s).connect() as conn:
        defs = conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid IN ('cases'::regclass, 'approval'::regclass) AND contype = 'c'"
            )
        ).all()
    status_check = next(d for n, d in defs if n == "cases_status_check")
    for s_ in Status:
        assert f"'{s_.value}'" in status_check
    assert any("'extension'" in d for _, d in defs)


# --- extension (延期) -----------------------------------------------------------------


def test_extension_request_rules(api, case_city):
    c = case_city
    reported = case_at(api, c, "reported")
    r = act(api, c["sub1_sup"], reported, "extend", note="需更多时间", extension_hours=24)
    assert r.status_code == 409 and "extend" not in r.json()["allowed"]

    cid = case_at(api, c, "in_progress")
    before = count(c["settings"], "case_event")
    r = act(api, c["worker1"], cid, "extend", note="x", extension_hours=24)
    assert r.status_code == 403  # grid workers do not ask for extensions
    r = act(api, c["team_b"], cid, "extend", note="x", extension_hours=24)
    assert r.status_code == 404  # another team's case is not even visible
    assert act(api, c["team_a"], cid, "extend", extension_hours=24).json()["field"] == "note"
    r = act(api, c["team_a"], cid, "extend", note="缺少配件")
    assert r.status_code == 422 and r.json()["field"] == "extension_hours"
    r = act(api, c["team_a"], cid, "extend", note="缺少配件", extension_hours=100000)
    assert r.status_code == 422
    assert count(c["settings"], "case_event") == before

    r = act(api, c["team_a"], cid, "extend", note="缺少配件，需等待", extension_hours=48)
    assert r.status_code == 200, r.text
    event = r.json()["event"]
    assert event["action"] == "extend" and event["data"]["extension_hours"] == 48
    assert "extend" not in r.json()["allowed_actions"]
    # one request at a time
    r = act(api, c["sub1_sup"], cid, "extend", note="再延", extension_hours=12)
    assert r.status_code == 409 and "waiting" in r.json()["detail"]
    assert "extend" not in r.json()["allowed"] and "park" in r.json()["allowed"]


def test_extension_approved_moves_the_deadline_refused_does_not(api, case_city):
    c = case_city
    a, b = case_at(api, c, "in_progress"), case_at(api, c, "dispatched")
    evidence = photo(api, c["team_a"], a).json()["id"]
    other = photo(api, c["team_a"], b, data=image_bytes(seed=77)).json()["id"]
    r = act(api, c["team_a"], a, "extend", note="缺少配件", extension_hours=48, photo_ids=[other])
    assert r.status_code == 422 and r.json()["field"] == "photo_ids"  # not this case's
    r = act(
        api, c["team_a"], a, "extend", note="缺少配件", extension_hours=48, photo_ids=[evidence]
    )
    assert r.status_code == 200, r.text
    act(api, c["team_a"], b, "extend", note="天气原因", extension_hours=6)
    deadline_a = case(api, c["sub1_sup"], a)["deadline_at"]
    deadline_b = case(api, c["sub1_sup"], b)["deadline_at"]
    pending = {x["case_id"]: x for x in inbox(api, c["sub1_sup"])}
    assert set(pending) == {a, b}
    item = pending[a]
    assert item["reason"] == "缺少配件" and item["hours"] == 48 and item["kind"] == "extension"
    assert item["photo_ids"] == [evidence]
    requested = datetime.fromisoformat(item["requested_at"])
    due = datetime.fromisoformat(item["due_by"])
    assert due - requested == timedelta(hours=c["settings"].approval_due_hours)
    assert not item["past_due"] and 0 < item["hours_left"] <= 24
    assert item["approver_unit"] == "410199001001"  # grid-level case: its community decides
    assert item["on_behalf_of"] is None
    # the clock: a request past its due time is marked and comes first
    sql(
        c["settings"],
        "UPDATE approval SET requested_at = now() - interval '30 hours', "
        "due_by = now() - interval '6 hours' WHERE id = :id",
        id=pending[b]["id"],
    )
    listed = inbox(api, c["sub1_sup"])
    assert [x["case_id"] for x in listed] == [b, a]
    assert listed[0]["past_due"] and listed[0]["hours_left"] < 0 and not listed[1]["past_due"]

    # decisions name approvals (not cases: their ids differ, cases/partitions.py)
    approval_a, approval_b = pending[a]["id"], pending[b]["id"]
    assert decide(api, c["sub1_sup"], [approval_b], "refuse").json()["field"] == "note"
    r = decide(api, c["sub1_sup"], [approval_a], "approve")
    assert r.status_code == 200 and r.json()["failed"] == [], r.text
    r = decide(api, c["sub1_sup"], [approval_b], "refuse", note="可按期完成")
    assert r.status_code == 200 and [x["state"] for x in r.json()["applied"]] == ["refused"]

    after_a, after_b = case(api, c["sub1_sup"], a), case(api, c["sub1_sup"], b)
    moved = datetime.fromisoformat(after_a["deadline_at"]) - datetime.fromisoformat(deadline_a)
    assert moved == timedelta(hours=48)
    assert after_a["original_deadline_at"] == deadline_a and after_a["extension_count"] == 1
    assert after_b["deadline_at"] == deadline_b and after_b["extension_count"] == 0
    assert after_a["timeline"][-1]["action"] == "extension_approved"
    assert after_b["timeline"][-1]["action"] == "extension_refused"
    assert after_b["timeline"][-1]["note"] == "可按期完成"
    assert inbox(api, c["sub1_sup"]) == []
    assert {x["case_id"] for x in inbox(api, c["sub1_sup"], state="approved")} == {a}
    # a new request may follow a decided one
    r = act(api, c["team_a"], b, "extend", note="配件仍未到", extension_hours=6)
    assert r.status_code == 200


def test_on_time_figures_count_extended_cases_apart(api, case_city):
    c = case_city
    s = c["settings"]
    plain, within_original, within_extended = (case_at(api, c, "in_progress") for _ in range(3))
    for cid in (within_original, within_extended):
        act(api, c["team_a"], cid, "extend", note="缺少配件", extension_hours=72)
    ids = [x["id"] for x in inbox(api, c["sub1_sup"])]
    assert decide(api, c["district_sup"], ids, "approve").json()["failed"] == []
    # the third case's original deadline passed before it was closed (the clock moved on)
    sql(
        s,
        "UPDATE cases SET original_deadline_at = now() - interval '1 hour' WHERE id = :id",
        id=within_extended,
    )
    for cid in (plain, within_original, within_extended):
        close(api, c, cid)
    t = totals(api, c["district_sup"])
    assert t["closed"] == 3
    assert t["closed_on_time"] == 2  # by the deadline acceptance set
    assert t["closed_on_time_extended"] == 1  # only by the extended one
    assert t["extended"] == 2
    assert t["on_time_rate"] == round(2 / 3, 4)
    assert t["on_time_rate_extended"] == 1.0
    assert (
        "closed_on_time_extended"
        in api.get("/api/v1/stats/resolution", headers=c["admin"]).json()["definitions"]
    )


# --- who decides: the inbox's jurisdiction --------------------------------------------


def test_the_inbox_is_the_level_above_within_its_jurisdiction(api, case_city):
    c = case_city
    s = c["settings"]
    community_sup = make_user(s, "supervisor", scopes=["410199001001"], username="sup-c1")
    cid = case_at(api, c, "dispatched")
    act(api, c["team_a"], cid, "extend", note="缺少配件", extension_hours=24)
    approval = inbox(api, c["admin"])[0]["id"]
    for who in ("admin", "district_sup", "sub1_sup"):
        assert [x["id"] for x in inbox(api, c[who])] == [approval]
    # a grid-level case: its community's supervisor is the level above
    assert [x["id"] for x in inbox(api, community_sup)] == [approval]
    # escalated to the community, the level above is the subdistrict: not the community's
    high = case_at(api, c, "accepted")
    assert act(api, c["sub1_sup"], high, "escalate", note="上报").status_code == 200
    r = act(api, c["sub1_sup"], high, "extend", note="协调", extension_hours=24)
    high_approval = r.json()["event"]["data"]["approval_id"]
    assert high_approval in {x["id"] for x in inbox(api, c["district_sup"])}
    assert [x["id"] for x in inbox(api, community_sup)] == [approval]
    r = decide(api, community_sup, [high_approval], "approve")
    assert r.json()["failed"][0]["error"] == "not_found"
    # another subdistrict's supervisor never sees it, nor can decide it
    assert inbox(api, c["sub2_sup"]) == []
    r = decide(api, c["sub2_sup"], [approval], "approve")
    assert r.json()["applied"] == [] and r.json()["failed"][0]["error"] == "not_found"
    for who in ("team_a", "worker1", "planner"):
        assert api.get("/api/v1/approvals", headers=c[who]).status_code == 403
        assert decide(api, c[who], [approval], "approve").status_code == 403


def test_nobody_decides_their_own_request_and_district_cases_go_to_admins(api, case_city):
    c = case_city
    cid = case_at(api, c, "dispatched")
    r = act(api, c["sub1_sup"], cid, "extend", note="需协调城管", extension_hours=24)
    assert r.status_code == 200
    approval = r.json()["event"]["data"]["approval_id"]
    assert inbox(api, c["sub1_sup"]) == []  # four eyes: not in the asker's inbox
    r = decide(api, c["sub1_sup"], [approval], "approve")
    assert r.json()["failed"][0]["error"] == "forbidden"
    assert [x["id"] for x in inbox(api, c["district_sup"])] == [approval]

    high = case_at(api, c, "accepted")
    for _ in range(3):  # grid → community → subdistrict → district
        assert act(api, c["sub1_sup"], high, "escalate", note="上报").status_code == 200
    r = act(api, c["sub1_sup"], high, "extend", note="跨部门协调", extension_hours=24)
    assert r.status_code == 200
    high_approval = r.json()["event"]["data"]["approval_id"]
    assert high_approval not in {x["id"] for x in inbox(api, c["district_sup"])}
    assert high_approval in {x["id"] for x in inbox(api, c["admin"])}


def test_delegation_hands_the_inbox_over_for_a_period(api, case_city):
    c = case_city
    s = c["settings"]
    cid = case_at(api, c, "dispatched")
    act(api, c["team_a"], cid, "extend", note="缺少配件", extension_hours=24)
    approval = inbox(api, c["sub1_sup"])[0]["id"]
    assert inbox(api, c["sub2_sup"]) == []
    sub1, sub2 = user_id(s, "sup-s1"), user_id(s, "sup-s2")

    now = datetime.now(UTC)
    bad = [
        {"delegate_id": user_id(s, "gw1"), "ends_at": (now + timedelta(days=1)).isoformat()},
        {"delegate_id": sub1, "ends_at": (now + timedelta(days=1)).isoformat()},
        {"delegate_id": sub2, "ends_at": (now - timedelta(hours=1)).isoformat()},
        {"delegate_id": sub2, "ends_at": (now + timedelta(days=400)).isoformat()},
    ]
    for body in bad:
        r = api.post("/api/v1/approvals/delegations", headers=c["sub1_sup"], json=body)
        assert r.status_code == 422, body
    r = api.post(
        "/api/v1/approvals/delegations",
        headers=c["team_a"],
        json={"delegate_id": sub2, "ends_at": (now + timedelta(days=1)).isoformat()},
    )
    assert r.status_code == 403

    # a delegation that starts tomorrow is not in force yet
    later = api.post(
        "/api/v1/approvals/delegations",
        headers=c["sub1_sup"],
        json={
            "delegate_id": sub2,
            "starts_at": (now + timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=2)).isoformat(),
        },
    )
    assert later.status_code == 201 and not later.json()["in_force"]
    assert inbox(api, c["sub2_sup"]) == []

    r = api.post(
        "/api/v1/approvals/delegations",
        headers=c["sub1_sup"],
        json={
            "delegate_id": sub2,
            "ends_at": (now + timedelta(days=7)).isoformat(),
            "note": "休假",
        },
    )
    assert r.status_code == 201 and r.json()["in_force"], r.text
    delegation = r.json()["id"]
    listed = api.get("/api/v1/approvals/delegations", headers=c["sub2_sup"]).json()
    assert {d["id"] for d in listed["received"]} == {delegation, later.json()["id"]}
    seen = inbox(api, c["sub2_sup"])
    assert [x["id"] for x in seen] == [approval] and seen[0]["on_behalf_of"] == sub1

    # revoked: gone from the delegate's inbox at once (only its delegator may revoke)
    other = api.delete(f"/api/v1/approvals/delegations/{delegation}", headers=c["sub2_sup"])
    assert other.status_code == 404
    r = api.delete(f"/api/v1/approvals/delegations/{delegation}", headers=c["sub1_sup"])
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert inbox(api, c["sub2_sup"]) == []

    # delegated again, the delegate decides on the approver's behalf
    api.post(
        "/api/v1/approvals/delegations",
        headers=c["sub1_sup"],
        json={"delegate_id": sub2, "ends_at": (now + timedelta(days=7)).isoformat()},
    )
    r = decide(api, c["sub2_sup"], [approval], "approve")
    assert r.json()["applied"][0]["on_behalf_of"] == sub1, r.text
    event = case(api, c["sub1_sup"], cid)["timeline"][-1]
    assert event["action"] == "extension_approved" and event["data"]["on_behalf_of"] == sub1


def test_batch_decisions_apply_all_but_the_refused_ones(api, case_city):
    c = case_city
    cases = [case_at(api, c, "dispatched") for _ in range(4)]
    for cid in cases:
        act(api, c["team_a"], cid, "extend", note="缺少配件", extension_hours=24)
    by_case = {x["case_id"]: x["id"] for x in inbox(api, c["sub1_sup"])}
    first, *rest = [by_case[cid] for cid in cases]
    assert decide(api, c["sub1_sup"], [first], "approve").status_code == 200
    # one of the others' cases is voided meanwhile: its request cannot be approved
    act(api, c["sub1_sup"], cases[3], "void", note="重复派遣，作废")
    before = count(c["settings"], "case_event")
    r = decide(api, c["district_sup"], [*rest, first, 999999], "approve")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["id"] for x in body["applied"]] == rest[:2]
    failed = {x["id"]: x for x in body["failed"]}
    assert set(failed) == {rest[2], first, 999999}
    assert failed[first]["error"] == "conflict" and "approved" in failed[first]["detail"]
    assert "voided" in failed[rest[2]]["detail"]
    assert failed[999999]["error"] == "not_found"
    assert count(c["settings"], "case_event") == before + 2  # one event per applied decision
    for cid in cases[1:3]:
        assert case(api, c["sub1_sup"], cid)["extension_count"] == 1


# --- parking (挂账) -------------------------------------------------------------------


def test_parking_rules(api, case_city):
    c = case_city
    s = c["settings"]
    tomorrow = (local_date(s) + timedelta(days=1)).isoformat()
    assert act(api, c["sub1_sup"], case_at(api, c, "reported"), "park").status_code == 409
    cid = case_at(api, c, "dispatched")
    assert act(api, c["team_a"], cid, "park", note="x", review_on=tomorrow).status_code == 403
    assert act(api, c["worker1"], cid, "park", note="x", review_on=tomorrow).status_code == 403
    assert act(api, c["sub1_sup"], cid, "park", review_on=tomorrow).json()["field"] == "note"
    for bad in (None, local_date(s).isoformat(), "2020-01-01"):
        r = act(api, c["sub1_sup"], cid, "park", note="待拆迁", review_on=bad)
        assert r.status_code == 422 and r.json()["field"] == "review_on", bad
    r = act(api, c["sub1_sup"], cid, "park", note="待拆迁后处置", review_on=tomorrow)
    assert r.status_code == 200, r.text
    assert r.json()["case"]["status"] == "parked"
    assert r.json()["allowed_actions"] == ["comment", "resume", "void", *DESK_ACTIONS]
    # the team may not work a parked case, nor ask to escalate it
    assert act(api, c["team_a"], cid, "start").status_code == 409
    r = act(api, c["sub1_sup"], cid, "resume")
    assert r.status_code == 200 and r.json()["case"]["status"] == "dispatched"
    assert r.json()["event"]["data"]["by"] == "dispatcher"
    assert r.json()["case"]["team_id"] == c["teams"]["a"]


def test_parked_cases_leave_the_overdue_count_and_come_back_on_their_review_date(api, case_city):
    c = case_city
    s = c["settings"]
    cid = case_at(api, c, "in_progress")
    sql(s, "UPDATE cases SET deadline_at = now() - interval '2 hours' WHERE id = :id", id=cid)
    overdue = {"overdue": "true"}

    def listed(**params) -> set[int]:
        r = api.get("/api/v1/cases", headers=c["sub1_sup"], params=params)
        return {f["id"] for f in r.json()["features"]}

    assert case(api, c["sub1_sup"], cid)["overdue"] and listed(**overdue) == {cid}
    assert totals(api, c["sub1_sup"])["overdue_now"] == 1

    review = local_date(s) + timedelta(days=3)
    act(api, c["sub1_sup"], cid, "park", note="需等待管线迁改", review_on=review.isoformat())
    parked = case(api, c["sub1_sup"], cid)
    assert parked["status"] == "parked" and not parked["overdue"]
    assert datetime.fromisoformat(parked["parked_until"]).date() == review
    assert listed(**overdue) == set() and listed(status="parked") == {cid}  # listed
    t = totals(api, c["sub1_sup"])
    assert t["overdue_now"] == 0 and t["parked_now"] == 1

    # the cube evaluates the review date when read: no write, later clock
    cube = CaseCube(s)
    facts = cube.facts()
    row = int(facts.ids.searchsorted(cid))
    review_epoch = facts.parked_until[row]
    assert facts.status_now(review_epoch - 1)[row] == STATUS_CODE["parked"]
    assert facts.status_now(review_epoch + 1)[row] == STATUS_CODE["in_progress"]

    # the review date arrives (a review date in the past): back where it was, overdue
    sql(s, "UPDATE cases SET parked_until = now() - interval '1 minute' WHERE id = :id", id=cid)
    back = case(api, c["sub1_sup"], cid)
    assert back["status"] == "in_progress" and back["overdue"] and back["parked_until"] is None
    assert "handle" in case(api, c["team_a"], cid)["allowed_actions"]
    assert listed(**overdue) == {cid} and listed(status="parked") == set()
    t = totals(api, c["sub1_sup"])
    assert t["overdue_now"] == 1 and t["parked_now"] == 0
    # the next action writes the return on the timeline, without an actor
    r = act(api, c["team_a"], cid, "comment", note="继续处置")
    assert r.status_code == 200 and r.json()["event"]["from_status"] == "in_progress"
    timeline = case(api, c["sub1_sup"], cid)["timeline"]
    resume = timeline[-2]
    assert resume["action"] == "resume" and resume["actor_id"] is None
    assert (resume["from_status"], resume["to_status"]) == ("parked", "in_progress")
    assert resume["data"]["by"] == "review_date"
    with get_engine(s).connect() as conn:
        stored = conn.execute(
            text("SELECT status, parked_until FROM cases WHERE id = :id"), {"id": cid}
        ).one()
    assert tuple(stored) == ("in_progress", None)


# --- voiding (作废) -------------------------------------------------------------------


def test_voiding_is_a_closed_end_by_a_dispatcher(api, case_city):
    c = case_city
    cid = case_at(api, c, "dispatched")
    assert act(api, c["team_a"], cid, "void", note="x").status_code == 403
    assert act(api, c["worker1"], cid, "void", note="x").status_code == 403
    assert act(api, c["sub1_sup"], cid, "void").json()["field"] == "note"
    r = act(api, c["sub1_sup"], cid, "void", note="误报，现场无此问题")
    assert r.status_code == 200, r.text
    assert r.json()["case"]["status"] == "voided" and r.json()["case"]["voided_at"]
    assert r.json()["allowed_actions"] == ["note"]  # an internal note may follow the end
    r = act(api, c["sub1_sup"], cid, "void", note="再次")
    assert r.status_code == 409 and r.json()["allowed"] == ["note"]
    assert act(api, c["team_a"], cid, "start").status_code == 409
    # a closed case cannot be voided
    done = case_at(api, c, "in_progress")
    close(api, c, done)
    assert act(api, c["sub1_sup"], done, "void", note="x").status_code == 409
    t = totals(api, c["sub1_sup"])
    assert t["voided"] == 1 and t["closed"] == 1
    assert t["resolution_rate"] == 1.0  # a voided case leaves the denominator


# --- urging (督办) --------------------------------------------------------------------


def test_urging_needs_a_reply_and_is_counted(api, case_city):
    c = case_city
    accepted = case_at(api, c, "accepted")
    assert act(api, c["sub1_sup"], accepted, "urge", note="加快").status_code == 409  # no team
    cid = case_at(api, c, "dispatched")
    assert act(api, c["team_a"], cid, "urge", note="x").status_code == 403
    assert act(api, c["sub1_sup"], cid, "urge").json()["field"] == "note"
    r = act(api, c["team_a"], cid, "reply", note="正在处理")
    assert r.status_code == 409 and "no urge" in r.json()["detail"]
    for i in (1, 2):
        r = act(api, c["sub1_sup"], cid, "urge", note="请于今日处置")
        assert r.status_code == 200 and r.json()["event"]["data"]["urge_no"] == i
    urged = case(api, c["team_a"], cid)
    assert urged["urge_count"] == 2 and urged["urges_unreplied"] == 2
    assert "reply" in urged["allowed_actions"]
    assert "reply" not in case(api, c["sub1_sup"], cid)["allowed_actions"]  # the team's
    t = totals(api, c["sub1_sup"])
    assert (t["urges"], t["urges_replied"], t["urges_unreplied"]) == (2, 0, 2)

    assert act(api, c["team_a"], cid, "reply").json()["field"] == "note"
    r = act(api, c["team_a"], cid, "reply", note="已安排人员，下午完成")
    assert r.status_code == 200 and r.json()["event"]["data"]["answers_urges"] == 2
    assert r.json()["case"]["urges_unreplied"] == 0
    assert act(api, c["team_a"], cid, "reply", note="again").status_code == 409
    act(api, c["sub1_sup"], cid, "urge", note="仍未完成")
    t = totals(api, c["sub1_sup"])
    assert (t["urges"], t["urges_replied"], t["urges_unreplied"]) == (3, 2, 1)
    assert [e["action"] for e in case(api, c["sub1_sup"], cid)["timeline"]][-4:] == [
        "urge",
        "urge",
        "reply",
        "urge",
    ]


# --- return (回退) and re-dispatch ----------------------------------------------------


def test_a_return_is_re_dispatched_with_its_reason_kept(api, case_city):
    c = case_city
    cid = case_at(api, c, "in_progress")
    assert act(api, c["team_a"], cid, "return").json()["field"] == "note"
    r = act(api, c["team_a"], cid, "return", note="非本队职责，应由区直工作队处置")
    assert r.status_code == 200 and r.json()["case"]["status"] == "accepted"
    returned = case(api, c["sub1_sup"], cid)
    assert returned["returned"]["note"] == "非本队职责，应由区直工作队处置"
    assert returned["returned"]["team_id"] == c["teams"]["a"]
    assert returned["allowed_actions"][0] == "dispatch"  # the dispatcher's next step
    assert case(api, c["team_a"], cid)["allowed_actions"] == []  # no longer the team's
    r = act(api, c["sub1_sup"], cid, "dispatch", team_id=c["teams"]["b"])
    assert r.status_code == 200
    after = r.json()["event"]["data"]["after_return"]
    assert after["note"] == returned["returned"]["note"] and after["team_id"] == c["teams"]["a"]
    again = case(api, c["team_b"], cid)
    assert again["status"] == "dispatched" and again["returned"]["note"] == after["note"]
    # a plain dispatch after a failed check carries no return
    close_ready = case_at(api, c, "dispatched")
    r = act(api, c["sub1_sup"], close_ready, "urge", note="x")
    assert "after_return" not in r.json()["event"]["data"]


# --- Open311 --------------------------------------------------------------------------


def test_open311_maps_parked_to_open_and_voided_to_closed(api, case_city):
    c = case_city
    s = c["settings"]
    parked, voided = case_at(api, c, "dispatched"), case_at(api, c, "dispatched")
    tomorrow = (local_date(s) + timedelta(days=1)).isoformat()
    act(api, c["sub1_sup"], parked, "park", note="待复查", review_on=tomorrow)
    act(api, c["sub1_sup"], voided, "void", note="误报")
    numbers = {case(api, c["admin"], x)["case_no"]: x for x in (parked, voided)}
    r = api.get("/open311/v2/requests.json")
    assert r.status_code == 200, r.text
    got = {x["service_request_id"]: x for x in r.json() if x["service_request_id"] in numbers}
    by_case = {numbers[k]: v for k, v in got.items()}
    assert by_case[parked]["status"] == "open" and "挂账" in by_case[parked]["status_notes"]
    assert by_case[voided]["status"] == "closed" and "作废" in by_case[voided]["status_notes"]
    closed = api.get("/open311/v2/requests.json", params={"status": "closed"}).json()
    assert {x["service_request_id"] for x in closed} & set(numbers) == {
        case(api, c["admin"], voided)["case_no"]
    }


def test_role_enum_unchanged_for_approvers():
    # approvers are the dispatcher roles of the loop
    from gis_service.cases.approvals import APPROVERS
    from gis_service.cases.workflow import DISPATCHER

    assert set(APPROVERS) == set(DISPATCHER) == {Role.supervisor, Role.admin}


def test_status_now_returns_parked_cases_past_their_review():
    """The cube's read-time rule, row by row: parked before the review moment, the status
    it left after it; other statuses untouched."""
    from gis_service.stats.cube import Facts

    n = 1000
    f = Facts.__new__(Facts)
    f.status = np.full(n, STATUS_CODE["parked"], np.int8)
    f.status[0] = STATUS_CODE["closed"]
    f.parked_until = np.linspace(0, 1e6, n)
    f.parked_until[0] = np.nan
    f.parked_from = np.full(n, STATUS_CODE["accepted"], np.int8)
    f.parked_from[0] = -1
    out = f.status_now(5e5)
    assert out[0] == STATUS_CODE["closed"]
    assert (out[1 : n // 2] == STATUS_CODE["accepted"]).all()
    assert (out[n // 2 + 1 :] == STATUS_CODE["parked"]).all()


def test_fields_of_another_action_are_refused_by_name(api, case_city):
    """Every field of ActionRequest that an action does not take (workflow Step.fields)
    is refused with 422 naming it, before any rule of the status: generated from the
    request model, so a field added later is covered."""
    from gis_service.cases.actions import COMMON_FIELDS, ActionRequest

    c = case_city
    cid = case_at(api, c, "reported")
    sample = {
        "team_id": c["teams"]["a"],
        "passed": True,
        "score": 5,
        "extension_hours": 24,
        "review_on": "2099-01-01",
        "assignee_id": user_id(c["settings"], "ta"),
        "category": "environment.ads",
        "priority": "high",
        "into_case_id": case_at(api, c, "reported"),
    }
    optional = set(ActionRequest.model_fields) - COMMON_FIELDS
    assert optional == set(sample), "a new ActionRequest field needs a sample value here"
    for action, step in STEPS.items():
        for name in sorted(optional - set(step.fields)):
            r = act(api, c["sub1_sup"], cid, action.value, note="n", **{name: sample[name]})
            assert r.status_code == 422, (action, name, r.text)
            assert name in r.json()["detail"], r.json()
    assert case(api, c["sub1_sup"], cid)["status"] == "reported"
