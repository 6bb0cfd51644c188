"""The notification API: the inbox (paged, unread count, mark read), preferences, webhook
subscriptions, the /healthz part; and the fan-out rules against the workflow's own lists."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gis_service.app import create_app
from gis_service.cases.workflow import ACTIONS, EVENTS, Action
from gis_service.db.engine import transaction
from gis_service.notify import rules
from gis_service.notify.fanout import fan_out_batch
from gis_service.notify.kinds import KINDS, PERSONAL_CHANNELS, REMINDER_KINDS, Kind
from gis_service.notify.sender import Sender
from tests.test_notify_sender import act, report


def fan_out(settings) -> None:
    with transaction(settings) as conn:
        fan_out_batch(conn, settings, 1000)


def test_every_kind_is_raised_by_a_rule_and_only_events_of_the_workflow_raise_them(
    settings,
) -> None:
    raised: set[Kind] = set(REMINDER_KINDS)
    for action in EVENTS:
        for data in ({}, {"passed": False}, {"score": 1}, {"to_level": "subdistrict"}):
            raised |= {k for k, _ in rules.event_kinds({"action": action, "data": data}, settings)}
    assert raised == set(KINDS)
    # a good rating, a passed check and a plain comment notify nobody
    for action, data in ((Action.rate, {"score": 5}), (Action.verify, {"passed": True})):
        assert rules.event_kinds({"action": action, "data": data}, settings) == []
    assert set(ACTIONS) <= set(EVENTS)


def test_the_inbox_pages_counts_the_unread_and_marks_read(case_city) -> None:
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        cases = [report(api, case_city["worker1"]) for _ in range(3)]
        fan_out(s)
        sup = case_city["sub1_sup"]
        r = api.get("/api/v1/notifications/unread", headers=sup)
        assert r.json() == {"unread": 3}
        page = api.get("/api/v1/notifications?limit=2", headers=sup).json()
        assert [i["case_id"] for i in page["items"]] == [cases[2]["id"], cases[1]["id"]]
        assert page["items"][0]["kind"] == "new_case" and page["unread"] == 3
        assert page["items"][0]["case_no"] == cases[2]["case_no"]
        assert page["items"][0]["title"].endswith(cases[2]["case_no"])
        rest = api.get(
            f"/api/v1/notifications?limit=2&before_id={page['next_before_id']}", headers=sup
        ).json()
        assert [i["case_id"] for i in rest["items"]] == [cases[0]["id"]]
        assert rest["next_before_id"] is None
        first = page["items"][0]["id"]
        r = api.post(f"/api/v1/notifications/{first}/read", headers=sup)
        assert r.status_code == 200 and r.json()["read_at"] is not None
        assert api.get("/api/v1/notifications/unread", headers=sup).json() == {"unread": 2}
        # someone else's notification is not in my inbox
        r = api.post(f"/api/v1/notifications/{first}/read", headers=case_city["district_sup"])
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        unread = api.get("/api/v1/notifications?unread=true", headers=sup).json()
        assert first not in [i["id"] for i in unread["items"]] and len(unread["items"]) == 2
        r = api.post("/api/v1/notifications/read-all", headers=sup)
        assert r.json() == {"marked": 2, "unread": 0}
        # the district supervisor's inbox is theirs, untouched
        assert api.get(
            "/api/v1/notifications/unread", headers=case_city["district_sup"]
        ).json() == {"unread": 3}
        # the reporter is the actor: never told of their own report
        assert api.get("/api/v1/notifications/unread", headers=case_city["worker1"]).json() == {
            "unread": 0
        }


def test_preferences_default_change_and_steer_the_channels(case_city) -> None:
    s = case_city["settings"]
    ta = case_city["team_a"]
    with TestClient(create_app(s)) as api:
        prefs = api.get("/api/v1/notifications/preferences", headers=ta).json()
        assert {c["channel"] for c in prefs["choices"]} == set(PERSONAL_CHANNELS)
        assert len(prefs["choices"]) == len(KINDS) * len(PERSONAL_CHANNELS)
        assert not any(c["chosen"] for c in prefs["choices"])
        assert prefs["quiet_hours"] == {"starts": "22:00", "ends": "07:00", "chosen": False}
        r = api.put(
            "/api/v1/notifications/preferences",
            headers=ta,
            json={
                "choices": [{"kind": "dispatched", "channel": "email", "enabled": False}],
                "quiet_hours": {"starts": "21:30", "ends": "06:45"},
            },
        )
        assert r.status_code == 200, r.text
        got = {(c["kind"], c["channel"]): c for c in r.json()["choices"]}
        assert got[("dispatched", "email")] == {
            "kind": "dispatched",
            "channel": "email",
            "enabled": False,
            "chosen": True,
        }
        assert r.json()["quiet_hours"] == {"starts": "21:30", "ends": "06:45", "chosen": True}
        r = api.put(
            "/api/v1/notifications/preferences",
            headers=ta,
            json={"choices": [{"kind": "birthday", "channel": "email", "enabled": True}]},
        )
        assert r.status_code == 422 and r.json()["field"] == "choices.0.kind"
        # the choice steers the fan-out: no e-mail for the dispatch, the inbox still has it
        with transaction(s) as conn:
            from sqlalchemy import text

            conn.execute(text("UPDATE app_user SET email = 'ta@example.org' WHERE username = 'ta'"))
        c = report(api, case_city["worker1"])
        act(api, case_city["sub1_sup"], c["id"], "accept")
        act(api, case_city["sub1_sup"], c["id"], "dispatch", team_id=case_city["teams"]["a"])
        fan_out(s)
        with transaction(s) as conn:
            from sqlalchemy import text

            email = conn.execute(
                text("SELECT count(*) FROM notify_delivery WHERE channel = 'email'")
            ).scalar_one()
        assert email == 0
        assert api.get("/api/v1/notifications/unread", headers=ta).json() == {"unread": 1}


def test_the_email_format_is_checked_by_the_schema(case_city) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), transaction(case_city["settings"]) as conn:
        conn.execute(text("UPDATE app_user SET email = 'not an address' WHERE username = 'ta'"))


def test_webhook_subscriptions_crud_for_admins_only(case_city) -> None:
    s = case_city["settings"]
    admin = case_city["admin"]
    with TestClient(create_app(s)) as api:
        r = api.post(
            "/api/v1/admin/webhooks",
            headers=admin,
            json={"name": "热线平台", "url": "http://127.0.0.1:9/hook", "kinds": ["overdue"]},
        )
        assert r.status_code == 201, r.text
        made = r.json()
        assert len(made["secret"]) >= 16
        hook_id = made["id"]
        listed = api.get("/api/v1/admin/webhooks", headers=admin).json()["webhooks"]
        assert [w["name"] for w in listed] == ["热线平台"] and "secret" not in listed[0]
        r = api.post(
            "/api/v1/admin/webhooks",
            headers=admin,
            json={"name": "热线平台", "url": "http://127.0.0.1:9/x"},
        )
        assert r.status_code == 409 and r.json()["field"] == "name"
        r = api.post(
            "/api/v1/admin/webhooks",
            headers=admin,
            json={"name": "x", "url": "ftp://127.0.0.1/x"},
        )
        assert r.status_code == 422 and r.json()["field"] == "url"
        r = api.post(
            "/api/v1/admin/webhooks",
            headers=admin,
            json={"name": "y", "url": "http://127.0.0.1:9/y", "kinds": ["weather"]},
        )
        assert r.status_code == 422 and r.json()["field"] == "kinds.0"
        r = api.put(f"/api/v1/admin/webhooks/{hook_id}", headers=admin, json={"active": False})
        assert r.status_code == 200 and r.json()["active"] is False
        # every admin route refuses a supervisor (the routes come from the app's OpenAPI)
        paths = [
            (
                method.upper(),
                "requestBody" in op,
                path.replace("{webhook_id}", str(hook_id)).replace(
                    "{delivery_id}", "00000000-0000-0000-0000-000000000000"
                ),
            )
            for path, ops in api.app.openapi()["paths"].items()
            if path.startswith(("/api/v1/admin/webhooks", "/api/v1/admin/notify"))
            for method, op in ops.items()
        ]
        assert len(paths) >= 7
        for method, takes_body, path in paths:
            body = {"json": {}} if takes_body else {}
            r = api.request(method, path, headers=case_city["sub1_sup"], **body)
            assert r.status_code == 403, (method, path, r.status_code)
        r = api.delete(f"/api/v1/admin/webhooks/{hook_id}", headers=admin)
        assert r.status_code == 200
        r = api.get(f"/api/v1/admin/webhooks/{hook_id}", headers=admin)
        assert r.status_code == 404


def test_healthz_shows_the_notifier(case_city) -> None:
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        before = api.get("/healthz").json()["notifier"]
        assert before["state"] == "not_running" and before["heartbeat_age_s"] is None
        Sender(s).run(once=True)
        after = api.get("/healthz").json()["notifier"]
    assert after["state"] == "running" and 0 <= after["heartbeat_age_s"] < 30
    assert (after["pending"], after["dead"]) == (0, 0)


def inbox_of(settings) -> set[tuple[str, str]]:
    from sqlalchemy import text

    with transaction(settings) as conn:
        return {
            (r.username, r.kind)
            for r in conn.execute(
                text(
                    "SELECT u.username, n.kind FROM notification n "
                    "JOIN app_user u ON u.id = n.user_id"
                )
            )
        }


def test_a_return_and_a_bad_rating_by_the_residents_link_reach_the_right_people(
    case_city,
) -> None:
    from sqlalchemy import text

    from gis_service.cases.actions import rate_by_link

    s = case_city["settings"]
    team = case_city["teams"]["a"]
    with TestClient(create_app(s)) as api:
        c = report(api, case_city["worker1"])
        act(api, case_city["sub1_sup"], c["id"], "accept")
        act(api, case_city["sub1_sup"], c["id"], "dispatch", team_id=team)
        act(api, case_city["team_a"], c["id"], "return", note="不属于本队职责")
    fan_out(s)
    assert inbox_of(s) == {
        ("sup-d", "new_case"),
        ("sup-s1", "new_case"),
        ("ta", "dispatched"),
        ("sup-d", "returned"),
        ("sup-s1", "returned"),
    }
    with transaction(s) as conn:  # closed (the check's path has its own tests)
        token = conn.execute(
            text(
                "UPDATE cases SET status = 'closed', closed_at = now(), team_id = :t, "
                "public_token = gen_random_uuid() WHERE id = :id RETURNING public_token::text"
            ),
            {"id": c["id"], "t": team},
        ).scalar_one()
        rate_by_link(conn, token, 1, "没人来处理")
    fan_out(s)
    bad = {who for who, kind in inbox_of(s) if kind == "rated_badly"}
    assert bad == {"sup-d", "sup-s1", "ta"}


def test_an_admin_sets_an_accounts_email_checked_for_its_shape(case_city) -> None:
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        users = api.get("/api/v1/admin/users", headers=case_city["admin"]).json()["users"]
        ta = next(u for u in users if u["username"] == "ta")
        assert ta["email"] is None
        r = api.patch(
            f"/api/v1/admin/users/{ta['id']}", headers=case_city["admin"], json={"email": "ta@"}
        )
        assert r.status_code == 422 and r.json()["field"] == "email"
        r = api.patch(
            f"/api/v1/admin/users/{ta['id']}",
            headers=case_city["admin"],
            json={"email": "ta@example.org"},
        )
        assert r.status_code == 200 and r.json()["email"] == "ta@example.org"
