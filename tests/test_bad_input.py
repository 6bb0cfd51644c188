"""Bad input, generated from the app's own OpenAPI: every operation, every query, path and
header parameter and every JSON, form and multipart field gets each kind of bad value
(NUL and other control characters, bytes that are not UTF-8, over-long text, NaN,
Infinity, 1e999, a wrong type, a file name that cannot be text), and every operation with a
body gets an undeclared Content-Type and an oversized body. Each must answer 4xx in our
error body (Open311: its error list) naming the field, the server must stay up, and no
table may gain or lose a row."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.api.guard import JSON, MULTIPART, URLENCODED, body_limit
from gis_service.api.params import MAX_TEXT
from gis_service.app import create_app
from gis_service.db import maintenance
from gis_service.db.engine import get_engine, transaction
from gis_service.open311 import keys
from gis_service.settings import Settings
from tests.conftest import TEST_SECRET, make_user

# raw (percent-encoded for URLs and forms) spellings of each bad kind
BAD_TEXT = {
    "nul": "a\x00b",
    "control": "a\x07b",
    "vertical_tab": "a\x0bb",
    "not_utf8": b"a\xff\xfeb",
    "too_long": "x" * (MAX_TEXT + 1),
}
BAD_NUMBER = {"nan": "NaN", "infinity": "Infinity", "overflow": "1e999", "wrong_type": "abc"}
BAD_INTEGER = {"overflow": "9" * 30, "wrong_type": "abc", "nul": "1\x00"}


@dataclass
class Field:
    name: str
    where: str  # query, path, header, json, form
    type: str  # string, number, integer, boolean, file, array, object
    required: bool


@dataclass
class Operation:
    method: str
    path: str
    fields: list[Field] = field(default_factory=list)
    media_types: list[str] = field(default_factory=list)

    @property
    def open311(self) -> bool:
        return self.path.startswith("/open311/")


def _type(schema: dict[str, Any], components: dict[str, Any]) -> str:
    if "$ref" in schema:
        return _type(components[schema["$ref"].split("/")[-1]], components)
    if "anyOf" in schema:
        types = [_type(s, components) for s in schema["anyOf"]]
        return next((t for t in types if t != "null"), "null")
    if schema.get("format") == "binary":
        return "file"
    if schema.get("type") == "array" and schema.get("items", {}).get("format") == "binary":
        return "file"
    if "enum" in schema:
        return "string"
    return schema.get("type", "string")


def operations(app) -> list[Operation]:
    spec = app.openapi()
    components = spec.get("components", {}).get("schemas", {})
    found = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            o = Operation(method.upper(), path)
            for p in op.get("parameters", []):
                o.fields.append(
                    Field(p["name"], p["in"], _type(p["schema"], components), p.get("required"))
                )
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                o.media_types.append(media)
                schema = content["schema"]
                if "$ref" in schema:
                    schema = components[schema["$ref"].split("/")[-1]]
                where = "json" if media == JSON else "form"
                for name, prop in schema.get("properties", {}).items():
                    f = Field(
                        name, where, _type(prop, components), name in schema.get("required", [])
                    )
                    if not any(g.name == name and g.where == where for g in o.fields):
                        o.fields.append(f)
            found.append(o)
    return found


@dataclass
class City:
    """Real values from the demo city, so a request passes everything but the bad field."""

    values: dict[str, Any]
    auth: dict[str, str]
    api_key: str


@pytest.fixture(scope="module")
def city(demo_settings) -> City:
    with get_engine(demo_settings).connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM admin_unit"
                " WHERE level = 'grid' ORDER BY code LIMIT 1) s"
            )
        ).one()
        case_id, case_no, category = conn.execute(
            text("SELECT id, case_no, category_code FROM cases ORDER BY id LIMIT 1")
        ).one()
        unit = conn.execute(text("SELECT code FROM admin_unit ORDER BY code LIMIT 1")).scalar()
        point_id = conn.execute(text("SELECT min(id) FROM service_point")).scalar()
    with transaction(demo_settings) as conn:
        api_key = keys.create_key(conn, f"bad-input-{uuid.uuid4().hex[:8]}", None)[1]
    auth = make_user(demo_settings, "admin", username=f"bad-input-{uuid.uuid4().hex[:8]}")
    values = {
        "lon": lon,
        "lat": lat,
        "long": lon,
        "case_id": case_id,
        "photo_id": 1,
        "point_id": point_id,
        "service_request_id": case_no,
        "token": case_no,
        "service_code": category,
        "category": category,
        "code": unit,
        "unit": unit,
        "fmt": "json",
        "layer": "cases",
        "z": 14,
        "x": 13461,
        "y": 6489,
        "description": "路灯不亮",
        "run_id": "x",
        "name": "x",
        "minutes": "10",
        "api_key": api_key,
        "username": "nobody",
        "password": "wrong-password",
        "score": 5,
        "kind": "points",
        "action": "comment",
        "decision": "approve",
        "ends_at": "2099-01-01T00:00:00+08:00",
    }
    return City(values, auth, api_key)


def baseline(f: Field, city: City) -> Any | None:
    """A plausible value for a field the request needs, None to leave it out."""
    if f.name in city.values:
        return city.values[f.name]
    if not f.required:
        return None
    return {"number": 1, "integer": 1, "boolean": "false", "file": None}.get(f.type, "x")


def _annotation_type(annotation: Any) -> str:
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if args:
        return _annotation_type(args[0])
    return {float: "number", int: "integer", bool: "boolean"}.get(annotation, "string")


def hidden_operations(app) -> list[Operation]:
    """The routes left out of the OpenAPI (the map pages, the phone shell), with their
    query, path and form parameters read from FastAPI's own record of each route."""
    from fastapi.routing import APIRoute, iter_route_contexts

    found = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or route.include_in_schema:
            continue
        for method in sorted(ctx.methods):
            o = Operation(method, ctx.path)
            stack = [route.dependant]
            while stack:
                dep = stack.pop()
                stack.extend(dep.dependencies)
                for where, params in (
                    ("query", dep.query_params),
                    ("path", dep.path_params),
                    ("form", dep.body_params),
                ):
                    for p in params:
                        kind = _annotation_type(p.field_info.annotation)
                        o.fields.append(Field(p.alias, where, kind, p.field_info.is_required()))
            if any(f.where == "form" for f in o.fields):
                o.media_types = [URLENCODED]
            found.append(o)
    return found


def bad_values(f: Field) -> Iterator[tuple[str, Any]]:
    """(kind, raw value) for a field; raw str/bytes are sent as they are, JSON values as
    JSON text (``Literal`` marks text to splice in unquoted)."""
    if f.type == "file":
        yield "file_name_nul", ("a\x00.jpg", b"\xff\xd8garbage")
        yield "file_name_not_utf8", (b"a\xff.jpg", b"\xff\xd8garbage")
        yield "file_not_a_file", ("a.jpg", b"\x00" * 64)
        return
    if f.type in ("string", "array", "object"):
        yield from BAD_TEXT.items()
        if f.where == "json":  # a list where text is due; an object where a list is
            yield "wrong_type", [1] if f.type != "array" else {"not": "a list"}
    if f.type == "number":
        yield from BAD_NUMBER.items()
        yield "nul", "1\x00"
    if f.type == "integer":
        yield from BAD_INTEGER.items()
    if f.type == "boolean":
        yield "nul", "true\x00"
        yield "wrong_type", "maybe"


def _enc(value: Any) -> str:
    """Percent-encoding of a raw value (str as UTF-8, bytes as they are)."""
    return quote(value if isinstance(value, bytes) else str(value).encode(), safe="")


def _multipart(parts: list[tuple[bytes, bytes, bytes | None]]) -> tuple[bytes, str]:
    boundary = "bad-input-boundary"
    out = b""
    for name, value, filename in parts:
        disposition = b'form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        out += b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        if filename is not None:
            out += b"Content-Type: image/jpeg\r\n"
        out += b"\r\n" + value + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return out, f"multipart/form-data; boundary={boundary}"


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _json_body(values: dict[str, Any], bad: tuple[str, str, Any] | None) -> bytes:
    """The JSON body with ``bad`` (name, kind, raw) spliced in as the bad kind demands:
    text as a JSON string (NUL as \\u0000, non-UTF-8 bytes raw), numbers as bare tokens."""
    body = {k: v for k, v in values.items()}
    marker = "@@BAD@@"
    if bad is None:
        return json.dumps(body).encode()
    name, kind, raw = bad
    body[name] = marker
    text_ = json.dumps(body, ensure_ascii=False).encode()
    if kind in BAD_NUMBER or (kind == "overflow" and isinstance(raw, str)):
        token = raw.encode() if kind != "wrong_type" else json.dumps(raw).encode()
        return text_.replace(json.dumps(marker).encode(), token)
    if isinstance(raw, bytes):
        return text_.replace(marker.encode(), raw)
    return text_.replace(json.dumps(marker).encode(), json.dumps(raw).encode())


def build(
    op: Operation,
    city: City,
    *,
    bad: tuple[Field, str, Any] | None = None,
    media: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``client.request`` with ``bad`` (field, kind, raw) in place."""
    path, query, headers = op.path, [], {**city.auth}
    body_values: dict[str, Any] = {}
    files: list[tuple[bytes, bytes, bytes | None]] = []
    media = media or (op.media_types[0] if op.media_types else None)
    extra = [bad[0]] if bad is not None and bad[0] not in op.fields else []
    for f in [*op.fields, *extra]:
        is_bad = bad is not None and bad[0] is f
        raw = bad[2] if is_bad else baseline(f, city)
        if raw is None:
            continue
        if f.where == "path":
            path = path.replace("{" + f.name + "}", _enc(raw))
        elif f.where == "query":
            query.append(f"{_enc(f.name)}={_enc(raw)}")
        elif f.where == "header":
            headers[f.name] = _b(raw) if is_bad else str(raw)
        elif f.where in ("json", "form"):
            if (f.where == "json") != (media == JSON):
                continue
            if f.type == "file" and media == MULTIPART:
                name, content = raw
                files.append((f.name.encode(), content, _b(name)))
            elif not is_bad:
                body_values[f.name] = raw
    if op.open311 and not any(f.name == "api_key" for f in op.fields):
        query.append(f"api_key={city.api_key}")
    kwargs: dict[str, Any] = {"method": op.method, "url": path + ("?" + "&".join(query))}
    bad_body = bad if bad is not None and bad[0].where in ("json", "form") else None
    if bad_body and bad_body[0].type == "file":
        bad_body = None
    if media == JSON:
        spliced = (bad_body[0].name, bad_body[1], bad_body[2]) if bad_body else None
        kwargs["content"] = _json_body(body_values, spliced)
        headers["Content-Type"] = JSON
    elif media == URLENCODED:
        pairs = [f"{_enc(k)}={_enc(v)}" for k, v in body_values.items()]
        if bad_body:
            pairs.append(f"{_enc(bad_body[0].name)}={_enc(bad_body[2])}")
        kwargs["content"] = "&".join(pairs).encode()
        headers["Content-Type"] = URLENCODED
    elif media == MULTIPART:
        parts = [(k.encode(), _b(v), None) for k, v in body_values.items()]
        if bad_body:
            parts.append((bad_body[0].name.encode(), _b(bad_body[2]), None))
        kwargs["content"], headers["Content-Type"] = _multipart(parts + files)
    kwargs["headers"] = headers
    return kwargs


def table_counts(settings) -> dict[str, int]:
    """Rows per table, after the database's routine upkeep (db/maintenance.py: the coming
    months' partitions, the roll-up's fold), which every API process also runs as time
    passes: what it writes is not what a refused request stored, so it is done first."""
    with transaction(settings) as conn:
        maintenance.run(conn, settings)
    with get_engine(settings).connect() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        ).scalars()
        return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in tables}


def assert_refused(r, op: Operation, what: str, name: str | None = None) -> None:
    assert 400 <= r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    if op.open311:
        body = r.json()
        assert isinstance(body, list) and body[0]["code"] == r.status_code, what
        assert body[0]["description"], what
        return
    body = r.json()
    assert set(body) >= {"error", "detail"}, f"{what}: {body}"
    if r.status_code == 422 and name is not None:
        named = [body.get("field", "")] + [e["field"] for e in body.get("errors", [])]
        assert any(name.lower() in (n or "").lower() for n in named), f"{what}: {body}"


@pytest.fixture(scope="module")
def client(demo_settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings), raise_server_exceptions=False) as c:
        yield c


_APP = create_app(Settings(secret_key=TEST_SECRET))
OPERATIONS = operations(_APP) + hidden_operations(_APP)
IDS = [f"{o.method} {o.path}" for o in OPERATIONS]


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_every_bad_value_in_every_field_is_refused_and_stores_nothing(
    op: Operation, client, city, demo_settings
):
    before = table_counts(demo_settings)
    tried = 0
    # a parameter no route declares is checked all the same (Open311 reads its query
    # string by hand, so its filters are not in the OpenAPI)
    undeclared = Field("service_request_id", "query", "string", False)
    for f in [*op.fields, undeclared]:
        for media in [m for m in op.media_types if (m == JSON) == (f.where == "json")] or [None]:
            if f.where in ("json", "form") and media is None:
                continue
            if f.type == "file" and media != MULTIPART:
                continue
            for kind, raw in bad_values(f):
                if f.where == "header" and kind in ("nul", "control", "vertical_tab"):
                    continue  # not sendable: HTTP field values cannot hold controls
                what = f"{op.method} {op.path} {f.where} {f.name}={kind} ({media})"
                r = client.request(**build(op, city, bad=(f, kind, raw), media=media))
                named = None if f.type == "file" or f.where == "header" else f.name
                assert_refused(r, op, what, named)
                tried += 1
    for media in op.media_types:
        limit = body_limit(demo_settings, media)
        kwargs = build(op, city, media=media)
        if media == MULTIPART:  # declared too long: refused before a byte is read
            kwargs["headers"]["Content-Length"] = str(limit + 1)
        else:
            kwargs["content"] = kwargs["content"] + b" " * (limit + 1)
        r = client.request(**kwargs)
        assert r.status_code == 413 or (op.open311 and r.status_code == 413), r.text[:200]
        assert_refused(r, op, f"{op.method} {op.path} oversized {media}")
        tried += 1
    if op.method in ("POST", "PUT", "PATCH"):
        kwargs = build(op, city)
        kwargs["headers"]["Content-Type"] = "text/plain"
        kwargs["content"] = b"description=x"
        r = client.request(**kwargs)
        assert r.status_code == (400 if op.open311 else 415), f"{op.path}: {r.text[:200]}"
        assert_refused(r, op, f"{op.method} {op.path} text/plain")
        tried += 1
    assert client.get("/healthz").status_code == 200
    assert table_counts(demo_settings) == before
    assert tried or (not op.fields and not op.media_types)


def test_undeclared_paths_and_methods_answer_in_our_body(client):
    for method, path, status in (
        ("GET", "/nothing-here", 404),  # "/" is the front door (desk/pages.py)
        ("GET", "/api/v1/nothing-here", 404),
        ("DELETE", "/api/v1/categories", 405),
        ("GET", "/static/app/no-such-file.js", 404),
    ):
        r = client.request(method, path)
        assert r.status_code == status, (path, r.text)
        body = r.json()
        assert set(body) >= {"error", "detail"} and body["detail"], body
    r = client.get("/open311/v2/services.yaml")
    assert r.status_code == 404 and r.json()[0]["code"] == 404
    assert "GET" in client.request("DELETE", "/api/v1/categories").headers["allow"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/access/isochrone?lon=0&lat=0",
        "/api/v1/access/nearest?lon=0&lat=0",
        "/api/v1/locate?lon=0&lat=0",
    ],
)
def test_a_point_where_there_is_no_data_is_not_a_server_error(client, city, url):
    r = client.get(url, headers=city.auth)
    assert 400 <= r.status_code < 500, r.text
    body = r.json()
    assert body["error"] and body["detail"], body
    if "isochrone" in url:  # no network there: refused, naming the field
        assert r.status_code == 422 and body["field"] == "lon", body


def test_open311_xml_errors_are_xml_and_carry_no_control_characters(client, city):
    r = client.post(
        "/open311/v2/requests.xml",
        content=f"api_key={city.api_key}&service_code=x&lat=1&long=1&description=a%01b".encode(),
        headers={"Content-Type": URLENCODED},
    )
    assert r.status_code == 400 and r.text.startswith("<?xml")
    import xml.etree.ElementTree as ET

    assert ET.fromstring(r.content).find("error/description").text


def test_last_resorts_a_value_the_database_refuses_is_422_and_a_failure_500_in_our_body(
    settings,
):
    """Behind the guard: what PostgreSQL refuses as data (SQLSTATE class 22) is the
    client's 422, anything else that breaks a 500, both in our body."""
    from fastapi import FastAPI

    from gis_service.api import handlers

    app = FastAPI()
    handlers.install(app)

    @app.get("/overflow")
    def overflow() -> None:
        with get_engine(settings).connect() as conn:
            conn.execute(text("SELECT repeat('9', 30)::bigint"))

    @app.get("/broken")
    def broken() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/overflow")
        assert r.status_code == 422 and r.json()["error"] == "invalid_input", r.text
        assert "out of range" in r.json()["detail"]
        r = c.get("/broken")
        assert r.status_code == 500 and r.json()["error"] == "internal_error", r.text
