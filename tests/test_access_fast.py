"""The plain route for GET /api/v1/access/isochrone (access/fast.py) answers byte for byte
what FastAPI's route answers, errors included, and leaves to FastAPI every request it
cannot read the way FastAPI would."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from gis_service.access.fast import PATH, FastIsochrone
from gis_service.access.store import EngineCache
from gis_service.db.engine import get_engine


def _scientific(value: float) -> str:
    """The same number as FastAPI reads it (pydantic: the same float), in a notation the
    plain route declines: the request goes to FastAPI's route."""
    return f"{Decimal(repr(value)):E}".replace("+", "%2B")


def _served_by_fast(query: str) -> bool:
    match, _ = FastIsochrone().matches(
        {"type": "http", "path": PATH, "method": "GET", "query_string": query.encode()}
    )
    return match.name == "FULL"


def _pair(client, lon: float, lat: float, **params: str):
    """(the plain route's response, FastAPI's) to the same request."""
    rest = "".join(f"&{k}={v}" for k, v in params.items())
    fast_q = f"lon={lon!r}&lat={lat!r}{rest}"
    slow_q = f"lon={_scientific(lon)}&lat={lat!r}{rest}"
    assert _served_by_fast(fast_q) and not _served_by_fast(slow_q)
    return client.get(f"{PATH}?{fast_q}"), client.get(f"{PATH}?{slow_q}")


def _same(fast, slow) -> None:
    assert fast.status_code == slow.status_code
    assert fast.content == slow.content
    assert fast.headers.items() == slow.headers.items()


@pytest.fixture(scope="module")
def origins(demo_settings):
    with get_engine(demo_settings).connect() as conn:
        engine = EngineCache().get(conn)
    rng = np.random.default_rng(31)
    xy = engine.graph.node_xy[rng.choice(engine.graph.node_count, 4, replace=False)]
    lon, lat = engine.graph.projection.to_lonlat(xy[:, 0] + 7.5, xy[:, 1] - 3.25)
    return list(zip(lon.tolist(), lat.tolist(), strict=True))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"minutes": "5,10,15"},
        {"minutes": "5,10,15", "generalize": "0"},
        {"minutes": "10", "polygons": "false", "speed_kmh": "4.5"},
        {"minutes": "15", "denoise": "0.2", "walk_off_m": "30", "resolution_m": "12.5"},
        {"minutes": "7", "coord_sys": "gcj02", "max_access_m": "20"},
    ],
)
def test_the_plain_route_answers_what_fastapis_answers(demo_client, origins, params):
    for lon, lat in origins:
        fast, slow = _pair(demo_client, lon, lat, **params)
        assert fast.status_code == 200, fast.text
        _same(fast, slow)


@pytest.mark.parametrize(
    ("lon", "lat", "params", "status"),
    [
        (0.5, 0.5, {}, 422),  # outside the network's coverage
        (113.66, 34.75, {"minutes": "abc"}, 422),
        (113.66, 34.75, {"minutes": "0"}, 422),
        (113.66, 34.75, {"minutes": ""}, 422),
        (200.5, 34.75, {}, 422),  # no longitude
        (113.66, 34.75, {"minutes": "45", "resolution_m": "1"}, 422),  # too large a grid
    ],
)
def test_errors_inside_the_route_are_the_same(demo_client, lon, lat, params, status):
    fast, slow = _pair(demo_client, lon, lat, **params)
    assert fast.status_code == status, fast.text
    assert fast.json()["error"]
    _same(fast, slow)


@pytest.mark.parametrize(
    "query",
    [
        "lon=113.66",  # lat missing
        "lat=34.75&lon=113.66&lon=113.67",  # twice
        "lon=113.66&lat=34.75&speed_kmh=0",  # out of its bounds
        "lon=113.66&lat=34.75&generalize=-1",
        "lon=113.66&lat=34.75&denoise=1.5",
        "lon=113.66&lat=34.75&polygons=perhaps",
        "lon=113.66&lat=34.75&polygons=True",
        "lon=113.66&lat=34.75&walk_off_m=nan",
        "lon=113.66&lat=34.75&coord_sys=mars",
        "lon=113.66&lat=34.75&colour=red",  # unknown
    ],
)
def test_what_the_plain_route_cannot_read_goes_to_fastapi(demo_client, query):
    assert not _served_by_fast(query)
    r = demo_client.get(f"{PATH}?{query}")
    assert r.status_code in (200, 422), r.text


def test_the_endpoint_stays_documented(demo_client):
    op = demo_client.get("/openapi.json").json()["paths"][PATH]["get"]
    names = {p["name"] for p in op["parameters"]}
    reader = FastIsochrone()
    assert names == set(reader.query) | set(reader.point)


@pytest.mark.parametrize(
    ("query", "light"),
    [
        ("lon=113.66&lat=34.75", True),  # 15 minutes at 4 km/h: 1,000 m
        ("lon=113.66&lat=34.75&minutes=5,10,15", True),
        ("lon=113.66&lat=34.75&minutes=22.5", True),  # 1,500 m
        ("lon=113.66&lat=34.75&minutes=15&speed_kmh=6", True),
        ("lon=113.66&lat=34.75&minutes=5,30", False),  # 2,000 m
        ("lon=113.66&lat=34.75&minutes=15&speed_kmh=8", False),
        ("lon=113.66&lat=34.75&minutes=15&resolution_m=5", False),  # an asked grid
        ("lon=113.66&lat=34.75&minutes=abc", True),  # refused at once
    ],
)
def test_only_light_requests_are_computed_on_the_event_loop(query, light):
    """FastIsochrone.light: the default grid and a walk of at most INLINE_MAX_M; the rest
    goes to a worker thread (the answers of both ways are FastAPI's, tests above)."""
    kwargs = FastIsochrone().read(query.encode())
    assert kwargs is not None
    assert FastIsochrone.light(kwargs) is light


def test_a_long_walk_is_answered_from_a_worker_thread_the_same(demo_client, origins):
    lon, lat = origins[0]
    fast, slow = _pair(demo_client, lon, lat, minutes="10,30")
    assert fast.status_code == 200, fast.text
    _same(fast, slow)
