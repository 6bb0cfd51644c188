"""The Open311 public view: GeoReport reads without an api_key, as the spec's clients make
them, against the real PostGIS of the test city — through the test client and through a
GeoReport client library from PyPI (``georeport``) talking to a real server on loopback.

The rule under test lives in gis_service/auth/scope.py: public categories (taxonomy.json),
no rejected or duplicate case, never a description, address, note or contact field, and
a photo only once a supervisor has published it."""

from __future__ import annotations

import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import uvicorn
from fastapi.testclient import TestClient
from georeport import GeoReport
from sqlalchemy import text
from typer.testing import CliRunner

from gis_service.app import create_app
from gis_service.cases.categories import DEFAULT_TAXONOMY, load_taxonomy, read_taxonomy
from gis_service.cli.main import app as cli_app
from gis_service.db.engine import get_engine, transaction
from gis_service.errors import InvalidInput
from tests.conftest import IN_GRID_1
from tests.test_cases import act, count, photo, report
from tests.test_open311 import V2, assert_error, ids, make_key, post

NAME = "王小明"
PHONE = "13912345678"
CLIENT_MEDIA = "https://example.com/from-the-app.jpg"
# what the public view must never carry, whatever field it would sit in
PRIVATE_WORDS = (NAME, PHONE, "example.com", "经八路")


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


@pytest.fixture
def world(api, case_city) -> dict:
    """Cases of every kind the rule tells apart, each with a name and phone number in
    its description and address, and a photo on each (none published yet)."""
    c = case_city
    words = f"{NAME}（{PHONE}）反映：楼下有问题"

    def new(category: str, who: str = "worker1", **extra) -> dict:
        r = report(
            api, c[who], category=category, description=words, address=f"经八路1号 {NAME}", **extra
        )
        assert r.status_code == 201, r.text
        case = r.json()
        p = photo(api, c[who], case["id"], stage="before")
        assert p.status_code == 201, p.text
        return {**case, "photo_id": p.json()["id"]}

    cases = {
        "garbage": new("environment.garbage"),
        "parking": new("public_order.parking"),  # public child of a private domain
        "gas": new("safety.gas"),  # private child of a public domain
        "dispute": new("disputes.neighbours"),
        "elderly": new("livelihood.elderly_alone"),
        "rejected": new("environment.sewage"),
    }
    r = act(api, c["sub1_sup"], cases["garbage"]["id"], "accept", note=f"已联系{NAME}{PHONE}")
    assert r.status_code == 200, r.text
    r = act(api, c["sub1_sup"], cases["rejected"]["id"], "reject", note=f"{PHONE}恶意举报")
    assert r.status_code == 200, r.text
    dup = report(api, c["worker1b"], description=words, link_to=cases["garbage"]["id"]).json()
    assert dup["status"] == "duplicate", dup
    cases["duplicate"] = dup
    key = make_key(c["settings"])
    r = post(api, key, first_name=NAME, phone=PHONE, email="w@example.com", media_url=CLIENT_MEDIA)
    assert r.status_code == 201, r.text
    cases["posted"] = {"case_no": r.json()[0]["service_request_id"]}
    return {
        "cases": cases,
        "key": key,
        "public": {cases[k]["case_no"] for k in ("garbage", "parking", "posted")},
        "all": {x["case_no"] for x in cases.values()},
    }


def photo_url(base: str, case: dict) -> str:
    return f"{base}api/v1/cases/{case['id']}/photos/{case['photo_id']}"


def publish(api, who: dict, case: dict, method: str = "POST"):
    return api.request(
        method, f"/api/v1/cases/{case['id']}/photos/{case['photo_id']}/publish", headers=who
    )


def assert_nothing_private(body: str) -> None:
    leaked = [w for w in PRIVATE_WORDS if w in body]
    assert not leaked, (leaked, body)


# --- the taxonomy's flag ----------------------------------------------------------------


def test_the_taxonomy_says_which_categories_are_public(api, case_city):
    rows = {r["code"]: r["public"] for r in read_taxonomy(DEFAULT_TAXONOMY)}
    with get_engine(case_city["settings"]).connect() as conn:
        stored = dict(
            conn.execute(text("SELECT code, public FROM case_category WHERE active")).all()
        )
    assert stored == rows
    # public-space problems yes; disputes, help for the vulnerable, household matters no
    assert rows["environment.garbage"] and rows["facilities.streetlight"]
    assert rows["public_order.parking"] and not rows["public_order.noise"]  # inherits False
    assert rows["safety.fire_lane"] and not rows["safety.gas"]  # overrides its domain
    assert not any(v for k, v in rows.items() if k.split(".")[0] in ("disputes", "livelihood"))
    assert not rows["courtyard.renovation"] and rows["courtyard.sanitation"]
    domains = api.get("/api/v1/categories").json()["domains"]
    listed = {c["code"]: c["public"] for d in domains for c in [d, *d["children"]]}
    assert listed == rows


@pytest.fixture
def fresh_settings():
    """The CLI reads its settings once per process; in-process runs must re-read the env."""
    from gis_service.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_categories_load_reads_the_flag(case_city, tmp_path: Path, fresh_settings):
    s = case_city["settings"]
    taxonomy = {
        "domains": [
            {
                "code": "roads",
                "name_zh": "道路",
                "name_en": "Roads",
                "deadline_hours": 24,
                "handling_level": "grid",
                "public": True,
                "children": [
                    {"code": "roads.hole", "name_zh": "坑", "name_en": "Pothole"},
                    {"code": "roads.fight", "name_zh": "争执", "name_en": "Row", "public": False},
                ],
            },
            {
                "code": "help",
                "name_zh": "帮扶",
                "name_en": "Help",
                "deadline_hours": 24,
                "handling_level": "grid",
                "children": [{"code": "help.food", "name_zh": "送餐", "name_en": "Meals"}],
            },
        ]
    }
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps(taxonomy, ensure_ascii=False), encoding="utf-8")
    try:
        done = CliRunner().invoke(
            cli_app, ["categories", "load", str(path)], env={"GIS_DB_NAME": s.db_name}
        )
        assert done.exit_code == 0, done.output
        with get_engine(s).connect() as conn:
            flags = dict(
                conn.execute(text("SELECT code, public FROM case_category WHERE active")).all()
            )
        # children inherit the domain's flag; a domain that says nothing is private
        assert flags == {
            "roads": True,
            "roads.hole": True,
            "roads.fight": False,
            "help": False,
            "help.food": False,
        }
        taxonomy["domains"][0]["public"] = "yes"
        path.write_text(json.dumps(taxonomy), encoding="utf-8")
        with pytest.raises(InvalidInput, match="category roads: public must be true or false"):
            read_taxonomy(path)
    finally:
        with transaction(s) as conn:
            load_taxonomy(conn, read_taxonomy(DEFAULT_TAXONOMY))


# --- reads without a key ----------------------------------------------------------------


def test_anonymous_reads_list_one_and_token_of_the_public_view(api, world):
    cases = world["cases"]
    r = api.get(f"{V2}/requests.json")
    assert ids(r) == world["public"]
    assert_nothing_private(r.text)
    for item in r.json():
        assert item["description"] is None and item["address"] is None
        assert item["media_url"] is None  # no photo published, the app's own URL is private
        assert item["lat"] is not None and item["service_name"]
    garbage = next(x for x in r.json() if x["service_request_id"] == cases["garbage"]["case_no"])
    assert garbage["status_notes"] == "已受理"  # the status, without the staff's note
    assert garbage["agency_responsible"] == "网格101"

    root = ET.fromstring(api.get(f"{V2}/requests.xml").content)
    assert {x.findtext("service_request_id") for x in root.findall("request")} == world["public"]
    assert_nothing_private(ET.tostring(root, encoding="unicode"))

    for case in cases.values():
        no = case["case_no"]
        one = api.get(f"{V2}/requests/{no}.json")
        token = api.get(f"{V2}/tokens/{no}.xml")
        if no in world["public"]:
            assert one.status_code == 200 and one.json()[0]["service_request_id"] == no
            assert_nothing_private(one.text)
            assert token.status_code == 200
            assert ET.fromstring(token.content).find("request").findtext("token") == no
        else:
            assert_error(one, 404, "in the public view")
            assert_error(token, 404, "in the public view", fmt="xml")
    # filters narrow the public view, never widen it
    assert ids(api.get(f"{V2}/requests.json", params={"service_code": "safety.gas"})) == set()
    every = ",".join(world["all"])
    assert (
        ids(api.get(f"{V2}/requests.json", params={"service_request_id": every}))
        == (world["public"])
    )
    assert ids(api.get(f"{V2}/requests.json", params={"status": "closed"})) == set()


def test_a_key_still_sees_its_whole_scope(api, world):
    key = {"api_key": world["key"]}
    r = api.get(f"{V2}/requests.json", params=key)
    assert ids(r) == world["all"]
    by_no = {x["service_request_id"]: x for x in r.json()}
    garbage = by_no[world["cases"]["garbage"]["case_no"]]
    assert PHONE in garbage["description"] and PHONE in garbage["status_notes"]
    assert by_no[world["cases"]["posted"]["case_no"]]["media_url"] == CLIENT_MEDIA
    # the first photo, published or not
    assert garbage["media_url"] == photo_url("http://testserver/", world["cases"]["garbage"])
    for case in world["cases"].values():
        assert api.get(f"{V2}/tokens/{case['case_no']}.json", params=key).status_code == 200


def test_post_without_a_key_is_still_refused(api, case_city):
    before = count(case_city["settings"], "cases")
    assert_error(post(api, None), 403, "api_key is required")
    assert_error(post(api, None, fmt="xml"), 403, "api_key is required", fmt="xml")
    assert_error(post(api, "wrong"), 403, "invalid api_key")
    assert count(case_city["settings"], "cases") == before


# --- photos -----------------------------------------------------------------------------


def test_photos_are_public_only_once_published(api, case_city, world):
    c, cases = case_city, world["cases"]
    garbage = cases["garbage"]
    url = photo_url("/", garbage)

    def public_media() -> str | None:
        return api.get(f"{V2}/requests/{garbage['case_no']}.json").json()[0]["media_url"]

    assert api.get(url).status_code == 404  # not published: refused to the public
    assert api.get(url, params={"thumb": "true"}).status_code == 404
    assert public_media() is None
    assert api.get(url, headers={"Authorization": "Bearer junk"}).status_code == 401

    # who may publish: supervisors and admins, inside their jurisdiction
    assert publish(api, c["worker1"], garbage).status_code == 403
    assert publish(api, c["team_a"], garbage).status_code == 403
    assert publish(api, c["sub2_sup"], garbage).status_code == 404
    assert publish(api, {}, garbage).status_code == 401
    other = {**garbage, "photo_id": cases["parking"]["photo_id"]}  # another case's photo
    assert publish(api, c["sub1_sup"], other).status_code == 404
    assert public_media() is None

    r = publish(api, c["sub1_sup"], garbage)
    assert r.status_code == 200, r.text
    first = r.json()["published_at"]
    assert first is not None and r.json()["id"] == garbage["photo_id"]
    assert publish(api, c["admin"], garbage).json()["published_at"] == first  # kept
    case = api.get(f"/api/v1/cases/{garbage['id']}", headers=c["sub1_sup"]).json()
    published = [e for e in case["timeline"] if e["action"] == "publish"]
    assert len(published) == 1 and published[0]["photo_ids"] == [garbage["photo_id"]]
    assert [p["published_at"] is not None for p in case["photos"]] == [True]

    assert public_media() == photo_url("http://testserver/", garbage)
    anonymous = api.get(url)
    staff = api.get(url, headers=c["worker1"])
    assert anonymous.status_code == 200 and anonymous.headers["content-type"] == "image/jpeg"
    assert anonymous.content == staff.content
    assert api.get(url, params={"thumb": "true"}).status_code == 200

    # published photos of cases outside the public view stay private
    for name, who in (("dispute", "sub1_sup"), ("gas", "sub1_sup"), ("rejected", "admin")):
        assert publish(api, c[who], cases[name]).status_code == 200, name
        assert api.get(photo_url("/", cases[name])).status_code == 404, name

    r = publish(api, c["sub1_sup"], garbage, method="DELETE")
    assert r.status_code == 200 and r.json()["published_at"] is None
    assert api.get(url).status_code == 404 and public_media() is None
    case = api.get(f"/api/v1/cases/{garbage['id']}", headers=c["sub1_sup"]).json()
    assert [e["action"] for e in case["timeline"]].count("unpublish") == 1


# --- a GeoReport client library against a real server -----------------------------------


@contextmanager
def serving(settings) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_a_georeport_client_library_reads_the_public_view(case_city, api, world, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # loopback only, whatever the environment
    cases = world["cases"]
    assert publish(api, case_city["sub1_sup"], cases["garbage"]).status_code == 200
    assert publish(api, case_city["sub1_sup"], cases["dispute"]).status_code == 200
    with serving(case_city["settings"]) as base:
        # the key is the library's to send on POST only: reads go without it
        client = GeoReport(f"{base}/open311/v2", api_key=world["key"])
        services = {s["service_code"] for s in client.get_service_list()}
        assert "environment.garbage" in services
        found = client.get_service_requests()
        assert {x["service_request_id"] for x in found} == world["public"]
        assert_nothing_private(json.dumps(found, ensure_ascii=False))
        as_xml = GeoReport(f"{base}/open311/v2", output_format="xml").get_service_requests()
        assert {x["service_request_id"] for x in as_xml} == world["public"]
        assert_nothing_private(json.dumps(as_xml, ensure_ascii=False))

        one = client.get_service_request(cases["garbage"]["case_no"])
        assert one["service_name"] == "垃圾堆放" and one["description"] is None
        media = one["media_url"]
        assert media == photo_url(f"{base}/", cases["garbage"])
        picture = requests.get(media, timeout=10)
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
        for name in ("parking", "posted"):
            assert client.get_service_request(cases[name]["case_no"])["media_url"] is None
        for name in ("dispute", "gas", "elderly", "rejected", "duplicate"):
            with pytest.raises(requests.HTTPError) as refused:
                client.get_service_request(cases[name]["case_no"])
            assert refused.value.response.status_code == 404, name
        hidden = photo_url(f"{base}/", cases["dispute"])
        assert requests.get(hidden, timeout=10).status_code == 404
        unpublished = photo_url(f"{base}/", cases["parking"])
        assert requests.get(unpublished, timeout=10).status_code == 404
        assert (one["long"], one["lat"]) == IN_GRID_1
