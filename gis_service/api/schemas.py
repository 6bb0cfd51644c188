"""The shapes every domain's answers are built from: our error body, the helper that
declares a route's refusals, GeoJSON (RFC 7946) features and collections, the service's
own health and vocabulary.

Models follow the full-stack-fastapi-template ladder (``XCreate`` in, ``XPublic`` out) in
a ``schemas.py`` per domain package. Answer models allow members they do not list
(``Public``): an answer may grow a member without breaking a generated client, and a
route that returns a dict loses nothing to the model.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field


class Public(BaseModel):
    """Base of every answer model: members beyond the listed ones are kept."""

    model_config = ConfigDict(extra="allow")


class FieldError(BaseModel):
    field: str = Field(description="The refused value's name (dotted for nested members)")
    message: str


class ErrorBody(BaseModel):
    """Every refusal: ``{"error": code, "detail": message, ...}`` (gis_service/errors.py).

    ``error`` is a stable machine name (``invalid_input``, ``not_found``, ``forbidden``,
    ``conflict``...), ``detail`` is for people. Some refusals add members: ``field`` (the
    value at fault), ``errors`` (every field, for validation), ``allowed`` (the actions a
    conflict allows), ``retry_after`` (seconds, with the Retry-After header)."""

    model_config = ConfigDict(extra="allow", title="ErrorBody")

    error: str = Field(examples=["invalid_input"])
    detail: str = Field(examples=["lon: Input should be less than or equal to 180"])
    field: str | None = None
    errors: list[FieldError] | None = None
    allowed: list[str] | None = None
    retry_after: int | None = None
    holder: dict[str, Any] | None = Field(
        default=None, description="case_locked: who holds the case's lock ({user_id, name})"
    )
    expires_at: str | None = Field(default=None, description="case_locked: until when")


#: what each refusal means, as the OpenAPI description of its answer
REFUSALS: dict[int, str] = {
    400: "The request is malformed or a value is refused",
    401: "Not signed in, or the token is invalid or expired (WWW-Authenticate: Bearer)",
    403: "Signed in, but the role or the jurisdiction does not allow it",
    404: "No such resource, or none the viewer may see",
    409: "Not allowed in the resource's current state; `allowed` lists what is",
    413: "The body or a file is too large",
    415: "The media type is not one this operation accepts",
    422: "A value is refused; `field` names it, `errors` lists every one",
    429: "Too many attempts; Retry-After says when to try again",
    503: "A service the operation needs is not ready (starting, or the database is down)",
}


def refusals(*statuses: int, model: type[BaseModel] = ErrorBody) -> dict[int | str, Any]:
    """The ``responses={...}`` of a route (or router) for the statuses it can refuse
    with, each answered in ``model`` (our ErrorBody; Open311 passes its own)."""
    return {
        status: {"model": model, "description": REFUSALS[status]} for status in sorted(statuses)
    }


#: every operation: the request guard and validation refuse bad values with 422
ALWAYS = refusals(422)
#: routers whose every operation needs a sign-in
SIGNED_IN = refusals(401, 403, 422)


def media(description: str, *media_types: str, schema: dict[str, Any] | None = None) -> dict:
    """A ``responses`` entry for an answer that is not JSON (tiles, photos, XML)."""
    body = schema or {"type": "string", "format": "binary"}
    return {"description": description, "content": {t: {"schema": body} for t in media_types}}


# --- GeoJSON (RFC 7946) ---------------------------------------------------------------

GEOJSON = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    """A JSON answer sent as ``application/geo+json`` (RFC 7946 §12); as a route's
    ``response_class`` it documents that media type."""

    media_type = GEOJSON


GeometryType = Literal[
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
]


class Geometry(BaseModel):
    """A GeoJSON geometry, WGS-84 longitude/latitude (RFC 7946 §3.1)."""

    model_config = ConfigDict(extra="allow")

    type: GeometryType
    coordinates: list[Any] | None = None


P = TypeVar("P", bound=BaseModel)


class Feature(Public, Generic[P]):
    type: Literal["Feature"]
    id: int | str | None = None
    geometry: Geometry | None
    properties: P


class Link(BaseModel):
    """OGC API paging link (self, next, prev)."""

    rel: str
    type: str
    href: str


class FeatureCollection(Public, Generic[P]):
    type: Literal["FeatureCollection"]
    features: list[Feature[P]]


class FeaturePage(FeatureCollection[P], Generic[P]):
    """A page of features, OGC API - Features style."""

    numberMatched: int
    numberReturned: int
    links: list[Link]


class LonLat(BaseModel):
    lon: float
    lat: float


class Versions(BaseModel):
    """Versions of the walking network, service points and units a figure was made from."""

    network: int
    points: int
    units: int


# --- the service's own ------------------------------------------------------------------


class NotifierHealth(Public):
    """The notification sender (gis_service/notify/health.py)."""

    state: str
    heartbeat_age_s: float | None = None
    senders: int | None = None
    pending: int | None = None
    dead: int | None = None


class HealthPublic(Public):
    status: Literal["ok", "error"]
    version: str | None = None
    database: str
    postgis: str | None = None
    schema_: str | None = Field(None, alias="schema")
    stats_ready: bool | None = None
    access_ready: bool | None = None
    detail: str | None = None
    notifier: NotifierHealth | None = None


class Label(BaseModel):
    zh: str
    en: str | None = None


class Coded(Public):
    code: str
    label: Label


class VocabularyPublic(Public):
    """gis_service/vocabulary.py ``vocabulary()``."""

    statuses: list[Coded]
    open_statuses: list[str]
    closed_statuses: list[str]
    deadline_statuses: list[str]
    actions: list[str]
    note_required_actions: list[str]
    action_fields: dict[str, list[str]]
    events: list[str]
    priorities: list[str]
    priority_labels: list[Coded]
    parkable_statuses: list[str]
    approval_kinds: list[str]
    approval_states: list[str]
    decisions: list[str]
    roles: list[Coded]
    account_roles: list[str]
    team_kinds: list[Coded]
    levels: list[Coded]
    handling_levels: list[str]
    staff_roles: list[str]
    category_code_pattern: str
