"""Conditional GET (RFC 9110 §13) on every cacheable answer, found from the app itself:
every GET route without path parameters that answers with an ETag, one file of every
static mount, and a tile of every public tile layer. Each must answer 304 to its own tag,
to it marked weak, inside a list and to ``*``; 200 to another tag even with a matching
If-Modified-Since; and its 304 carries ETag, Cache-Control and Vary and no body."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from gis_service.api import conditional
from gis_service.app import create_app
from tests.conftest import make_user


@pytest.fixture(scope="module")
def web(demo_settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


def cacheable_urls(app, client: TestClient, auth: dict[str, str]) -> list[str]:
    urls = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        plain_get = isinstance(route, APIRoute) and "GET" in ctx.methods and "{" not in ctx.path
        if plain_get and client.get(ctx.path, headers=auth).headers.get("etag"):
            urls.append(ctx.path)
    for route in app.routes:
        if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            folder = Path(route.app.directory)
            files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
            for suffix in (".js", ".png", ".css"):  # a gzipped and a plain file when there are
                match = [p for p in files if p.suffix == suffix]
                if match:
                    urls.append(f"{route.path}/{match[0].relative_to(folder).as_posix()}")
    for layer in ("basemap", "service_points", "units", "cases"):
        urls.append(f"/tiles/{layer}/12/3365/1622.pbf")
    return urls


def test_every_cacheable_answer_revalidates_by_rfc_9110(web, demo_settings):
    auth = make_user(demo_settings, "admin", username="conditional-admin")
    urls = cacheable_urls(web.app, web, auth)
    # the style, the phone shell's page, worker and manifest, the sign-in page at least
    assert {"/tiles/style.json", "/m/", "/m/sw.js", "/maps/login"} <= set(urls), urls
    assert sum(u.startswith("/static/") for u in urls) >= 3, urls
    for url in urls:
        headers = {**auth, "Accept-Encoding": "gzip"}
        first = web.get(url, headers=headers)
        assert first.status_code == 200, url
        tag = first.headers["etag"]
        weak = tag if tag.startswith("W/") else f"W/{tag}"
        for sent in (tag, weak, f'"other", {weak}', f'"x,y", {tag}, "z"', "*"):
            again = web.get(url, headers={**headers, "If-None-Match": sent})
            assert again.status_code == 304, (url, sent, again.status_code)
            assert again.content == b"", url
            assert again.headers["etag"] == tag, url
            for name in ("cache-control", "vary"):
                assert again.headers.get(name) == first.headers.get(name), (url, name)
            assert "content-length" not in again.headers or again.headers["content-length"] == "0"
        other = web.get(
            url,
            headers={
                **headers,
                "If-None-Match": '"not-this-one"',
                "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT",
            },
        )
        assert other.status_code == 200 and other.content == first.content, url


def test_if_modified_since_counts_only_without_if_none_match(web):
    url = "/static/app/maps.css"
    first = web.get(url)
    assert first.status_code == 200 and first.headers["last-modified"]
    later = web.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert later.status_code == 304 and later.headers["etag"] == first.headers["etag"]
    earlier = web.get(url, headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert earlier.status_code == 200
    garbage = web.get(url, headers={"If-Modified-Since": "yesterday"})
    assert garbage.status_code == 200


@pytest.mark.parametrize(
    ("header", "etag", "expected"),
    [
        ('"a"', '"a"', True),
        ('W/"a"', '"a"', True),
        ('"a"', 'W/"a"', True),
        ('"b", W/"a"', '"a"', True),
        ('"a,b"', '"a"', False),
        ('"a,b", "c"', '"a,b"', True),
        ("*", '"anything"', True),
        ('"b"', '"a"', False),
        ("", '"a"', False),
    ],
)
def test_if_none_match_uses_the_weak_comparison(header, etag, expected):
    assert conditional.none_match(header, etag) is expected


def test_if_none_match_is_not_for_writes():
    assert not conditional.not_modified({"if-none-match": "*"}, '"a"', method="POST")
    assert conditional.not_modified({"if-none-match": "*"}, '"a"', method="HEAD")


def test_a_case_photo_revalidates_too(case_city):
    from tests.test_cases import photo, report

    with TestClient(create_app(case_city["settings"])) as api:
        who = case_city["worker1"]
        cid = report(api, who).json()["id"]
        stored = photo(api, who, cid, stage="before")
        assert stored.status_code == 201, stored.text
        url = f"/api/v1/cases/{cid}/photos/{stored.json()['id']}"
        first = api.get(url, headers=who)
        assert first.status_code == 200 and first.content
        tag = first.headers["etag"]
        for sent in (tag, f"W/{tag}", f'"x", {tag}', "*"):
            again = api.get(url, headers={**who, "If-None-Match": sent})
            assert again.status_code == 304 and again.content == b"", sent
            assert again.headers["cache-control"] == first.headers["cache-control"]
        assert api.get(url, headers={**who, "If-None-Match": '"x"'}).content == first.content
