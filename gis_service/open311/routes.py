"""Open311 GeoReport v2 endpoints under /open311/v2, each as .json and .xml.

Thin: parsing of the spec's loose parameters and the SQL are in service.py. Parameters are
read from the request itself (not pydantic-validated), and ``Open311Route`` turns every
error — ours and FastAPI's — into the GeoReport error list in the requested format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

from gis_service.api.deps import ConnDep, SettingsDep
from gis_service.api.schemas import media, refusals
from gis_service.auth.principal import Principal
from gis_service.errors import STATUS_CODES, GisServiceError, InvalidInput, NotFound
from gis_service.open311 import formats, keys, service
from gis_service.open311.schemas import (
    Open311Errors,
    Open311Service,
    RequestReceived,
    ServiceDefinition,
    ServiceRequest,
    TokenAnswer,
)

# Our statuses, as GeoReport clients expect them: bad input is 400, any key problem 403.
OPEN311_STATUS = {422: 400, 401: 403, 415: 400}


def error_status(exc: GisServiceError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            status = STATUS_CODES[cls]
            return OPEN311_STATUS.get(status, status)
    return 400


class Open311Route(APIRoute):
    """Errors leave in the GeoReport format (json or xml, from the path suffix)."""

    def error_response(self, path_params: dict[str, str], exc: GisServiceError) -> Response:
        """The GeoReport error list for ``exc``; also used by the request guard."""
        fmt = formats.format_of(path_params.get("fmt"))
        if isinstance(exc, InvalidInput):
            return formats.error(fmt, 400, service.describe_error(exc))
        return formats.error(fmt, error_status(exc), exc.message)

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def open311_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except GisServiceError as exc:
                return self.error_response(request.path_params, exc)
            except RequestValidationError as exc:
                detail = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                fmt = formats.format_of(request.path_params.get("fmt"))
                return formats.error(fmt, 400, detail or "invalid request")

        return open311_handler


#: GeoReport answers are JSON (each route's model) or, by the path suffix, XML
XML = media("The answer; as XML with the path suffix .xml", "text/xml")


def answers(*statuses: int, ok: int = 200) -> dict[int | str, Any]:
    """``responses`` of a GeoReport route: its XML form, and its refusals in the
    GeoReport error list, the spec's format (not our ErrorBody). Bad input is 400 here,
    never 422 (``OPEN311_STATUS``): "4XX" stands for every other refusal and keeps
    FastAPI from listing a 422 this router never sends."""
    return {
        ok: {"content": XML["content"]},
        **refusals(400, *statuses, model=Open311Errors),
        "4XX": {"model": Open311Errors, "description": "Any refusal, as GeoReport errors"},
    }


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)
FORM_FIELDS = (
    "api_key",
    "service_code",
    "lat",
    "long",
    "description",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "media_url",
)
FORM_SCHEMA = {
    "type": "object",
    "required": ["service_code", "lat", "long", "description"],
    "properties": {f: {"type": "string"} for f in FORM_FIELDS},
}
POST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": FORM_SCHEMA},
            "multipart/form-data": {"schema": FORM_SCHEMA},
        },
    }
}


def _format(fmt: str) -> str:
    if fmt not in formats.FORMATS:
        raise NotFound(f"no format {fmt!r}: use .json or .xml")
    return fmt


def _lang(request: Request) -> str:
    return service.language(
        request.query_params.get("locale"), request.headers.get("accept-language")
    )


def _reader(conn: ConnDep, request: Request) -> Principal:
    """The key's client, or the anonymous public view without api_key (keys.reader_for_key)."""
    return keys.reader_for_key(conn, request.query_params.get("api_key"))


@router.get(
    "/services.{fmt}",
    summary="Service types: one per active sub-category",
    response_model=list[Open311Service],
    responses=answers(404),
)
def services(fmt: str, request: Request, conn: ConnDep) -> Response:
    """Public, no api_key. `locale=en` (or Accept-Language: en) for English names."""
    fmt = _format(fmt)
    return formats.render(
        fmt, service.list_services(conn, _lang(request)), root="services", item="service"
    )


@router.get(
    "/services/{service_code}.{fmt}",
    summary="A service definition (no attributes)",
    response_model=ServiceDefinition,
    responses=answers(404),
)
def service_definition(service_code: str, fmt: str, conn: ConnDep) -> Response:
    fmt = _format(fmt)
    return formats.render(
        fmt, service.service_definition(conn, service_code), root="service_definition"
    )


@router.post(
    "/requests.{fmt}",
    summary="Report a problem (a new case)",
    openapi_extra=POST_BODY,
    status_code=201,
    response_model=list[RequestReceived],
    responses={
        **answers(403, 404, 413, 415, 429, ok=201),
        200: {
            "model": list[RequestReceived],
            "description": "A retry with the same Idempotency-Key",
            "content": XML["content"],
        },
    },
)
async def post_request(fmt: str, request: Request, settings: SettingsDep) -> Response:
    """Form fields (urlencoded or multipart): api_key (also accepted in the query string),
    service_code, lat, long (WGS-84), description, address_string, email, device_id,
    account_id, first_name, last_name, phone, media_url. Optional header Idempotency-Key."""
    fmt = _format(fmt)
    try:
        form = await request.form()
    except Exception as exc:  # malformed multipart or urlencoded body
        raise InvalidInput(f"unreadable form body: {exc}") from None
    fields = {k: v for k, v in request.query_params.items()}
    fields.update({k: v for k, v in form.items() if not isinstance(v, UploadFile)})
    body, created = await service.submit(
        settings, fields, request.headers.get("idempotency-key"), _lang(request)
    )
    return formats.render(
        fmt, [body], root="service_requests", item="request", status=201 if created else 200
    )


@router.get(
    "/requests.{fmt}",
    summary="Service requests: the public view, or the api_key's jurisdiction",
    response_model=list[ServiceRequest],
    responses=answers(403, 404),
)
def get_requests(fmt: str, request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """api_key optional: without one, the public view (cases of public categories, no
    description, address or notes, only published photos; see gis_service/auth/scope.py);
    with one, the key's whole jurisdiction. Filters: service_request_id (comma-separated,
    overrides the rest), service_code, status (open, closed), start_date, end_date (w3c
    datetimes; the last 90 days by default). At most 1000, newest first."""
    fmt = _format(fmt)
    principal = _reader(conn, request)
    filters = service.RequestFilters.parse(dict(request.query_params), settings.timezone)
    found = service.find_requests(
        conn,
        principal,
        filters,
        lang=_lang(request),
        tz=settings.timezone,
        base_url=str(request.base_url),
    )
    return formats.render(fmt, found, root="service_requests", item="request")


@router.get(
    "/requests/{service_request_id}.{fmt}",
    summary="One service request",
    response_model=list[ServiceRequest],
    responses=answers(403, 404),
)
def get_request(
    service_request_id: str, fmt: str, request: Request, conn: ConnDep, settings: SettingsDep
) -> Response:
    """api_key optional, as for requests: without one, only a request in the public view."""
    fmt = _format(fmt)
    principal = _reader(conn, request)
    found = service.one_request(
        conn,
        principal,
        service_request_id,
        lang=_lang(request),
        tz=settings.timezone,
        base_url=str(request.base_url),
    )
    return formats.render(fmt, [found], root="service_requests", item="request")


@router.get(
    "/tokens/{token}.{fmt}",
    summary="The service request of a token",
    response_model=list[TokenAnswer],
    responses=answers(403, 404),
)
def get_token(token: str, fmt: str, request: Request, conn: ConnDep) -> Response:
    """Requests are numbered at once: the token returned by POST is the case number.
    api_key optional, as for requests."""
    fmt = _format(fmt)
    principal = _reader(conn, request)
    return formats.render(
        fmt, [service.token(conn, principal, token)], root="service_requests", item="request"
    )
