"""Answer model of the resolution statistics (stats/resolution.py ``resolution``)."""

from __future__ import annotations

from pydantic import Field

from gis_service.api.schemas import Public


class Figures(Public):
    """Counts of the period's cohort and the rates made from them (null: no denominator)."""

    reported: int
    accepted: int
    rejected: int
    closed: int
    voided: int
    closed_on_time: int
    closed_on_time_extended: int
    extended: int
    rework: int
    rated: int
    satisfied: int
    overdue_now: int
    parked_now: int
    urges: int
    urges_replied: int
    urges_unreplied: int
    resolution_rate: float | None
    on_time_rate: float | None
    on_time_rate_extended: float | None
    rework_rate: float | None
    median_hours_to_close: float | None
    satisfaction_rate: float | None


class UnitFigures(Figures):
    code: str
    name: str
    parent_code: str | None


class WeekFigures(Figures):
    week_start: str = Field(description="Monday of the week (local date)")


class ResolutionStats(Public):
    level: str
    from_: str = Field(alias="from", description="First day (local), inclusive")
    to: str = Field(description="Last day (local), inclusive")
    category: str | None
    unit: str | None
    definitions: dict[str, str]
    totals: Figures
    units: list[UnitFigures]
    weekly: list[WeekFigures]
    cases_in_cube: int = Field(
        description="Cases the process holds in memory: the recent window and the open "
        "cases; older settled cases are counted from the daily roll-up (stats/rollup.py)"
    )
    computed_ms: float
