"""Real pages in a real browser: the server as its own process, Debian's Chromium driven by
Playwright, every request to a host other than 127.0.0.1 blocked and counted, console
errors collected, screenshots kept in tests/artifacts/."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from gis_service.reports.pdf import CHROMIUM, CHROMIUM_ARGS  # the one launch of Chromium

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(settings) -> Iterator[str]:
    """``gis-service serve`` on a free port of 127.0.0.1, ready when /healthz answers."""
    with server_process(settings) as (base, _proc):
        yield base


@contextlib.contextmanager
def server_process(
    settings, workers: int = 1, **env: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """:func:`live_server` with ``workers`` processes and extra ``GIS_…`` settings; yields
    the base URL and the server's process (its children are the workers)."""
    port = free_port()
    env = {
        **os.environ,
        "GIS_DB_NAME": settings.db_name,
        "GIS_DB_PORT": str(settings.db_port),
        "GIS_SECRET_KEY": settings.secret_key or "",
        "GIS_PHOTO_DIR": str(settings.photos_path),
        **env,
    }
    command = [str(Path(sys.executable).parent / "gis-service"), "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                body = httpx.get(base + "/healthz", timeout=2).json()
                if body.get("access_ready") or body.get("status") == "ok":
                    break
            time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Watch:
    """What a page did: requests that tried to leave the machine, errors it logged."""

    external: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@contextlib.contextmanager
def browser_context(profile: Path | None = None, **options) -> Iterator[tuple[object, Watch]]:
    """A fresh incognito context, or with ``profile`` a browser with a profile on disk
    (what an installed web app needs: Chromium will not install one from incognito)."""
    from playwright.sync_api import sync_playwright

    watch = Watch()
    with sync_playwright() as p:
        if profile is None:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(locale="zh-CN", **options)
        else:
            browser = None
            context = p.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                locale="zh-CN",
                **options,
            )

        watched(context, watch)
        try:
            yield context, watch
        finally:
            context.close()
            if browser is not None:
                browser.close()


def watched(context, watch: Watch) -> None:
    """Block and count requests to any host but 127.0.0.1; collect console errors."""

    def route(r) -> None:
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            r.continue_()
        else:
            watch.external.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    context.on(
        "console", lambda m: watch.console_errors.append(m.text) if m.type == "error" else None
    )
    context.on("weberror", lambda e: watch.console_errors.append(str(e.error)))
    context.on("requestfailed", lambda r: watch.failed.append(r.url))


@contextlib.contextmanager
def browser_contexts(count: int, **options) -> Iterator[list[tuple[object, Watch]]]:
    """``count`` incognito contexts of one browser, each with its own cookies (so its own
    sign-in: two people at once) and its own :class:`Watch`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            made = []
            for _ in range(count):
                context = browser.new_context(locale="zh-CN", **options)
                watch = Watch()
                watched(context, watch)
                made.append((context, watch))
            yield made
        finally:
            browser.close()


def sign_in(page, base: str, username: str, password: str, next_path: str) -> None:
    page.goto(f"{base}/maps/login?next={next_path}")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"**{next_path.split('?')[0]}*")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


# JavaScript run in the page: the features Leaflet drew, per GeoJSON layer shown on the map
# (a layer switched off in the layer control is not on the map and draws nothing)
FEATURES_JS = """() => {
  const out = [];
  for (const v of Object.values(window)) {
    if (v && v instanceof L.GeoJSON && v._map) {
      v.eachLayer(l => out.push({code: l.feature.properties.code || null,
                                 drawn: !!(l._path && l._path.getAttribute('d'))}));
    }
  }
  return out;
}"""
