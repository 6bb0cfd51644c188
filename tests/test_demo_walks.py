"""The demo's month of generated walks (gis_service/demo/walks.py): walked by most grid
workers, well-walked grids well above neglected ones in the figures the statistics API
gives, due lists where grids are neglected, every fix near its grid."""

from __future__ import annotations

from collections.abc import Iterator
from statistics import mean

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine
from gis_service.demo.walks import Care, care_of


@pytest.fixture(scope="module")
def admin(demo_settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as client:
        r = client.post("/maps/login", data={"username": "admin", "password": "demo-2026"})
        assert r.status_code == 200 and "gis_token" in client.cookies
        yield client


def _rows(settings, sql: str, **params) -> list:
    with get_engine(settings).connect() as conn:
        return list(conn.execute(text(sql), params).all())


def test_most_grid_workers_walked(demo_settings):
    ((workers, walked),) = _rows(
        demo_settings,
        """
        SELECT count(*), count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM walk w WHERE w.worker_id = u.id AND w.status = 'ended'
                      AND w.started_at > now() - interval '31 days'))
          FROM app_user u WHERE u.role = 'grid_worker' AND u.scopes[1] LIKE '410105%'
        """,
    )
    assert workers > 500
    assert walked >= 0.8 * workers
    # processed: tracks, visits and daily figures exist
    ((tracks, visits, days),) = _rows(
        demo_settings,
        "SELECT (SELECT count(*) FROM walk WHERE track IS NOT NULL AND distance_m > 0), "
        "(SELECT count(*) FROM walk_visit), (SELECT count(*) FROM walk_day)",
    )
    assert tracks >= walked and visits > walked and days > walked


def test_well_walked_grids_stand_above_neglected_ones(admin):
    stats = admin.get("/api/v1/stats/walks", params={"level": "grid", "unit": "410105"})
    assert stats.status_code == 200, stats.text
    by_care: dict[Care, list[float]] = {c: [] for c in Care}
    walks: dict[Care, list[int]] = {c: [] for c in Care}
    for unit in stats.json()["units"]:
        care = care_of(unit["code"][:12])
        by_care[care].append(unit["visited_share_30d"] or 0.0)
        walks[care].append(unit["walks"])
    assert all(len(v) >= 20 for v in by_care.values())
    assert mean(by_care[Care.well]) >= 0.9
    assert mean(by_care[Care.well]) - mean(by_care[Care.neglected]) >= 0.4
    assert mean(walks[Care.well]) > 3 * mean(walks[Care.neglected])
    assert max(walks[Care.neglected]) <= 3


def test_neglected_grids_have_due_buildings(admin, demo_settings):
    grids = [
        code
        for (code,) in _rows(
            demo_settings, "SELECT code FROM admin_unit WHERE level = 'grid' ORDER BY code"
        )
        if care_of(code[:12]) is Care.neglected
    ]
    assert grids
    for code in grids:
        due = admin.get(f"/api/v1/grids/{code}/due-buildings").json()
        assert due["due"] >= 1, code


def test_every_fix_lies_within_500_m_of_its_grid(demo_settings):
    ((points, outside),) = _rows(
        demo_settings,
        """
        SELECT count(*), count(*) FILTER (WHERE NOT ST_DWithin(p.geom::geography,
                                                               g.geom::geography, 500))
          FROM walk_point p JOIN walk w ON w.id = p.walk_id
          JOIN admin_unit g ON g.code = w.grid_code
        """,
    )
    assert points > 100_000
    assert outside == 0


def test_the_bulk_path_refuses_what_the_phone_path_refuses(demo_settings):
    """walks.service.record_ended: a fix outside the walk's time or the district, a time
    twice, an unknown grid — each named, nothing stored."""
    from datetime import UTC, datetime, timedelta

    from gis_service.errors import InvalidInput
    from gis_service.walks.service import EndedWalk, record_ended

    ((grid, worker),) = _rows(
        demo_settings,
        "SELECT scopes[1], id FROM app_user WHERE role = 'grid_worker' ORDER BY id LIMIT 1",
    )
    ((lon, lat),) = _rows(
        demo_settings,
        "SELECT ST_X(label_point), ST_Y(label_point) FROM admin_unit WHERE code = :g",
        g=grid,
    )
    start = datetime.now(UTC) - timedelta(days=2)
    ts = [start + timedelta(seconds=30 * i) for i in range(3)]

    def walk(**change) -> EndedWalk:
        fields = {
            "worker_id": worker,
            "grid_code": grid,
            "started_at": start,
            "ended_at": ts[-1],
            "t": ts,
            "lon": [lon] * 3,
            "lat": [lat] * 3,
            "accuracy_m": [8.0] * 3,
            **change,
        }
        return EndedWalk(**fields)

    bad = [
        walk(t=[start - timedelta(seconds=1), *ts[1:]]),
        walk(t=[ts[0], ts[0], ts[2]]),
        walk(lon=[lon, lon + 1.0, lon]),
        walk(grid_code="41010599999999"),
    ]
    before = _rows(demo_settings, "SELECT count(*) FROM walk")
    with get_engine(demo_settings).connect() as conn:
        with pytest.raises(InvalidInput) as refused:
            record_ended(conn, [walk(), *bad], "Asia/Shanghai")
        conn.rollback()
    fields = {e["field"] for e in refused.value.extra["errors"]}
    assert fields == {"walks[1].t", "walks[2].t", "walks[3].lon", "walks[4].grid_code"}
    assert _rows(demo_settings, "SELECT count(*) FROM walk") == before
