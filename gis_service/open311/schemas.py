"""GeoReport v2 answer models (open311.org/GeoReport_v2). Errors keep the spec's own
shape, a list of ``{code, description}``, not our ErrorBody: GeoReport clients read it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, RootModel

from gis_service.api.schemas import Public


class Open311ErrorItem(BaseModel):
    code: int
    description: str


class Open311Errors(RootModel[list[Open311ErrorItem]]):
    """The GeoReport error list (the spec's format for every refusal)."""


class Open311Service(Public):
    service_code: str
    service_name: str
    description: str | None
    metadata: bool
    type: str
    keywords: str | None
    group: str | None


class ServiceDefinition(Public):
    service_code: str
    attributes: list[Any]


class ServiceRequest(Public):
    service_request_id: str
    status: str
    status_notes: str | None = None
    service_name: str | None = None
    service_code: str | None = None
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    requested_datetime: str | None = None
    updated_datetime: str | None = None
    expected_datetime: str | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None


class RequestReceived(Public):
    service_request_id: str
    token: str | None
    service_notice: str | None
    account_id: str | None


class TokenAnswer(Public):
    service_request_id: str
    token: str
