"""``X-Min-LSN`` in the OpenAPI document (db/replicas.py, api/deps.py ``get_read_conn``,
api/readyourwrites.py): every route that reads through the read connection declares the
header it honours, no other route does, and when the app reads on standbys
every write declares the header on its successful answers. Walked from the app's own
routes and document."""

from __future__ import annotations

from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from gis_service.api.deps import get_read_conn
from gis_service.api.readyourwrites import SAFE_METHODS
from gis_service.app import create_app
from gis_service.db import replicas
from tests.conftest import ADMIN_AUTH


def _uses(dependant, call) -> bool:
    return any(d.call is call or _uses(d, call) for d in dependant.dependencies)


def _operations(app, spec):
    """(route, path, method, operation) of every documented route, however included."""
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in ctx.methods or ():
            op = spec["paths"].get(ctx.path_format, {}).get(method.lower())
            if op is not None:
                yield route, ctx.path_format, method, op


def test_every_route_reading_through_the_read_connection_declares_the_header(settings):
    app = create_app(settings)
    spec = app.openapi()
    readers, declared = set(), set()
    for route, path, method, op in _operations(app, spec):
        params = {(p["in"], p["name"]) for p in op.get("parameters", [])}
        if _uses(route.dependant, get_read_conn):
            readers.add((path, method))
        if ("header", replicas.MIN_LSN_HEADER) in params:
            declared.add((path, method))
    assert ("/api/v1/cases", "GET") in readers
    assert declared == readers
    # without standbys no write is stamped, and none says it is
    for _route, _path, method, op in _operations(app, spec):
        for response in op.get("responses", {}).values():
            assert replicas.MIN_LSN_HEADER not in response.get("headers", {}), method


def test_with_standbys_every_write_declares_the_header_it_answers_with(settings):
    app = create_app(settings.model_copy(update={"read_database_url": settings.libpq_url}))
    spec = app.openapi()
    writes = 0
    for _route, path, method, op in _operations(app, spec):
        for status, response in op.get("responses", {}).items():
            stamped = replicas.MIN_LSN_HEADER in response.get("headers", {})
            expected = method not in SAFE_METHODS and status[0] in "123"
            assert stamped == expected, (path, method, status)
            writes += expected
    assert writes > 10


def test_the_declared_header_is_the_one_read(case_city):
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        bad = api.get(
            "/api/v1/cases", headers={**ADMIN_AUTH, replicas.MIN_LSN_HEADER: "not-a-position"}
        )
        assert bad.status_code == 422 and bad.json()["field"] == replicas.MIN_LSN_HEADER
        good = api.get("/api/v1/cases", headers={**ADMIN_AUTH, replicas.MIN_LSN_HEADER: "0/1"})
        assert good.status_code == 200, good.text
