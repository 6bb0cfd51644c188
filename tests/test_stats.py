"""Resolution statistics over the API: figures, jurisdiction, and a cache that never
misses a write."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine, transaction
from tests.conftest import IN_GRID_1, IN_GRID_2
from tests.test_cases import act, photo, report


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


def close(api, c, cid, *, rework=False, score=None):
    act(api, c["sub1_sup"], cid, "accept")
    act(api, c["sub1_sup"], cid, "dispatch", team_id=c["teams"]["b"])
    rounds = 2 if rework else 1
    for i in range(rounds):
        act(api, c["team_b"], cid, "start")
        photo(api, c["team_b"], cid, data=None if i == 0 else _other(cid))
        act(api, c["team_b"], cid, "handle", note="处理完毕")
        passed = i == rounds - 1
        act(api, c["sub1_sup"], cid, "verify", passed=passed, note=None if passed else "未完成")
    if score:
        act(api, c["sub1_sup"], cid, "rate", score=score)


def _other(cid):
    from tests.images import image_bytes

    return image_bytes(seed=1000 + cid)


def stats(api, who, **params):
    r = api.get("/api/v1/stats/resolution", headers=who, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_figures_per_unit_and_week(api, case_city):
    c = case_city
    ids = [
        report(
            api, c["worker1"], point=(IN_GRID_1[0] + i * 1e-4, IN_GRID_1[1]), category=cat
        ).json()["id"]
        for i, cat in enumerate(
            ["environment.garbage", "environment.sewage", "safety.gas", "facilities.road"]
        )
    ]
    close(api, c, ids[0], score=5)
    close(api, c, ids[1], rework=True, score=3)
    act(api, c["sub1_sup"], ids[2], "accept")
    act(api, c["sub1_sup"], ids[3], "reject", note="不属于受理范围")
    other = report(api, c["worker2"], point=IN_GRID_2).json()["id"]
    # A deadline in the past makes the accepted case overdue now.
    with transaction(c["settings"]) as conn:
        conn.execute(
            text("UPDATE cases SET deadline_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": ids[2]},
        )

    body = stats(api, c["district_sup"], level="grid")
    grid = {u["code"]: u for u in body["units"]}
    g1 = grid["41019900100101"]
    assert (g1["reported"], g1["accepted"], g1["rejected"], g1["closed"]) == (4, 3, 1, 2)
    assert g1["resolution_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert g1["rework"] == 1 and g1["rework_rate"] == 0.5
    assert g1["rated"] == 2 and g1["satisfaction_rate"] == 0.5
    assert g1["on_time_rate"] == 1.0 and g1["overdue_now"] == 1
    with get_engine(c["settings"]).connect() as conn:
        median = conn.execute(
            text(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM "
                "closed_at - reported_at) / 3600) FROM cases WHERE status = 'closed'"
            )
        ).scalar()
    assert g1["median_hours_to_close"] == pytest.approx(median, abs=1e-4)
    assert grid["41019900200101"]["reported"] == 1
    assert len(body["units"]) == 8 and grid["41019900100102"]["reported"] == 0
    assert body["totals"]["reported"] == 5
    assert sum(w["reported"] for w in body["weekly"]) == 5
    assert body["weekly"][-1]["reported"] == 5
    assert set(body["definitions"]) >= {"resolution_rate", "overdue_now"}
    del other

    body = stats(api, c["district_sup"], level="subdistrict", category="environment")
    assert {u["code"]: u["reported"] for u in body["units"]} == {"410199001": 2, "410199002": 1}


def test_statistics_respect_jurisdiction(api, case_city):
    c = case_city
    report(api, c["worker1"])
    report(api, c["worker2"], point=IN_GRID_2)
    assert stats(api, c["worker1"], level="grid")["totals"]["reported"] == 1
    assert [u["code"] for u in stats(api, c["worker1"], level="grid")["units"]] == [
        "41019900100101"
    ]
    body = stats(api, c["sub2_sup"], level="community")
    assert body["totals"]["reported"] == 1
    assert {u["code"][:9] for u in body["units"]} == {"410199002"}
    assert stats(api, c["planner"], level="district")["totals"]["reported"] == 2
    assert stats(api, c["team_a"], level="district")["totals"]["reported"] == 0
    assert api.get("/api/v1/stats/resolution").status_code == 401
    r = api.get("/api/v1/stats/resolution", headers=c["admin"], params={"level": "street"})
    assert r.status_code == 422
    r = api.get(
        "/api/v1/stats/resolution",
        headers=c["admin"],
        params={"from": "2026-02-01", "to": "2026-01-01"},
    )
    assert r.status_code == 422 and r.json()["field"] == "from"


def test_the_cache_sees_every_commit_including_late_ones(api, case_city):
    """A transaction that started before a sync but committed after it is not missed."""
    c = case_city
    cid = report(api, c["worker1"]).json()["id"]
    assert stats(api, c["admin"], level="district")["totals"]["accepted"] == 0
    engine = get_engine(c["settings"])
    slow = engine.connect()
    tx = slow.begin()
    slow.execute(
        text("UPDATE cases SET accepted_at = now(), status = 'accepted' WHERE id = :id"),
        {"id": cid},
    )
    # A sync while the write is in flight sees nothing new...
    assert stats(api, c["admin"], level="district")["totals"]["accepted"] == 0
    tx.commit()
    slow.close()
    # ...and the next one picks it up although its xid is older than that sync.
    assert stats(api, c["admin"], level="district")["totals"]["accepted"] == 1
    report(api, c["worker1"], point=(IN_GRID_1[0] + 0.001, IN_GRID_1[1]))
    assert stats(api, c["admin"], level="district")["totals"]["reported"] == 2
