"""Every resource bounded (issue 14 item 2, OWASP API4:2023): geometry sizes and the run time
of analyses.

Geometry: the cases are generated from the app's OpenAPI — every request field marked
``x-geometry-input`` (geo/bounds.py: GEOMETRY_INPUT) gets a geometry past each limit (too
many vertices in a feature, too many parts, too many rings in a polygon, too many vertices
in all) and must answer 422 in our body naming the field, the feature, the count and the
limit, with no table changed and the server still answering. A completeness check makes
sure no field that takes geometry goes unmarked. The counting itself is checked against
shapely on generated geometries, and the network readers (OSM, line layers) against the
real Helsinki extract.

Analyses: siting past its pairs bound and past its deadline, an isochrone raster past its
cell bound, and the SQL figures past their statement_timeout answer 422
``analysis_too_large``, never 500 or 503, and the next request is served.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import LineString, MultiPoint, Polygon, mapping
from sqlalchemy import text

from gis_service.access import service
from gis_service.access.bounds import MAX_GRID_CELLS, check_grid, statement_timeout
from gis_service.api.handlers import query_cancelled
from gis_service.app import create_app
from gis_service.db.engine import get_engine
from gis_service.errors import AnalysisTooLarge, ImportRejected
from gis_service.geo.bounds import (
    GEOMETRY_INPUT,
    GeometryLimits,
    excesses,
    geojson_sizes,
    sizes,
)
from gis_service.network.imports import read_network
from gis_service.settings import Settings
from tests.conftest import ADMIN_AUTH, TEST_SECRET, osm_extract

#: small limits, so oversized geometries stay far below the body limits
SMALL = {
    "geometry_max_vertices": 50,
    "geometry_max_parts": 5,
    "geometry_max_rings": 3,
    "import_max_vertices": 200,
}
LIMITS = GeometryLimits(vertices=50, parts=5, rings=3, total=200)


def _line(n: int, x0: float = 113.0) -> LineString:
    return LineString([(x0 + i * 1e-4, 34.0 + (i % 2) * 1e-4) for i in range(n)])


def _holed(holes: int) -> Polygon:
    shell = [(113.0, 34.0), (113.1, 34.0), (113.1, 34.1), (113.0, 34.1)]
    rings = []
    for i in range(holes):
        x = 113.01 + i * 0.01
        rings.append([(x, 34.01), (x + 0.005, 34.01), (x + 0.005, 34.02), (x, 34.02)])
    return Polygon(shell, rings)


def oversized(limits: GeometryLimits) -> dict[str, tuple[list, list[tuple[Any, int, int]]]]:
    """Per excess: (geometries, expected [(feature, count, limit)]) — one feature past the
    limit among fine ones, so the report must name the right feature."""
    fine = _line(3)
    per_feature = (limits.total // 5) + 1
    n_total = limits.total // per_feature + 1
    return {
        "vertices": (
            [fine, _line(limits.vertices + 1), fine],
            [(2, limits.vertices + 1, limits.vertices)],
        ),
        "parts": (
            [MultiPoint([(113.0 + i * 1e-3, 34.0) for i in range(limits.parts + 1)]), fine],
            [(1, limits.parts + 1, limits.parts)],
        ),
        "rings": ([fine, fine, _holed(limits.rings)], [(3, limits.rings + 1, limits.rings)]),
        "total": (
            [_line(per_feature, 113.0 + i * 0.01) for i in range(n_total)],
            [(None, per_feature * n_total, limits.total)],
        ),
    }


def _fc(geoms: list) -> dict:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": f"c{i}",
                "geometry": mapping(g),
                "properties": {"name": f"要素{i}", "code": f"41019900{i:04d}"},
            }
            for i, g in enumerate(geoms, start=1)
        ],
    }


# --- the counting rule ---------------------------------------------------------------


def _random_geometries(rng: np.random.Generator, n: int) -> list:
    out: list = []
    for _ in range(n):
        pts = rng.random((int(rng.integers(4, 40)), 2))
        kind = rng.integers(0, 5)
        if kind == 0:
            out.append(MultiPoint(pts))
        elif kind == 1:
            out.append(LineString(pts))
        elif kind == 2:
            out.append(shapely.convex_hull(MultiPoint(pts)).buffer(0.1, quad_segs=4))
        elif kind == 3:
            out.append(_holed(int(rng.integers(0, 6))))
        else:
            out.append(
                shapely.GeometryCollection(
                    [shapely.multipolygons([_holed(2), _holed(1)]), LineString(pts)]
                )
            )
    return out


def test_the_geojson_count_agrees_with_shapely_on_generated_geometries():
    geoms = _random_geometries(np.random.default_rng(14), 200)
    vertices, parts, rings = sizes(geoms)
    for i, g in enumerate(geoms):
        assert geojson_sizes(mapping(g)) == (vertices[i], parts[i], rings[i]), g.geom_type
    assert (vertices == shapely.get_num_coordinates(geoms)).all()


def test_each_excess_names_its_feature_its_count_and_the_limit():
    for what, (geoms, expected) in oversized(LIMITS).items():
        found = [(e.feature, e.count, e.limit) for e in excesses(geoms, LIMITS)]
        assert found == expected, what
        assert not excesses(geoms, GeometryLimits(10**6, 10**6, 10**6, 10**7)), what


# --- every route that takes geometry, from the OpenAPI -------------------------------


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def geometry_inputs(app) -> list[tuple[str, str, str, str, dict]]:
    """(method, path, media type, field, body schema) for every marked request field."""
    spec = app.openapi()
    components = spec.get("components", {}).get("schemas", {})
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                schema = _resolve(body["schema"], components)
                for name, prop in schema.get("properties", {}).items():
                    if GEOMETRY_INPUT in prop or GEOMETRY_INPUT in _resolve(prop, components):
                        found.append((method.upper(), path, media, name, schema))
    return found


def _fill(schema: dict, skip: str) -> dict[str, Any]:
    """The other fields of a body: each required one, and each with an example, as its
    example, default or first enum value."""
    values = {}
    for name, prop in schema.get("properties", {}).items():
        if name == skip or (name not in schema.get("required", []) and "examples" not in prop):
            continue
        for key in ("examples", "default", "enum"):
            if key in prop:
                values[name] = prop[key][0] if isinstance(prop[key], list) else prop[key]
                break
        else:
            options = [o for o in prop.get("anyOf", []) if "enum" in o]
            assert options, f"{name}: no example, default or enum to fill it with"
            values[name] = options[0]["enum"][0]
    return values


def table_counts(settings) -> dict[str, int]:
    """Rows per table; import_run is the record of the refused attempt itself, and
    audit_log the audit trail of that record (audit/tables.py)."""
    with get_engine(settings).connect() as conn:
        tables = conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT IN ('import_run', 'audit_log') ORDER BY 1"
            )
        ).scalars()
        return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in tables}


@pytest.fixture
def small_client(db) -> Iterator[TestClient]:
    settings = db.model_copy(update=SMALL)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


_APP = create_app(Settings(secret_key=TEST_SECRET))
INPUTS = geometry_inputs(_APP)


def test_the_routes_that_take_geometry_are_the_marked_ones():
    """A request field whose description speaks of GeoJSON or geometry files carries the
    mark, so a new route cannot take geometry unbounded unnoticed (a bbox is four numbers,
    one rectangle: nothing to count)."""
    spec = _APP.openapi()
    components = spec["components"]["schemas"]
    unmarked = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for media, body in op.get("requestBody", {}).get("content", {}).items():
                schema = _resolve(body["schema"], components)
                for name, prop in schema.get("properties", {}).items():
                    words = prop.get("description", "").lower()
                    if ("geojson" in words or "geopackage" in words) and GEOMETRY_INPUT not in prop:
                        unmarked.append(f"{method} {path} {media} {name}")
    assert not unmarked
    assert {(m, p, f) for m, p, _, f, _ in INPUTS} >= {
        ("POST", "/api/v1/access/siting", "candidates"),
        ("POST", "/api/v1/imports", "file"),
    }


@pytest.mark.parametrize("excess", ["vertices", "parts", "rings", "total"])
@pytest.mark.parametrize(
    "method,path,media,name,schema", INPUTS, ids=[f"{m} {p} {f}" for m, p, _, f, _ in INPUTS]
)
def test_a_too_large_geometry_is_refused_naming_feature_count_and_limit(
    small_client, db, excess, method, path, media, name, schema
):
    geoms, expected = oversized(LIMITS)[excess]
    before = table_counts(db)
    values = _fill(schema, name)
    if media == "application/json":
        r = small_client.request(
            method, path, json={**values, name: _fc(geoms)}, headers=ADMIN_AUTH
        )
        assert r.json()["error"] == "geometry_too_large", r.text
        assert r.json()["field"] == name
    else:
        blob = json.dumps(_fc(geoms)).encode()
        files = {name: ("oversized.geojson", io.BytesIO(blob), "application/geo+json")}
        r = small_client.request(method, path, data=values, files=files, headers=ADMIN_AUTH)
        assert r.json()["error"] == "import_rejected", r.text
        assert "nothing was imported" in r.json()["detail"]
    assert r.status_code == 422, r.text
    body = r.json()
    got = [(p["feature"], p["count"], p["limit"]) for p in body["problems"]]
    assert got == expected, body
    assert all(p["field"] == "geometry" for p in body["problems"])
    feature, count, limit = expected[0]
    assert f"{count:,}" in body["detail"] and f"{limit:,}" in body["detail"]
    if feature is not None:
        assert f"feature {feature}" in body["detail"]
    assert table_counts(db) == before
    assert small_client.get("/healthz").status_code == 200


# --- networks: the OSM reader counts while it reads, line layers through read_vector ----


def test_an_osm_extract_past_the_network_total_is_stopped_while_reading():
    path = osm_extract("Helsinki.osm.pbf")
    full = read_network(path, limits=GeometryLimits(10**6, 10**6, 10**6, 10**8))
    assert full.edge_count > 1000
    with pytest.raises(ImportRejected) as caught:
        read_network(path, limits=GeometryLimits(10**6, 10**6, 10**6, 5000))
    (problem,) = caught.value.extra["problems"]
    # stopped at the way that crossed the limit (an OSM way has at most 2,000 nodes)
    assert problem["limit"] == 5000 and 5000 < problem["count"] <= 7000
    with pytest.raises(ImportRejected) as caught:
        read_network(path, limits=GeometryLimits(40, 10**6, 10**6, 10**8))
    long_ways = caught.value.extra["problems"]
    assert long_ways and all(p["count"] > 40 and p["osm_id"] for p in long_ways)


def test_a_line_layer_past_a_limit_is_refused_per_feature(tmp_path):
    import geopandas as gpd

    geoms, expected = oversized(LIMITS)["vertices"]
    path = tmp_path / "streets.geojson"
    gpd.GeoDataFrame({"name": ["a", "b", "c"]}, geometry=geoms, crs=4326).to_file(path)
    with pytest.raises(ImportRejected) as caught:
        read_network(path, limits=LIMITS)
    got = [(p["feature"], p["count"], p["limit"]) for p in caught.value.extra["problems"]]
    assert got == expected


# --- analyses ------------------------------------------------------------------------


def _demo_client(demo_settings, **update) -> TestClient:
    return TestClient(
        create_app(demo_settings.model_copy(update=update)), raise_server_exceptions=False
    )


def _refused_as_too_large(r, field: str | None = None) -> dict:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "analysis_too_large", body
    assert "analysis too large" in body["detail"]
    if field:
        assert body["field"] == field
    return body


def test_siting_past_its_pairs_is_refused_up_front(demo_settings):
    with _demo_client(demo_settings, siting_max_pairs=1000) as c:
        params = {"kind": "party_org", "k": 2}
        body = _refused_as_too_large(
            c.get("/api/v1/access/siting", params=params, headers=ADMIN_AUTH), "max_m"
        )
        assert body["count"] > body["limit"] == 1000
        assert "buildings ×" in body["detail"] and "candidates" in body["detail"]
    with _demo_client(demo_settings, siting_max_pairs=body["count"]) as c:
        r = c.get("/api/v1/access/siting", params=params, headers=ADMIN_AUTH)
        assert r.status_code == 200, r.text


def test_siting_past_its_deadline_is_stopped(demo_settings):
    with _demo_client(demo_settings, analysis_max_seconds=1e-6) as c:
        r = c.get("/api/v1/access/siting", params={"kind": "party_org"}, headers=ADMIN_AUTH)
        body = _refused_as_too_large(r)
        assert body["limit"] == 1e-6 and "GIS_ANALYSIS_MAX_SECONDS" in body["detail"]


def test_an_isochrone_raster_past_its_cells_is_refused_naming_the_resolution(demo_client):
    point = {"lon": 113.68, "lat": 34.76}
    r = demo_client.get(
        "/api/v1/access/isochrone",
        params={**point, "minutes": 60, "speed_kmh": 20, "resolution_m": 1},
    )
    body = _refused_as_too_large(r, "resolution_m")
    assert body["count"] > body["limit"] == MAX_GRID_CELLS
    # the finest resolution the message offers is within the bound
    finest = float(body["detail"].rsplit(" ", 1)[-1])
    check_grid(20_000, service.DEFAULT_WALK_OFF_M, finest)
    with pytest.raises(AnalysisTooLarge):
        check_grid(20_000, service.DEFAULT_WALK_OFF_M, finest * 0.99)


def test_a_cancelled_statement_is_recognised(settings):
    with get_engine(settings).connect() as conn:
        statement_timeout(conn, 0.05)
        with pytest.raises(Exception) as caught:
            conn.execute(text("SELECT pg_sleep(2)"))
    assert query_cancelled(caught.value)
    with get_engine(settings).connect() as conn:  # the setting ended with its transaction
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"


@pytest.mark.parametrize(
    "route,params",
    [
        ("reach", {"level": "grid"}),
        ("gaps", {}),
        ("living-circle", {"level": "building"}),
        ("living-circle", {"level": "grid"}),
    ],
)
def test_sql_figures_past_their_statement_timeout_answer_422_not_5xx(demo_settings, route, params):
    with _demo_client(demo_settings, analysis_max_seconds=0.001) as c:
        r = c.get(f"/api/v1/access/{route}", params=params, headers=ADMIN_AUTH)
        _refused_as_too_large(r)
    with _demo_client(demo_settings) as c:  # the same question within the bound is answered
        r = c.get(f"/api/v1/access/{route}", params=params, headers=ADMIN_AUTH)
        assert r.status_code == 200, r.text
