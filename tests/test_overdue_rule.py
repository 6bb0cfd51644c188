"""One overdue rule, one "status now" rule, on every path.

A case is overdue when its deadline runs (accepted, not closed, not parked until its
review) and has passed; a parked case whose review moment has passed counts in the status
it left. The rule has one SQL home (``case_status`` / ``case_overdue`` in cases/report.sql)
and one numpy twin (``Facts.status_now`` / ``Facts.overdue_now``). Each path that shows
"overdue" or a status is asked here about the same cases — the case answer, the list
filter, the statistics, the vector tiles and the exported map pages — and must agree with
the SQL function, case by case."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import mapbox_vector_tile
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.cases.workflow import STATUSES
from gis_service.db.engine import get_engine
from gis_service.maps.export import inline_cases
from gis_service.stats.cube import CaseCube
from gis_service.timezone import local_date, zone_name
from tests.test_cases import IN_GRID_1
from tests.test_command_actions import case_at, sql


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def _mixed_cases(api, c) -> dict[str, int]:
    """Cases in every situation the rule separates, named by what they are."""
    s = c["settings"]
    cases = {
        "reported": case_at(api, c, "reported"),
        "running_in_time": case_at(api, c, "dispatched"),
        "running_late": case_at(api, c, "in_progress"),
        "parked_late": case_at(api, c, "in_progress"),
        "parked_back_late": case_at(api, c, "in_progress"),
        "parked_back_in_time": case_at(api, c, "dispatched"),
    }
    review = (local_date(s) + timedelta(days=3)).isoformat()
    for name in ("parked_late", "parked_back_late", "parked_back_in_time"):
        r = api.post(
            f"/api/v1/cases/{cases[name]}/actions",
            headers=c["sub1_sup"],
            json={"action": "park", "note": "待管线迁改", "review_on": review},
        )
        assert r.status_code == 200, r.text
    late = [cases[n] for n in ("running_late", "parked_late", "parked_back_late")]
    sql(
        s,
        "UPDATE cases SET deadline_at = now() - interval '2 hours' WHERE id = ANY(:ids)",
        ids=late,
    )
    back = [cases["parked_back_late"], cases["parked_back_in_time"]]
    sql(
        s,
        "UPDATE cases SET parked_until = now() - interval '1 minute' WHERE id = ANY(:ids)",
        ids=back,
    )
    return cases


def test_every_path_agrees_with_the_sql_rule_case_by_case(case_city):
    c = case_city
    s = c["settings"]
    with TestClient(create_app(s)) as api:
        cases = _mixed_cases(api, c)
    ids = sorted(cases.values())
    with get_engine(s).connect() as conn:
        rows = conn.execute(
            text("SELECT id, case_status(c), case_overdue(c) FROM cases c WHERE id = ANY(:ids)"),
            {"ids": ids},
        ).all()
    status = {r[0]: r[1] for r in rows}
    overdue = {r[0] for r in rows if r[2]}
    # the rule itself, on the named situations (so an agreeing-but-wrong rule fails too)
    assert overdue == {cases["running_late"], cases["parked_back_late"]}
    assert status[cases["parked_late"]] == "parked"
    assert status[cases["parked_back_late"]] == "in_progress"
    assert status[cases["parked_back_in_time"]] == "dispatched"

    with TestClient(create_app(s)) as api:  # a new app: its cube and tiles load afresh
        who = c["sub1_sup"]
        # the case answer
        for cid in ids:
            body = api.get(f"/api/v1/cases/{cid}", headers=who).json()
            assert (body["status"], body["overdue"]) == (status[cid], cid in overdue), cid
        # the list filter, both ways
        listed = api.get("/api/v1/cases", headers=who, params={"overdue": "true"}).json()
        assert {f["id"] for f in listed["features"]} == overdue
        listed = api.get("/api/v1/cases", headers=who, params={"overdue": "false"}).json()
        assert {f["id"] for f in listed["features"]} == set(ids) - overdue
        # the statistics
        r = api.get("/api/v1/stats/resolution", headers=who, params={"level": "subdistrict"})
        assert r.json()["totals"]["overdue_now"] == len(overdue)
        # the vector tiles: every case drawn, with its status and overdue flag
        z = 18
        x, y = _tile_of(IN_GRID_1[0], IN_GRID_1[1], z)
        r = api.get(f"/tiles/cases/{z}/{x}/{y}.pbf", headers=who)
        assert r.status_code == 200, r.text
        layer = mapbox_vector_tile.decode(r.content)["cases"]
        drawn = {f["properties"]["case_id"]: f["properties"] for f in layer["features"]}
        assert set(drawn) == set(ids)
        for cid, props in drawn.items():
            assert (props["status"], bool(props["overdue"])) == (status[cid], cid in overdue), cid
        r = api.get(f"/tiles/cases/{z}/{x}/{y}.pbf", headers=who, params={"overdue": "true"})
        layer = mapbox_vector_tile.decode(r.content).get("cases", {"features": []})
        assert {f["properties"]["case_id"] for f in layer["features"]} == overdue

    # the numpy twin, over the cube's facts
    facts = CaseCube(s).facts()
    rows_of = facts.ids.searchsorted(ids)
    now = time.time()
    flags = facts.overdue_now(now, rows_of)
    assert {cid for cid, f in zip(ids, flags, strict=True) if f} == overdue
    assert [STATUSES[k] for k in facts.status_now(now, rows_of)] == [status[i] for i in ids]

    # the exported map pages (maps/export.py)
    today = local_date(s)
    with get_engine(s).connect() as conn:
        tz = zone_name(s)
        page = inline_cases(conn, None, today - timedelta(days=1), today, overdue_only=True, tz=tz)
        assert {f["id"] for f in page["features"]} == overdue
        page = inline_cases(conn, None, today - timedelta(days=1), today, overdue_only=False, tz=tz)
        shown = {f["id"]: f["properties"] for f in page["features"]}
    for cid in ids:
        assert (shown[cid]["status"], shown[cid]["overdue"]) == (status[cid], cid in overdue)
