"""The command desk's queue API (issue 15 item 2) and the front door (item 1), against the
real PostGIS of the test city. Each tab's membership is checked against an oracle written
here from the cases' own answers (GET /api/v1/cases/{id}), not from cases/desk.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from gis_service.app import create_app
from gis_service.cases.desk import TABS
from gis_service.cases.workflow import DEADLINE_STATUSES, OPEN_STATUSES, Status
from gis_service.desk.nav import HOMES
from gis_service.units.codes import level_of
from tests.conftest import IN_GRID_2, make_user
from tests.test_cases import act, photo, report
from tests.test_command_actions import case_at, sql

SCOPES = {"sub1_sup": ["410199001"], "sub2_sup": ["410199002"], "district_sup": ["410199"]}
DESKS = ("admin", "district_sup", "sub1_sup", "sub2_sup")


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


@pytest.fixture
def world(api, case_city) -> list[int]:
    """Cases in every tab in subdistrict 1, and some in subdistrict 2: reported,
    accepted, dispatched, in progress, handled, returned, escalated, overdue, near the
    deadline, parked and closed ends."""
    c = case_city
    ids = [case_at(api, c, s) for s in ("reported", "accepted", "dispatched", "in_progress")]
    handled = case_at(api, c, "in_progress")
    assert photo(api, c["team_a"], handled).status_code == 201
    assert act(api, c["team_a"], handled, "handle", note="清理完毕").status_code == 200
    returned = case_at(api, c, "dispatched")
    assert act(api, c["team_a"], returned, "return", note="不归我们").status_code == 200
    escalated = case_at(api, c, "accepted")
    assert act(api, c["sub1_sup"], escalated, "escalate", note="需要街道").status_code == 200
    late, near, parked = (case_at(api, c, "dispatched") for _ in range(3))
    now = datetime.now(UTC)
    sql(c["settings"], "UPDATE cases SET deadline_at = :t WHERE id = :id", t=now, id=late)
    sql(
        c["settings"],
        "UPDATE cases SET accepted_at = :a, deadline_at = :d WHERE id = :id",
        a=now - timedelta(hours=20),
        d=now + timedelta(hours=2),
        id=near,
    )
    review = (now + timedelta(days=3)).date().isoformat()
    r = act(api, c["sub1_sup"], parked, "park", note="待规划", review_on=review)
    assert r.status_code == 200, r.text
    rejected = case_at(api, c, "reported")
    assert act(api, c["sub1_sup"], rejected, "reject", note="不是问题").status_code == 200
    other = [report(api, c["worker2"], point=IN_GRID_2).json()["id"] for _ in range(2)]
    assert act(api, c["sub2_sup"], other[1], "accept").status_code == 200
    return [*ids, handled, returned, escalated, late, near, parked, rejected, *other]


def in_tab(tab: str, case: dict, who: str, share: float) -> bool:
    """The oracle: the tab's rule from docs and the case's answer."""
    status, now = case["status"], datetime.now(UTC)
    deadline = case["deadline_at"] and datetime.fromisoformat(case["deadline_at"])
    if tab == "to_accept":
        return status == Status.reported
    if tab == "to_dispatch":
        return status == Status.accepted
    if tab == "in_progress":
        return status in (Status.dispatched, Status.in_progress)
    if tab == "to_verify":
        return status == Status.handled
    if tab == "returned":
        return status == Status.accepted and case["returned"] is not None
    if tab == "escalated":
        levels = {level_of(s).value for s in SCOPES.get(who, [])}
        return (
            case["escalation_count"] > 0
            and status in OPEN_STATUSES
            and (who == "admin" or case["handling_level"] in levels)
        )
    if tab == "overdue":
        return case["overdue"]
    if tab == "near_deadline":
        if status not in DEADLINE_STATUSES or case["overdue"] or not deadline:
            return False
        start = datetime.fromisoformat(case["accepted_at"] or case["reported_at"])
        return deadline - now <= share * (deadline - start)
    raise KeyError(tab)


def visible_cases(api, who: dict) -> list[dict]:
    r = api.get("/api/v1/cases", headers=who, params={"limit": 1000})
    assert r.status_code == 200, r.text
    return [f["properties"] for f in r.json()["features"]]


def queue_ids(api, who: dict, **params) -> list[int]:
    r = api.get("/api/v1/desk/queue", headers=who, params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberMatched"] == len(body["features"])
    return [f["id"] for f in body["features"]]


def test_every_tab_holds_its_cases_in_every_scope(api, case_city, world):
    c, share = case_city, case_city["settings"].desk_near_deadline_share
    seen_tabs = set()
    for who in DESKS:
        cases = visible_cases(api, c[who])
        counts = api.get("/api/v1/desk/counts", headers=c[who]).json()
        for tab in TABS:
            want = {x["id"] for x in cases if in_tab(tab, x, who, share)}
            got = queue_ids(api, c[who], tab=tab)
            assert set(got) == want, (who, tab)
            assert len(got) == len(set(got))
            assert counts["tabs"][tab] == len(want), (who, tab)
            seen_tabs |= {tab} if want else set()
        assert counts["open"] == sum(x["status"] in OPEN_STATUSES for x in cases)
        assert set(queue_ids(api, c[who])) == {x["id"] for x in cases}
    assert seen_tabs == set(TABS), f"the world leaves tabs empty: {set(TABS) - seen_tabs}"


def test_a_subdistrict_supervisor_never_sees_another_subdistricts_cases(api, case_city, world):
    c = case_city
    for who, scope in (("sub1_sup", "410199001"), ("sub2_sup", "410199002")):
        ids = queue_ids(api, c[who])
        assert ids
        units = {f["unit_code"] for f in visible_cases(api, c[who]) if f["id"] in ids}
        assert all(u.startswith(scope) for u in units), (who, units)
        for tab in TABS:
            r = api.get("/api/v1/desk/queue", headers=c[who], params={"tab": tab, "limit": 1000})
            assert all(f["properties"]["unit_code"].startswith(scope) for f in r.json()["features"])
    # subdistrict 2's two reports: one waits for acceptance, one for dispatch
    two = api.get("/api/v1/desk/counts", headers=c["sub2_sup"]).json()["tabs"]
    assert (two["to_accept"], two["to_dispatch"], two["in_progress"]) == (1, 1, 0)
    one = api.get("/api/v1/desk/counts", headers=c["sub1_sup"]).json()["tabs"]
    assert one["in_progress"] >= 3 and one["to_accept"] == 1


def test_most_urgent_first_and_paged_on_the_server(api, case_city, world):
    c = case_city
    ids = queue_ids(api, c["sub1_sup"])
    by_id = {x["id"]: x for x in visible_cases(api, c["sub1_sup"])}
    deadlines = [by_id[i]["deadline_at"] for i in ids]
    dated = [datetime.fromisoformat(d) for d in deadlines if d]
    assert dated == sorted(dated) and len(dated) > 2
    assert all(d is None for d in deadlines[len(dated) :]), "cases without a deadline come last"
    pages, offset = [], 0
    while True:
        r = api.get(
            "/api/v1/desk/queue", headers=c["sub1_sup"], params={"limit": 3, "offset": offset}
        )
        body = r.json()
        assert body["numberMatched"] == len(ids) and body["numberReturned"] <= 3
        if not body["features"]:
            break
        pages += [f["id"] for f in body["features"]]
        offset += 3
    assert pages == ids


def test_filters_narrow_the_queue_and_its_counts(api, case_city, world):
    c = case_city
    team = c["teams"]["a"]
    cases = visible_cases(api, c["admin"])
    want = {x["id"] for x in cases if x["team_id"] == team}
    assert want and set(queue_ids(api, c["admin"], team_id=team)) == want
    unit = "410199002"
    in_unit = {x["id"] for x in cases if x["unit_code"].startswith(unit)}
    assert set(queue_ids(api, c["admin"], unit=unit)) == in_unit
    counts = api.get("/api/v1/desk/counts", headers=c["admin"], params={"unit": unit}).json()
    assert counts["open"] == len(in_unit)
    one = cases[0]
    assert queue_ids(api, c["admin"], q=one["case_no"]) == [one["id"]]
    mine = {x["id"] for x in cases if x["status"] in ("handled", "parked")}
    assert set(queue_ids(api, c["admin"], status=["handled", "parked"])) == mine


def test_counts_carry_an_etag_and_move_when_a_case_arrives(api, case_city, world):
    c = case_city
    first = api.get("/api/v1/desk/counts", headers=c["sub1_sup"])
    etag = first.headers["etag"]
    again = api.get("/api/v1/desk/counts", headers={**c["sub1_sup"], "If-None-Match": etag})
    assert again.status_code == 304 and not again.content
    report(api, c["worker1"])
    moved = api.get("/api/v1/desk/counts", headers={**c["sub1_sup"], "If-None-Match": etag})
    assert moved.status_code == 200 and moved.headers["etag"] != etag
    assert moved.json()["tabs"]["to_accept"] == first.json()["tabs"]["to_accept"] + 1
    # a report in the other subdistrict moves nothing sub1 sees... except nothing: same tag
    now = moved.headers["etag"]
    report(api, c["worker2"], point=IN_GRID_2)
    same = api.get("/api/v1/desk/counts", headers={**c["sub1_sup"], "If-None-Match": now})
    assert same.status_code == 304


def test_approvals_waiting_are_the_inboxs(api, case_city, world):
    c = case_city
    cid = case_at(api, c, "dispatched")
    r = act(api, c["team_a"], cid, "extend", note="材料未到", extension_hours=24)
    assert r.status_code == 200, r.text
    for who in DESKS:
        inbox = api.get("/api/v1/approvals", headers=c[who]).json()["total"]
        assert api.get("/api/v1/desk/counts", headers=c[who]).json()["approvals"] == inbox
    assert api.get("/api/v1/desk/counts", headers=c["district_sup"]).json()["approvals"] == 1


@pytest.mark.parametrize("who", ["worker1", "team_a", "planner"])
def test_the_desk_is_for_dispatchers(api, case_city, who):
    for path in ("/api/v1/desk/queue", "/api/v1/desk/counts"):
        r = api.get(path, headers=case_city[who])
        assert r.status_code == 403 and r.json()["error"], (who, path)
    assert api.get("/api/v1/desk/queue").status_code == 401


def test_bad_filters_are_named(api, case_city):
    c = case_city
    r = api.get("/api/v1/desk/queue", headers=c["admin"], params={"tab": "nonsense"})
    assert r.status_code == 422 and "tab" in r.text
    r = api.get("/api/v1/desk/counts", headers=c["admin"], params={"status": "sleeping"})
    assert r.status_code == 422 and r.json()["field"] == "status"


def sign_in(api, username: str, password: str = "password-123"):
    return api.post(
        "/maps/login",
        data={"username": username, "password": password, "next": "/"},
        follow_redirects=False,
    )


def test_the_front_door_signs_in_and_opens_each_roles_page(api, case_city):
    s = case_city["settings"]
    page = api.get("/")
    assert page.status_code == 200 and 'name="next" value="/"' in page.text
    assert 'lang="zh"' in page.text and "登录" in page.text
    assert "Sign in" in api.get("/", params={"lang": "en"}).text
    for role, home in HOMES.items():
        name = f"door-{role.value}"
        extra = {"team_id": case_city["teams"]["a"]} if role.value == "team_member" else {}
        scopes = {"admin": None, "team_member": None, "grid_worker": ["41019900100101"]}.get(
            role.value, ["410199001"]
        )
        make_user(s, role.value, scopes=scopes, username=name, **extra)
        with TestClient(create_app(s)) as browser:
            r = sign_in(browser, name)
            assert r.status_code == 303 and r.headers["location"] == "/"
            r = browser.get("/", follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == home, role
            if home == "/maps/coverage":
                continue  # needs a walking network, which the test city has none of
            landed = browser.get(home)
            assert landed.status_code == 200, (role, landed.text[:200])
            if home == "/desk/":
                assert 'data-testid="nav-desk"' in landed.text
    bad = sign_in(api, "door-admin", "wrong-password")
    assert bad.status_code == 303 and "error=1" in bad.headers["location"]


def test_sign_in_never_leaves_the_site(api, case_city):
    make_user(case_city["settings"], "admin", username="door-away")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        r = api.post(
            "/maps/login",
            data={"username": "door-away", "password": "password-123", "next": target},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/maps/resolution", target


#: a value for each path parameter of a page (a page with a new one fails until added)
PAGE_PARAMS = {"case_id": lambda c, api: report(api, c["worker1"]).json()["id"]}


def desk_pages(app) -> list[str]:
    """Every HTML page of the desk and the admin, enumerated from the app's routes."""
    from tests.test_scope_matrix import _data_routes

    return sorted(p for p in _data_routes(app) if p.startswith(("/desk/", "/admin/")))


def test_every_desk_page_signs_in_first_and_is_for_its_roles(api, case_city):
    """Generated from the app: each desk and admin page sends the signed-out to the
    sign-in (this page as ``next``), refuses a grid worker (403, our error body) and
    opens for an admin, in both languages, with no inline script or style."""
    c = case_city
    pages = desk_pages(api.app)
    assert "/desk/" in pages and "/desk/approvals" in pages
    s = c["settings"]
    make_user(s, "admin", username="pages-admin")
    make_user(s, "grid_worker", scopes=["41019900100101"], username="pages-worker")
    for template in pages:
        path = template
        for name in [p[1:-1] for p in template.split("/") if p.startswith("{")]:
            assert name in PAGE_PARAMS, f"{template}: add an example for {{{name}}}"
            path = path.replace(f"{{{name}}}", str(PAGE_PARAMS[name](c, api)))
        with TestClient(create_app(s)) as browser:
            r = browser.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/maps/login?next=")
            sign_in(browser, "pages-worker")
            r = browser.get(path, follow_redirects=False)
            assert r.status_code == 403, (path, r.status_code)
        with TestClient(create_app(s)) as browser:
            sign_in(browser, "pages-admin")
            for lang, word in (("zh", 'lang="zh-CN"'), ("en", 'lang="en"')):
                r = browser.get(path, params={"lang": lang})
                assert r.status_code == 200 and word in r.text, (path, lang, r.text[:300])
                assert "<script>" not in r.text and " style=" not in r.text, path
