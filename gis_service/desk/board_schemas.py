"""Answer and request models of the workload board, the shift view and saved searches
(issue 15 item 6; the logic: cases/workload.py, desk/saved_searches.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gis_service.api.schemas import Public


class TeamLoad(Public):
    """One team's figures over the viewer's cases (cases/workload.py defines each)."""

    id: int
    name: str
    kind: str
    unit_code: str
    active: bool
    open: int = Field(ge=0)
    overdue: int = Field(ge=0)
    handled: int = Field(ge=0, description="Handled in the period")
    closed: int = Field(ge=0, description="Closed in the period")
    closed_on_time: int = Field(ge=0)
    closed_on_time_extended: int = Field(ge=0)
    rework: int = Field(ge=0)
    on_time_rate: float | None = Field(description="closed_on_time / closed; null: none closed")
    on_time_rate_extended: float | None
    rework_rate: float | None


class WorkerLoad(Public):
    """One grid worker's figures over the viewer's cases."""

    id: int
    username: str
    display_name: str | None
    scopes: list[str]
    reports: int = Field(ge=0, description="Cases reported in the period")
    awaiting_check: int = Field(ge=0, description="Handled cases in their grids to verify")
    oldest_handled_at: datetime | None


class WorkloadBoard(Public):
    """The workload board of the viewer's jurisdiction (``GET /api/v1/desk/workload``)."""

    period: str
    from_: datetime = Field(alias="from", description="The period's start (district time)")
    to: datetime
    timezone: str
    definitions: dict[str, str]
    teams: list[TeamLoad]
    grid_workers: list[WorkerLoad]


class CaseList(Public):
    """A list of the shift view: ``total`` cases, the first ones as case summaries
    (``case_summary()``, with the list's own members)."""

    total: int = Field(ge=0)
    cases: list[dict[str, Any]]


class ShiftView(Public):
    """The shift view (``GET /api/v1/desk/shift``, cases/workload.py ``shift``)."""

    since: datetime
    since_basis: str = Field(description="previous_session or fallback")
    now: datetime
    arrived: CaseList
    urged_unreplied: CaseList
    likely_late: CaseList
    method: dict[str, float | int]


class SavedSearchCreate(BaseModel):
    """A view of the queue to keep: a name and the desk's URL query string."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100, examples=["东区超期"])
    query: str = Field(max_length=2000, examples=["tab=overdue&team_id=3"])


class SavedSearch(Public):
    id: int
    name: str
    query: str = Field(description="Canonical: tab first, then the queue's filters")
    created_at: datetime


class SavedSearches(Public):
    saved_searches: list[SavedSearch]
