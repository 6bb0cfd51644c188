"""The phone app's shell: its page, manifest, icons and service worker, stamped with one
build version so a phone never mixes two builds.

The version is the hash of every file the app precaches: a changed file changes the
service worker's bytes, so phones install the new build on their next visit, and the
asset URLs (``?v=…``) change with it, so year-long browser caching is safe.
"""

from __future__ import annotations

import hashlib
import io
import json
from functools import cache
from pathlib import Path

from gis_service.maps.assets import (
    APP_DIR,
    LEAFLET_CSS,
    LEAFLET_JS,
    MAPS_JS,
    VECTORGRID_JS,
    VENDOR_DIR,
)
from gis_service.vocabulary import vocabulary

MOBILE_DIR = Path(__file__).resolve().parents[1] / "web" / "mobile"
ICON_SIZES = (192, 512)
THEME = "#0b6e4f"

# Files the page loads from /static/…; Leaflet and its tile plugin load only when a map
# is first shown, but the service worker precaches them so maps work offline.
SCRIPTS = {
    name: (f"/static/mobile/{name}", MOBILE_DIR / name)  # in this order
    for name in ("words.js", "outbox.js", "media.js", "report.js", "walk.js", "app.js")
}
# The service's word lists (gis_service/vocabulary.py) as a script the page loads first:
# the app reads statuses, levels and roles from window.gisVocabulary, never its own copy.
VOCABULARY_URL = "/m/vocabulary.js"
STYLES = {"app.css": ("/static/mobile/app.css", MOBILE_DIR / "app.css")}
# the same files the desk pages load (maps/assets.py), found on disk from their URLs
_MOUNTS = {"/static/vendor/": VENDOR_DIR, "/static/app/": APP_DIR}


def _on_disk(url: str) -> tuple[str, Path]:
    prefix = next(p for p in _MOUNTS if url.startswith(p))
    return url, _MOUNTS[prefix] / url.removeprefix(prefix)


LAZY = {
    "leaflet.js": _on_disk(LEAFLET_JS),
    "leaflet.css": _on_disk(LEAFLET_CSS),
    "vectorgrid.js": _on_disk(VECTORGRID_JS),
    "maps.js": _on_disk(MAPS_JS),
}
# The phone app's Content-Security-Policy: nothing inline, nothing from another origin.
# Sent on every /m/ answer by api/security.py (the one place headers are decided).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'; "
    "manifest-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@cache
def version() -> str:
    digest = hashlib.sha256()
    for _, path in (*SCRIPTS.values(), *STYLES.values(), *LAZY.values()):
        # Leaflet is absent until `make assets`: the page still works, without maps
        digest.update(path.read_bytes() if path.exists() else b"missing")
    for name in ("index.html", "sw.js"):
        digest.update((MOBILE_DIR / name).read_bytes())
    digest.update(vocabulary_js().encode())
    digest.update(THEME.encode())
    return digest.hexdigest()[:12]


@cache
def vocabulary_js() -> str:
    """``window.gisVocabulary = {…};``: the JSON of GET /api/v1/vocabulary."""
    return f"window.gisVocabulary = {json.dumps(vocabulary(), ensure_ascii=False)};\n"


def asset_urls() -> dict[str, str]:
    """Name → versioned URL of every asset the page or its service worker loads."""
    v = version()
    urls = {name: f"{url}?v={v}" for name, (url, _) in {**SCRIPTS, **STYLES, **LAZY}.items()}
    return {"vocabulary.js": f"{VOCABULARY_URL}?v={v}", **urls}


def precache() -> list[str]:
    return [
        "/m/",
        "/m/manifest.webmanifest",
        *(f"/m/icon-{s}.png" for s in ICON_SIZES),
        *asset_urls().values(),
    ]


@cache
def page() -> str:
    html = (MOBILE_DIR / "index.html").read_text(encoding="utf-8")
    urls = asset_urls()
    scripts = "\n".join(
        f'<script src="{urls[name]}" defer></script>' for name in ("vocabulary.js", *SCRIPTS)
    )
    return (
        html.replace("{{scripts}}", scripts)
        .replace("{{app_css}}", urls["app.css"])
        .replace("{{lazy}}", json.dumps({k: urls[k] for k in LAZY}).replace('"', "&quot;"))
        .replace("{{theme}}", THEME)
        .replace("{{version}}", version())
    )


@cache
def service_worker() -> str:
    js = (MOBILE_DIR / "sw.js").read_text(encoding="utf-8")
    return js.replace('"{{version}}"', json.dumps(version())).replace(
        '["{{precache}}"]', json.dumps(precache())
    )


def manifest(lang: str) -> dict:
    zh = lang == "zh"
    return {
        "id": "/m/",
        "name": "网格通 · 网格员" if zh else "Grid worker",
        "short_name": "网格通" if zh else "Grid",
        "description": "巡查上报、离线待发、我的任务"
        if zh
        else "Report on a walk, work offline, handle my tasks",
        "lang": "zh-CN" if zh else "en",
        "start_url": "/m/" if zh else "/m/?lang=en",
        "scope": "/m/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": THEME,
        "icons": [
            {
                "src": f"/m/icon-{s}.png",
                "sizes": f"{s}x{s}",
                "type": "image/png",
                "purpose": "any maskable",
            }
            for s in ICON_SIZES
        ],
    }


@cache
def icon(size: int) -> bytes:
    """A maskable icon drawn here (a grid of four cells and a pin), so no binary lives in
    the repository and the safe zone (the inner 80 %) holds the whole symbol."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), THEME)
    d = ImageDraw.Draw(img)
    u = size / 100
    line = max(2, round(3 * u))
    for i in range(3):
        x = round((30 + i * 20) * u)
        d.line([(x, round(30 * u)), (x, round(70 * u))], fill="white", width=line)
        d.line([(round(30 * u), x), (round(70 * u), x)], fill="white", width=line)
    cx, cy, r = 60 * u, 44 * u, 9 * u
    d.polygon(
        [(cx - r * 0.9, cy + r * 0.4), (cx + r * 0.9, cy + r * 0.4), (cx, cy + r * 2.2)],
        fill="#f5a623",
    )
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill="#f5a623")
    d.ellipse([cx - r / 2.5, cy - r / 2.5, cx + r / 2.5, cy + r / 2.5], fill=THEME)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()
