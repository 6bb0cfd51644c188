"""The OpenAPI document describes every answer: generated from the app's own routes.

Every operation has a schema for each 2xx answer; declares our ErrorBody for 422 and, when
it needs a sign-in, for 401 and 403; and every refusal it declares references the one
ErrorBody schema. The Open311 routes are the one exception, by the GeoReport v2 spec:
their refusals are the spec's error list (``Open311Errors``), bad input is 400, not 422.
The OGC API – Features routes (gis_service/ogc/) answer bad input with 400 too (OGC
17-069r4 Requirement 13), in our ErrorBody.
Whether the answers really match is tests/test_schema_fuzz.py's work.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from gis_service.api.deps import get_principal, require_admin
from gis_service.app import create_app
from gis_service.ogc.routes import router as ogc_router
from gis_service.settings import Settings

ERROR_BODY = "#/components/schemas/ErrorBody"
OPEN311_ERRORS = "#/components/schemas/Open311Errors"
# GeoReport v2 defines its own error format and answers bad input with 400
OPEN311_PREFIX = "/open311/"
# OGC API – Features: bad input is 400 (OGC 17-069r4 Requirement 13), in our ErrorBody
OGC_PATHS = {route.path for route in ogc_router.routes}

APP = create_app(Settings(secret_key="openapi-contract-test-secret-key-long-enough"))
SPEC = APP.openapi()
OPERATIONS = [
    (method.upper(), path, op)
    for path, item in SPEC["paths"].items()
    for method, op in item.items()
]


def _routes() -> dict[tuple[str, str], Any]:
    """(method, path) → the route (or, for an included router, its effective context:
    both carry ``dependant`` and ``include_in_schema``)."""
    found = {}
    for route in APP.routes:
        contexts = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for r in contexts:
            if (isinstance(r, APIRoute) or hasattr(r, "dependant")) and r.include_in_schema:
                for method in r.methods:
                    found[(method, r.path)] = r
    return found


ROUTES = _routes()


def _calls(dependant: Any) -> set[Any]:
    out = set()
    for dep in dependant.dependencies:
        out.add(dep.call)
        out |= _calls(dep)
    return out


def needs_sign_in(method: str, path: str) -> bool:
    """The route depends on a signed-in principal (PrincipalDep or AdminDep)."""
    route = ROUTES[(method, path)]
    return bool({get_principal, require_admin} & _calls(route.dependant))


def _ids(ops: list) -> list[str]:
    return [f"{m} {p}" for m, p, _ in ops]


def test_the_document_lists_the_operations_the_app_serves():
    assert len(OPERATIONS) == len(ROUTES) > 40
    assert {(m, p) for m, p, _ in OPERATIONS} == set(ROUTES)


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=_ids(OPERATIONS))
def test_every_success_answer_has_a_schema(method: str, path: str, op: dict[str, Any]):
    ok = {s: r for s, r in op["responses"].items() if s.startswith("2")}
    assert ok, f"{method} {path}: no 2xx answer declared"
    for status, response in ok.items():
        content = response.get("content")
        assert content, f"{method} {path} {status}: no media type"
        for media_type, body in content.items():
            schema = body.get("schema") or {}
            assert schema.get("$ref") or schema.get("type"), (
                f"{method} {path} {status} {media_type}: no schema"
            )


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=_ids(OPERATIONS))
def test_every_refusal_is_declared_in_our_error_model(method: str, path: str, op: dict[str, Any]):
    responses = op["responses"]
    open311 = path.startswith(OPEN311_PREFIX)
    model = OPEN311_ERRORS if open311 else ERROR_BODY
    required = {"400"} if open311 or path in OGC_PATHS else {"422"}
    if needs_sign_in(method, path):
        required |= {"403"} if open311 else {"401", "403"}
    missing = required - set(responses)
    assert not missing, f"{method} {path} does not declare {sorted(missing)}"
    for status, response in responses.items():
        if status[0] not in "45":
            continue
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        assert schema.get("$ref") == model, (
            f"{method} {path} {status}: {schema or 'no JSON body'} is not {model}"
        )


def test_the_error_model_is_one_schema_with_our_members():
    body = SPEC["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"error", "detail"}
    assert {"field", "errors", "allowed", "retry_after"} <= set(body["properties"])
    # one error model, not FastAPI's default next to ours
    assert "HTTPValidationError" not in SPEC["components"]["schemas"]


def test_every_reference_resolves():
    schemas = SPEC["components"]["schemas"]

    def refs(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
            return found.union(*(refs(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(refs(v) for v in node))
        return set()

    dangling = sorted(r for r in refs(SPEC) if r.split("/")[-1] not in schemas)
    assert not dangling


def test_non_json_answers_declare_their_media_types():
    tile = SPEC["paths"]["/tiles/{layer}/{z}/{x}/{y}.pbf"]["get"]["responses"]["200"]
    assert set(tile["content"]) == {"application/vnd.mapbox-vector-tile"}
    photo = SPEC["paths"]["/api/v1/cases/{case_id}/photos/{photo_id}"]["get"]["responses"]["200"]
    assert {"image/jpeg", "image/png", "image/webp"} <= set(photo["content"])
    for path, item in SPEC["paths"].items():
        if path.startswith(OPEN311_PREFIX):
            for op in item.values():
                ok = next(r for s, r in op["responses"].items() if s.startswith("2"))
                assert {"application/json", "text/xml"} <= set(ok["content"]), path
    cases = SPEC["paths"]["/api/v1/cases"]["get"]["responses"]["200"]
    assert set(cases["content"]) == {"application/geo+json"}
