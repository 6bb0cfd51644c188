"""The desk's case actions (issue 15 item 4) over the API, against the real PostGIS of the
test city: assign (指派), recategorize (改类), reprioritize, internal notes (内部备注) hidden
from every audience that must not read them, merge (合并), reply and reason templates
(回复模板/理由模板) and suggested teams for dispatch with their load and distance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely import wkb
from shapely.geometry import LineString
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import ANONYMOUS, event_filter
from gis_service.cases.workflow import (
    DEADLINE_STATUSES,
    INTERNAL_EVENTS,
    OPEN_STATUSES,
    STEPS,
    TEMPLATE_ACTIONS,
    Action,
)
from gis_service.db.engine import get_engine, transaction
from tests.conftest import IN_GRID_1, IN_GRID_2, write
from tests.test_cases import act, count, report
from tests.test_command_actions import case, case_at, close, decide, inbox, sql, user_id
from tests.test_open311 import V2, make_key

GEOD = Geod(ellps="WGS84")


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


def events(api, who, cid) -> list[dict]:
    return case(api, who, cid)["timeline"]


# --- the loop's data ------------------------------------------------------------------


def test_the_desk_actions_are_steps_with_their_fields(api, case_city):
    """Who may act and which fields each takes come from the Step; the vocabulary
    publishes them (the desk builds its forms from it)."""
    want = {
        Action.assign: ("assignee_id",),
        Action.recategorize: ("category",),
        Action.reprioritize: ("priority",),
        Action.note: (),
        Action.merge: ("into_case_id",),
    }
    vocab = api.get("/api/v1/vocabulary").json()
    for action, fields in want.items():
        step = STEPS[action]
        assert step.fields == fields
        assert vocab["action_fields"][action.value] == list(fields)
        assert not step.reporter  # never the grid workers
        assert step.team == (action is Action.note)  # only the note is also the team's
    assert vocab["internal_events"] == list(INTERNAL_EVENTS) == ["note"]
    assert set(vocab["template_actions"]) == {a.value for a in TEMPLATE_ACTIONS}
    assert {"recategorize", "reprioritize", "note"} <= set(vocab["note_required_actions"])


# --- assign (指派) ----------------------------------------------------------------------


def test_assign_to_a_member_of_the_case_team_and_its_refusals(api, case_city):
    c, s = case_city, case_city["settings"]
    member = user_id(s, "ta")
    other = user_id(s, "tb")  # a member of team b
    accepted = case_at(api, c, "accepted")
    r = act(api, c["sub1_sup"], accepted, "assign", assignee_id=member)
    assert r.status_code == 409 and "assign" not in r.json()["allowed"]

    cid = case_at(api, c, "dispatched")
    detail = case(api, c["sub1_sup"], cid)
    assert "assign" in detail["allowed_actions"] and detail["assignee"] is None
    # the dispatcher's choice: the team's active members (none shown to others)
    assert detail["team_members"] == [{"id": member, "display_name": "ta"}]
    assert case(api, c["worker1"], cid)["team_members"] == []
    assert case(api, c["team_a"], cid)["team_members"] == []
    before = count(s, "case_event")
    r = act(api, c["team_a"], cid, "assign", assignee_id=member)
    assert r.status_code == 403  # dispatchers assign
    r = act(api, c["worker1"], cid, "assign", assignee_id=member)
    assert r.status_code == 403
    r = act(api, c["sub1_sup"], cid, "assign")
    assert r.status_code == 422 and r.json()["field"] == "assignee_id"
    r = act(api, c["sub1_sup"], cid, "assign", assignee_id=other)
    assert r.status_code == 422 and r.json()["field"] == "assignee_id"
    assert "not an active member" in r.json()["detail"]
    r = act(api, c["sub1_sup"], cid, "assign", assignee_id=member, category="environment.ads")
    assert r.status_code == 422 and r.json()["field"] == "category"  # recategorize's field
    assert count(s, "case_event") == before

    r = act(api, c["sub1_sup"], cid, "assign", assignee_id=member, note="请王师傅处理")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["case"]["assignee_id"] == member and body["case"]["status"] == "dispatched"
    assert body["event"]["action"] == "assign"
    assert body["event"]["data"] == {
        "assignee_id": member,
        "assignee_name": "ta",
        "previous_assignee_id": None,
    }
    seen = case(api, c["team_a"], cid)
    assert seen["assignee_id"] == member
    assert seen["assignee"] == {"id": member, "display_name": "ta"}
    r = act(api, c["sub1_sup"], cid, "assign", assignee_id=member)
    assert r.status_code == 422 and r.json()["field"] == "assignee_id"  # already

    # the team returns it; dispatched again to the same team the assignee stays...
    assert act(api, c["team_a"], cid, "return", note="缺少工具").status_code == 200
    r = act(api, c["sub1_sup"], cid, "dispatch", team_id=c["teams"]["a"])
    assert r.json()["case"]["assignee_id"] == member
    assert "assignee_cleared" not in r.json()["event"]["data"]
    # ...to another team it is cleared
    assert act(api, c["team_a"], cid, "return", note="不归我们管").status_code == 200
    r = act(api, c["sub1_sup"], cid, "dispatch", team_id=c["teams"]["b"])
    assert r.status_code == 200, r.text
    assert r.json()["case"]["assignee_id"] is None
    assert r.json()["event"]["data"]["assignee_cleared"] == member


# --- recategorize (改类) and reprioritize -----------------------------------------------


def category(settings, code: str) -> dict:
    with get_engine(settings).connect() as conn:
        return dict(
            conn.execute(
                text("SELECT deadline_hours, handling_level FROM case_category WHERE code = :c"),
                {"c": code},
            )
            .mappings()
            .one()
        )


def stamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def test_recategorize_moves_deadline_and_level_by_the_new_category(api, case_city):
    c, s = case_city, case_city["settings"]
    cid = case_at(api, c, "accepted")  # environment.garbage, accepted now
    before = case(api, c["sub1_sup"], cid)
    new = "facilities.streetlight"  # another domain: other hours, other level
    cat = category(s, new)
    assert cat != category(s, before["category"])  # the test moves both

    r = act(api, c["sub1_sup"], cid, "recategorize", category=new)
    assert r.status_code == 422 and r.json()["field"] == "note"
    for bad in ("facilities", "no.such", before["category"]):  # a domain, unknown, the same
        r = act(api, c["sub1_sup"], cid, "recategorize", category=bad, note="分类有误")
        assert r.status_code == 422 and r.json()["field"] == "category", bad
    assert act(api, c["worker1"], cid, "recategorize", category=new, note="x").status_code == 403

    r = act(api, c["sub1_sup"], cid, "recategorize", category=new, note="实为路灯损坏")
    assert r.status_code == 200, r.text
    got, event = r.json()["case"], r.json()["event"]
    accepted = stamp(before["accepted_at"])
    assert got["category"] == new and got["handling_level"] == cat["handling_level"]
    assert stamp(got["deadline_at"]) == accepted + timedelta(hours=cat["deadline_hours"])
    assert event["data"]["from_category"] == before["category"]
    assert event["data"]["to_category"] == new
    assert event["data"]["from_level"] == before["handling_level"]
    assert stamp(event["data"]["from_deadline_at"]) == stamp(before["deadline_at"])
    assert stamp(event["data"]["to_deadline_at"]) == stamp(got["deadline_at"])

    # a case not yet accepted has no deadline; acceptance counts the new category's hours
    fresh = case_at(api, c, "reported")
    r = act(api, c["sub1_sup"], fresh, "recategorize", category="environment.sewage", note="x")
    assert r.status_code == 200 and r.json()["case"]["deadline_at"] is None
    r = act(api, c["sub1_sup"], fresh, "accept")
    hours = category(s, "environment.sewage")["deadline_hours"]
    done = r.json()["case"]
    assert stamp(done["deadline_at"]) - stamp(done["accepted_at"]) == timedelta(hours=hours)

    # a closed case keeps its category
    shut = case_at(api, c, "dispatched")
    close(api, c, shut)
    r = act(api, c["sub1_sup"], shut, "recategorize", category=new, note="x")
    assert r.status_code == 409


def test_recategorize_keeps_an_escalation_and_an_extension(api, case_city):
    c, s = case_city, case_city["settings"]
    # escalated from grid to community: a grid-level category does not bring it down
    cid = case_at(api, c, "accepted")
    r = act(api, c["worker1"], cid, "escalate", note="网格无法处置")
    assert r.status_code == 200 and r.json()["case"]["handling_level"] == "community"
    grid_level = "environment.sewage"
    assert category(s, grid_level)["handling_level"] == "grid"
    r = act(api, c["sub1_sup"], cid, "recategorize", category=grid_level, note="实为污水")
    assert r.status_code == 200 and r.json()["case"]["handling_level"] == "community"
    # ...but a category handled higher up raises it
    r = act(api, c["sub1_sup"], cid, "recategorize", category="facilities.road", note="道路")
    level = category(s, "facilities.road")["handling_level"]
    assert r.json()["case"]["handling_level"] == level == "subdistrict"

    # an approved extension keeps its hours on top of the new category's deadline
    ext = case_at(api, c, "in_progress")
    r = act(api, c["team_a"], ext, "extend", note="缺少配件", extension_hours=10)
    assert r.status_code == 200, r.text
    pending = [x["id"] for x in inbox(api, c["sub1_sup"]) if x["case_id"] == ext]
    assert decide(api, c["sub1_sup"], pending, "approve").status_code == 200
    before = case(api, c["sub1_sup"], ext)
    assert before["extension_count"] == 1
    r = act(api, c["sub1_sup"], ext, "recategorize", category=grid_level, note="实为污水")
    got = r.json()["case"]
    base = stamp(before["accepted_at"]) + timedelta(hours=category(s, grid_level)["deadline_hours"])
    assert stamp(got["original_deadline_at"]) == base
    assert stamp(got["deadline_at"]) == base + timedelta(hours=10)


def test_reprioritize(api, case_city):
    c = case_city
    cid = case_at(api, c, "dispatched")
    assert case(api, c["sub1_sup"], cid)["priority"] == "normal"
    r = act(api, c["sub1_sup"], cid, "reprioritize", priority="urgent")
    assert r.status_code == 422 and r.json()["field"] == "note"
    r = act(api, c["sub1_sup"], cid, "reprioritize", priority="soon", note="x")
    assert r.status_code == 422 and r.json()["field"] == "priority"
    r = act(api, c["sub1_sup"], cid, "reprioritize", priority="normal", note="x")
    assert r.status_code == 422 and r.json()["field"] == "priority"  # already
    r = act(api, c["sub1_sup"], cid, "reprioritize", note="x")
    assert r.status_code == 422 and r.json()["field"] == "priority"
    assert act(api, c["team_a"], cid, "reprioritize", priority="high", note="x").status_code == 403
    r = act(api, c["sub1_sup"], cid, "reprioritize", priority="urgent", note="涉及老人出行")
    assert r.status_code == 200, r.text
    assert r.json()["case"]["priority"] == "urgent"
    assert r.json()["event"]["data"] == {"from_priority": "normal", "to_priority": "urgent"}
    voided = case_at(api, c, "accepted")
    assert act(api, c["sub1_sup"], voided, "void", note="误报").status_code == 200
    r = act(api, c["sub1_sup"], voided, "reprioritize", priority="high", note="x")
    assert r.status_code == 409


# --- internal notes (内部备注) -----------------------------------------------------------


def test_internal_notes_are_hidden_from_every_audience_that_must_not_read_them(api, case_city):
    c, s = case_city, case_city["settings"]
    cid = case_at(api, c, "in_progress")  # environment.garbage: a public category
    no = case(api, c["sub1_sup"], cid)["case_no"]
    key = make_key(s)
    # Open311 reads before the note: the note must change nothing there
    open311_before = {
        who: api.get(f"{V2}/requests/{no}.json", params=params).json()
        for who, params in (("key", {"api_key": key}), ("public", {}))
    }
    assert all(len(v) == 1 for v in open311_before.values())

    assert act(api, c["worker1"], cid, "note", note="x").status_code == 403
    r = act(api, c["sub1_sup"], cid, "note")
    assert r.status_code == 422 and r.json()["field"] == "note"
    marker, marker_team = "内部-甲-7731", "内部-乙-7732"
    touched = case(api, c["sub1_sup"], cid)["updated_at"]
    r = act(api, c["sub1_sup"], cid, "note", note=f"{marker}：上报人电话 13800000000")
    assert r.status_code == 200, r.text
    assert r.json()["case"]["updated_at"] == touched  # the case row is not written
    r = act(api, c["team_a"], cid, "note", note=marker_team)
    assert r.status_code == 200 and r.json()["event"]["action"] == "note"
    assert act(api, c["team_b"], cid, "note", note="x").status_code == 404

    # staff who work the case read both notes
    for who in ("sub1_sup", "district_sup", "admin", "team_a"):
        body = api.get(f"/api/v1/cases/{cid}", headers=c[who]).text
        assert marker in body and marker_team in body, who
        notes = [e for e in events(api, c[who], cid) if e["action"] == "note"]
        assert len(notes) == 2, who
    # the grid workers (the reporter side; the phone and the map popup read this route)
    for who in ("worker1", "worker1b"):
        r = api.get(f"/api/v1/cases/{cid}", headers=c[who])
        assert r.status_code == 200
        assert marker not in r.text and marker_team not in r.text, who
        assert not [e for e in r.json()["timeline"] if e["action"] in INTERNAL_EVENTS]
        assert [e["action"] for e in r.json()["timeline"]][:2] == ["report", "accept"]
    # Open311, with a key and in the public view (list and single request)
    for who, params in (("key", {"api_key": key}), ("public", {})):
        one = api.get(f"{V2}/requests/{no}.json", params=params)
        many = api.get(f"{V2}/requests.json", params=params)
        xml = api.get(f"{V2}/requests/{no}.xml", params=params)
        for r in (one, many, xml):
            assert r.status_code == 200 and marker not in r.text and marker_team not in r.text
        assert one.json() == open311_before[who], who  # not even updated_datetime moved

    # the one filter, as SQL, for every kind of viewer
    staff = (Principal(role=Role.admin), Principal(role=Role.supervisor, scopes=("410199",)))
    staff += (Principal(role=Role.team_member, team_id=c["teams"]["a"]),)
    others = (
        Principal(role=Role.grid_worker, scopes=("41019900100101",)),
        Principal(role=Role.client),
        Principal(role=Role.planner, scopes=("410199",)),
        ANONYMOUS,
    )
    with get_engine(s).connect() as conn:
        total = conn.execute(
            text("SELECT count(*) FROM case_event WHERE case_id = :id"), {"id": cid}
        ).scalar_one()
        for p in staff + others:
            cond, params = event_filter(p, "e")
            shown = conn.execute(
                text(f"SELECT count(*) FROM case_event e WHERE e.case_id = :id AND {cond}"),
                {"id": cid, **params},
            ).scalar_one()
            assert shown == (total if p in staff else total - 2), p.role

    # a note may be written after the case is closed, still internal
    close(api, c, cid)
    r = act(api, c["sub1_sup"], cid, "note", note="结案后回访")
    assert r.status_code == 200 and r.json()["case"]["status"] == "closed"
    assert "结案后回访" not in api.get(f"/api/v1/cases/{cid}", headers=c["worker1"]).text


# --- merge (合并) -----------------------------------------------------------------------


def test_merge_makes_a_duplicate_linked_on_the_target(api, case_city):
    c, s = case_city, case_city["settings"]
    into = case_at(api, c, "dispatched")
    cid = case_at(api, c, "accepted")
    into_no = case(api, c["sub1_sup"], into)["case_no"]
    no = case(api, c["sub1_sup"], cid)["case_no"]
    outside = report(api, c["worker2"], point=IN_GRID_2).json()["id"]  # subdistrict 2
    voided = case_at(api, c, "accepted")
    assert act(api, c["sub1_sup"], voided, "void", note="误报").status_code == 200
    before = count(s, "case_event")

    assert act(api, c["team_a"], into, "merge", into_case_id=cid).status_code == 403
    assert act(api, c["worker1"], cid, "merge", into_case_id=into).status_code == 403
    r = act(api, c["sub1_sup"], cid, "merge")
    assert r.status_code == 422 and r.json()["field"] == "into_case_id"
    r = act(api, c["sub1_sup"], cid, "merge", into_case_id=cid)
    assert r.status_code == 422 and r.json()["field"] == "into_case_id"
    r = act(api, c["sub1_sup"], cid, "merge", into_case_id=voided)
    assert r.status_code == 422 and "voided" in r.json()["detail"]
    missing = act(api, c["sub1_sup"], cid, "merge", into_case_id=10**9)
    hidden = act(api, c["sub1_sup"], cid, "merge", into_case_id=outside)
    assert missing.status_code == hidden.status_code == 422
    assert hidden.json()["field"] == "into_case_id"
    # a case outside the jurisdiction reads as one that does not exist
    assert hidden.json()["detail"] == missing.json()["detail"].replace(str(10**9), str(outside))
    assert count(s, "case_event") == before

    r = act(api, c["sub1_sup"], cid, "merge", into_case_id=into, note="同一处垃圾")
    assert r.status_code == 200, r.text
    got, event = r.json()["case"], r.json()["event"]
    assert got["status"] == "duplicate" and got["duplicate_of"] == into
    assert event["action"] == "merge" and event["to_status"] == "duplicate"
    assert event["data"]["into_case_id"] == into and event["data"]["into_case_no"] == into_no
    link = [e for e in events(api, c["sub1_sup"], into) if e["action"] == "link"]
    assert len(link) == 1 and link[0]["id"] == event["data"]["link_event_id"]
    assert link[0]["data"] == {"case_id": cid, "case_no": no, "by": "merge"}
    # the target is unchanged; the merged case is an end, and no target for others
    assert case(api, c["sub1_sup"], into)["status"] == "dispatched"
    assert act(api, c["sub1_sup"], cid, "merge", into_case_id=into).status_code == 409
    third = case_at(api, c, "reported")
    r = act(api, c["sub1_sup"], third, "merge", into_case_id=cid)
    assert r.status_code == 422 and "duplicate" in r.json()["detail"]
    # a report filed as a duplicate writes the same link through the same function
    r = report(api, c["worker1"], link_to=into)
    assert r.status_code == 201 and r.json()["status"] == "duplicate"
    link = [e for e in events(api, c["sub1_sup"], into) if e["action"] == "link"]
    assert link[-1]["data"] == {"case_id": r.json()["id"], "case_no": r.json()["case_no"]}


# --- templates (回复模板/理由模板) ---------------------------------------------------------


def templates_in_db(settings) -> list[dict]:
    with get_engine(settings).connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text("SELECT id, category_code, action, active FROM case_template ORDER BY id")
            ).mappings()
        ]


def applying(rows: list[dict], code: str, action: str | None) -> list[int]:
    """The rule as documented (cases/templates.py), written again here: sub-category,
    then domain, then any category; oldest first within each."""

    def rank(cat):
        return 0 if cat == code else 2 if cat is None else 1

    fits = [
        r
        for r in rows
        if r["active"]
        and (action is None or r["action"] == action)
        and (r["category_code"] in (None, code) or code.startswith(r["category_code"] + "."))
    ]
    return [r["id"] for r in sorted(fits, key=lambda r: (rank(r["category_code"]), r["id"]))]


def test_templates_per_category_and_their_administration(api, case_city):
    c, s = case_city, case_city["settings"]
    cid = case_at(api, c, "reported")  # environment.garbage
    seeded = templates_in_db(s)
    assert {r["action"] for r in seeded} >= {"reject", "return", "reply", "handle"}

    def get(action=None, who="sub1_sup"):
        params = {"action": action} if action else {}
        return api.get(f"/api/v1/cases/{cid}/templates", headers=c[who], params=params)

    for action in (None, "reject", "handle", "comment", "note"):
        r = get(action)
        assert r.status_code == 200, r.text
        assert r.json()["category"] == "environment.garbage"
        want = applying(templates_in_db(s), "environment.garbage", action)
        assert [t["id"] for t in r.json()["templates"]] == want, action
    assert get("handle").json()["templates"], "the seeded garbage template applies"
    assert get("accept").status_code == 422 and get("accept").json()["field"] == "action"
    assert api.get(f"/api/v1/cases/{cid}/templates", headers=c["sub2_sup"]).status_code == 404

    # admins add: a sub-category and a domain template come before the general ones
    new = {"action": "reject", "text_zh": "该垃圾点属物业管理区域，请联系物业。"}
    assert api.post("/api/v1/templates", headers=c["sub1_sup"], json=new).status_code == 403
    r = api.post("/api/v1/templates", headers=c["admin"], json={**new, "category_code": "x.y"})
    assert r.status_code == 422 and r.json()["field"] == "category_code"
    r = api.post("/api/v1/templates", headers=c["admin"], json={**new, "action": "accept"})
    assert r.status_code == 422 and r.json()["field"] == "action"
    r = api.post("/api/v1/templates", headers=c["admin"], json={**new, "action": "fly"})
    assert r.status_code == 422 and r.json()["field"] == "action"
    r = api.post("/api/v1/templates", headers=c["admin"], json={**new, "text_zh": ""})
    assert r.status_code == 422 and r.json()["field"] == "text_zh"
    domain = api.post(
        "/api/v1/templates", headers=c["admin"], json={**new, "category_code": "environment"}
    )
    sub = api.post(
        "/api/v1/templates",
        headers=c["admin"],
        json={**new, "category_code": "environment.garbage", "text_en": "Ask the property."},
    )
    other = api.post(
        "/api/v1/templates", headers=c["admin"], json={**new, "category_code": "safety"}
    )
    assert {domain.status_code, sub.status_code, other.status_code} == {201}
    assert sub.json()["text_en"] == "Ask the property." and sub.json()["active"]
    got = [t["id"] for t in get("reject").json()["templates"]]
    assert got[:2] == [sub.json()["id"], domain.json()["id"]]
    assert other.json()["id"] not in got  # another domain's
    assert got == applying(templates_in_db(s), "environment.garbage", "reject")
    # the grid worker reads them too (its reasons: escalate; its case)
    assert get("reject", who="worker1").status_code == 200

    # withdrawing: admins only, then gone; a second time 404
    tid = sub.json()["id"]
    assert api.delete(f"/api/v1/templates/{tid}", headers=c["sub1_sup"]).status_code == 403
    r = api.delete(f"/api/v1/templates/{tid}", headers=c["admin"])
    assert r.status_code == 200 and r.json()["active"] is False
    assert tid not in [t["id"] for t in get("reject").json()["templates"]]
    assert api.delete(f"/api/v1/templates/{tid}", headers=c["admin"]).status_code == 404


# --- suggested teams --------------------------------------------------------------------


def overdue(row: dict, now: datetime) -> bool:
    """The overdue rule as docs/cases.md states it, written again here."""
    return (
        row["status"] in DEADLINE_STATUSES
        and row["deadline_at"] is not None
        and row["deadline_at"] < now
    )


def team_base(settings, team_id: int) -> tuple[float, float]:
    """A point inside the team's unit (GEOS point-on-surface, here through shapely)."""
    with get_engine(settings).connect() as conn:
        geom = conn.execute(
            text(
                "SELECT ST_AsBinary(u.geom) FROM team t JOIN admin_unit u "
                "ON u.code = t.unit_code WHERE t.id = :id"
            ),
            {"id": team_id},
        ).scalar_one()
    p = wkb.loads(bytes(geom)).representative_point()
    return p.x, p.y


def test_team_suggestions_order_load_and_distance(api, case_city, tmp_path):
    from gis_service.cases.teams import create_team
    from gis_service.network.imports import import_network

    c, s = case_city, case_city["settings"]
    with transaction(s) as conn:  # a second team of the community and one of the subdistrict
        a2 = create_team(
            conn, name="东北社区物业", kind="property_service", unit_code="410199001001"
        )
        sub = create_team(conn, name="西街道工作队", kind="walking_team", unit_code="410199001")
    a, b = c["teams"]["a"], c["teams"]["b"]
    cid = case_at(api, c, "accepted")  # at IN_GRID_1, community 410199001001
    # load: team a two open cases (one overdue), team b one, a closed one does not count
    loaded = [case_at(api, c, "dispatched"), case_at(api, c, "in_progress")]
    sql(s, "UPDATE cases SET deadline_at = now() - interval '1 hour' WHERE id = :id", id=loaded[0])
    shut = case_at(api, c, "dispatched")
    close(api, c, shut)
    extra = case_at(api, c, "accepted")
    assert act(api, c["sub1_sup"], extra, "dispatch", team_id=b).status_code == 200

    for who, status in (("worker1", 403), ("team_a", 403), ("planner", 403), ("sub2_sup", 404)):
        r = api.get(f"/api/v1/cases/{cid}/team-suggestions", headers=c[who])
        assert r.status_code == status, who

    def expected(now: datetime) -> dict[int, dict]:
        with get_engine(s).connect() as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    text("SELECT id, status, team_id, deadline_at FROM cases")
                ).mappings()
            ]
        out = {}
        for t in (a, a2["id"], sub["id"], b):
            mine = [r for r in rows if r["team_id"] == t and r["status"] in OPEN_STATUSES]
            lon, lat = team_base(s, t)
            straight = GEOD.inv(lon, lat, *IN_GRID_1)[2]
            out[t] = {
                "open_cases": len(mine),
                "overdue_cases": sum(overdue(r, now) for r in mine),
                "straight": straight,
                "base": (lon, lat),
            }
        return out

    r = api.get(f"/api/v1/cases/{cid}/team-suggestions", headers=c["sub1_sup"])
    assert r.status_code == 200, r.text
    teams = r.json()["teams"]
    want = expected(datetime.now(UTC))
    assert (want[a]["open_cases"], want[a]["overdue_cases"], want[b]["open_cases"]) == (2, 1, 1)
    # the community's teams first (the emptier one responsible), then the subdistrict's,
    # then the district's; team c (the other subdistrict) cannot take it
    assert [t["id"] for t in teams] == [a2["id"], a, sub["id"], b]
    assert [t["responsible"] for t in teams] == [True, False, False, False]
    for t in teams:
        w = want[t["id"]]
        assert (t["open_cases"], t["overdue_cases"]) == (w["open_cases"], w["overdue_cases"])
        assert t["distance_kind"] == "straight"  # no walking network yet
        assert t["distance_m"] == pytest.approx(w["straight"], abs=0.5)

    # with a walking network (a lattice of footways every 0.005°, through every base
    # point and the case): walked along the streets, here the Manhattan path
    step = 0.005
    lines = [LineString([(113.0, 34.0 + i * step), (113.1, 34.0 + i * step)]) for i in range(21)]
    lines += [LineString([(113.0 + i * step, 34.0), (113.0 + i * step, 34.1)]) for i in range(21)]
    net = gpd.GeoDataFrame({"highway": ["footway"] * len(lines)}, geometry=lines, crs=4326)
    import_network(write(net, tmp_path / "net.geojson"), settings=s)
    teams = api.get(f"/api/v1/cases/{cid}/team-suggestions", headers=c["sub1_sup"]).json()["teams"]
    for t in teams:
        lon, lat = want[t["id"]]["base"]
        x, y = IN_GRID_1
        manhattan = GEOD.inv(lon, lat, x, lat)[2] + GEOD.inv(x, lat, x, y)[2]
        assert t["distance_kind"] == "network", t
        assert t["distance_m"] == pytest.approx(manhattan, rel=0.01), t
        assert t["distance_m"] >= want[t["id"]]["straight"] - 0.5
