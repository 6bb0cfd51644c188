"""Answer models of the case loop (``XPublic``); the report's input is ``report.CaseReport``
and an action's ``actions.ActionRequest``. Times are ISO 8601 strings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

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
    #: the member of the team who does the work (指派), or null
    assignee_id: int | None = None
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
    #: the deadline acceptance set, kept once an extension (延期) moved deadline_at
    original_deadline_at: datetime | None = None
    extension_count: int = 0
    #: while parked (挂账): the moment of its review (the review date's local midnight)
    parked_until: datetime | None = None
    voided_at: datetime | None = None
    #: urges (督办) sent to the team, and how many still wait for its reply
    urge_count: int = 0
    urges_unreplied: int = 0
    #: the last return by a team (回退): when, which team, its reason
    returned: ReturnedPublic | None = None


class ReturnedPublic(Public):
    at: datetime
    team_id: int | None
    note: str | None


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


class PersonRef(Public):
    id: int
    display_name: str


class LockHolder(Public):
    user_id: int
    name: str


class CaseLock(Public):
    """Who is working on a case at the desk (cases/locks.py); ``holder`` null when free."""

    case_id: int
    holder: LockHolder | None
    acquired_at: datetime | None
    expires_at: datetime | None
    mine: bool
    taken_over_from: LockHolder | None = None


class ReporterContact(Public):
    """Who reported the case and how to call them back: dispatchers only."""

    id: int
    name: str
    phone: str | None


class CaseDetail(CaseProperties):
    category_name: Label | None
    units: list[UnitRef]
    team: TeamRef | None
    #: the member of the team who does the work (指派), or null
    assignee: PersonRef | None = None
    #: for dispatchers: the active members of the case's team, whom assign may name
    team_members: list[PersonRef] = Field(default_factory=list)
    #: supervisors and admins: the reporter's name and phone; null for everyone else
    reporter: ReporterContact | None = None
    photos: list[dict[str, Any]]
    timeline: list[EventPublic]
    allowed_actions: list[str]
    lock: CaseLock | None = None
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


class ApprovalPublic(Public):
    """One request in the approval inbox (cases/approvals.py)."""

    id: int
    kind: str
    state: str
    case_id: int
    case_no: str
    category: str
    unit_code: str
    handling_level: str
    case_status: str
    team_id: int | None
    approver_unit: str | None
    requested_by: int | None
    requested_by_name: str | None
    requested_at: datetime
    due_by: datetime
    past_due: bool
    hours_left: float
    reason: str
    photo_ids: list[int]
    hours: int | None
    deadline_at: datetime | None
    proposed_deadline_at: datetime | None
    original_deadline_at: datetime | None
    extension_count: int
    decided_by: int | None
    decided_at: datetime | None
    decision_note: str | None
    decided_on_behalf_of: int | None
    #: the approver whose inbox this request reaches me through (a delegation), or null
    on_behalf_of: int | None


class ApprovalInbox(Public):
    approvals: list[ApprovalPublic]
    total: int


class DecisionApplied(Public):
    id: int
    case_id: int
    case_no: str
    state: str
    event_id: int
    deadline_at: datetime | None
    on_behalf_of: int | None


class DecisionFailed(Public):
    id: int
    error: str
    detail: str


class DecisionResult(Public):
    decision: str
    applied: list[DecisionApplied]
    failed: list[DecisionFailed]


class DelegationPublic(Public):
    id: int
    delegator_id: int
    delegator_name: str
    delegate_id: int
    delegate_name: str
    starts_at: datetime
    ends_at: datetime
    note: str | None
    created_at: datetime
    revoked_at: datetime | None
    in_force: bool


class Delegations(Public):
    given: list[DelegationPublic]
    received: list[DelegationPublic]


class TemplatePublic(Public):
    """A reply or reason template (回复模板/理由模板, cases/templates.py)."""

    id: int
    #: null: any category; a domain code: all its sub-categories
    category_code: str | None
    action: str
    text_zh: str
    text_en: str | None
    active: bool
    created_at: datetime


class CaseTemplates(Public):
    """The templates that apply to one case, most specific category first."""

    case_id: int
    category: str
    templates: list[TemplatePublic]


class TeamSuggestion(Public):
    """One team that may take a case (cases/suggestions.py)."""

    id: int
    name: str
    kind: str
    kind_zh: str | None
    kind_en: str | None
    unit_code: str
    unit_name: str | None
    unit_level: str | None
    phone: str | None
    members: int
    #: the team of the case's unit or its nearest ancestor unit that has a team
    responsible: bool
    #: open cases dispatched to the team now (among those you may see)
    open_cases: int
    #: of those, overdue (case_overdue(), cases/report.sql)
    overdue_cases: int
    #: metres from the team's base (a point inside its unit) to the case
    distance_m: float
    #: "network": walked along the imported walking network; "straight": a straight line
    #: (no network, or an end too far from it)
    distance_kind: str


class TeamSuggestions(Public):
    case_id: int
    unit_code: str
    teams: list[TeamSuggestion]


CaseProperties.model_rebuild()
CaseReported.model_rebuild()
