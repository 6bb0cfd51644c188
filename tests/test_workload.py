"""The workload board, the shift view and saved searches (issue 15 item 6) over the API,
against the real PostGIS of the test city. Every figure is computed here from the raw
rows of ``cases`` (and ``auth_session``) by the rules as documented — status now,
overdue, on time, rework, the week from Monday in the district's time — not by calling
cases/workload.py or the SQL functions it uses."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.auth import sessions
from gis_service.cases.workflow import DEADLINE_STATUSES, OPEN_STATUSES
from gis_service.db.engine import get_engine, transaction
from gis_service.timezone import local_date
from tests.conftest import IN_GRID_2
from tests.history import reported_at as report_time
from tests.images import image_bytes
from tests.test_cases import act, photo, report
from tests.test_command_actions import case_at, close, sql, user_id

SCOPES = {"sub1_sup": ["410199001"], "sub2_sup": ["410199002"], "district_sup": ["410199"]}


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


# ------------------------------------------------------------------ the oracle


def raw_cases(settings) -> list[dict]:
    with get_engine(settings).connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM cases")).mappings()]


def status_now(c: dict, now: datetime) -> str:
    """A parked case past its review is back in the status it left (docs/cases.md)."""
    if c["status"] == "parked" and c["parked_until"] <= now:
        return c["parked_from"]
    return c["status"]


def overdue(c: dict, now: datetime) -> bool:
    """Accepted, not closed, not parked (until its review), deadline passed."""
    running = {s.value for s in DEADLINE_STATUSES}
    return (
        status_now(c, now) in running and c["deadline_at"] is not None and (c["deadline_at"] < now)
    )


def week_start(tz: str, now: datetime) -> datetime:
    here = now.astimezone(ZoneInfo(tz))
    monday = here.date() - timedelta(days=here.weekday())
    return datetime.combine(monday, time(0), tzinfo=ZoneInfo(tz))


def rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def visible(c: dict, who: str) -> bool:
    return who == "admin" or any(c["unit_code"].startswith(s) for s in SCOPES[who])


def expected_teams(settings, who: str, teams: dict[int, str], now: datetime) -> dict[int, dict]:
    """team id → its figures over the viewer's cases, for the teams the viewer sees: those
    whose unit is inside the jurisdiction or above it, and any holding one of its cases."""
    start = week_start(settings.timezone, now)
    rows = [c for c in raw_cases(settings) if visible(c, who)]
    out = {}
    for tid, unit in teams.items():
        mine = [c for c in rows if c["team_id"] == tid]
        shown = who == "admin" or any(unit.startswith(s) or s.startswith(unit) for s in SCOPES[who])
        if not shown and not mine:
            continue
        opened = [c for c in mine if c["status"] in {s.value for s in OPEN_STATUSES}]
        closed = [
            c
            for c in mine
            if status_now(c, now) == "closed" and c["closed_at"] and c["closed_at"] >= start
        ]
        on_time = [
            c for c in closed if c["closed_at"] <= (c["original_deadline_at"] or c["deadline_at"])
        ]
        extended = [
            c
            for c in closed
            if c["original_deadline_at"]
            and c["original_deadline_at"] < c["closed_at"] <= c["deadline_at"]
        ]
        rework = [c for c in closed if c["rework_count"] > 0]
        out[tid] = {
            "open": len(opened),
            "overdue": sum(overdue(c, now) for c in opened),
            "handled": sum(1 for c in mine if c["handled_at"] and c["handled_at"] >= start),
            "closed": len(closed),
            "closed_on_time": len(on_time),
            "closed_on_time_extended": len(extended),
            "rework": len(rework),
            "on_time_rate": rate(len(on_time), len(closed)),
            "on_time_rate_extended": rate(len(on_time) + len(extended), len(closed)),
            "rework_rate": rate(len(rework), len(closed)),
        }
    return out


def board(api, who: dict, **params) -> dict:
    r = api.get("/api/v1/desk/workload", headers=who, params=params)
    assert r.status_code == 200, r.text
    return r.json()


# ------------------------------------------------------------------ the world


def handle(api, c, cid):
    if api.get(f"/api/v1/cases/{cid}", headers=c["sub1_sup"]).json()["status"] == "dispatched":
        assert act(api, c["team_a"], cid, "start").status_code == 200
    # a photo of its own: close() (tests/test_command_actions.py) sends the case's usual one
    r = photo(api, c["team_a"], cid, data=image_bytes(seed=10_000 + cid))
    assert r.status_code == 201, r.text
    assert act(api, c["team_a"], cid, "handle", note="已处置").status_code == 200


@pytest.fixture
def world(api, case_city) -> dict:
    """Team a's cases in subdistrict 1 in every situation the board separates, team b's
    (the district team) in both subdistricts and team c's in subdistrict 2."""
    c, s = case_city, case_city["settings"]
    now = datetime.now(UTC)
    named = {n: case_at(api, c, "dispatched") for n in ("running", "late", "parked_late")}
    sql(
        s, "UPDATE cases SET deadline_at = now() - interval '1 hour' WHERE id = :i", i=named["late"]
    )
    review = (now + timedelta(days=3)).date().isoformat()
    r = act(api, c["sub1_sup"], named["parked_late"], "park", note="待", review_on=review)
    assert r.status_code == 200, r.text
    sql(
        s,
        "UPDATE cases SET deadline_at = now() - interval '1 hour' WHERE id = :i",
        i=named["parked_late"],
    )
    named["handled"] = case_at(api, c, "dispatched")
    handle(api, c, named["handled"])
    for n in ("on_time", "late_closed", "rework", "extended", "last_week"):
        named[n] = case_at(api, c, "dispatched")
    sql(
        s,
        "UPDATE cases SET deadline_at = now() - interval '1 minute' WHERE id = :i",
        i=named["late_closed"],
    )
    sql(
        s,
        "UPDATE cases SET original_deadline_at = now() - interval '1 minute', "
        "deadline_at = now() + interval '1 day', extension_count = 1 WHERE id = :i",
        i=named["extended"],
    )
    handle(api, c, named["rework"])
    r = act(api, c["worker1"], named["rework"], "verify", passed=False, note="还有垃圾")
    assert r.status_code == 200, r.text
    for n in ("on_time", "late_closed", "rework", "extended", "last_week"):
        close(api, c, named[n])
    sql(
        s,
        "UPDATE cases SET handled_at = :t, closed_at = :t WHERE id = :i",
        t=week_start(s.timezone, now) - timedelta(hours=1),
        i=named["last_week"],
    )
    # team b: one case in each subdistrict; team c: one in subdistrict 2
    b1 = case_at(api, c, "accepted")
    assert act(api, c["sub1_sup"], b1, "dispatch", team_id=c["teams"]["b"]).status_code == 200
    for team in ("b", "c"):
        cid = report(api, c["worker2"], point=IN_GRID_2).json()["id"]
        assert act(api, c["sub2_sup"], cid, "accept").status_code == 200
        r = act(api, c["sub2_sup"], cid, "dispatch", team_id=c["teams"][team])
        assert r.status_code == 200, r.text
        sql(s, "UPDATE cases SET deadline_at = now() - interval '1 hour' WHERE id = :i", i=cid)
    report(api, c["worker1b"])  # waits for acceptance: no team
    return named


def team_units(settings) -> dict[int, str]:
    with get_engine(settings).connect() as conn:
        return dict(conn.execute(text("SELECT id, unit_code FROM team")).all())


# ------------------------------------------------------------------ the board


@pytest.mark.parametrize("who", ["admin", "district_sup", "sub1_sup", "sub2_sup"])
def test_team_figures_are_the_raw_rows_by_the_rules(api, case_city, world, who):
    c, s = case_city, case_city["settings"]
    body = board(api, c[who])
    now = datetime.fromisoformat(body["to"])
    want = expected_teams(s, who, team_units(s), now)
    got = {t["id"]: {k: t[k] for k in next(iter(want.values()))} for t in body["teams"]}
    assert got == want
    assert datetime.fromisoformat(body["from"]) == week_start(s.timezone, now)
    assert body["period"] == "week" and set(body["definitions"]) >= {"on_time_rate", "reports"}


def test_the_world_separates_what_the_board_counts(api, case_city, world):
    """The figures above are not trivially zero: team a's row, by name."""
    c = case_city
    a = next(t for t in board(api, c["sub1_sup"])["teams"] if t["id"] == c["teams"]["a"])
    assert (a["open"], a["overdue"], a["handled"]) == (4, 1, 5)
    assert (a["closed"], a["closed_on_time"], a["closed_on_time_extended"], a["rework"]) == (
        4,
        2,
        1,
        1,
    )
    assert (a["on_time_rate"], a["rework_rate"]) == (0.5, 0.25)


def test_a_subdistrict_supervisor_never_sees_another_subdistricts_teams_cases(
    api, case_city, world
):
    c = case_city
    one = board(api, c["sub1_sup"])
    ids = {t["id"] for t in one["teams"]}
    assert c["teams"]["c"] not in ids  # the east subdistrict's own team
    b = next(t for t in one["teams"] if t["id"] == c["teams"]["b"])
    assert (b["open"], b["overdue"]) == (1, 0)  # its overdue case is in subdistrict 2
    two = board(api, c["sub2_sup"])
    assert c["teams"]["a"] not in {t["id"] for t in two["teams"]}
    b2 = next(t for t in two["teams"] if t["id"] == c["teams"]["b"])
    assert (b2["open"], b2["overdue"]) == (1, 1)
    assert {w["username"] for w in one["grid_workers"]} == {"gw1", "gw1b"}
    assert {w["username"] for w in two["grid_workers"]} == {"gw2"}


def test_grid_workers_reports_and_cases_awaiting_their_check(api, case_city, world):
    c, s = case_city, case_city["settings"]
    body = board(api, c["sub1_sup"])
    start = week_start(s.timezone, datetime.fromisoformat(body["to"]))
    rows = raw_cases(s)
    for w in body["grid_workers"]:
        uid = user_id(s, w["username"])
        mine = [x for x in rows if x["reporter_id"] == uid and x["reported_at"] >= start]
        waiting = [
            x
            for x in rows
            if x["status"] == "handled"
            and any(x["unit_code"].startswith(g) for g in w["scopes"])
            and x["unit_code"].startswith("410199001")
        ]
        assert w["reports"] == len(mine), w
        assert w["awaiting_check"] == len(waiting), w
        oldest = min((x["handled_at"] for x in waiting), default=None)
        assert (w["oldest_handled_at"] and datetime.fromisoformat(w["oldest_handled_at"])) == oldest
    gw1 = next(w for w in body["grid_workers"] if w["username"] == "gw1")
    assert gw1["awaiting_check"] == 1 and gw1["reports"] >= 9


def test_rates_agree_with_the_statistics(api, case_city):
    """The board's on-time and rework rates are the statistics' (stats/resolution.py):
    the same cases closed by one team this week and reported today give the same rates."""
    c = case_city
    ids = [case_at(api, c, "dispatched") for _ in range(4)]
    sql(c["settings"], "UPDATE cases SET deadline_at = now() WHERE id = :i", i=ids[0])
    handle(api, c, ids[1])
    assert act(api, c["worker1"], ids[1], "verify", passed=False, note="没清完").status_code == 200
    sql(
        c["settings"],
        "UPDATE cases SET original_deadline_at = now(), deadline_at = now() + interval '2 days',"
        " extension_count = 1 WHERE id = :i",
        i=ids[2],
    )
    for cid in ids:
        close(api, c, cid)
    team = next(t for t in board(api, c["sub1_sup"])["teams"] if t["id"] == c["teams"]["a"])
    stats = api.get(
        "/api/v1/stats/resolution",
        headers=c["sub1_sup"],
        params={"level": "subdistrict", "from": local_date(c["settings"]) - timedelta(days=1)},
    ).json()["totals"]
    assert team["closed"] == stats["closed"] == 4
    for key in ("on_time_rate", "on_time_rate_extended", "rework_rate"):
        assert team[key] == stats[key], key
    assert (team["on_time_rate"], team["rework_rate"]) == (0.5, 0.25)


def test_periods_and_their_refusals(api, case_city, world):
    c = case_city
    for period in ("week", "month", "quarter"):
        body = board(api, c["admin"], period=period)
        start = datetime.fromisoformat(body["from"])
        assert start.astimezone(ZoneInfo(c["settings"].timezone)).time() == time(0)
    r = api.get("/api/v1/desk/workload", headers=c["admin"], params={"period": "decade"})
    assert r.status_code == 422 and "period" in r.text
    for who in ("worker1", "team_a", "planner"):
        for path in ("/api/v1/desk/workload", "/api/v1/desk/shift"):
            assert api.get(path, headers=c[who]).status_code == 403, (who, path)
    assert api.get("/api/v1/desk/workload").status_code == 401


# ------------------------------------------------------------------ the shift view


def shift(api, who: dict) -> dict:
    r = api.get("/api/v1/desk/shift", headers=who)
    assert r.status_code == 200, r.text
    return r.json()


def test_arrived_since_the_previous_sign_in(api, case_city):
    c, s = case_city, case_city["settings"]
    uid = user_id(s, "sup-s1")
    sql(
        s,
        "UPDATE auth_session SET created_at = now() - interval '6 hours' WHERE user_id = :u",
        u=uid,
    )
    with transaction(s) as conn:
        user = conn.execute(text("SELECT * FROM app_user WHERE id = :u"), {"u": uid})
        user = dict(user.mappings().one())
        phone = sessions.start(conn, user, s, "bearer")  # the same shift, on the phone
        conn.execute(
            text("UPDATE auth_session SET created_at = now() - interval '1 hour' WHERE id = :i"),
            {"i": phone.session_id},
        )
        grant = sessions.start(conn, user, s, "cookie")
    who = {"Authorization": "Bearer " + grant.access_token}
    old = case_at(api, c, "reported")
    old = report_time(s, old, "now() - interval '7 hours'")
    middle = case_at(api, c, "reported")  # in the previous shift: arrived since it began
    middle = report_time(s, middle, "now() - interval '3 hours'")
    new = [case_at(api, c, "reported") for _ in range(2)]
    report(api, c["worker2"], point=IN_GRID_2)  # another subdistrict's
    body = shift(api, who)
    with get_engine(s).connect() as conn:
        since = conn.execute(
            text("SELECT created_at FROM auth_session WHERE user_id = :u AND id NOT IN (:s, :p)"),
            {"u": uid, "s": grant.session_id, "p": phone.session_id},
        ).scalar_one()
    assert body["since_basis"] == "previous_session"
    assert datetime.fromisoformat(body["since"]) == since
    want = [x["id"] for x in raw_cases(s) if visible(x, "sub1_sup") and x["reported_at"] >= since]
    got = sorted(f["id"] for f in body["arrived"]["cases"])
    assert got == sorted(want) == sorted([*new, middle])
    assert body["arrived"]["total"] == 3
    # a first sign-in has no previous one: the last 12 hours
    first = shift(api, c["sub2_sup"])
    assert first["since_basis"] == "fallback"
    gap = datetime.fromisoformat(first["now"]) - datetime.fromisoformat(first["since"])
    assert gap == timedelta(hours=12)
    assert {f["unit_code"][:9] for f in first["arrived"]["cases"]} == {"410199002"}


def test_urged_cases_without_a_reply(api, case_city):
    c = case_city
    waiting, answered, _quiet = (case_at(api, c, "in_progress") for _ in range(3))
    for cid in (waiting, answered):
        assert act(api, c["sub1_sup"], cid, "urge", note="请加快").status_code == 200
    assert act(api, c["team_a"], answered, "reply", note="明天完成").status_code == 200
    assert act(api, c["sub1_sup"], answered, "urge", note="今天必须完成").status_code == 200
    assert act(api, c["team_a"], answered, "reply", note="好").status_code == 200
    body = shift(api, c["sub1_sup"])["urged_unreplied"]
    assert [f["id"] for f in body["cases"]] == [waiting] and body["total"] == 1
    assert body["cases"][0]["urges_unreplied"] == 1 and body["cases"][0]["urged_at"]
    assert shift(api, c["sub2_sup"])["urged_unreplied"]["total"] == 0


# ------------------------------------------------------------------ the prediction


def history(api, c, team: str, hours: list[float], category="environment.garbage") -> None:
    """Closed cases of subdistrict 1, dispatched to ``team``, each handled ``hours``
    after dispatch, closed within the last 90 days."""
    s = c["settings"]
    for i, h in enumerate(hours):
        cid = report(api, c["worker1"], category=category).json()["id"]
        sql(
            s,
            "UPDATE cases SET status = 'closed', team_id = :t, team_history = ARRAY[:t], "
            "accepted_at = now() - interval '30 days', "
            "dispatched_at = now() - interval '20 days', "
            "handled_at = now() - interval '20 days' + make_interval(secs => :h * 3600), "
            "closed_at = now() - interval '10 days' + make_interval(mins => :i), "
            "deadline_at = now() - interval '5 days' WHERE id = :id",
            t=c["teams"][team],
            h=h,
            i=i,
            id=cid,
        )


def test_likely_late_from_the_teams_own_history(api, case_city):
    c, s = case_city, case_city["settings"]
    hours = [10.0, 20.0, 30.0, 40.0, 50.0]
    history(api, c, "a", hours)
    history(api, c, "a", [100.0, 100.0])  # older than 90 days: not history
    sql(
        s,
        "UPDATE cases SET closed_at = now() - interval '91 days' WHERE id IN "
        "(SELECT id FROM cases ORDER BY id DESC LIMIT 2)",
    )
    p80 = float(np.percentile(hours, 80))  # linear, as percentile_cont: 42 h
    tight, loose, fresh = (case_at(api, c, "dispatched") for _ in range(3))
    sql(
        s,
        "UPDATE cases SET dispatched_at = now() - interval '1 hour', "
        "deadline_at = now() + make_interval(secs => :h * 3600) WHERE id = :i",
        h=p80 - 5,
        i=tight,
    )
    sql(
        s,
        "UPDATE cases SET dispatched_at = now() - interval '1 hour', "
        "deadline_at = now() + make_interval(secs => :h * 3600) WHERE id = :i",
        h=p80 + 5,
        i=loose,
    )
    sql(s, "UPDATE cases SET deadline_at = now() + interval '10 days' WHERE id = :i", i=fresh)
    # a category without history: no prediction, not listed however close its deadline
    other = case_at(api, c, "dispatched")
    sql(
        s,
        "UPDATE cases SET category_code = 'environment.ads', "
        "deadline_at = now() + interval '1 hour' WHERE id = :i",
        i=other,
    )
    body = shift(api, c["sub1_sup"])["likely_late"]
    listed = {f["id"]: f for f in body["cases"]}
    assert set(listed) == {tight}, listed.keys()
    item = listed[tight]
    assert item["basis"] == "team" and item["history_cases"] == len(hours)
    assert item["quantile_hours"] == pytest.approx(p80, abs=0.01)
    predicted = datetime.fromisoformat(item["predicted_at"])
    dispatched = datetime.fromisoformat(item["dispatched_at"])
    assert predicted - dispatched == pytest.approx(timedelta(hours=p80), abs=timedelta(seconds=1))
    assert predicted > datetime.fromisoformat(item["deadline_at"])
    assert fresh not in listed  # its deadline is days away
    # another team without its own history: the category across teams
    b = case_at(api, c, "accepted")
    assert act(api, c["sub1_sup"], b, "dispatch", team_id=c["teams"]["b"]).status_code == 200
    sql(
        s,
        "UPDATE cases SET dispatched_at = now(), deadline_at = now() + interval '30 hours' "
        "WHERE id = :i",
        i=b,
    )
    history(api, c, "b", [1.0])  # one case: too few for the team's own
    all_hours = [*hours, 1.0]
    body = shift(api, c["sub1_sup"])["likely_late"]
    item = next(f for f in body["cases"] if f["id"] == b)
    assert item["basis"] == "category" and item["history_cases"] == len(all_hours)
    assert item["quantile_hours"] == pytest.approx(float(np.percentile(all_hours, 80)), abs=0.01)
    # the other subdistrict's supervisor sees none of it
    assert shift(api, c["sub2_sup"])["likely_late"]["total"] == 0


# ------------------------------------------------------------------ saved searches

SAVED = "/api/v1/desk/saved-searches"


def test_saved_searches_are_per_user(api, case_city):
    c = case_city
    r = api.post(
        SAVED,
        headers=c["sub1_sup"],
        json={"name": "超期 东北", "query": "?offset=50&team_id=3&tab=overdue&status=handled"},
    )
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["query"] == "tab=overdue&status=handled&team_id=3"  # canonical, no position
    r = api.post(SAVED, headers=c["sub1_sup"], json={"name": "全部", "query": "tab="})
    assert r.status_code == 201 and r.json()["query"] == "tab="
    listed = api.get(SAVED, headers=c["sub1_sup"]).json()["saved_searches"]
    assert {x["name"] for x in listed} == {"超期 东北", "全部"}
    assert api.get(SAVED, headers=c["sub2_sup"]).json()["saved_searches"] == []
    again = api.post(SAVED, headers=c["sub1_sup"], json={"name": "超期 东北", "query": ""})
    assert again.status_code == 409 and again.json()["field"] == "name"
    # another user's: 404, and it stays
    r = api.delete(f"{SAVED}/{saved['id']}", headers=c["sub2_sup"])
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert len(api.get(SAVED, headers=c["sub1_sup"]).json()["saved_searches"]) == 2
    r = api.delete(f"{SAVED}/{saved['id']}", headers=c["sub1_sup"])
    assert r.status_code == 200 and r.json()["id"] == saved["id"]
    assert api.delete(f"{SAVED}/{saved['id']}", headers=c["sub1_sup"]).status_code == 404
    assert [x["name"] for x in api.get(SAVED, headers=c["sub1_sup"]).json()["saved_searches"]] == [
        "全部"
    ]
    for who in ("worker1", "team_a"):
        assert api.get(SAVED, headers=c[who]).status_code == 403
        r = api.post(SAVED, headers=c[who], json={"name": "x", "query": ""})
        assert r.status_code == 403


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("team_id=three", "query.team_id"),
        ("tab=sleeping", "query.tab"),
        ("status=sleeping", "query.status"),
        ("from=2026-02-30", "query.from"),
        ("colour=red", "query.colour"),
        ("unit=41&unit=42", "query.unit"),
    ],
)
def test_a_query_the_queue_would_refuse_is_refused_naming_the_field(api, case_city, query, field):
    c = case_city
    r = api.post(SAVED, headers=c["sub1_sup"], json={"name": "坏", "query": query})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert api.get(SAVED, headers=c["sub1_sup"]).json()["saved_searches"] == []
    # the queue itself refuses the same value
    if field in ("query.team_id", "query.status"):
        assert api.get("/api/v1/desk/queue?" + query, headers=c["sub1_sup"]).status_code == 422
    r = api.post(SAVED, headers=c["sub1_sup"], json={"name": "", "query": "tab=overdue"})
    assert r.status_code == 422 and r.json()["field"] == "name"
