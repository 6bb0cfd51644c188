"""Answer models of the case loop (``XPublic``); the report's input is ``report.CaseReport``
and an action's ``actions.ActionRequest``. Times are ISO 8601 strings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from gis_service.api.schemas import FeaturePage, Label, Public


class CaseProperties(Public):
    """One case's summary: ``case_summary()`` in cases/report.sql."""

    id: int
    case_no: str
    status: str
    category: str
    priority: str
    description: str | None
    address: str | None
    lon: float
    lat: float
    unit_code: str | None
    handling_level: str | None
    source: str
    reporter_id: int | None
    team_id: int | None
    duplicate_of: int | None
    reported_at: datetime
    accepted_at: datetime | None
    deadline_at: datetime | None
    closed_at: datetime | None
    overdue: bool
    rework_count: int
    escalation_count: int
    rating: int | None
    updated_at: datetime


class UnitRef(Public):
    code: str
    level: str
    name: str


class PossibleDuplicate(Public):
    id: int
    case_no: str
    status: str
    distance_m: float
    reported_at: datetime
    description: str | None


class CaseReported(CaseProperties):
    """POST /cases: the case, whether this request made it, its unit chain, open cases
    near it, and the photos sent with it (multipart)."""

    created: bool
    units: list[UnitRef] | None
    possible_duplicates: list[PossibleDuplicate] | None
    #: how many open cases the duplicate search found; the list holds the nearest few
    #: (Settings.duplicate_list_max)
    possible_duplicates_total: int | None = None
    photos: list[PhotoPublic] | None = None


class CaseCollection(FeaturePage[CaseProperties]):
    """Cases as a page of GeoJSON point features."""


class NearbyCase(Public):
    id: int
    case_no: str
    status: str
    category: str
    description: str | None
    reported_at: datetime
    distance_m: float


class NearbyCases(Public):
    """The nearest few open cases (Settings.duplicate_list_max) and how many there are."""

    cases: list[NearbyCase]
    total: int


class TeamRef(Public):
    id: int
    name: str
    kind: str
    unit_code: str | None
    phone: str | None


class EventPublic(Public):
    id: int
    at: datetime
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    data: dict[str, Any] | None
    photo_ids: list[int] | None


class CaseDetail(CaseProperties):
    category_name: Label | None
    units: list[UnitRef]
    team: TeamRef | None
    photos: list[dict[str, Any]]
    timeline: list[EventPublic]
    allowed_actions: list[str]
    rating_url: str | None


class ActionResult(Public):
    case: CaseProperties
    event: EventPublic
    allowed_actions: list[str]


class PhotoPublic(Public):
    id: int
    case_id: int
    stage: str
    mime: str
    width: int
    height: int
    bytes: int
    sha256: str
    created: bool
    exif_location: dict[str, float] | None
    url: str
    thumbnail_url: str


class PhotoPublished(Public):
    id: int
    case_id: int
    published_at: datetime | None


class CategoryPublic(Public):
    code: str
    parent_code: str | None
    name_zh: str
    name_en: str | None
    deadline_hours: int | None
    handling_level: str | None
    public: bool
    active: bool


class DomainPublic(CategoryPublic):
    children: list[CategoryPublic]


class Categories(BaseModel):
    domains: list[DomainPublic]


class TeamPublic(Public):
    id: int
    name: str
    kind: str
    unit_code: str | None
    unit_name: str | None
    unit_level: str | None
    phone: str | None
    members: int
    kind_zh: str | None
    kind_en: str | None


class Teams(BaseModel):
    teams: list[TeamPublic]


class RatingPublic(Public):
    case_no: str
    rating: int


CaseReported.model_rebuild()
