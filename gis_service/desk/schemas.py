"""Answer models of the desk's API; the tabs' members come from ``cases/desk.py`` TABS."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, create_model

from gis_service.api.schemas import Public
from gis_service.cases.desk import TABS

#: tab → how many cases it holds (one member per tab of ``TABS``, in its order)
TabCounts = create_model(
    "TabCounts",
    __base__=Public,
    __doc__="How many cases in your jurisdiction each queue tab holds (cases/desk.py).",
    **{name: (int, Field(ge=0, description=f"{zh} · {en}")) for name, (zh, en) in TABS.items()},
)


class DeskCounts(Public):
    """The queue's live counts: each tab's, all open cases, and the approvals waiting."""

    tabs: TabCounts  # type: ignore[valid-type]
    open: int = Field(ge=0, description="Open cases under the filters")
    approvals: int = Field(ge=0, description="Requests waiting for your decision (待审批)")
    changed_at: datetime | None = Field(description="The latest change among the open cases")
    near_deadline_share: float = Field(description="The near-deadline tab's share of the span")


class BulkApplied(Public):
    case_id: int
    case_no: str
    status: str = Field(description="The case's status after the action")


class BulkRefused(Public):
    """A case the action was refused on, with the refusal's members (``allowed``,
    ``holder``, ``field``…, as the single action's error body)."""

    case_id: int
    case_no: str | None = Field(
        default=None, description="Absent for a case outside your jurisdiction"
    )
    error: str = Field(examples=["conflict", "case_locked", "not_found"])
    detail: str


class BulkCounts(Public):
    requested: int = Field(ge=0)
    applied: int = Field(ge=0)
    refused: int = Field(ge=0)


class BulkResult(Public):
    """What a bulk action did, case by case (cases/bulk.py)."""

    action: str
    applied: list[BulkApplied]
    refused: list[BulkRefused]
    counts: BulkCounts
