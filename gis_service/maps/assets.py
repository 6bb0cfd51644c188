"""Leaflet and its plugins come from our own server (installed by `make` from the npm
registry into gis_service/web/node_modules): isolated networks reach no CDN."""

from __future__ import annotations

from pathlib import Path

import folium

WEB = Path(__file__).resolve().parents[1] / "web"
VENDOR_DIR = WEB / "node_modules"
APP_DIR = WEB / "static"
LEAFLET_JS = "/static/vendor/leaflet/dist/leaflet.js"
LEAFLET_CSS = "/static/vendor/leaflet/dist/leaflet.css"
VECTORGRID_JS = "/static/vendor/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js"
MAPS_JS = "/static/app/maps.js"  # our helpers: basemap, case tiles, timelines


def localise(m: folium.Map) -> folium.Map:
    """Only Leaflet itself, from us: folium's defaults (jQuery, Bootstrap, icon fonts from
    three CDNs) are not used by these pages."""
    m.default_js = [("leaflet", LEAFLET_JS)]
    m.default_css = [("leaflet_css", LEAFLET_CSS)]
    return m
