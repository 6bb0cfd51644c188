"""TileJSON 3.0.0 (https://github.com/mapbox/tilejson-spec/tree/master/3.0.0) documents
of the vector tiles ``/tiles/{layer}/{z}/{x}/{y}.pbf`` (tiles/routes.py, tiles/mvt.py):
one per tile layer, naming the layers inside its tiles and their fields.

The fields here are what tiles/mvt.py writes (tests/test_ogc.py decodes real tiles and
checks every property they carry is listed). Units and cases tiles follow the viewer's
jurisdiction and need a sign-in (the bearer token or the map pages' cookie); the basemap
and service points are public.
"""

from __future__ import annotations

from typing import Any

from gis_service import __version__
from gis_service.tiles.mvt import CELL_PX, POINT_ZOOM

MINZOOM, MAXZOOM = 0, 22  # tiles/mvt.py check_tile
S, N, B = "String", "Number", "Boolean"

#: per tile layer: a description, and each MVT layer inside with its fields and zooms
TILE_LAYERS: dict[str, dict[str, Any]] = {
    "units": {
        "description": "Unit polygons with their resolution figures over the last 52 "
        "weeks, counted as the viewer counts them; the level by zoom (subdistrict < 12 ≤ "
        "community < 14 ≤ grid) or ?level=. Sign-in needed.",
        "layers": {
            "units": (
                "units of one level",
                {
                    "code": S,
                    "name": S,
                    "level": S,
                    "parent": S,
                    "population": N,
                    "reported": N,
                    "accepted": N,
                    "closed": N,
                    "overdue_now": N,
                    "resolution_rate": N,
                    "on_time_rate": N,
                    "rework_rate": N,
                    "satisfaction_rate": N,
                },
                MINZOOM,
                MAXZOOM,
            )
        },
    },
    "cases": {
        "description": f"Cases of the viewer's jurisdiction: single cases from zoom "
        f"{POINT_ZOOM} (case_id, status, category, overdue), below it (or past 5000 in a "
        f"tile) counts per {CELL_PX}-pixel cell marked aggregated (count, open, overdue, "
        "cell_px), and a meta layer with the tile's total. ?status=, ?category=, "
        "?open=true, ?overdue=true. Sign-in needed.",
        "layers": {
            "cases": (
                "single cases, or per-cell counts (aggregated)",
                {
                    "case_id": N,
                    "status": S,
                    "category": S,
                    "overdue": B,
                    "count": N,
                    "open": N,
                    "aggregated": B,
                    "cell_px": N,
                },
                MINZOOM,
                MAXZOOM,
            ),
            "meta": (
                "one point per aggregated tile: how many cases and cells it holds",
                {"aggregated": B, "cases": N, "cells": N, "cell_px": N},
                MINZOOM,
                MAXZOOM,
            ),
        },
    },
    "service_points": {
        "description": "Service points in service (?kind=, ?category=). Public.",
        "layers": {
            "service_points": (
                "service points",
                {"id": N, "name": S, "kind": S, "categories": S, "address": S, "phone": S},
                MINZOOM,
                MAXZOOM,
            )
        },
    },
    "basemap": {
        "description": "Our own basemap: streets (the walking network; paths from zoom "
        "14), unit boundaries (districts and subdistricts, communities from 13, grids from "
        "15) and buildings from zoom 15. Public.",
        "layers": {
            "streets": ("the walking network", {"kind": S, "name": S}, MINZOOM, MAXZOOM),
            "boundaries": (
                "unit boundaries as lines",
                {"code": S, "name": S, "level": S},
                MINZOOM,
                MAXZOOM,
            ),
            "buildings": ("building footprints", {"code": S, "name": S}, 15, MAXZOOM),
        },
    },
}


def tilejson(layer: str, base_url: str, bounds: list[float]) -> dict[str, Any]:
    """The TileJSON document of one tile layer; ``base_url`` is the server's own
    (absolute tile URLs), ``bounds`` the coverage's CRS84 box (west, south, east, north)."""
    spec = TILE_LAYERS[layer]
    west, south, east, north = bounds
    return {
        "tilejson": "3.0.0",
        "name": f"gis_service {layer}",
        "description": spec["description"],
        "version": __version__,
        "scheme": "xyz",
        "tiles": [f"{base_url}/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf"],
        "minzoom": MINZOOM,
        "maxzoom": MAXZOOM,
        "bounds": bounds,
        "center": [round((west + east) / 2, 7), round((south + north) / 2, 7), 12],
        "attribution": None,
        "vector_layers": [
            {"id": name, "description": d, "fields": fields, "minzoom": lo, "maxzoom": hi}
            for name, (d, fields, lo, hi) in spec["layers"].items()
        ],
    }
