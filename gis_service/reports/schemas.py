"""Request and answer models of the monthly report API (routes.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gis_service.api.schemas import Public


class ReportCreate(BaseModel):
    """A new draft of a unit's report for a month."""

    model_config = ConfigDict(extra="forbid")

    unit: str = Field(
        pattern=r"^[0-9]{6,14}$", description="A district, subdistrict, community or grid code"
    )
    month: str = Field(
        pattern=r"^2[0-9]{3}-(0[1-9]|1[0-2])$",
        description="YYYY-MM, a calendar month in the district's time",
        examples=["2026-10"],
    )
    lang: str = Field(default="zh", pattern="^(zh|en)$", description="The PDF's language")
    reason: str | None = Field(
        default=None, max_length=2000, description="Why a corrected version is made"
    )


class ReportSend(BaseModel):
    """Sending (freezing) a draft; a correction of a sent version needs ``reason``."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)


class Change(Public):
    """One figure that differs from the previous sent version."""

    key: str = Field(description="The figure's drill-down key")
    unit: str
    name: str
    figure: str
    old: float | int | None
    new: float | int | None


class ReportVersion(Public):
    """A version's facts; times are ISO 8601 in the district's time."""

    id: int
    unit: str
    unit_name: str | None
    month: str
    version: int
    status: str = Field(description="draft or sent (sent: frozen)")
    lang: str
    created_by: str
    created_at: str
    sent_by: str | None
    sent_at: str | None
    reason: str | None
    previous_id: int | None = Field(description="The previous sent version it corrects")
    pdf_sha256: str
    pdf_bytes: int
    url: str
    pdf_url: str


class ReportVersionDetail(ReportVersion):
    """A version with its frozen figures (reports/figures.py) and the changes since the
    previous sent version (None for a first version)."""

    figures: dict[str, Any]
    changes: list[Change] | None


class ReportVersions(Public):
    versions: list[ReportVersion]


class ReportChanges(Public):
    id: int
    version: int
    previous_id: int | None
    previous_version: int | None
    reason: str | None
    changes: list[Change]


class FigureCases(Public):
    """The cases behind a figure: the frozen ids, and the summaries (as the cases stand
    now) of those the viewer may see."""

    version_id: int
    key: str
    parts: dict[str, str] | None = Field(
        description="For a rate: the keys of its numerator and denominator"
    )
    count: int = Field(description="How many cases the figure counts")
    offset: int
    case_ids: list[int] = Field(description="The page of the frozen ids, ascending")
    cases: list[dict[str, Any]]
