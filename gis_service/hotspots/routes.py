"""Routes of the recurring spots and the Gi* hotspots (rules: recurrence.py, gistar.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from gis_service.api.deps import ConnDep, CubeDep, PrincipalDep, SettingsDep
from gis_service.api.responses import json_response
from gis_service.api.schemas import SIGNED_IN
from gis_service.hotspots import recurrence
from gis_service.hotspots.gistar import hotspots
from gis_service.hotspots.recurrence import SpotQuery, recurring_spots
from gis_service.hotspots.schemas import Hotspots, RecurringSpots
from gis_service.stats.resolution import StatsQuery
from gis_service.units.codes import Level

router = APIRouter(prefix="/stats", tags=["statistics"], responses=SIGNED_IN)

FromParam = Annotated[date | None, Query(alias="from", description="First day (local)")]
ToParam = Annotated[date | None, Query(alias="to", description="Last day, inclusive")]
CategoryParam = Annotated[str | None, Query(description="A domain or sub-category")]
UnitParam = Annotated[str | None, Query(description="Only units inside this one")]


@router.get(
    "/recurring-spots",
    summary="Recurring spots: one category reported again and again at one place",
    response_model=RecurringSpots,
)
def list_recurring_spots(
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    date_from: FromParam = None,
    date_to: ToParam = None,
    category: CategoryParam = None,
    unit: UnitParam = None,
    radius_m: Annotated[
        float, Query(gt=0, le=recurrence.MAX_RADIUS_M, description="DBSCAN eps, metres")
    ] = recurrence.DEFAULT_RADIUS_M,
    min_cases: Annotated[
        int, Query(ge=2, le=1000, description="Cases a spot needs at least")
    ] = recurrence.DEFAULT_MIN_CASES,
) -> JSONResponse:
    """Density clusters (DBSCAN, ``radius_m`` metres, ``min_cases``) of the cases of one
    leaf category reported in the period (default: the last 90 days), among the cases
    the viewer reads; the rule and its defaults: docs/hotspots.md. 403 for planners and
    anonymous callers (spots list cases); 422 names a bad parameter."""
    q = SpotQuery.default_period(
        settings,
        date_from,
        date_to,
        radius_m=radius_m,
        min_cases=min_cases,
        category=category,
        unit=unit,
    )
    return json_response(recurring_spots(conn, settings, principal, q))


@router.get(
    "/hotspots",
    summary="Getis-Ord Gi* hotspots of cases per grid (PySAL esda)",
    response_model=Hotspots,
)
def grid_hotspots(
    conn: ConnDep,
    cube: CubeDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    date_from: FromParam = None,
    date_to: ToParam = None,
    category: CategoryParam = None,
    unit: UnitParam = None,
) -> JSONResponse:
    """Gi* z-score, p-values and ArcGIS-style Gi_Bin per grid of the viewer's jurisdiction
    (inside ``unit``), from the cases the statistics count in the period (default: the
    last 52 weeks); definitions in gis_service/hotspots/gistar.py and docs/hotspots.md.
    422 names a bad period, category or unit."""
    q = StatsQuery.default_period(
        settings, Level.grid.value, date_from, date_to, category=category, unit=unit
    )
    return json_response(hotspots(conn, cube, principal, q))
