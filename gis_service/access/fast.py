"""GET /api/v1/access/isochrone without FastAPI's machinery, for the plain requests.

Why: over HTTP an isochrone cost ≈ 3.4 ms more than the answer itself (2026-12-01), most of
it FastAPI's per-request work — the route table walked, nine query values validated by
pydantic, PointParams built, and three hops to the thread pool (the connection's generator
in and out, the sync route) — against ≈ 1.5–2.5 ms for the answer. Like the case report's
fast route (cases/routes.py: fast_report), this plain Starlette route sits before FastAPI's
router; the FastAPI route (access/routes.py: isochrone) still documents the endpoint in the
OpenAPI and answers everything this one declines.

The same answer by construction: it calls the FastAPI route's own function with the same
dependency's value — the walking-network engine of the version the database has now
(api/deps.py: get_network reads it through a pooled connection in a worker thread, 0.5 ms;
this route sends the same query before it computes with the engine built last and reads
the answer after (db/ask.py), and keeps that answer only when the version is the
engine's: ``handle``) — so every rule, error and byte of the body is that function's. Over
HTTP, 5/10/15 minutes on the demo with a keep-alive client: 2.25 → 1.55 ms p50 (2026-12-01,
the version read first and the answer computed in a worker thread before). What it adds is
only the reading of the query, from the route's own declaration (its parameters' types,
bounds and defaults, read with ``typing.get_type_hints``): a request it reads is one FastAPI
would accept with the same values — each parameter at most once, numbers as plain decimals
(``-12.5``; float() of them is pydantic's value), booleans ``true``/``false``, an enum by
its value, every bound declared (gt, ge, lt, le) checked. Anything else — an unknown or
repeated parameter, ``1e3``, ``True``, a value out of bounds, a missing ``lat`` — is
declined (``matches`` says NONE) and FastAPI's route answers it, refusals included, in its
own words. Errors raised inside the function (outside coverage, bad minutes, lon/lat out of
range) go through the app's exception handlers either way."""

from __future__ import annotations

import enum
import inspect
import re
import types
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin, get_type_hints
from urllib.parse import parse_qsl

import annotated_types
from fastapi import params
from pydantic.fields import FieldInfo
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from gis_service.access import routes, service
from gis_service.access.store import NETWORK_VERSION_SQL
from gis_service.api.params import PointParams
from gis_service.api.services import services_of
from gis_service.db.ask import Ask
from gis_service.db.engine import get_engine
from gis_service.errors import GisServiceError
from gis_service.settings import Settings

PATH = "/api/v1/access/isochrone"
#: the application_name of the connection that reads the network's version
ASK_NAME = "gis-service isochrone network version"
#: the longest walk answered on the event loop (FastIsochrone.light): a quarter hour at
#: 6 km/h
INLINE_MAX_M = 1500.0
#: a plain decimal number: what float() and pydantic read alike
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_BOUNDS = {
    annotated_types.Gt: lambda v, b: v > b.gt,
    annotated_types.Ge: lambda v, b: v >= b.ge,
    annotated_types.Lt: lambda v, b: v < b.lt,
    annotated_types.Le: lambda v, b: v <= b.le,
}
_DECLINED = object()


def _reader(annotation: Any) -> Callable[[str], Any] | None:
    """How to read one query value declared ``Annotated[type, Query(...)]``: a function of
    the text giving the value or _DECLINED; None for a declaration this route cannot read."""
    if get_origin(annotation) is not Annotated:
        return None
    base, *extras = get_args(annotation)
    info = next((e for e in extras if isinstance(e, FieldInfo)), None)
    if info is None or isinstance(info, params.Depends) or info.alias:
        return None
    kinds = [k for k in get_args(base) if k is not types.NoneType] if get_args(base) else [base]
    if len(kinds) != 1:
        return None
    kind = kinds[0]
    if any(type(m) not in _BOUNDS for m in info.metadata):
        return None
    bounds = [(_BOUNDS[type(m)], m) for m in info.metadata]
    if kind is float:

        def number(text: str) -> Any:
            if not _DECIMAL.fullmatch(text):
                return _DECLINED
            value = float(text)
            return value if all(ok(value, b) for ok, b in bounds) else _DECLINED

        return number
    if bounds:
        return None
    if kind is str:
        return lambda text: text
    if kind is bool:
        return lambda text: {"true": True, "false": False}.get(text, _DECLINED)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        values = {m.value: m for m in kind}
        return lambda text: values.get(text, _DECLINED)
    return None


def _readers(target: Any) -> dict[str, Callable[[str], Any]]:
    hints = get_type_hints(target, include_extras=True)
    out = {}
    for name, hint in hints.items():
        reader = _reader(hint)
        if reader is not None:
            out[name] = reader
    return out


class FastIsochrone(BaseRoute):
    """The plain route (see the module's docstring). Placed in the app's routes before
    FastAPI's (app.py)."""

    #: what code walking the app's routes reads of a route (Starlette's Route has these)
    path = PATH
    methods = frozenset({"GET"})
    name = "isochrone_plain"
    include_in_schema = False

    def __init__(self, endpoint: Callable[..., Any] = routes.isochrone) -> None:
        self.endpoint = endpoint
        #: per database: the connection that reads the network's version (db/ask.py)
        self._asks: dict[str, Ask] = {}
        signature = inspect.signature(endpoint)
        self.query = _readers(endpoint)
        self.point = _readers(PointParams)
        needed = {"network", "point"}
        unread = set(signature.parameters) - set(self.query) - needed
        if unread or not needed <= set(signature.parameters):
            raise TypeError(f"FastIsochrone cannot read {sorted(unread)} of {endpoint.__name__}")
        #: without a default, FastAPI refuses the request when missing: so does matches
        self.required = {
            n for n, p in inspect.signature(PointParams).parameters.items() if p.default is p.empty
        }

    def read(self, query_string: bytes) -> dict[str, Any] | None:
        """The endpoint's keyword arguments from the query, None where FastAPI must answer."""
        try:
            pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        except ValueError:
            return None
        kwargs: dict[str, Any] = {}
        point: dict[str, Any] = {}
        for key, text in pairs:
            reader = self.point.get(key) or self.query.get(key)
            into = point if key in self.point else kwargs
            if reader is None or key in into:
                return None
            value = reader(text)
            if value is _DECLINED:
                return None
            into[key] = value
        if not self.required <= set(point):
            return None
        kwargs["point"] = PointParams(**point)
        return kwargs

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            return Match.NONE, {}
        kwargs = self.read(scope.get("query_string", b""))
        if kwargs is None:
            return Match.NONE, {}
        return Match.FULL, {"endpoint": self.endpoint, "fast_arguments": kwargs}

    def close(self) -> None:
        """Close the connections that read the network's version (the app's shutdown)."""
        for ask in self._asks.values():
            ask.close()
        self._asks.clear()

    def _ask(self, settings: Settings) -> Ask:
        ask = self._asks.get(settings.libpq_url)
        if ask is None:
            ask = self._asks[settings.libpq_url] = Ask(settings, ASK_NAME)
        return ask

    @staticmethod
    def light(kwargs: dict[str, Any]) -> bool:
        """Whether the request is computed on the event loop: the default grid (at most
        256 cells a side a contour) and a longest walk of at most INLINE_MAX_M metres —
        1–3 ms of CPU (2026-12-01: 5/10/15 minutes 1.5 ms on the demo, 2.5 ms on the
        1 M-edge city). Longer walks or an asked resolution take a worker thread, where
        the GIL passes to the event loop between the compiled stages and every 5 ms."""
        if kwargs.get("resolution_m") is not None:
            return False
        try:
            minutes = routes.parse_minutes(kwargs.get("minutes", "15"))
        except GisServiceError:
            return True  # refused at once
        speed = kwargs.get("speed_kmh", service.DEFAULT_SPEED_KMH)
        return service.metres(max(minutes), speed) <= INLINE_MAX_M

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A light request (``light``) is answered on the event loop with the engine built
        last while the network's version is read (its query sent before the computing,
        its answer read after: db/ask.py), and that answer kept only if the version is the
        engine's — the same answer as reading the version first, the database's round trip
        hidden behind the computing, no hop to a worker thread. Nothing awaits between the
        query and its answer, so no other request uses the connection meanwhile. Other
        requests read the version first, then compute in a worker thread; so does a light
        one whose network changed (the engine is loaded there)."""
        services = services_of(Request(scope, receive).app)
        kwargs = scope["fast_arguments"]
        settings = services.settings
        ask = self._ask(settings)
        ask.send(NETWORK_VERSION_SQL)
        engine = services.access.current
        outcome: Any = None
        light = engine is not None and self.light(kwargs)
        if light:
            try:
                outcome = self.endpoint(network=engine, **kwargs)
            except Exception as exc:  # the answer's own refusal, kept like a response
                outcome = exc
        version = int(ask.answer())
        if not light or engine.version != version:

            def computed() -> Any:
                network = services.access.at(version, lambda: get_engine(settings).connect())
                return self.endpoint(network=network, **kwargs)

            outcome = await run_in_threadpool(computed)
        if isinstance(outcome, Exception):
            raise outcome
        await outcome(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)
