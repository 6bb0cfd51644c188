"""What the notification pages stand on, without a browser: a channel the preferences
answer calls ``reachable`` is exactly one the fan-out delivers by (one rule, kinds.py
CHANNEL_ADDRESS), the unreachable ones carry their reason; the navigation's inbox list
links the page for the roles that may open it, and the page is one of the app's desk
pages (so tests/test_desk.py and tests/test_desk_browser.py enumerate it)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.auth.principal import Principal, Role
from gis_service.auth.users import update_user
from gis_service.db.engine import transaction
from gis_service.desk.nav import INBOX_PAGE, INBOX_PAGE_ROLES, nav_bar
from gis_service.notify.kinds import CHANNEL_MISSING, PERSONAL_CHANNELS, Kind
from gis_service.settings import Settings
from tests.test_desk import desk_pages
from tests.test_notify_api import fan_out
from tests.test_notify_sender import act, report

PREFS = "/api/v1/notifications/preferences"
#: addresses an account may hold, each combination tried
ADDRESSES = [
    {"email": None, "phone": None},
    {"email": "ta@example.org", "phone": None},
    {"email": None, "phone": "13800000002"},
    {"email": "ta@example.org", "phone": "13800000002"},
]


def test_reachable_channels_are_the_ones_the_fan_out_delivers_by(case_city) -> None:
    s, ta = case_city["settings"], case_city["team_a"]
    with TestClient(create_app(s)) as api:
        # every personal channel on for the dispatch, so only the address decides
        r = api.put(
            PREFS,
            headers=ta,
            json={
                "choices": [
                    {"kind": Kind.dispatched.value, "channel": c, "enabled": True}
                    for c in PERSONAL_CHANNELS
                ]
            },
        )
        assert r.status_code == 200, r.text
        for addresses in ADDRESSES:
            with transaction(s) as conn:
                update_user(conn, "ta", **addresses)
            prefs = api.get(PREFS, headers=ta).json()
            reachable = {ch["code"] for ch in prefs["channels"] if ch["reachable"]}
            for ch in prefs["channels"]:
                missing = CHANNEL_MISSING[ch["code"]]
                assert ch["unreachable_reason"] == (
                    None if ch["reachable"] else {"zh": missing[0], "en": missing[1]}
                )
            c = report(api, case_city["worker1"])
            act(api, case_city["sub1_sup"], c["id"], "accept")
            act(api, case_city["sub1_sup"], c["id"], "dispatch", team_id=case_city["teams"]["a"])
            fan_out(s)
            with transaction(s) as conn:
                sent = set(
                    conn.execute(
                        text(
                            "SELECT d.channel FROM notify_delivery d "
                            "JOIN notification n ON n.id = d.notification_id "
                            "JOIN app_user u ON u.id = n.user_id "
                            "WHERE u.username = 'ta' AND n.case_id = :c"
                        ),
                        {"c": c["id"]},
                    ).scalars()
                )
            assert sent == reachable, addresses


def test_the_inbox_list_links_the_page_for_its_roles() -> None:
    assert INBOX_PAGE in desk_pages(create_app(Settings()))
    for role in Role:
        nav = nav_bar(Principal(role=role, user_id=1), "zh", "desk", "/x?lang=en")
        assert (f'data-page="{INBOX_PAGE}"' in nav) is (role in INBOX_PAGE_ROLES), role
        nav = nav_bar(Principal(role=role, user_id=1), "en", "desk", "/x")
        assert (f'data-page="{INBOX_PAGE}?lang=en"' in nav) is (role in INBOX_PAGE_ROLES), role
    # no account, no inbox: an Open311 key's pages have neither badge nor link
    assert "data-page" not in nav_bar(Principal(role=Role.supervisor), "zh", "desk", "/x")
