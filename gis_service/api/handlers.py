"""Every error leaves in our body: ``{"error": <code>, "detail": <message>, ...}``.

Installed by ``create_app``: one handler per entry of ``errors.STATUS_CODES``; FastAPI's
validation errors (422, naming each field); Starlette's HTTP errors (unknown path 404,
wrong method 405 with ``Allow``, unreadable body 400); and, as a last resort behind the
request guard (``api/guard.py``), a value PostgreSQL refuses as data (SQLSTATE class 22:
out of range, too long, untranslatable character) answers 422 instead of 500. A database
that cannot answer (``DATABASE_FAULTS``: down, restarting, a connection it dropped) is a
503 ``database_unavailable`` with ``Retry-After``, on every route alike — except a statement
PostgreSQL cancelled (SQLSTATE 57014, our statement_timeout): 422 ``analysis_too_large``.
Anything else that
fails is a 500 in the same shape (``internal_error``), logged as before.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import psycopg2
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from gis_service.errors import STATUS_CODES, AnalysisTooLarge, ClusterError, GisServiceError

log = logging.getLogger(__name__)

#: codes for the HTTP errors Starlette and FastAPI raise themselves (RFC 9110 names)
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media",
}


#: what a database that cannot answer raises, on either driver. SQLAlchemy (psycopg2):
#: PEP 249's OperationalError ("related to the database's operation and not necessarily
#: under the control of the programmer, e.g. an unexpected disconnect"), InterfaceError
#: (a connection already closed) and the pool's DisconnectionError. asyncpg (the report
#: path): SQLSTATE class 08 (connection exception), 57P01-57P03 (administrator shutdown,
#: crash shutdown, cannot connect now: the server is stopping or starting), and the
#: socket's own ConnectionError when nothing listens on the port; psycopg2's own
#: OperationalError and InterfaceError where a raw connection is used (db/ask.py).
DATABASE_FAULTS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    psycopg2.OperationalError,  # raw, from db/ask.py's connection
    psycopg2.InterfaceError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)


def database_unavailable(exc: BaseException, retry_after: int) -> ClusterError:
    """The one answer to every database fault: 503 ``database_unavailable`` with
    ``retry_after`` (seconds, also sent as Retry-After, RFC 9110 §10.2.3). The detail
    names the kind of fault, never the server's address."""
    cause = getattr(exc, "orig", None) or exc
    return ClusterError(
        f"the database is unavailable ({type(cause).__name__}); try again in {retry_after} s",
        retry_after=retry_after,
    )


def query_cancelled(exc: BaseException) -> bool:
    """A statement PostgreSQL cancelled (SQLSTATE 57014, query_canceled: our ``SET LOCAL
    statement_timeout`` ran out, access/bounds.py). psycopg2 files it under
    OperationalError, so it would otherwise pass for a database that is down."""
    cause = getattr(exc, "orig", None) or exc
    return (
        getattr(cause, "pgcode", None) == "57014"
        or getattr(cause, "sqlstate", None) == "57014"
        or isinstance(cause, asyncpg.exceptions.QueryCanceledError)
    )


def statement_stopped(seconds: float) -> AnalysisTooLarge:
    """The answer to a cancelled statement: 422 ``analysis_too_large``, not 503 (the
    database is up; the question is too large for ``analysis_max_seconds``)."""
    return AnalysisTooLarge(
        f"analysis too large: the database stopped the query after {seconds:g} s "
        "(GIS_ANALYSIS_MAX_SECONDS); narrow it (e.g. unit=, a lower level) and ask again",
        limit=seconds,
    )


def status_of(exc: GisServiceError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 400


def error_response(exc: GisServiceError) -> JSONResponse:
    """Our body and status for a domain error (401 adds WWW-Authenticate, 429
    Retry-After)."""
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if "retry_after" in exc.extra:
        headers["Retry-After"] = str(exc.extra["retry_after"])
    return JSONResponse(exc.to_dict(), status_code=status, headers=headers or None)


def validation_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """pydantic/FastAPI errors as our body: ``errors`` lists each ``field`` (the location
    without its ``body``/``query`` prefix) and ``message``; ``field`` names the first."""
    listed = [
        {
            "field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]),
            "message": e["msg"],
        }
        for e in errors
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in listed)
    body: dict[str, Any] = {"error": "invalid_input", "detail": detail, "errors": listed}
    if listed:
        body["field"] = listed[0]["field"]
    return body


def install(app: FastAPI) -> None:
    async def domain(_: Request, exc: GisServiceError) -> JSONResponse:
        return error_response(exc)

    for exc_type in STATUS_CODES:
        app.add_exception_handler(exc_type, domain)

    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(list(exc.errors())), status_code=422)

    app.add_exception_handler(RequestValidationError, validation)

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        if exc.status_code == 404:
            detail = f"no such resource: {request.url.path}"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            detail = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
        else:
            detail = str(exc.detail)
        return JSONResponse(
            {"error": code, "detail": detail}, status_code=exc.status_code, headers=exc.headers
        )

    app.add_exception_handler(HTTPException, http_error)

    async def data_error(_: Request, exc: Exception) -> JSONResponse:
        cause = getattr(exc, "orig", None) or exc
        message = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        return JSONResponse(
            {"error": "invalid_input", "detail": f"the database refused a value: {message}"},
            status_code=422,
        )

    async def internal(_: Request, exc: Exception) -> JSONResponse:
        # Starlette still re-raises after this, so the error is logged with its trace
        return JSONResponse(
            {"error": "internal_error", "detail": "the server failed on this request"},
            status_code=500,
        )

    app.add_exception_handler(Exception, internal)

    async def database_fault(request: Request, exc: Exception) -> Response:
        settings = request.app.state.services.settings
        if query_cancelled(exc):
            return error_response(statement_stopped(settings.analysis_max_seconds))
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        retry_after = settings.db_retry_after_seconds
        fault = database_unavailable(exc, retry_after)
        # a route with an error format of its own (Open311's GeoReport list) answers in it
        custom = getattr(request.scope.get("route"), "error_response", None)
        if custom is None:
            return error_response(fault)
        response = custom(request.path_params, fault)
        response.headers["Retry-After"] = str(retry_after)
        return response

    for exc_type in (*DATABASE_FAULTS, asyncpg.exceptions.QueryCanceledError):
        app.add_exception_handler(exc_type, database_fault)

    app.add_exception_handler(sqlalchemy.exc.DataError, data_error)
    app.add_exception_handler(asyncpg.exceptions.DataError, data_error)
