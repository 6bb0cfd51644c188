"""Sessions that end (issue 14 item 3; OWASP API2, ASVS V3, RFC 6749 §6, RFC 9700).

Revocation is tried against the real server with two worker processes
(``gis-service serve --workers 2``), every request on a new connection, and the test
checks in pg_stat_activity that both worker processes answered; the throttle across a
two-worker server and a second server on the same database (so the failures are certainly
counted by different processes). Refresh rotation, reuse detection, sign-out and the
spraying limit run in-process.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.auth.users import set_active, set_password
from gis_service.db.engine import get_engine, transaction
from gis_service.tiles.basemap import lonlat_to_tile
from tests.browser import server_process
from tests.conftest import IN_GRID_1
from tests.images import image_bytes

PASSWORD = "password-123"  # make_user's
TRIES = 30  # requests per URL after a revocation, each on a new connection


def db_now(settings) -> datetime:
    with get_engine(settings).connect() as conn:
        return conn.execute(text("SELECT clock_timestamp()")).scalar_one()


def workers_active_since(proc, settings, since: datetime) -> set[int]:
    """The server's processes whose database connections did something since ``since``
    (pg_stat_activity's client port, matched to the process holding that socket)."""
    port_pid = {}
    for child in psutil.Process(proc.pid).children(recursive=True):
        for c in child.net_connections(kind="tcp"):
            if c.raddr and c.raddr.port == settings.db_port:
                port_pid[c.laddr.port] = child.pid
    with get_engine(settings).connect() as conn:
        ports = conn.execute(
            text(
                "SELECT client_port FROM pg_stat_activity WHERE datname = :d "
                "AND pid <> pg_backend_pid() AND state_change >= :t"
            ),
            {"d": settings.db_name, "t": since},
        ).scalars()
        return {port_pid[p] for p in ports if p in port_pid}


def sign_in(base: str, username: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": password}
    )


def page_cookie(base: str, username: str) -> dict[str, str]:
    """Sign in through the pages' form; the Cookie header its answer sets."""
    r = httpx.post(
        f"{base}/maps/login",
        data={"username": username, "password": PASSWORD, "next": "/maps/resolution"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/maps/resolution", r.text
    return {"Cookie": f"gis_token={r.cookies['gis_token']}"}


def reads_of(base: str, auth: dict[str, str]) -> tuple[list[str], list[str]]:
    """(API reads, page reads): a report with a photo by ``auth``, then the URLs that
    read it back: the list, the case, the photo, its tile; the supervisors' page."""
    r = httpx.post(
        f"{base}/api/v1/cases",
        headers=auth,
        data={
            "lon": str(IN_GRID_1[0]),
            "lat": str(IN_GRID_1[1]),
            "category": "environment.garbage",
            "description": "会话测试",
        },
        files={"photo": ("p.jpg", image_bytes(seed=3), "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    case_id, photo_id = r.json()["id"], r.json()["photos"][0]["id"]
    x, y = lonlat_to_tile(*IN_GRID_1, 15)
    api = [
        "/api/v1/auth/me",
        "/api/v1/cases",
        f"/api/v1/cases/{case_id}",
        f"/api/v1/cases/{case_id}/photos/{photo_id}",
        f"/tiles/cases/15/{x}/{y}.pbf",
    ]
    return api, [*api[1:], "/maps/resolution"]


def statuses(base: str, urls: list[str], headers: dict[str, str]) -> dict[str, Counter]:
    """Each URL ``TRIES`` times, each time on a new connection."""
    return {
        url: Counter(
            httpx.get(base + url, headers=headers, follow_redirects=False).status_code
            for _ in range(TRIES)
        )
        for url in urls
    }


@pytest.mark.parametrize("revoke", ["deactivate", "password"])
def test_revocation_ends_reads_on_every_worker_at_once(case_city, revoke):
    """A deactivation or password change (committed: the revoking request answered) ends
    the worker's bearer token and the supervisor's page cookie for every read that starts
    after it, on both worker processes; the refresh token is dead too."""
    s = case_city["settings"]
    with server_process(s, workers=2) as (base, proc):
        grant = sign_in(base, "gw1").json()
        bearer = {"Authorization": "Bearer " + grant["access_token"]}
        cookie = page_cookie(base, "sup-s1")
        api_reads, page_reads = reads_of(base, bearer)
        for url in api_reads:
            assert httpx.get(base + url, headers=bearer).status_code == 200, url
        for url in page_reads:
            assert httpx.get(base + url, headers=cookie).status_code == 200, url

        with transaction(s) as conn:
            for username in ("gw1", "sup-s1"):
                if revoke == "deactivate":
                    set_active(conn, username, False)
                else:
                    set_password(conn, username, "a-new-password-456")
        since = db_now(s)
        after = statuses(base, api_reads, bearer)
        assert after == {url: Counter({401: TRIES}) for url in api_reads}
        after = statuses(base, page_reads, cookie)
        # the page sends a signed-out viewer to its sign-in form
        assert after == {
            url: Counter({303 if url.startswith("/maps/") else 401: TRIES}) for url in page_reads
        }
        assert len(workers_active_since(proc, s, since)) == 2, "one worker answered everything"

        r = httpx.post(
            f"{base}/api/v1/auth/refresh",
            data={"grant_type": "refresh_token", "refresh_token": grant["refresh_token"]},
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        if revoke == "password":
            assert sign_in(base, "gw1").status_code == 401
            assert sign_in(base, "gw1", "a-new-password-456").status_code == 200


def test_sign_in_throttle_holds_across_worker_processes(case_city):
    """Five failures for one username from one address, sent to a two-worker server and a
    second server on the same database in turn: the sixth try is 429 on both, with
    Retry-After and our error body, even with the right password."""
    s = case_city["settings"]
    with server_process(s, workers=2) as (a, proc_a), server_process(s) as (b, _proc_b):
        since = db_now(s)
        for i in range(5):
            r = sign_in((a, b)[i % 2], "gw1", "wrong-password")
            assert r.status_code == 401, (i, r.text)
        for base in (a, b):
            r = sign_in(base, "gw1")
            assert r.status_code == 429 and r.json()["error"] == "too_many_attempts"
            assert 0 < int(r.headers["retry-after"]) <= 15 * 60
        # another username from the same address is not held by gw1's failures
        assert sign_in(a, "gw2").status_code == 200
        assert workers_active_since(proc_a, s, since), "server A answered nothing"


def test_password_spraying_from_one_address_is_held(case_city):
    """Failures for 20 distinct usernames from one address (a few tries each, under the
    per-username limit): every further sign-in from it is 429, whatever the username."""
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        for i in range(20):
            r = api.post("/api/v1/auth/token", data={"username": f"user{i}", "password": "x1"})
            assert r.status_code == 401, (i, r.text)
        r = api.post("/api/v1/auth/token", data={"username": "gw1", "password": PASSWORD})
        assert r.status_code == 429 and r.json()["error"] == "too_many_attempts"
        assert "address" in r.json()["detail"]
        assert 0 < int(r.headers["retry-after"]) <= s.sign_in_window_seconds
        # the pages' sign-in is held alike
        r = api.post(
            "/maps/login", data={"username": "gw1", "password": PASSWORD}, follow_redirects=False
        )
        assert r.status_code == 429


def test_old_failures_are_pruned_and_forgotten(case_city):
    s = case_city["settings"]
    with transaction(s) as conn:
        conn.execute(
            text(
                "INSERT INTO sign_in_failure (username, address, at) "
                "SELECT 'gw1', 'testclient', now() - make_interval(secs => :age) "
                "FROM generate_series(1, 5)"
            ),
            {"age": s.sign_in_window_seconds + 1},
        )
    with TestClient(create_app(s)) as api:
        # five old failures do not count …
        r = api.post("/api/v1/auth/token", data={"username": "gw1", "password": "wrong-pass"})
        assert r.status_code == 401
        # … and recording a new one removed them
        with get_engine(s).connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM sign_in_failure")).scalar() == 1


def refresh(api: TestClient, token: str):
    return api.post(
        "/api/v1/auth/refresh", data={"grant_type": "refresh_token", "refresh_token": token}
    )


def test_refresh_rotates_and_reuse_revokes_the_family(case_city):
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        first = api.post("/api/v1/auth/token", data={"username": "gw1", "password": PASSWORD})
        first = first.json()
        assert first["expires_in"] == s.access_token_seconds and first["refresh_token"]
        second = refresh(api, first["refresh_token"])
        assert second.status_code == 200, second.text
        second = second.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["user"]["username"] == "gw1" and second["token_type"] == "bearer"
        auth = {"Authorization": "Bearer " + second["access_token"]}
        assert api.get("/api/v1/cases", headers=auth).status_code == 200
        # the first refresh token again: refused, and the whole sign-in ends …
        r = refresh(api, first["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        assert "already used" in r.json()["detail"]
        # … its newest refresh token and its access tokens too
        assert refresh(api, second["refresh_token"]).status_code == 400
        assert api.get("/api/v1/cases", headers=auth).status_code == 401
        # other sign-ins of the same user are untouched
        other = api.post("/api/v1/auth/token", data={"username": "gw1", "password": PASSWORD})
        assert refresh(api, other.json()["refresh_token"]).status_code == 200


def test_refresh_refuses_what_is_not_a_live_refresh_token(case_city):
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        assert refresh(api, "not-a-token").json()["error"] == "invalid_grant"
        grant = api.post("/api/v1/auth/token", data={"username": "gw1", "password": PASSWORD})
        r = api.post(
            "/api/v1/auth/refresh",
            data={"grant_type": "password", "refresh_token": grant.json()["refresh_token"]},
        )
        assert r.status_code == 422 and r.json()["field"] == "grant_type"
        # an access token is not a refresh token
        assert refresh(api, grant.json()["access_token"][:200]).status_code == 400
        # a session past its end
        with transaction(s) as conn:
            conn.execute(text("UPDATE auth_session SET expires_at = now() - interval '1 s'"))
        r = refresh(api, grant.json()["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        auth = {"Authorization": "Bearer " + grant.json()["access_token"]}
        assert api.get("/api/v1/auth/me", headers=auth).status_code == 401


def test_sign_out_ends_the_sign_in_only(case_city):
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        phone = api.post("/api/v1/auth/token", data={"username": "gw1", "password": PASSWORD})
        desk = api.post("/api/v1/auth/token", data={"username": "gw1", "password": PASSWORD})
        auth = {"Authorization": "Bearer " + phone.json()["access_token"]}
        r = api.post("/api/v1/auth/sign-out", headers=auth)
        assert r.status_code == 200 and r.json() == {"signed_out": True}
        assert api.get("/api/v1/cases", headers=auth).status_code == 401
        assert api.post("/api/v1/auth/sign-out", headers=auth).status_code == 401
        assert refresh(api, phone.json()["refresh_token"]).status_code == 400
        other = {"Authorization": "Bearer " + desk.json()["access_token"]}
        assert api.get("/api/v1/cases", headers=other).status_code == 200


def test_a_report_after_sign_out_is_refused_whatever_it_carries(case_city):
    """A report checks the sign-in inside report_case() (one round trip) or, where it stops
    before that, first: after sign-out every kind of report — valid JSON, a payload the
    schema refuses, a bad Idempotency-Key, a point outside coverage, multipart with a photo
    — answers 401 with the sessions' own words, and no case is stored."""
    from gis_service.auth.sessions import ENDED

    s = case_city["settings"]
    report = {
        "lon": IN_GRID_1[0],
        "lat": IN_GRID_1[1],
        "category": "environment.garbage",
        "description": "签退后的上报",
    }
    with TestClient(create_app(s)) as api, get_engine(s).connect() as conn:
        grant = api.post("/api/v1/auth/token", data={"username": "gw1", "password": PASSWORD})
        auth = {"Authorization": "Bearer " + grant.json()["access_token"]}
        assert api.post("/api/v1/cases", json=report, headers=auth).status_code == 201
        assert api.post("/api/v1/auth/sign-out", headers=auth).status_code == 200
        count = "SELECT count(*) FROM cases WHERE description = :d"
        before = conn.execute(text(count), {"d": report["description"]}).scalar_one()
        attempts = [
            {"json": report},
            {"json": {**report, "category": ""}},
            {"json": report, "headers": {"Idempotency-Key": "bad key with spaces"}},
            {"json": {**report, "lon": 0.0, "lat": 0.0}},
            {
                "data": {k: str(v) for k, v in report.items()},
                "files": {"photo": ("p.jpg", image_bytes(seed=4), "image/jpeg")},
            },
        ]
        for attempt in attempts:
            headers = {**auth, **attempt.pop("headers", {})}
            r = api.post("/api/v1/cases", headers=headers, **attempt)
            assert r.status_code == 401, (attempt.keys(), r.text)
            assert r.json()["detail"] == ENDED, r.text
        after = conn.execute(text(count), {"d": report["description"]}).scalar_one()
        assert after == before


def test_page_logout_ends_the_cookie_session(case_city):
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        r = api.post(
            "/maps/login",
            data={"username": "sup-s1", "password": PASSWORD},
            follow_redirects=False,
        )
        cookie = {"Cookie": f"gis_token={r.cookies['gis_token']}"}
        api.cookies.clear()
        assert api.get("/api/v1/cases", headers=cookie).status_code == 200
        out = api.get("/maps/logout", headers=cookie, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/"  # the front door
        # the same cookie, kept by someone who copied it: refused
        assert api.get("/api/v1/cases", headers=cookie).status_code == 401
        r = api.get("/maps/resolution", headers=cookie, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/maps/login")
        # the pages' sign-out ends the page session only, never a bearer sent along
        grant = api.post("/api/v1/auth/token", data={"username": "gw1", "password": PASSWORD})
        bearer = {"Authorization": "Bearer " + grant.json()["access_token"]}
        assert api.get("/maps/logout", headers=bearer, follow_redirects=False).status_code == 303
        assert api.get("/api/v1/cases", headers=bearer).status_code == 200


def test_an_expired_access_token_is_renewed_by_the_refresh_token(case_city):
    s = case_city["settings"].model_copy(update={"access_token_seconds": 1})
    with TestClient(create_app(s)) as api:
        grant = api.post("/api/v1/auth/token", data={"username": "gw1", "password": PASSWORD})
        assert grant.json()["expires_in"] == 1
        auth = {"Authorization": "Bearer " + grant.json()["access_token"]}
        time.sleep(2.1)
        r = api.get("/api/v1/cases", headers=auth)
        assert r.status_code == 401 and "expired" in r.json()["detail"]
        renewed = refresh(api, grant.json()["refresh_token"])
        auth = {"Authorization": "Bearer " + renewed.json()["access_token"]}
        assert api.get("/api/v1/cases", headers=auth).status_code == 200


def test_sessions_that_ended_long_ago_are_pruned_at_sign_in(case_city):
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        old = api.post("/api/v1/auth/token", data={"username": "gw1", "password": PASSWORD})
        refresh(api, old.json()["refresh_token"])  # two refresh tokens in the session
        with transaction(s) as conn:
            conn.execute(
                text("UPDATE auth_session SET expires_at = now() - interval '2 days'"),
            )
            sessions_before = conn.execute(text("SELECT count(*) FROM auth_session")).scalar()
        api.post("/api/v1/auth/token", data={"username": "gw2", "password": PASSWORD})
    with get_engine(s).connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM auth_session")).scalar()
        tokens_left = conn.execute(text("SELECT count(*) FROM refresh_token")).scalar()
    assert sessions_before > 1 and (left, tokens_left) == (1, 1)  # only gw2's new one


def test_the_phone_takes_the_front_doors_sign_in_over(case_city):
    """POST /api/v1/auth/handoff (auth/sessions.py ``hand_off``): the page cookie, with our
    pages' write header, gets the phone app its own bearer session of the same account;
    the cookie alone, another site's request or no sign-in get nothing; the page session
    goes on, and ending the phone's session leaves the page's."""
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        r = api.post("/maps/login", data={"username": "gw1", "password": PASSWORD})
        cookie = {"Cookie": f"gis_token={r.history[0].cookies['gis_token']}"}
        api.cookies.clear()
        own = {"X-Requested-With": "XMLHttpRequest"}
        assert api.post("/api/v1/auth/handoff").status_code == 401
        assert api.post("/api/v1/auth/handoff", headers=cookie).status_code == 401
        foreign = {**cookie, **own, "Origin": "https://evil.example"}
        assert api.post("/api/v1/auth/handoff", headers=foreign).status_code == 401
        r = api.post("/api/v1/auth/handoff", headers={**cookie, **own})
        assert r.status_code == 200, r.text
        grant = r.json()
        assert grant["user"]["username"] == "gw1" and grant["refresh_token"]
        bearer = {"Authorization": "Bearer " + grant["access_token"]}
        assert api.get("/api/v1/auth/me", headers=bearer).json()["username"] == "gw1"
        assert api.post("/api/v1/auth/sign-out", headers=bearer).status_code == 200
        assert api.get("/api/v1/auth/me", headers=bearer).status_code == 401
        assert api.get("/api/v1/cases", headers=cookie).status_code == 200  # the page's goes on
        renewed = api.post(
            "/api/v1/auth/refresh",
            data={"grant_type": "refresh_token", "refresh_token": grant["refresh_token"]},
        )
        assert renewed.status_code == 400  # the phone's session ended with its sign-out
