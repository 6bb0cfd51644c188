"""Read-your-writes: every successful write hands its client the position its next reads
must see (db/replicas.py has the rule and the reads' side).

One ASGI middleware, so no write route can forget it: a request with an unsafe method
(RFC 9110 §9.2.1: anything but GET, HEAD, OPTIONS, TRACE) answered below 400 gets the
primary's WAL position, read after the route has committed, as

* the response header ``X-Min-LSN: 16/B374D848`` — an API client (the phone) sends it back
  on its next reads for ``Settings.read_your_writes_seconds``;
* the cookie ``gis_min_lsn`` (HttpOnly, SameSite=Strict, Max-Age the same seconds) — a
  browser's pages send it back by themselves.

Installed only when Settings.read_database_url names standbys (app.py); without it every
read is on the primary and the report path pays nothing. A client that forges a later
position only sends its own reads to the primary. When the position cannot be read (the
primary just went away) the write's answer goes out unstamped rather than failing: the
write did commit.

``install`` adds the middleware and declares the header on every write's successful
answers in the OpenAPI document (``declare``), from the same list of safe methods the
middleware reads; the reads' side declares it through its dependency (api/deps.py
``get_read_conn``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis_service.api.security import cookie_secure
from gis_service.db import replicas
from gis_service.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

log = logging.getLogger(__name__)


class ReadYourWrites:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        secure = "; Secure" if cookie_secure(settings) else ""
        self._cookie_attributes = (
            f"; Max-Age={settings.read_your_writes_seconds}; Path=/; HttpOnly; "
            f"SameSite=Strict{secure}"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                try:
                    lsn = await replicas.primary_lsn(self.settings)
                except Exception:  # the write committed: answer it, unstamped
                    log.warning("no WAL position for read-your-writes", exc_info=True)
                else:
                    cookie = f"{replicas.MIN_LSN_COOKIE}={lsn}{self._cookie_attributes}"
                    message["headers"] = [
                        *message.get("headers", []),
                        (replicas.MIN_LSN_HEADER.lower().encode(), lsn.encode()),
                        (b"set-cookie", cookie.encode()),
                    ]
            await send(message)

        await self.app(scope, receive, stamped)


def declare(spec: dict[str, Any]) -> dict[str, Any]:
    """Every operation with an unsafe method documents ``X-Min-LSN`` on each of its
    answers below 400 (the ones the middleware stamps). Idempotent."""
    header = {
        "description": replicas.MIN_LSN_DOC,
        "schema": {"type": "string", "pattern": replicas.LSN_PATTERN},
    }
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method.upper() in SAFE_METHODS or not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if status[0] in "123":
                    response.setdefault("headers", {})[replicas.MIN_LSN_HEADER] = header
    return spec


def install(app: FastAPI, settings: Settings) -> None:
    """Stamp every successful write (``ReadYourWrites``) and say so in the app's OpenAPI
    document. For an app whose reads go to standbys (Settings.read_database_url)."""
    app.add_middleware(ReadYourWrites, settings=settings)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        return declare(build())

    app.openapi = openapi  # type: ignore[method-assign]
