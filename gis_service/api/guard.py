"""The request guard: every value of every request is checked once, before any route.

One ASGI middleware, so no route, model or hand-read form can forget a check:

* the path, each query parameter and each form or multipart text field must be UTF-8 text
  without control characters, at most ``MAX_TEXT`` characters (``params.text_problem``);
* JSON bodies must be UTF-8, and each string in them obeys the same rule; NaN, Infinity
  and numbers that overflow (``1e999``) are refused anywhere in them;
* a query or path parameter the route declares as a number must be finite and in range;
* header values may not hold control characters (RFC 9110 §5.5);
* a body must come in a media type its operation declares (else 415 Unsupported Media
  Type, RFC 9110 §15.5.16) and within ``body_limit()`` (else 413 Content Too Large).

A refusal answers 422 (413, 415) with our error body naming the field
(``{"error", "detail", "field"}``), or, on a route that has its own error format
(Open311's, see ``Open311Route.error_response``), in that format. The body is read
before the route runs, so a refused request stores nothing; an accepted one is replayed
to the route unchanged (multipart bodies through a spooled file, not held in memory).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import params as fastapi_params
from fastapi.routing import APIRoute, iter_route_contexts
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_service.api.params import MAX_TEXT, decode_text, number_problem, text_problem
from gis_service.errors import (
    GisServiceError,
    InvalidInput,
    TooLarge,
    UnsupportedMedia,
)
from gis_service.settings import Settings

JSON = "application/json"
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MiB = 1024 * 1024


def body_limit(settings: Settings, media_type: str) -> int:
    """The largest body accepted for a media type (413 beyond): ``body_max_bytes`` (1 MiB),
    multipart ``import_max_bytes`` + 1 MiB of fields, since it carries imported files
    (streamed to a spooled file, never held whole in memory). Routes may hold tighter
    limits of their own (a photo: ``photo_max_bytes``)."""
    if media_type == MULTIPART:
        return settings.import_max_bytes + MiB
    return settings.body_max_bytes


SPOOL_BYTES = 1 * MiB
# a number a query or path value might spell that a route may read as a float or int:
# NaN/Infinity in any spelling, or enough digits to overflow
_SUSPECT_NUMBER = re.compile(r"(?i)nan|inf|\d{16,}|e\+?\d{3,}")
_BAD_HEADER = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class Operation:
    """What one operation accepts, read from its FastAPI route once."""

    path_regex: re.Pattern[str]
    methods: frozenset[str]
    media_types: frozenset[str]
    numbers: frozenset[str]  # names of query, path and form parameters typed as numbers
    route: Any = field(compare=False)


def _annotation_is_number(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    return any(_annotation_is_number(a) for a in getattr(annotation, "__args__", ()))


def _flat(dependant: Any, kind: str) -> Iterator[Any]:
    """The ``kind`` parameters (query_params, body_params…) of a dependant and of all its
    sub-dependencies."""
    yield from getattr(dependant, kind)
    for sub in dependant.dependencies:
        yield from _flat(sub, kind)


def _schema_numbers(route: APIRoute) -> frozenset[str]:
    """Form fields a hand-written requestBody schema types as numbers."""
    content = (route.openapi_extra or {}).get("requestBody", {}).get("content", {})

    def numeric(prop: dict[str, Any]) -> bool:
        types = [prop.get("type")] + [p.get("type") for p in prop.get("anyOf", [])]
        return "number" in types or "integer" in types

    return frozenset(
        name
        for media in content.values()
        for name, prop in media.get("schema", {}).get("properties", {}).items()
        if numeric(prop)
    )


def _media_types(route: APIRoute) -> frozenset[str]:
    """The body media types an operation declares: its OpenAPI requestBody when it writes
    one by hand (reports, Open311), else those of its body parameters."""
    extra = (route.openapi_extra or {}).get("requestBody", {}).get("content")
    if extra:
        return frozenset(extra)
    body = list(_flat(route.dependant, "body_params"))
    if not body:
        return frozenset()
    if any(isinstance(p.field_info, fastapi_params.File) for p in body):
        return frozenset({MULTIPART})
    if any(isinstance(p.field_info, fastapi_params.Form) for p in body):
        return frozenset({URLENCODED, MULTIPART})
    return frozenset({JSON})


def operations(app) -> list[Operation]:
    """Every API operation of ``app`` (FastAPI routes, however included)."""
    found = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute):
            continue
        numbers = frozenset(
            p.alias
            for kind in ("query_params", "path_params", "body_params")
            for p in _flat(route.dependant, kind)
            if _annotation_is_number(p.field_info.annotation)
        ) | _schema_numbers(route)
        found.append(
            Operation(
                ctx.path_regex, frozenset(ctx.methods or ()), _media_types(route), numbers, route
            )
        )
    return found


class Refused(Exception):
    def __init__(self, error: GisServiceError) -> None:
        self.error = error


def _refuse_text(name: str, problem: str | None) -> None:
    if problem:
        raise Refused(InvalidInput(f"{name} {problem}", field=name))


def _check_number(name: str, raw: str) -> None:
    try:
        value: float | int = int(raw)
    except ValueError:
        try:
            value = float(raw)
        except ValueError:
            return  # not a number at all: the route's own validation says so
    _refuse_text(name, number_problem(value))


def _pairs(raw: bytes) -> Iterator[tuple[bytes, bytes]]:
    """``a=1&b=2`` as raw (percent-decoded, not yet decoded as text) pairs."""
    for chunk in raw.split(b"&"):
        if not chunk:
            continue
        key, _, value = chunk.partition(b"=")
        yield (
            unquote_to_bytes(key.replace(b"+", b" ")),
            unquote_to_bytes(value.replace(b"+", b" ")),
        )


def check_pairs(raw: bytes, numbers: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """Decode and check a query string or urlencoded form (``numbers``: its fields typed
    as numbers); returns its (name, value)s."""
    out = []
    for raw_key, raw_value in _pairs(raw):
        key, problem = decode_text(raw_key)
        _refuse_text("parameter name" if key is None else key, problem)
        assert key is not None
        value, problem = decode_text(raw_value)
        _refuse_text(key, problem)
        assert value is not None
        if key in numbers:
            _check_number(key, value)
        out.append((key, value))
    return out


def check_json(body: bytes) -> None:
    """UTF-8, well-formed, with no bad text or non-finite number anywhere in it."""
    # bytes that are not UTF-8 become lone surrogates, refused with the field they are in
    text = body.decode("utf-8", "surrogateescape")

    try:
        data = json.loads(text)  # NaN, Infinity, 1e999: floats _walk refuses
    except json.JSONDecodeError:
        return  # malformed JSON: the route's own parser names the position
    _walk(data, ())


def _walk(value: Any, loc: tuple[str, ...]) -> None:
    name = ".".join(loc) or "body"
    if isinstance(value, str):
        _refuse_text(name, text_problem(value))
    elif isinstance(value, bool):
        return
    elif isinstance(value, int | float):
        _refuse_text(name, number_problem(value))
    elif isinstance(value, dict):
        for key, member in value.items():
            _refuse_text(f"{name} key", text_problem(key))
            _walk(member, (*loc, key))
    elif isinstance(value, list):
        for i, member in enumerate(value):
            _walk(member, (*loc, str(i)))


class _MultipartCheck:
    """Streams a multipart body through python-multipart, checking each text part's name,
    file name and (for parts that are not files) value."""

    def __init__(self, boundary: bytes, numbers: frozenset[str]) -> None:
        self.numbers = numbers
        self.problem: GisServiceError | None = None
        self._headers: dict[bytes, bytes] = {}
        self._header = [b"", b""]
        self._name = ""
        self._is_file = False
        self._value = bytearray()
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": lambda d, s, e: self._header.__setitem__(
                    0, self._header[0] + d[s:e]
                ),
                "on_header_value": lambda d, s, e: self._header.__setitem__(
                    1, self._header[1] + d[s:e]
                ),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": self._end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        if self.problem is None:
            try:
                self.parser.write(chunk)
            except Refused as exc:
                self.problem = exc.error
            except Exception as exc:  # malformed multipart
                self.problem = InvalidInput(f"unreadable multipart body: {exc}", field="body")

    def _begin(self) -> None:
        self._headers, self._value, self._is_file = {}, bytearray(), False

    def _header_end(self) -> None:
        self._headers[self._header[0].lower()] = self._header[1]
        self._header = [b"", b""]

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name, problem = decode_text(options.get(b"name", b""))
        _refuse_text("part name" if name is None else name, problem)
        self._name = name or "body"
        if b"filename" in options:
            self._is_file = True
            _, problem = decode_text(options[b"filename"])
            _refuse_text(f"{self._name} file name", problem)

    def _data(self, data: bytes, start: int, end: int) -> None:
        if not self._is_file:
            self._value += data[start:end]
            if len(self._value) > 4 * MAX_TEXT:  # UTF-8: at most 4 bytes a character
                raise Refused(
                    InvalidInput(
                        f"{self._name} is longer than {MAX_TEXT} characters", field=self._name
                    )
                )

    def _end(self) -> None:
        if not self._is_file:
            value, problem = decode_text(bytes(self._value))
            _refuse_text(self._name, problem)
            if value is not None and self._name in self.numbers:
                _check_number(self._name, value)


class RequestGuard:
    """ASGI middleware; see the module docstring. ``app`` is the FastAPI app (its routes
    are read on the first request, when all are registered)."""

    def __init__(self, app: ASGIApp, fastapi_app: Any, settings: Settings) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.settings = settings
        self._ops: list[Operation] | None = None

    # -- finding the operation --------------------------------------------------------
    def _operation(self, scope: Scope) -> tuple[Operation | None, dict[str, str]]:
        if self._ops is None:
            self._ops = operations(self.fastapi_app)
        path, method = scope["path"], scope["method"]
        partial = None
        for op in self._ops:
            m = op.path_regex.match(path)
            if m is None:
                continue
            if method in op.methods or (method == "HEAD" and "GET" in op.methods):
                return op, m.groupdict()
            partial = partial or (op, m.groupdict())
        return partial if partial else (None, {})

    def _refuse(self, scope: Scope, error: GisServiceError) -> Response:
        from gis_service.api.handlers import error_response

        op, path_params = self._operation(scope)
        custom = getattr(op.route, "error_response", None) if op else None
        if custom is not None:
            return custom(path_params, error)
        return error_response(error)

    # -- the checks -------------------------------------------------------------------
    def _check_head(self, scope: Scope) -> None:
        raw_path = unquote_to_bytes(scope.get("raw_path") or scope["path"].encode("utf-8"))
        _, problem = decode_text(raw_path)
        if problem:
            self._refuse_path(scope, raw_path, problem)
        query = check_pairs(scope.get("query_string", b""))
        for name, value in scope.get("headers", ()):
            if _BAD_HEADER.search(value):
                header = name.decode("latin-1")
                raise Refused(
                    InvalidInput(f"header {header} holds a control character", field=header)
                )
        segments = [s for s in scope["path"].split("/") if _SUSPECT_NUMBER.search(s)]
        suspects = [(k, v) for k, v in query if _SUSPECT_NUMBER.search(v)]
        if segments or suspects:
            op, path_params = self._operation(scope)
            if op is not None:
                for name, value in [*suspects, *path_params.items()]:
                    if name in op.numbers:
                        _check_number(name, value)

    def _refuse_path(self, scope: Scope, raw_path: bytes, problem: str) -> None:
        """Name the path parameter that holds the bad text, else the path."""
        path = raw_path.decode("utf-8", "surrogateescape")
        _, params = self._operation({**scope, "path": path})
        for name, value in params.items():
            _, why = decode_text(value.encode("utf-8", "surrogateescape"))
            _refuse_text(name, why)
        _refuse_text("path", problem)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_head(scope)
            receive = await self._checked_body(scope, receive)
        except Refused as exc:
            await self._refuse(scope, exc.error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _checked_body(self, scope: Scope, receive: Receive) -> Receive:
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if not (length not in (None, "0") or "transfer-encoding" in headers):
            return receive
        op, _ = self._operation(scope)
        if op is None or scope["method"] not in op.methods:
            return receive  # the router answers 404 / 405
        content_type = headers.get("content-type", "")
        media, options = parse_options_header(content_type)
        media_type = media.decode("latin-1").lower()
        if media_type not in op.media_types:
            accepted = ", ".join(sorted(op.media_types)) or "no body"
            raise Refused(
                UnsupportedMedia(
                    f"Content-Type {content_type or '(none)'} is not accepted here; "
                    f"send {accepted}",
                    field="Content-Type",
                )
            )
        charset = options.get(b"charset", b"utf-8").decode("latin-1").lower()
        if media_type != MULTIPART and charset not in ("utf-8", "utf8"):
            raise Refused(
                UnsupportedMedia(f"charset {charset} is not accepted; send UTF-8", field="charset")
            )
        limit = body_limit(self.settings, media_type)
        if length is not None and length.isdigit() and int(length) > limit:
            raise Refused(_too_large(int(length), limit))
        if media_type == MULTIPART:
            boundary = options.get(b"boundary", b"")
            return await self._multipart(receive, boundary, limit, op.numbers)
        body = bytearray()
        async for chunk in _chunks(receive):
            body += chunk
            if len(body) > limit:
                raise Refused(_too_large(len(body), limit))
        if media_type == JSON or media_type.endswith("+json"):
            check_json(bytes(body))
        elif media_type == URLENCODED:
            check_pairs(bytes(body), op.numbers)
        return _replay([bytes(body)], receive)

    async def _multipart(
        self, receive: Receive, boundary: bytes, limit: int, numbers: frozenset[str]
    ) -> Receive:
        if not boundary:
            raise Refused(InvalidInput("multipart body without a boundary", field="Content-Type"))
        check = _MultipartCheck(boundary, numbers)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (outlives this call)
        size = 0
        async for chunk in _chunks(receive):
            size += len(chunk)
            if size > limit:
                spool.close()
                raise Refused(_too_large(size, limit))
            check.feed(chunk)
            spool.write(chunk)
        if check.problem is not None:
            spool.close()
            raise Refused(check.problem)
        spool.seek(0)
        return _replay(iter(lambda: spool.read(SPOOL_BYTES), b""), receive, spool)


def _too_large(size: int, limit: int) -> TooLarge:
    return TooLarge(
        f"the body is {size} bytes; at most {limit} are accepted here", field="body", limit=limit
    )


async def _chunks(receive: Receive):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(InvalidInput("the client went away", field="body"))
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _replay(chunks, receive: Receive, spool=None) -> Receive:
    pending = iter(chunks)
    done = False

    async def replay() -> Message:
        nonlocal done
        if not done:
            chunk = next(pending, None)
            if chunk is not None:
                return {"type": "http.request", "body": chunk, "more_body": True}
            done = True
            if spool is not None:
                spool.close()
            return {"type": "http.request", "body": b"", "more_body": False}
        return await receive()

    return replay
