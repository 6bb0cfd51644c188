"""The phone app's shell over HTTP: installable (manifest, icons, service worker), served
gzipped and versioned, locked to our own origin by its Content-Security-Policy, and
nothing in it that points at another host."""

from __future__ import annotations

import io
import json
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gis_service.app import create_app
from gis_service.mobile import shell


@pytest.fixture(scope="module")
def web(demo_settings):
    with TestClient(create_app(demo_settings)) as c:
        yield c


def test_the_page_links_versioned_assets_and_forbids_other_origins(web):
    r = web.get("/m/")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    csp = r.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "connect-src 'self'"):
        assert directive in csp
    v = shell.version()
    assert f"/static/mobile/app.js?v={v}" in r.text and 'rel="manifest"' in r.text
    assert web.get("/m", follow_redirects=False).headers["location"] == "/m/"


def test_manifest_and_icons_make_it_installable(web):
    m = web.get("/m/manifest.webmanifest")
    assert m.headers["content-type"].startswith("application/manifest+json")
    body = m.json()
    assert body["display"] == "standalone" and body["start_url"] == "/m/"
    assert body["scope"] == "/m/" and body["lang"] == "zh-CN"
    assert web.get("/m/manifest.webmanifest?lang=en").json()["lang"] == "en"
    sizes = {i["sizes"] for i in body["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in body["icons"]:
        img = Image.open(io.BytesIO(web.get(icon["src"]).content))
        assert img.format == "PNG" and f"{img.width}x{img.height}" == icon["sizes"]
    r = web.get("/m/icon-77.png")
    assert r.status_code == 404 and "192" in r.json()["detail"]


def test_the_service_worker_precaches_this_build(web):
    r = web.get("/m/sw.js")
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "no-cache"
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", r.text).group(1))
    assert json.loads(re.search(r"const VERSION = (\".*?\");", r.text).group(1)) == shell.version()
    assert "/m/" in precache
    for url in precache:  # every precached URL answers, or the install would fail
        assert web.get(url).status_code == 200, url


def test_assets_are_gzipped_once_and_cached_by_version(web):
    url = shell.asset_urls()["leaflet.js"]
    r = web.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert "immutable" in r.headers["cache-control"]
    raw = shell.LAZY["leaflet.js"][1].read_bytes()
    assert r.content == raw  # httpx decoded it
    assert int(r.headers["content-length"]) < len(raw) / 3
    assert r.headers["vary"] == "Accept-Encoding"
    for tags in (r.headers["etag"], f'W/{r.headers["etag"]}, "other"'):
        again = web.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": tags})
        assert again.status_code == 304 and again.headers["etag"] == r.headers["etag"]
        assert again.headers["vary"] == "Accept-Encoding"
    plain = web.get(url.split("?")[0], headers={"Accept-Encoding": "identity"})
    assert (
        "content-encoding" not in plain.headers
        and plain.headers["cache-control"] == "no-cache"
        and plain.content == raw
        and plain.headers["vary"] == "Accept-Encoding"
    )
    refused = web.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers


def test_an_old_build_url_is_never_pinned(web):
    """After a deploy an open page may still ask for ?v=<old build>: it gets today's file,
    to be revalidated, not cached for a year under the old name."""
    url = shell.asset_urls()["app.js"].split("?")[0]
    assert web.get(url + "?v=0123456789ab").headers["cache-control"] == "no-cache"
    assert web.get(url + "?dev=1").headers["cache-control"] == "no-cache"
    assert "immutable" in web.get(url + f"?v={shell.version()}").headers["cache-control"]


def test_nothing_in_the_app_points_at_another_host():
    texts = [f.read_text(encoding="utf-8") for f in sorted(shell.MOBILE_DIR.iterdir())]
    assert len(texts) >= 6
    for text in texts:
        assert re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I) == []
