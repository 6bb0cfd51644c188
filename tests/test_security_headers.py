"""Security headers on every answer the app gives, found from the app itself.

Every route (the OpenAPI's and those left out of it: pages, the phone app, docs) and every
static mount is requested, signed in as an admin (GET) and signed out (every method, so
error bodies are checked too), and each answer must carry the headers of its kind. The
expectations are written here from the rules (issue 14), not read from api/security.py.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount

from gis_service.app import create_app
from gis_service.mobile.shell import CSP as SHELL_CSP
from tests.conftest import make_user

NONE = "default-src 'none'; frame-ancestors 'none'"
# the only sources a page or the docs may name: this server, inline code, in-page images
ALLOWED_SOURCES = {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}
PLACEHOLDER = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def _tile(lon: float, lat: float, z: int) -> dict[str, tuple[str, ...]]:
    """The XYZ tile holding a point (Web Mercator)."""
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return {"z": (str(z),), "x": (str(int((lon + 180) / 360 * n)),), "y": (str(int(y)),)}


# path parameters with values the app answers (the rest get "1", mostly a 404): both
# Open311 formats, and a tile in the demo city (Zhengzhou's centre)
PATH_VALUES = {"fmt": ("json", "xml"), "layer": ("units",), **_tile(113.68, 34.78, 12)}


def expected_kind(path: str) -> str:
    """The kind of answer a path gets, from the issue: desk pages and sign-in, the phone
    app, Swagger UI, static files, tiles, and the API (everything else)."""
    for prefix, kind in (
        ("/maps", "page"),
        ("/m", "shell"),
        ("/desk", "desk"),
        ("/admin", "desk"),
        ("/", "desk"),
        ("/docs", "docs"),
        ("/static", "static"),
        ("/tiles", "tiles"),
    ):
        if path == prefix or path.startswith(prefix + "/"):
            return kind
    return "api"


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def header_problems(path: str, response, *, https: bool = False) -> list[str]:
    """What is wrong with the security headers of ``response`` to a request for ``path``."""
    h = response.headers
    where = f"{response.request.method} {path} → {response.status_code}"
    problems = []
    for name, value in (
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ):
        if h.get(name) != value:
            problems.append(f"{where}: {name} is {h.get(name)!r}, not {value!r}")
    if https and not h.get("strict-transport-security", "").startswith("max-age="):
        problems.append(f"{where}: no Strict-Transport-Security over HTTPS")
    if not https and "strict-transport-security" in h:
        problems.append(f"{where}: Strict-Transport-Security without HTTPS")
    if len(h.get_list("content-security-policy")) != 1:
        problems.append(f"{where}: {len(h.get_list('content-security-policy'))} CSP headers")
        return problems
    csp = h["content-security-policy"]
    kind = expected_kind(path)
    if kind in ("api", "static", "tiles"):
        if csp != NONE:
            problems.append(f"{where}: CSP {csp!r}, not {NONE!r}")
    elif kind in ("shell", "desk"):
        if csp != SHELL_CSP:
            problems.append(f"{where}: CSP {csp!r}, not the phone app's")
    else:  # page, docs
        d = directives(csp)
        for name in ("frame-ancestors", "object-src"):
            if d.get(name) != ["'none'"]:
                problems.append(f"{where}: {name} {d.get(name)}, not 'none'")
        if d.get("default-src") != ["'self'"]:
            problems.append(f"{where}: default-src {d.get('default-src')}")
        outside = {s for sources in d.values() for s in sources} - ALLOWED_SOURCES
        if outside:
            problems.append(f"{where}: CSP names other origins {sorted(outside)}")
    return problems


def requests_of(app) -> list[tuple[str, str]]:
    """(method, path) for every route of the app and one real file of every static mount
    plus a missing one; path parameters get a placeholder value."""
    out = set()
    for route in app.routes:
        if isinstance(route, Mount):
            directory = Path(route.app.directory)
            files = sorted(
                p
                for p in directory.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(directory).parts)
            )
            if files:
                out.add(("GET", f"{route.path}/{files[0].relative_to(directory).as_posix()}"))
            out.add(("GET", f"{route.path}/no-such-file.js"))
            continue
        contexts = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for r in contexts:
            paths = [r.path]
            for name in PLACEHOLDER.findall(r.path):
                values = PATH_VALUES.get(name, ("1",))
                paths = [
                    PLACEHOLDER.sub(lambda m, v=v, n=name: v if m[1] == n else m[0], p)
                    for p in paths
                    for v in values
                ]
            for method in getattr(r, "methods", None) or ():
                out.update((method, p) for p in paths)
    return sorted(out)


@pytest.fixture(scope="module")
def admin(demo_settings) -> dict[str, str]:
    return make_user(demo_settings, "admin", username=f"headers-{uuid.uuid4().hex[:8]}")


def test_every_answer_carries_the_headers_of_its_kind(demo_settings, admin):
    app = create_app(demo_settings)
    problems: list[str] = []
    seen: Counter[tuple[str, int]] = Counter()
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path in requests_of(app):
            tries = [{}] if method != "GET" else [{}, admin]
            for headers in tries:
                # signed-out for anything but reading, so nothing in the demo city changes
                r = client.request(method, path, headers=headers, follow_redirects=False)
                seen[(expected_kind(path), r.status_code // 100)] += 1
                problems += header_problems(path, r)
                if r.status_code == 200 and "etag" in r.headers:
                    again = client.request(
                        method, path, headers={**headers, "If-None-Match": r.headers["etag"]}
                    )
                    if again.status_code == 304:
                        seen[(expected_kind(path), 3)] += 1
                        problems += header_problems(path, again)
    assert not problems, "\n".join(problems)
    # the walk reached real answers and refusals of every kind, not only errors
    for kind in ("page", "shell", "docs", "static", "tiles", "api"):
        assert seen[(kind, 2)], f"no successful {kind} answer: {seen}"
    for kind in ("page", "api", "static", "tiles"):
        assert seen[(kind, 4)], f"no refused {kind} answer: {seen}"
    assert seen[("shell", 3)], "no 304 from the phone app"


def test_headers_over_https_and_the_sign_in_cookie(demo_settings):
    password = "password-123"
    for https in (False, True):
        settings = demo_settings.model_copy(update={"https": https})
        name = f"cookie-{uuid.uuid4().hex[:8]}"
        make_user(settings, "admin", username=name, password=password)
        with TestClient(create_app(settings)) as client:
            for path in ("/maps/login", "/m/", "/docs", "/openapi.json", "/static/mobile/app.js"):
                assert not header_problems(path, client.get(path), https=https)
            r = client.post(
                "/maps/login",
                data={"username": name, "password": password},
                follow_redirects=False,
            )
            assert r.status_code == 303, r.text
            assert not header_problems("/maps/login", r, https=https)
            (cookie,) = r.headers.get_list("set-cookie")
            attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
            assert {"httponly", "path", "max-age"} <= attributes
            assert "samesite=strict" in cookie.lower()
            assert ("secure" in attributes) is https, cookie
            out = client.get("/maps/logout", follow_redirects=False)
            (gone,) = out.headers.get_list("set-cookie")
            assert ("secure" in gone.lower()) is https, gone


def test_a_configured_basemap_is_the_one_outside_origin_of_the_pages(demo_settings):
    settings = demo_settings.model_copy(
        update={"basemap_url": "https://tiles.example.gov.cn/wmts/{z}/{x}/{y}.png"}
    )
    with TestClient(create_app(settings)) as client:
        d = directives(client.get("/maps/login").headers["content-security-policy"])
        outside = {k for k, sources in d.items() for s in sources if s not in ALLOWED_SOURCES}
        assert outside == {"img-src"}
        assert "https://tiles.example.gov.cn" in d["img-src"]
        # the API and the phone app name no outside origin
        assert client.get("/openapi.json").headers["content-security-policy"] == NONE
        assert client.get("/m/").headers["content-security-policy"] == SHELL_CSP


def test_swagger_ui_works_under_its_policy(demo_settings):
    """/docs in Chromium: the operations are listed and nothing is refused (a CSP
    violation is a console error), nothing fetched from another host."""
    from tests.browser import browser_context, live_server

    with live_server(demo_settings) as base, browser_context() as (context, watch):
        page = context.new_page()
        page.goto(f"{base}/docs")
        page.wait_for_selector(".opblock", timeout=20000)
        page.wait_for_load_state("networkidle")
        assert page.locator(".opblock").count() >= len(create_app(demo_settings).openapi()["paths"])
        assert watch.external == [] and watch.console_errors == [], watch


def test_the_500_of_an_unexpected_error_carries_them_too(settings):
    """The answer Starlette's outermost error layer writes passes the headers too."""
    app = create_app(settings)

    @app.get("/api/v1/test-unexpected-error")
    def fails() -> None:
        raise RuntimeError("an error no handler expects")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/test-unexpected-error")
    assert r.status_code == 500
    assert not header_problems("/api/v1/test-unexpected-error", r)
