"""The one rule for how large a geometry from outside may be (OWASP API4:2023, "Unrestricted
Resource Consumption"): vertices and parts per feature, rings per polygon, vertices in all.

Every path that takes geometry in — a file import (``imports/readers.py: read_vector``, so
boundaries, service points and network layers alike), an OpenStreetMap extract
(``network/osm.py``), a GeoJSON body (``POST /access/siting``'s candidates) — counts with
these functions and refuses past the limits of ``GeometryLimits`` (settings
``GIS_GEOMETRY_MAX_VERTICES``, ``GIS_GEOMETRY_MAX_PARTS``, ``GIS_GEOMETRY_MAX_RINGS``,
``GIS_IMPORT_MAX_VERTICES``, ``GIS_NETWORK_MAX_VERTICES``). The counts are taken before any
repair, reprojection or union, so nothing expensive runs on a geometry that is refused.

What is counted (OGC Simple Features terms):
- vertices: coordinate pairs, as GEOS counts them (a closed ring counts its first point twice);
- parts: the Points, LineStrings and Polygons a geometry holds once every multi-geometry and
  GeometryCollection is flattened (a Polygon is one part);
- rings: of one Polygon, its exterior ring plus its interior rings (holes); the largest
  Polygon of the feature is the one compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from gis_service.errors import GeometryTooLarge

#: OpenAPI extension on every request field that carries geometry from outside: "geojson"
#: (a FeatureCollection, Feature or geometry in a JSON body) or "file" (an import upload).
#: tests/test_bounds.py sends each marked field an oversized geometry.
GEOMETRY_INPUT = "x-geometry-input"

#: shapely type ids of the geometries that hold other geometries
_COLLECTIONS = (4, 5, 6, 7)  # MultiPoint, MultiLineString, MultiPolygon, GeometryCollection
_POLYGON = 3


@dataclass(frozen=True)
class GeometryLimits:
    """Per feature ``vertices`` and ``parts``, per polygon ``rings``, and ``total`` vertices
    of one import or request; ``total_setting`` names the setting of the total, for
    messages."""

    vertices: int
    parts: int
    rings: int
    total: int
    total_setting: str = "GIS_IMPORT_MAX_VERTICES"

    @classmethod
    def of(cls, settings: Any, *, network: bool = False) -> GeometryLimits:
        """The limits a ``Settings`` sets; ``network=True``: the total of a walking network
        (``network_max_vertices``) instead of an import's."""
        total, name = (
            (settings.network_max_vertices, "GIS_NETWORK_MAX_VERTICES")
            if network
            else (settings.import_max_vertices, "GIS_IMPORT_MAX_VERTICES")
        )
        return cls(
            vertices=settings.geometry_max_vertices,
            parts=settings.geometry_max_parts,
            rings=settings.geometry_max_rings,
            total=total,
            total_setting=name,
        )


@dataclass(frozen=True)
class Excess:
    """One count past its limit: ``feature`` counts from 1 (None: the whole import),
    ``what`` is vertices, parts or rings."""

    feature: int | None
    what: str
    count: int
    limit: int
    setting: str

    @property
    def message(self) -> str:
        if self.feature is None:
            return (
                f"holds {self.count:,} vertices in all; at most {self.limit:,} are accepted "
                f"in one import or request ({self.setting})"
            )
        per = "in one polygon" if self.what == "rings" else "in one feature"
        return (
            f"has {self.count:,} {self.what}; at most {self.limit:,} are accepted {per} "
            f"({self.setting})"
        )

    def problem(self) -> dict[str, Any]:
        """As an import problem (``imports/problems.py``): feature, problem, field and the
        count against the limit."""
        return {
            "feature": self.feature,
            "problem": self.message,
            "field": "geometry",
            "count": self.count,
            "limit": self.limit,
        }


SETTING = {
    "vertices": "GIS_GEOMETRY_MAX_VERTICES",
    "parts": "GIS_GEOMETRY_MAX_PARTS",
    "rings": "GIS_GEOMETRY_MAX_RINGS",
}


def sizes(geoms: Sequence | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per geometry (None and empty count 0): vertices, parts, and the most rings of one
    of its polygons; vectorised over the whole array (GEOS, no Python loop per vertex)."""
    arr = np.asarray(geoms, dtype=object)
    n = len(arr)
    vertices = shapely.get_num_coordinates(arr).astype(np.int64)
    parts, index = arr, np.arange(n)
    # flatten collections level by level (a GeometryCollection may hold multi-geometries)
    while True:
        nested = np.isin(shapely.get_type_id(parts), _COLLECTIONS)
        if not nested.any():
            break
        inner, owner = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], inner])
        index = np.concatenate([index[~nested], index[nested][owner]])
    real = ~shapely.is_missing(parts) & ~shapely.is_empty(parts)
    part_count = np.bincount(index[real], minlength=n).astype(np.int64)
    rings = np.zeros(n, np.int64)
    poly = real & (shapely.get_type_id(parts) == _POLYGON)
    if poly.any():
        np.maximum.at(rings, index[poly], shapely.get_num_interior_rings(parts[poly]) + 1)
    return vertices, part_count, rings


def excesses(geoms: Sequence | np.ndarray, limits: GeometryLimits) -> list[Excess]:
    """Every feature past a per-feature limit, in file order, then the total if past it."""
    vertices, parts, rings = sizes(geoms)
    out: list[Excess] = []
    for what, counts in (("vertices", vertices), ("parts", parts), ("rings", rings)):
        limit = getattr(limits, what)
        for i in np.nonzero(counts > limit)[0]:
            out.append(Excess(int(i) + 1, what, int(counts[i]), limit, SETTING[what]))
    out.sort(key=lambda e: e.feature or 0)
    total = int(vertices.sum())
    if total > limits.total:
        out.append(Excess(None, "vertices", total, limits.total, limits.total_setting))
    return out


def geojson_sizes(geometry: Any) -> tuple[int, int, int]:
    """(vertices, parts, most rings of one polygon) of a GeoJSON geometry object (RFC 7946
    §3.1), counted on the parsed JSON before anything is built from it. Malformed nesting
    counts what is there; whether it is valid GeoJSON is checked where it is read."""
    if not isinstance(geometry, dict):
        return 0, 0, 0
    kind, coords = geometry.get("type"), geometry.get("coordinates")

    def n(x: Any) -> int:
        return len(x) if isinstance(x, list | tuple) else 0

    def ring_list(x: Any) -> list | tuple:
        return x if isinstance(x, list | tuple) else []

    match kind:
        case "Point":
            return (1, 1, 0) if coords else (0, 0, 0)
        case "MultiPoint":
            return n(coords), n(coords), 0
        case "LineString":
            return n(coords), 1, 0
        case "MultiLineString":
            return sum(n(line) for line in ring_list(coords)), n(coords), 0
        case "Polygon":
            rings = ring_list(coords)
            return sum(n(r) for r in rings), 1, len(rings)
        case "MultiPolygon":
            polys = ring_list(coords)
            verts = sum(n(r) for p in polys for r in ring_list(p))
            return verts, len(polys), max((n(p) for p in polys), default=0)
        case "GeometryCollection":
            members = [geojson_sizes(g) for g in ring_list(geometry.get("geometries"))]
            return (
                sum(m[0] for m in members),
                sum(m[1] for m in members),
                max((m[2] for m in members), default=0),
            )
    return 0, 0, 0


def geojson_excesses(features: Iterable[Any], limits: GeometryLimits) -> list[Excess]:
    """``excesses`` for the geometries of GeoJSON Feature objects (a FeatureCollection's
    ``features``); feature numbers count from 1."""
    out: list[Excess] = []
    total = 0
    for i, feature in enumerate(features, start=1):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        counts = dict(zip(("vertices", "parts", "rings"), geojson_sizes(geometry), strict=True))
        total += counts["vertices"]
        for what, count in counts.items():
            if count > getattr(limits, what):
                out.append(Excess(i, what, count, getattr(limits, what), SETTING[what]))
    if total > limits.total:
        out.append(Excess(None, "vertices", total, limits.total, limits.total_setting))
    return out


def check_geojson(collection: Any, limits: GeometryLimits, field: str) -> None:
    """Refuse a GeoJSON FeatureCollection (or one Feature, or a bare geometry) that is past
    a limit: 422 ``geometry_too_large`` naming ``field``, the first feature at fault, its
    count and the limit, with ``problems`` listing every excess. Source: OWASP API4:2023."""
    if isinstance(collection, dict) and isinstance(collection.get("features"), list):
        features = collection["features"]
    elif isinstance(collection, dict) and collection.get("type") == "Feature":
        features = [collection]
    elif isinstance(collection, dict):
        features = [{"geometry": collection}]
    else:
        return
    found = geojson_excesses(features, limits)
    if found:
        raise too_large(found, field)


def too_large(found: list[Excess], field: str) -> GeometryTooLarge:
    """The error for excesses found in a request field (the first named in the detail)."""
    first = found[0]
    where = f"feature {first.feature} " if first.feature is not None else ""
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return GeometryTooLarge(
        f"{field}: {where}{first.message}{more}",
        field=field,
        feature=first.feature,
        count=first.count,
        limit=first.limit,
        problems=[e.problem() for e in found],
    )
