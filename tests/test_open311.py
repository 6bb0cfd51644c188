"""Open311 GeoReport v2 at /open311/v2 against the real PostGIS of the test city: the same
cases as our own API, in JSON and XML, limited to each api_key's jurisdiction."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from gis_service.app import create_app
from gis_service.cli.main import app as cli_app
from gis_service.db.engine import get_engine, transaction
from gis_service.errors import Conflict, InvalidInput, NotFound
from gis_service.open311 import keys
from gis_service.open311 import service as open311_service
from tests import history
from tests.conftest import IN_GRID_1, IN_GRID_2
from tests.test_cases import act, count, photo, report

V2 = "/open311/v2"
OUTSIDE = (112.5, 33.5)


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


def make_key(settings, name: str = "hotline", scope: str | None = None) -> str:
    with transaction(settings) as conn:
        return keys.create_key(conn, name, scope)[1]


def post(
    api,
    key: str | None,
    point=IN_GRID_1,
    code: str = "environment.garbage",
    fmt: str = "json",
    key_in: str = "form",
    headers=None,
    **fields,
):
    data = {
        "service_code": code,
        "lat": point[1],
        "long": point[0],
        "description": "小区门口垃圾无人清运",
        **fields,
    }
    params = {}
    if key is not None:
        (data if key_in == "form" else params)["api_key"] = key
    return api.post(
        f"{V2}/requests.{fmt}",
        data={k: v for k, v in data.items() if v is not None},
        params=params,
        headers=headers or {},
    )


def case_row(settings, case_no: str):
    with get_engine(settings).connect() as conn:
        return (
            conn.execute(text("SELECT * FROM cases WHERE case_no = :n"), {"n": case_no})
            .mappings()
            .first()
        )


def assert_error(r, status: int, fragment: str = "", fmt: str = "json") -> str:
    """The GeoReport error list with the same status; returns the description."""
    assert r.status_code == status, r.text
    if fmt == "xml":
        assert r.headers["content-type"] == "text/xml; charset=utf-8"
        root = ET.fromstring(r.content)
        assert root.tag == "errors"
        [error] = root.findall("error")
        assert error.findtext("code") == str(status)
        description = error.findtext("description") or ""
    else:
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        [error] = r.json()
        assert set(error) == {"code", "description"} and error["code"] == status
        description = error["description"]
    assert fragment in description, description
    return description


def ids(r) -> set[str]:
    assert r.status_code == 200, r.text
    return {item["service_request_id"] for item in r.json()}


# --- services ---------------------------------------------------------------------------


def test_services_in_json_and_xml_in_chinese_and_english(api):
    r = api.get(f"{V2}/services.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert "垃圾堆放".encode() in r.content  # UTF-8, not \u-escaped
    services = r.json()
    by_code = {s["service_code"]: s for s in services}
    assert all("." in code for code in by_code)  # sub-categories only, no domains
    garbage = by_code["environment.garbage"]
    assert garbage["service_name"] == "垃圾堆放" and garbage["group"] == "环境卫生"
    assert garbage["metadata"] is False and garbage["type"] == "realtime"
    assert "24小时" in garbage["description"]
    assert "Piled-up rubbish" in garbage["keywords"] and "垃圾堆放" in garbage["keywords"]
    assert list(garbage) == [
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    ]

    english = {
        s["service_code"]: s for s in api.get(f"{V2}/services.json", params={"locale": "en"}).json()
    }
    assert english["environment.garbage"]["service_name"] == "Piled-up rubbish"
    assert english["environment.garbage"]["group"] == "Environment and sanitation"
    r = api.get(f"{V2}/services.json", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert {s["service_name"] for s in r.json()} == {s["service_name"] for s in english.values()}
    r = api.get(f"{V2}/services.json", headers={"Accept-Language": "zh-CN,en;q=0.5"})
    assert r.json() == services

    r = api.get(f"{V2}/services.xml")
    assert r.status_code == 200 and r.headers["content-type"] == "text/xml; charset=utf-8"
    assert r.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(r.content)
    assert root.tag == "services"
    items = root.findall("service")
    assert [s.findtext("service_code") for s in items] == [s["service_code"] for s in services]
    xml_garbage = next(s for s in items if s.findtext("service_code") == "environment.garbage")
    assert xml_garbage.findtext("service_name") == "垃圾堆放"
    assert xml_garbage.findtext("metadata") == "false"
    assert xml_garbage.findtext("group") == "环境卫生"


def test_inactive_categories_are_not_services(api, case_city):
    engine = get_engine(case_city["settings"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE case_category SET active = false WHERE code = 'environment.ads'"))
    try:
        codes = {s["service_code"] for s in api.get(f"{V2}/services.json").json()}
        assert "environment.ads" not in codes and "environment.garbage" in codes
        assert_error(api.get(f"{V2}/services/environment.ads.json"), 404)
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE case_category SET active = true WHERE code = 'environment.ads'")
            )


def test_service_definition_and_unknown_codes(api):
    r = api.get(f"{V2}/services/environment.garbage.json")
    assert r.status_code == 200
    assert r.json() == {"service_code": "environment.garbage", "attributes": []}
    r = api.get(f"{V2}/services/environment.garbage.xml")
    root = ET.fromstring(r.content)
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "environment.garbage"
    assert root.find("attributes") is not None and len(root.find("attributes")) == 0

    assert_error(api.get(f"{V2}/services/no.such.json"), 404, "no.such")
    assert_error(api.get(f"{V2}/services/environment.json"), 404)  # a domain, not a service
    assert_error(api.get(f"{V2}/services/no_such.xml"), 404, "no_such", fmt="xml")
    assert_error(api.get(f"{V2}/services.csv"), 404, ".json or .xml")


# --- POST requests ----------------------------------------------------------------------


def test_post_with_the_key_in_the_form_body(api, case_city):
    s = case_city["settings"]
    key = make_key(s)
    r = post(
        api,
        key,
        address_string="经八路1号",
        email="li@example.com",
        first_name="丽",
        last_name="李",
        phone="13800000000",
        device_id="dev-1",
        account_id="acc-9",
        media_url="https://example.com/p.jpg",
    )
    assert r.status_code == 201, r.text
    [body] = r.json()
    no = body["service_request_id"]
    assert body["token"] == no and body["account_id"] is None and no in body["service_notice"]
    row = case_row(s, no)
    assert row is not None and row["source"] == "open311"
    with get_engine(s).connect() as conn:
        client_id = conn.execute(
            text("SELECT id FROM open311_client WHERE name = 'hotline'")
        ).scalar_one()
    assert row["client_id"] == client_id and row["reporter_id"] is None
    assert row["category_code"] == "environment.garbage"
    assert row["unit_code"] == "41019900100101" and row["address"] == "经八路1号"
    assert row["description"] == "小区门口垃圾无人清运"
    assert row["attrs"] == {
        "email": "li@example.com",
        "first_name": "丽",
        "last_name": "李",
        "phone": "13800000000",
        "device_id": "dev-1",
        "account_id": "acc-9",
        "media_url": "https://example.com/p.jpg",
    }
    # Without a photo of ours, the client's own media_url is what requests show.
    [req] = api.get(f"{V2}/requests/{no}.json", params={"api_key": key}).json()
    assert req["media_url"] == "https://example.com/p.jpg"


def test_post_with_the_key_in_the_query_string_multipart_and_xml(api, case_city):
    s = case_city["settings"]
    key = make_key(s)
    r = api.post(
        f"{V2}/requests.xml",
        params={"api_key": key},
        data={
            "service_code": "public_order.noise",
            "lat": str(IN_GRID_2[1]),
            "long": str(IN_GRID_2[0]),
            "description": "夜间施工噪音",
        },
        files={"media": ("x.txt", b"ignored", "text/plain")},
    )
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(r.content)
    assert root.tag == "service_requests"
    [item] = root.findall("request")
    no = item.findtext("service_request_id")
    assert item.findtext("token") == no and item.find("account_id") is not None
    row = case_row(s, no)
    assert row["source"] == "open311" and row["client_id"] is not None
    assert row["unit_code"] == "41019900200101" and row["category_code"] == "public_order.noise"


def test_idempotency_key_retries_make_one_case(api, case_city):
    key = make_key(case_city["settings"])
    first = post(api, key, headers={"Idempotency-Key": "abc-1"})
    again = post(api, key, headers={"Idempotency-Key": "abc-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]
    assert count(case_city["settings"], "cases") == 1
    assert post(api, key, headers={"Idempotency-Key": "abc-2"}).status_code == 201
    assert count(case_city["settings"], "cases") == 2


def test_bad_missing_and_revoked_keys_get_403(api, case_city):
    s = case_city["settings"]
    key = make_key(s)
    assert_error(post(api, "not-a-key"), 403, "invalid api_key")
    assert_error(post(api, None), 403, "api_key is required")
    assert_error(post(api, "not-a-key", fmt="xml"), 403, "invalid api_key", fmt="xml")
    # Reads need no key (the public view: test_open311_public.py), but a key that is sent
    # must be good: a wrong one is refused, never read as anonymous.
    assert api.get(f"{V2}/requests.json").status_code == 200
    assert_error(api.get(f"{V2}/requests.json", params={"api_key": "nope"}), 403, "invalid")
    assert_error(api.get(f"{V2}/requests/x.xml", params={"api_key": "nope"}), 403, fmt="xml")
    assert_error(api.get(f"{V2}/tokens/x.json", params={"api_key": "nope"}), 403)
    # The key in the form body does not authorise reads: GET takes it from the query.
    assert api.get(f"{V2}/requests.json", params={"api_key": key}).status_code == 200
    with transaction(s) as conn:
        revoked = keys.revoke_key(conn, "hotline")
    assert revoked["revoked_at"] is not None
    assert_error(post(api, key), 403, "revoked")
    assert_error(api.get(f"{V2}/requests.json", params={"api_key": key}), 403, "revoked")
    assert count(s, "cases") == 0


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"lat": OUTSIDE[1], "long": OUTSIDE[0]}, "outside every district"),
        ({"service_code": "no.such"}, "unknown service_code 'no.such'"),
        ({"service_code": "environment"}, "unknown service_code"),
        ({"service_code": ""}, "service_code is required"),
        ({"lat": None, "long": None, "address_string": "经八路1号"}, "lat/long required"),
        ({"lat": None, "long": None}, "lat/long required"),
        ({"lat": "north", "long": "113.0"}, "decimal degrees"),
        ({"lat": 95, "long": 113.0}, "lat:"),
        ({"description": "  "}, "description is required"),
        ({"description": "x" * 2001}, "description:"),
        ({"media_url": "file:///etc/passwd"}, "media_url"),
        ({"email": "x" * 501}, "email"),
    ],
)
def test_bad_reports_get_400_and_nothing_is_stored(api, case_city, fields, fragment):
    key = make_key(case_city["settings"])
    fields = dict(fields)
    point = (fields.pop("long", IN_GRID_1[0]), fields.pop("lat", IN_GRID_1[1]))
    body = {"service_code": "environment.garbage", "description": "垃圾", **fields}
    data = {k: v for k, v in body.items() if v is not None}
    if point[0] is not None:
        data.update(long=point[0], lat=point[1])
    r = api.post(f"{V2}/requests.json", data={**data, "api_key": key})
    assert_error(r, 400, fragment)
    r = api.post(f"{V2}/requests.xml", data={**data, "api_key": key})
    assert_error(r, 400, fragment, fmt="xml")
    assert count(case_city["settings"], "cases") == 0


# --- jurisdiction -----------------------------------------------------------------------


def test_a_scoped_key_reports_and_reads_only_inside_its_unit(api, case_city):
    c = case_city
    s = c["settings"]
    scoped = make_key(s, "west", "410199001")
    everywhere = make_key(s, "city")
    assert_error(post(api, scoped, point=IN_GRID_2), 403, "outside your jurisdiction")
    assert count(s, "cases") == 0
    own = post(api, scoped).json()[0]["service_request_id"]
    west = report(api, c["worker1"]).json()["case_no"]
    east = report(api, c["worker2"], point=IN_GRID_2).json()["case_no"]

    assert ids(api.get(f"{V2}/requests.json", params={"api_key": scoped})) == {own, west}
    assert ids(api.get(f"{V2}/requests.json", params={"api_key": everywhere})) == {own, west, east}
    assert ids(
        api.get(
            f"{V2}/requests.json",
            params={"api_key": scoped, "service_request_id": f"{west},{east}"},
        )
    ) == {west}
    assert_error(api.get(f"{V2}/requests/{east}.json", params={"api_key": scoped}), 404, east)
    assert_error(api.get(f"{V2}/tokens/{east}.json", params={"api_key": scoped}), 404)
    assert api.get(f"{V2}/requests/{east}.json", params={"api_key": everywhere}).status_code == 200


def test_scope_must_be_a_unit_and_names_are_unique(case_city):
    s = case_city["settings"]
    with transaction(s) as conn:
        client, key = keys.create_key(conn, "app", "410199002")
    assert client["scope_code"] == "410199002" and client["key_prefix"] == key[:8]
    assert len(key) >= 40
    with get_engine(s).connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM open311_client")).scalar_one()
    assert stored == hashlib.sha256(key.encode()).hexdigest() and key not in stored
    with pytest.raises(InvalidInput, match="no unit with code 4101990099"), transaction(s) as conn:
        keys.create_key(conn, "other", "4101990099")
    with pytest.raises(Conflict, match="exists already"), transaction(s) as conn:
        keys.create_key(conn, "app", None)
    with pytest.raises(NotFound), transaction(s) as conn:
        keys.revoke_key(conn, "nobody")
    with get_engine(s).connect() as conn:
        assert keys.principal_for_key(conn, key).scopes == ("410199002",)
    with transaction(s) as conn:
        assert [k["name"] for k in keys.list_keys(conn)] == ["app"]


# --- reading requests -------------------------------------------------------------------


def test_status_follows_the_case_loop(api, case_city):
    c = case_city
    key = make_key(c["settings"])
    case = report(api, c["worker1"]).json()
    cid, no = case["id"], case["case_no"]

    def get(fmt="json", **params):
        r = api.get(f"{V2}/requests/{no}.{fmt}", params={"api_key": key, **params})
        assert r.status_code == 200, r.text
        return r if fmt == "xml" else r.json()[0]

    req = get()
    assert list(req) == [
        "service_request_id",
        "status",
        "status_notes",
        "service_name",
        "service_code",
        "description",
        "agency_responsible",
        "service_notice",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "address",
        "address_id",
        "zipcode",
        "lat",
        "long",
        "media_url",
    ]
    assert req["service_request_id"] == no and req["status"] == "open"
    assert req["status_notes"] == "已上报，待受理"
    assert req["service_name"] == "垃圾堆放" and req["service_code"] == "environment.garbage"
    assert req["agency_responsible"] == "网格101"  # the grid handles garbage
    assert req["expected_datetime"] is None and req["media_url"] is None
    assert (req["long"], req["lat"]) == IN_GRID_1
    assert req["requested_datetime"].endswith("+08:00")
    assert datetime.fromisoformat(req["requested_datetime"]) > datetime.now(UTC) - timedelta(
        minutes=5
    )

    assert act(api, c["sub1_sup"], cid, "accept", note="立案").status_code == 200
    req = get()
    assert req["status"] == "open" and req["status_notes"] == "已受理：立案"
    assert req["expected_datetime"] is not None
    act(api, c["sub1_sup"], cid, "dispatch", team_id=c["teams"]["a"])
    assert get()["agency_responsible"] == "东北社区两委"
    act(api, c["team_a"], cid, "start")
    photo_id = photo(api, c["team_a"], cid).json()["id"]
    act(api, c["team_a"], cid, "handle", note="已清运")
    assert get()["status"] == "open"

    dup = report(api, c["worker1b"], link_to=cid).json()["case_no"]
    r = api.get(f"{V2}/requests/{dup}.json", params={"api_key": key}).json()[0]
    assert r["status"] == "closed" and no in r["status_notes"]

    assert act(api, c["worker1"], cid, "verify", passed=True).json()["case"]["status"] == "closed"
    req = get()
    assert req["status"] == "closed" and req["status_notes"] == "已办结：已清运"
    assert req["media_url"] == f"http://testserver/api/v1/cases/{cid}/photos/{photo_id}"
    english = get(locale="en")
    assert english["status_notes"] == "Closed: 已清运"
    assert english["service_name"] == "Piled-up rubbish"

    root = ET.fromstring(get("xml").content)
    assert root.tag == "service_requests"
    [item] = root.findall("request")
    assert item.findtext("service_request_id") == no and item.findtext("status") == "closed"
    assert item.find("address_id") is not None and item.find("address_id").text is None
    assert item.findtext("media_url").endswith(f"/photos/{photo_id}")

    rejected = report(api, c["worker1"], category="public_order.noise").json()
    act(api, c["sub1_sup"], rejected["id"], "reject", note="不属于网格事项")
    r = api.get(f"{V2}/requests/{rejected['case_no']}.json", params={"api_key": key})
    assert r.json()[0]["status"] == "closed"
    assert r.json()[0]["status_notes"] == "不予受理：不属于网格事项"
    assert_error(api.get(f"{V2}/requests/41019920990101000001.json", params={"api_key": key}), 404)


def test_request_filters(api, case_city, monkeypatch):
    c = case_city
    s = c["settings"]
    key = make_key(s)
    a = report(api, c["worker1"]).json()
    b = report(api, c["worker1"], category="public_order.noise").json()
    cc = report(api, c["worker2"], point=IN_GRID_2).json()
    act(api, c["sub1_sup"], b["id"], "reject", note="重复")
    a, b, cc = a["case_no"], b["case_no"], cc["case_no"]

    def q(**params):
        return ids(api.get(f"{V2}/requests.json", params={"api_key": key, **params}))

    assert q() == {a, b, cc}
    assert q(service_code="environment.garbage") == {a, cc}
    assert q(service_code="environment.garbage,public_order.noise") == {a, b, cc}
    assert q(service_code="environment") == set()
    assert q(status="open") == {a, cc}
    assert q(status="closed") == {b}
    assert q(status="open,closed") == {a, b, cc}
    assert q(status="closed", service_code="environment.garbage") == set()
    assert_error(
        api.get(f"{V2}/requests.json", params={"api_key": key, "status": "done"}),
        400,
        "open or closed",
    )
    assert q(service_request_id=f"{a},{cc}") == {a, cc}
    # service_request_id overrides the other filters.
    assert q(service_request_id=b, status="open") == {b}

    now = datetime.now(UTC)
    assert q(start_date=(now + timedelta(hours=1)).isoformat()) == set()
    assert q(end_date=(now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")) == set()
    assert q(
        start_date=(now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+08:00"),
        end_date=(now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ) == {a, b, cc}
    assert_error(
        api.get(f"{V2}/requests.xml", params={"api_key": key, "start_date": "yesterday"}),
        400,
        "start_date",
        fmt="xml",
    )
    assert_error(
        api.get(
            f"{V2}/requests.json",
            params={
                "api_key": key,
                "start_date": now.isoformat(),
                "end_date": (now - timedelta(days=2)).isoformat(),
            },
        ),
        400,
        "after end_date",
    )

    # The last 90 days by default; older requests by date or by id.
    with get_engine(s).connect() as conn:
        a_id = conn.execute(text("SELECT id FROM cases WHERE case_no = :n"), {"n": a}).scalar()
    a_id = history.reported_at(s, a_id, "now() - interval '100 days'")
    with get_engine(s).connect() as conn:  # its number now carries that date
        a = conn.execute(text("SELECT case_no FROM cases WHERE id = :i"), {"i": a_id}).scalar()
    assert q() == {b, cc}
    assert q(start_date=(now - timedelta(days=200)).isoformat()) == {a, b, cc}
    assert q(end_date=(now - timedelta(days=95)).isoformat()) == {a}
    assert q(service_request_id=a) == {a}

    # Newest first, at most MAX_REQUESTS.
    monkeypatch.setattr(open311_service, "MAX_REQUESTS", 2)
    r = api.get(
        f"{V2}/requests.json", params={"api_key": key, "start_date": "2000-01-01T00:00:00Z"}
    )
    assert [x["service_request_id"] for x in r.json()] == [cc, b]


def test_requests_list_as_xml(api, case_city):
    key = make_key(case_city["settings"])
    nos = [post(api, key).json()[0]["service_request_id"] for _ in range(2)]
    r = api.get(f"{V2}/requests.xml", params={"api_key": key})
    assert r.status_code == 200 and r.headers["content-type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(r.content)
    assert root.tag == "service_requests"
    assert [x.findtext("service_request_id") for x in root.findall("request")] == nos[::-1]
    assert root.find("request").findtext("description") == "小区门口垃圾无人清运"


def test_tokens(api, case_city):
    key = make_key(case_city["settings"])
    no = post(api, key).json()[0]["service_request_id"]
    r = api.get(f"{V2}/tokens/{no}.json", params={"api_key": key})
    assert r.status_code == 200 and r.json() == [{"service_request_id": no, "token": no}]
    root = ET.fromstring(api.get(f"{V2}/tokens/{no}.xml", params={"api_key": key}).content)
    assert root.tag == "service_requests"
    assert root.find("request").findtext("service_request_id") == no
    assert root.find("request").findtext("token") == no
    assert_error(api.get(f"{V2}/tokens/unknown.json", params={"api_key": key}), 404)


# --- CLI --------------------------------------------------------------------------------


@pytest.fixture
def fresh_settings():
    """The CLI reads its settings once per process; in-process runs must re-read the env."""
    from gis_service.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_creates_lists_and_revokes_keys(api, case_city, fresh_settings):
    s = case_city["settings"]
    runner = CliRunner()
    env = {"GIS_DB_NAME": s.db_name}
    done = runner.invoke(
        cli_app,
        ["open311", "keys", "create", "--name", "12345热线", "--scope", "410199001"],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert "cannot be shown again" in done.output and "stored hashed" in done.output
    match = re.search(r"^api_key: (\S+)$", done.output, re.MULTILINE)
    assert match, done.output
    key = match.group(1)
    assert post(api, key).status_code == 201
    assert_error(post(api, key, point=IN_GRID_2), 403)

    listed = runner.invoke(cli_app, ["open311", "keys", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "12345热线" in listed.output and key[:8] in listed.output
    assert key not in listed.output

    again = runner.invoke(cli_app, ["open311", "keys", "create", "--name", "12345热线"], env=env)
    assert again.exit_code != 0 and isinstance(again.exception, Conflict)
    bad = runner.invoke(
        cli_app, ["open311", "keys", "create", "--name", "x", "--scope", "999999"], env=env
    )
    assert bad.exit_code != 0 and isinstance(bad.exception, InvalidInput)

    revoked = runner.invoke(cli_app, ["open311", "keys", "revoke", "12345热线"], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert_error(post(api, key), 403, "revoked")
