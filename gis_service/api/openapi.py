"""The OpenAPI document, with corrections FastAPI cannot be told route by route.

1. Refusals are always JSON (our ErrorBody, or Open311's error list), even where the
   route's answer is GeoJSON. FastAPI files a route's error models under the route's own
   media type (``application/geo+json``); here they move to ``application/json``, where
   clients and the schema fuzzing (tests/test_schema_fuzz.py) find them.
2. A schema written into a route's ``openapi_extra`` (the report's JSON-or-multipart
   body, cases/routes.py) carries its own ``$defs`` while its ``$ref``s point at
   ``#/components/schemas``: the definitions move there, so every reference resolves.
3. An operation that reads a body may refuse an unreadable one with 400 (``body_refusals``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

JSON = "application/json"


def errors_as_json(spec: dict[str, Any]) -> dict[str, Any]:
    """Every refusal (4xx, 5xx) and every 202 (a job's status) documented under a
    JSON-based media type (``+json``) is filed under ``application/json`` instead; other
    media types (XML) stay."""
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                if status[0] not in "45" and status != "202":
                    continue
                content = response.get("content", {})
                for media_type in [t for t in content if t.endswith("+json")]:
                    content.setdefault(JSON, content.pop(media_type))
    return spec


def body_refusals(spec: dict[str, Any]) -> dict[str, Any]:
    """Every operation that reads a body may answer 400 ``bad_request`` when the body
    cannot be parsed as its media type (Starlette's form parser, FastAPI's JSON decoding;
    api/handlers.py words it): declared here for each, in the error model its other
    refusals use (our ErrorBody; Open311's list on the GeoReport routes)."""
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if "requestBody" not in operation or "400" in responses:
                continue
            model = next(
                (
                    r["content"][JSON]["schema"]
                    for status, r in responses.items()
                    if status[0] == "4" and JSON in r.get("content", {})
                ),
                {"$ref": "#/components/schemas/ErrorBody"},
            )
            responses["400"] = {
                "description": "The body cannot be read as the media type it claims",
                "content": {JSON: {"schema": model}},
            }
    return spec


def hoist_defs(spec: dict[str, Any]) -> dict[str, Any]:
    """Move every ``$defs`` found under ``paths`` into ``components.schemas``."""
    components = spec.setdefault("components", {}).setdefault("schemas", {})

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, schema in node.pop("$defs", {}).items():
                components.setdefault(name, schema)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec.get("paths", {}))
    return spec


def install(app: FastAPI) -> None:
    """Serve FastAPI's document corrected by ``errors_as_json`` at /openapi.json."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        # both idempotent: FastAPI caches the document they edit
        return hoist_defs(body_refusals(errors_as_json(build())))

    app.openapi = openapi  # type: ignore[method-assign]
