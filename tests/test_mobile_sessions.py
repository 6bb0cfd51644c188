"""The phone's outbox across an access token that runs out and a sign-in that ends
(issue 14 item 3), in headless Chromium against a real server whose access tokens live
a few seconds (GIS_ACCESS_TOKEN_SECONDS). Reports queued offline are sent once each after
the token expired (renewed with the refresh token, RFC 6749 §6), and kept — never lost —
when the account's password changed meanwhile, then sent after the worker signs in again.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gis_service.auth.users import set_password
from gis_service.db.engine import get_engine, transaction
from tests.browser import browser_context, screenshot, server_process
from tests.conftest import make_user
from tests.test_mobile_browser import (
    GRID,
    fill_report,
    last_case_id,
    new_cases,
    phone,
    photo_file,
    queue_states,
    spots,  # noqa: F401  (the fixture)
)

LIFETIME = 10  # seconds an access token lives on this server
PASSWORD = "password-123"  # make_user's


@pytest.fixture(scope="module")
def short_server(demo_settings):
    with server_process(demo_settings, GIS_ACCESS_TOKEN_SECONDS=str(LIFETIME)) as (base, _):
        yield base


def sign_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/m/")
    page.wait_for_selector("[data-testid=login-username]")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_selector("[data-testid=tab-tasks]:visible")


def queue_offline(context, page, descriptions: list[str]) -> None:
    page.get_by_test_id("report-new").click()
    page.wait_for_selector("[data-testid=report-form]")
    context.set_offline(True)
    for n, description in enumerate(descriptions, 1):
        fill_report(page, description, [photo_file(300 + n)] if n == 1 else [])
        page.get_by_test_id("report-submit").click()
        page.wait_for_function(
            f"() => document.querySelectorAll('[data-testid=queue-item]').length === {n}"
        )
    assert queue_states(page) == ["queued"] * len(descriptions)


def session_of(page) -> dict:
    return page.evaluate("JSON.parse(localStorage.getItem('gis.m.session'))")


def wait_expired(page) -> None:
    """Until the phone's access token has run out (the phone's clock, as it decides)."""
    page.wait_for_function(
        "() => JSON.parse(localStorage.getItem('gis.m.session')).exp < Date.now() - 500",
        timeout=(LIFETIME + 10) * 1000,
    )


def refresh_tokens_of(settings, username: str) -> tuple[int, int]:
    """(refresh tokens issued, of them used) in the user's latest session (the phone's;
    make_user opened one before)."""
    with get_engine(settings).connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT count(*), count(r.used_at) FROM refresh_token r "
                    "JOIN auth_session s ON s.id = r.session_id "
                    "JOIN app_user u ON u.id = s.user_id WHERE u.username = :u "
                    "AND s.id = (SELECT max(id) FROM auth_session WHERE user_id = u.id)"
                ),
                {"u": username},
            ).one()
        )


def test_queued_reports_are_sent_once_after_the_access_token_expired(
    short_server,
    demo_settings,
    spots,  # noqa: F811  (the imported fixture)
):
    username = "gw-refresh"
    make_user(demo_settings, "grid_worker", scopes=[GRID], username=username)
    lon, lat = spots[-1]
    before = last_case_id(demo_settings)
    texts = ["过期后上报一", "过期后上报二", "过期后上报三"]
    with browser_context(**phone(lon, lat)) as (context, watch):
        page = context.new_page()
        sign_in(page, short_server, username)
        first = session_of(page)
        assert first["refresh"] and first["token"]
        queue_offline(context, page, texts)
        wait_expired(page)
        assert new_cases(demo_settings, before) == []
        context.set_offline(False)
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=queue-item]')]"
            ".every(e => e.dataset.state === 'sent')",
            timeout=30000,
        )
        renewed = session_of(page)
        assert renewed["refresh"] != first["refresh"] and renewed["token"] != first["token"]
        assert renewed["exp"] > first["exp"]
        # still signed in: the app did not ask for the password again
        assert page.get_by_test_id("login-form").count() == 0
        assert watch.external == []
    cases = new_cases(demo_settings, before)
    assert sorted(c["description"] for c in cases) == sorted(texts)
    assert all(c["username"] == username for c in cases)
    assert sorted(c["photos"] for c in cases) == [0, 0, 1]
    issued, used = refresh_tokens_of(demo_settings, username)
    assert used >= 1 and issued == used + 1  # rotated on each use, one left live


def test_an_ended_sign_in_keeps_the_queue_until_the_worker_signs_in_again(
    short_server,
    demo_settings,
    spots,  # noqa: F811  (the imported fixture)
):
    username = "gw-revoked"
    make_user(demo_settings, "grid_worker", scopes=[GRID], username=username)
    lon, lat = spots[-2]
    before = last_case_id(demo_settings)
    texts = ["改密后上报一", "改密后上报二"]
    with browser_context(**phone(lon, lat)) as (context, watch):
        page = context.new_page()
        sign_in(page, short_server, username)
        queue_offline(context, page, texts)
        with transaction(demo_settings) as conn:
            set_password(conn, username, "a-new-password-789")  # ends every sign-in
        context.set_offline(False)
        page.wait_for_selector("[data-testid=login-form]", timeout=30000)
        kept = page.get_by_test_id("login-kept")
        kept.wait_for()
        assert "2" in kept.inner_text()
        screenshot(page, "m-signin-kept-queue")
        assert new_cases(demo_settings, before) == []
        # nothing was thrown away: every report is still there, waiting
        states = page.evaluate(
            """() => new Promise((ok) => window.gisMobile.outbox.all().then(
                 (items) => ok(items.map((i) => i.state))))"""
        )
        assert len(states) == 2 and "sent" not in states
        page.get_by_test_id("login-username").fill(username)
        page.get_by_test_id("login-password").fill("a-new-password-789")
        page.get_by_test_id("login-submit").click()
        page.wait_for_selector("[data-testid=tab-tasks]:visible")
        page.get_by_test_id("tab-queue").click()
        page.wait_for_function(
            "() => { const q = [...document.querySelectorAll('[data-testid=queue-item]')];"
            " return q.length === 2 && q.every(e => e.dataset.state === 'sent'); }",
            timeout=30000,
        )
        assert watch.external == []
    cases = new_cases(demo_settings, before)
    assert sorted(c["description"] for c in cases) == sorted(texts)
