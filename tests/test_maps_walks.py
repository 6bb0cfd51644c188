"""The walk map (/maps/walks) on the demo's month of walks: neglected grids show as
neglected, a community supervisor sees their community only, a planner gets figures and
buildings but no walked streets, a team member nothing."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine
from gis_service.demo.walks import Care, care_of

SUMMARY = re.compile(
    r'data-testid="walk-summary" data-grids="(\d+)" data-buildings="(\d+)" '
    r'data-stale="(\d+)" data-streets="(\d+)" data-codes="([0-9 ]*)"'
)


def _page(settings, username: str, **params) -> tuple[int, str]:
    with TestClient(create_app(settings)) as client:
        r = client.post("/maps/login", data={"username": username, "password": "demo-2026"})
        assert r.status_code == 200
        r = client.get("/maps/walks", params=params)
        return r.status_code, r.text


def _summary(body: str) -> tuple[int, int, int, int, list[str]]:
    m = SUMMARY.search(body)
    assert m, "no walk summary on the page"
    return int(m[1]), int(m[2]), int(m[3]), int(m[4]), m[5].split()


def _communities(settings, care: Care) -> list[str]:
    with get_engine(settings).connect() as conn:
        codes = conn.execute(
            text("SELECT code FROM admin_unit WHERE level = 'community' ORDER BY code")
        ).scalars()
        return [c for c in codes if care_of(c) is care]


@pytest.mark.parametrize("care", [Care.neglected, Care.well])
def test_a_community_supervisor_sees_their_grids_as_walked_or_neglected(demo_settings, care):
    community = _communities(demo_settings, care)[0]
    status, body = _page(demo_settings, f"sup{community}")
    assert status == 200
    grids, buildings, stale, streets, codes = _summary(body)
    assert grids >= 1 and buildings >= 1 and codes
    # only their jurisdiction: every building and grid on the page is in the community
    assert all(c.startswith(community) for c in codes)
    shown = set(re.findall(r'"code": "(\d{14,})"', body))
    assert shown and all(c.startswith(community) for c in shown)
    assert 'data-testid="nav-walks"' in body
    if care is Care.neglected:
        # nobody walked them in the last week: coloured as not visited for long
        assert stale == buildings
        assert '"bin": "walk_bin.1"' not in body and '"bin": "walk_bin.7"' not in body
    else:
        assert stale <= buildings // 4
        assert streets > 0


def test_the_legend_counts_the_buildings_of_each_colour(demo_settings):
    community = _communities(demo_settings, Care.neglected)[0]
    _, body = _page(demo_settings, f"sup{community}", lang="en")
    _, buildings, _, _, _ = _summary(body)
    counts = [int(n) for n in re.findall(r"</span>[^<(]+\((\d+)\)</li>", body)]
    assert sum(counts) == buildings
    assert "Days since the last visit" in body


def test_a_planner_gets_figures_but_no_walked_streets(demo_settings):
    status, body = _page(demo_settings, "planner", unit="410105001")
    assert status == 200
    grids, buildings, _, streets, codes = _summary(body)
    assert grids > 1 and buildings > 1 and streets == 0
    assert all(c.startswith("410105001") for c in codes)
    status, body = _page(demo_settings, "admin", unit="410105001")
    assert _summary(body)[3] > 0  # an admin sees the streets of the same unit


def test_per_worker_and_team_members_refused(demo_settings):
    community = _communities(demo_settings, Care.well)[0]
    with get_engine(demo_settings).connect() as conn:
        worker = conn.execute(
            text(
                "SELECT id FROM app_user WHERE role = 'grid_worker' AND scopes[1] LIKE :c "
                "ORDER BY id LIMIT 1"
            ),
            {"c": community + "%"},
        ).scalar()
    status, whole = _page(demo_settings, f"sup{community}")
    status, one = _page(demo_settings, f"sup{community}", worker=worker)
    assert status == 200
    assert 0 < _summary(one)[3] <= _summary(whole)[3]
    with TestClient(create_app(demo_settings)) as client:
        r = client.post("/maps/login", data={"username": "team1", "password": "demo-2026"})
        if r.status_code == 200:  # signed in: the page itself refuses
            r = client.get("/maps/walks", follow_redirects=False)
        assert r.status_code == 403
