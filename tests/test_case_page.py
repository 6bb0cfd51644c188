"""The case page (/desk/cases/{id}, issue 15 item 4) over HTTP, against the real PostGIS of
the test city: who gets the page, a sign-in redirect, 403 and the 404 page (the API's own
scope rule), nothing inline (the strict CSP), every asset it names served, both languages,
the reporter's contact for dispatchers only, and writes with the page cookie only when the
page's script sends them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gis_service.api.deps import PAGE_WRITE_HEADER, TOKEN_COOKIE
from gis_service.app import create_app
from gis_service.auth.principal import Role
from gis_service.cases.workflow import DISPATCHER
from gis_service.desk.case_page import lock_renew_ms
from tests.conftest import IN_GRID_2
from tests.test_cases import act, report
from tests.test_command_actions import sql

# one signed-in account per role of the test city (conftest.case_city)
BY_ROLE = {
    Role.admin: "admin",
    Role.supervisor: "sub1_sup",
    Role.grid_worker: "worker1",
    Role.team_member: "team_a",
    Role.planner: "planner",
}
PASSWORD = "password-123"  # conftest.make_user's


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


@pytest.fixture
def cases(api, case_city) -> dict[str, int]:
    """A case in subdistrict 1 (grid 1) and one in subdistrict 2."""
    c = case_city
    one = report(api, c["worker1"]).json()["id"]
    two = report(api, c["worker2"], point=IN_GRID_2).json()["id"]
    return {"one": one, "two": two}


def page(api, case_id: int, who: dict | None = None, **params):
    return api.get(
        f"/desk/cases/{case_id}", headers=who or {}, params=params, follow_redirects=False
    )


def test_signed_out_goes_to_the_sign_in_and_back(api, cases):
    r = page(api, cases["one"], lang="en")
    assert r.status_code == 303
    assert r.headers["location"] == f"/maps/login?next=/desk/cases/{cases['one']}%3Flang%3Den"


def test_dispatchers_get_the_page_and_other_roles_403(api, case_city, cases):
    for role, who in BY_ROLE.items():
        r = page(api, cases["one"], case_city[who])
        want = 200 if role in DISPATCHER else 403
        assert r.status_code == want, (role, r.status_code, r.text[:200])
        if want == 403:
            assert r.json()["error"] == "forbidden"
    assert set(BY_ROLE) >= DISPATCHER


def test_a_case_outside_the_scope_is_the_404_page_like_a_missing_one(api, case_city, cases):
    c = case_city
    outside = page(api, cases["two"], c["sub1_sup"])
    missing = page(api, 10**9, c["sub1_sup"])
    for r, case_id in ((outside, cases["two"]), (missing, 10**9)):
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert 'data-testid="not-found"' in r.text and str(case_id) in r.text
    # the API's rule says the same for every dispatcher, and the page follows it
    for who in ("admin", "district_sup", "sub1_sup", "sub2_sup"):
        for case_id in cases.values():
            api_status = api.get(f"/api/v1/cases/{case_id}", headers=c[who]).status_code
            assert page(api, case_id, c[who]).status_code == api_status, (who, case_id)
    r = page(api, 0, c["sub1_sup"])
    assert r.status_code == 422


def test_nothing_inline_and_every_asset_served(api, case_city, cases):
    r = page(api, cases["one"], case_city["sub1_sup"])
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp
    body = r.text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", body, re.S)
    assert scripts and all('src="' in attrs and not inner.strip() for attrs, inner in scripts)
    assert "<style" not in body and " style=" not in body
    assert not re.search(r"\son[a-z]+=", body), "inline event handler"
    sources = re.findall(r'(?:src|href)="([^"]+)"', body)
    assert all(s.startswith(("/", "tel:")) for s in sources), sources
    for src in sources:
        if src.startswith(("/static/", "/m/")):
            assert api.get(src).status_code == 200, src
    paths = {src.split("?")[0] for src in sources}
    assert {"/static/app/case.js", "/static/app/case.css"} <= paths
    config = re.search(r'data-config="([^"]+)"', body).group(1)
    assert f"&quot;case_id&quot;: {cases['one']}" in config
    renew = lock_renew_ms(case_city["settings"])
    assert f"&quot;lock_renew_ms&quot;: {renew}" in config
    assert 0 < renew < case_city["settings"].case_lock_seconds * 1000  # renewed before it ends
    # the desk's frame: the API through pagefetch.js, event labels from the phone's words
    assert {"/static/app/pagefetch.js", "/static/mobile/words.js"} <= paths
    case_no = api.get(f"/api/v1/cases/{cases['one']}", headers=case_city["sub1_sup"]).json()
    assert case_no["case_no"] in body


def test_both_languages(api, case_city, cases):
    who = case_city["sub1_sup"]
    zh = page(api, cases["one"], who)
    en = page(api, cases["one"], who, lang="en")
    assert '<html lang="zh-CN">' in zh.text and "处理过程" in zh.text
    assert "&quot;lang&quot;: &quot;zh&quot;" in zh.text
    assert '<html lang="en">' in en.text and "Timeline" in en.text and "处理过程" not in en.text
    assert "&quot;lang&quot;: &quot;en&quot;" in en.text
    # each links the other, and the way back to the queue keeps the language
    assert f'href="/desk/cases/{cases["one"]}?lang=en"' in zh.text
    assert 'href="/desk/?lang=en"' in en.text
    assert page(api, cases["one"], who, lang="fr").status_code == 422
    missing = page(api, 10**9, who, lang="en")
    assert missing.status_code == 404 and "No case" in missing.text


def test_the_reporters_contact_is_for_dispatchers_only(api, case_city, cases):
    c = case_city
    sql(c["settings"], "UPDATE app_user SET phone = '13800001111' WHERE username = 'gw1'")
    for who in ("admin", "sub1_sup", "district_sup"):
        body = api.get(f"/api/v1/cases/{cases['one']}", headers=c[who]).json()
        assert body["reporter"]["phone"] == "13800001111"
        assert body["reporter"]["id"] == body["reporter_id"]
        assert body["reporter"]["name"]
    body = api.get(f"/api/v1/cases/{cases['one']}", headers=c["worker1"]).json()
    assert body["reporter"] is None
    assert act(api, c["sub1_sup"], cases["one"], "accept").status_code == 200
    r = act(api, c["sub1_sup"], cases["one"], "dispatch", team_id=c["teams"]["a"])
    assert r.status_code == 200
    body = api.get(f"/api/v1/cases/{cases['one']}", headers=c["team_a"]).json()
    assert body["reporter"] is None and "13800001111" not in str(body)


def _signed_in(api, username: str) -> str:
    r = api.post(
        "/maps/login",
        data={"username": username, "password": PASSWORD, "next": "/desk/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    api.cookies.clear()
    return r.cookies[TOKEN_COOKIE]


def test_the_page_cookie_writes_only_with_the_pages_header(api, case_city, cases):
    """The page's forms post with the sign-in cookie and the page's header; the cookie
    alone, or from another origin or site, never writes (api/deps.py _own_page_write)."""
    cookie = {"Cookie": f"{TOKEN_COOKIE}={_signed_in(api, 'sup-s1')}"}
    name, value = PAGE_WRITE_HEADER
    page_header = {name: value}
    url = f"/api/v1/cases/{cases['one']}/actions"
    refused = [
        cookie,
        {**cookie, name: "other"},
        {**cookie, **page_header, "Origin": "http://evil.example"},
        {**cookie, **page_header, "Sec-Fetch-Site": "cross-site"},
        page_header,  # the header without a cookie
    ]
    for headers in refused:
        r = api.post(url, headers=headers, json={"action": "accept"})
        assert r.status_code == 401, (headers, r.text)
    status = api.get(f"/api/v1/cases/{cases['one']}", headers=cookie).json()["status"]
    assert status == "reported"  # nothing was written
    ok = {**cookie, **page_header, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    r = api.post(url, headers=ok, json={"action": "accept"})
    assert r.status_code == 200, r.text
    timeline = api.get(f"/api/v1/cases/{cases['one']}", headers=cookie).json()["timeline"]
    assert [e["action"] for e in timeline] == ["report", "accept"]
    # a stale form: the server's 409 names what is allowed now
    r = api.post(url, headers=ok, json={"action": "accept"})
    assert r.status_code == 409 and "dispatch" in r.json()["allowed"]


CASE_JS = Path(__file__).resolve().parents[1] / "gis_service" / "web" / "static" / "case.js"
#: gisApi("METHOD", url…) in case.js: BASE is the case's own address
CALL = re.compile(r'gisApi\("(GET|PUT|POST|DELETE)",\s*(BASE(?:\s*\+\s*"([^"?]*))?|"([^"?]*))')
PARAM = re.compile(r"\{[^}]*\}")


def _served(app) -> set[tuple[str, str]]:
    """(method, path with its parameters as ``{}``) of every route the app serves."""
    from fastapi.routing import iter_route_contexts

    return {
        (method, PARAM.sub("{}", ctx.path or ""))
        for ctx in iter_route_contexts(app.routes)
        for method in ctx.methods or ()
    }


def test_every_call_of_the_page_script_is_a_served_route(case_city):
    """What case.js asks the API for, read from its source, is each a route of the app
    (no stand-ins, no calls for routes that are not there): the lock, templates and team
    suggestions among them."""
    calls = set()
    for method, _, tail, path in CALL.findall(CASE_JS.read_text(encoding="utf-8")):
        url = "/api/v1/cases/{}" + tail if path == "" else path
        # a path built on in the script (…/units/ + code): the route's parameter
        calls.add((method, url + "{}" if url.endswith("/") else url))
    served = _served(create_app(case_city["settings"]))
    assert calls - served == set()
    for want in (
        ("PUT", "/api/v1/cases/{}/lock"),
        ("GET", "/api/v1/cases/{}/lock"),
        ("DELETE", "/api/v1/cases/{}/lock"),
        ("GET", "/api/v1/cases/{}/templates"),
        ("GET", "/api/v1/cases/{}/team-suggestions"),
        ("POST", "/api/v1/cases/{}/actions"),
        ("GET", "/api/v1/cases/{}"),
    ):
        assert want in calls, want
