"""Fixtures: a real PostGIS (the project's own cluster), a fresh test database per session,
and a second one with the whole demo loaded once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db import cluster, migrate
from gis_service.db.engine import get_engine
from gis_service.demo.run import load_demo
from gis_service.settings import Settings

ADMIN_TOKEN = "test-admin-token"
TABLES = "walk_edge, walk_node, import_run, service_point, unit_staff, admin_unit"


def _fresh_database(name: str) -> Settings:
    settings = Settings(db_name=name, admin_token=ADMIN_TOKEN, import_wait_seconds=30)
    cluster.start(settings)
    cluster.drop_database(settings, name)
    cluster.ensure_database(settings, name)
    migrate.upgrade(settings)
    return settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return _fresh_database("gis_service_test")


@pytest.fixture
def db(settings: Settings) -> Iterator[Settings]:
    """An empty schema for each test that writes."""
    with get_engine(settings).begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    yield settings


@pytest.fixture(scope="session")
def demo_settings() -> Settings:
    settings = _fresh_database("gis_service_test_demo")
    load_demo(settings)
    return settings


@pytest.fixture
def client(db: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as c:
        yield c


@pytest.fixture(scope="session")
def demo_client(demo_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


# A small test city: one district square split into two subdistricts (west, east), each
# into two communities (north, south). Coordinates are WGS-84 near Zhengzhou.
DISTRICT = box(113.0, 34.0, 113.1, 34.1)
SUBDISTRICTS = {"410199001": box(113.0, 34.0, 113.05, 34.1),
                "410199002": box(113.05, 34.0, 113.1, 34.1)}
COMMUNITIES = {
    "410199001001": box(113.0, 34.05, 113.05, 34.1),
    "410199001002": box(113.0, 34.0, 113.05, 34.05),
    "410199002001": box(113.05, 34.05, 113.1, 34.1),
    "410199002002": box(113.05, 34.0, 113.1, 34.05),
}


def frame(rows: dict[str, object], prefix: str = "单元") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": list(rows), "name": [f"{prefix}{c[-3:]}" for c in rows]},
        geometry=list(rows.values()), crs=4326,
    )


def write(gdf: gpd.GeoDataFrame, path: Path, **kwargs) -> Path:
    gdf.to_file(path, **kwargs)
    return path


@pytest.fixture
def test_city(db: Settings, tmp_path: Path) -> Settings:
    """District, subdistricts and communities of the small test city, imported."""
    from gis_service.imports.boundaries import BoundaryOptions, import_boundaries
    from gis_service.units.codes import Level

    for level, rows in ((Level.district, {"410199": DISTRICT}),
                        (Level.subdistrict, SUBDISTRICTS), (Level.community, COMMUNITIES)):
        path = write(frame(rows, level.value), tmp_path / f"{level.value}.geojson")
        import_boundaries(path, BoundaryOptions(level=level), settings=db)
    return db
