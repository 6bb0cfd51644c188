"""``/api/v1/desk/…``: the command desk's queue and its tab counts. Thin: the SQL is in
cases/desk.py, scoped by auth/scope.py ``case_filter``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from gis_service.api import conditional
from gis_service.api.deps import ConnDep, PrincipalDep, ReadConnDep, SettingsDep
from gis_service.api.params import PageParams
from gis_service.api.schemas import GeoJSONResponse, refusals
from gis_service.cases import approvals, bulk, desk, workload
from gis_service.cases.schemas import CaseCollection
from gis_service.cases.workflow import STATUSES
from gis_service.db.engine import transaction
from gis_service.desk import saved_searches
from gis_service.desk.board_schemas import (
    SavedSearch,
    SavedSearchCreate,
    SavedSearches,
    ShiftView,
    WorkloadBoard,
)
from gis_service.desk.schemas import BulkResult, DeskCounts
from gis_service.errors import InvalidInput

router = APIRouter(prefix="/desk", tags=["desk"])
TAB_PATTERN = "^(" + "|".join(desk.TABS) + ")$"


@dataclass
class QueueFilters:
    """The desk's filters, the same as ``GET /api/v1/cases``' (cases/service.py)."""

    status: Annotated[list[str] | None, Query(description="One or more statuses")] = None
    category: Annotated[str | None, Query(description="A domain or sub-category")] = None
    unit: Annotated[str | None, Query(description="Cases inside this unit (code)")] = None
    team_id: Annotated[int | None, Query(description="Dispatched to this team")] = None
    reporter_id: Annotated[int | None, Query(description="Reported by this user")] = None
    date_from: Annotated[
        date | None, Query(alias="from", description="Reported on or after (local date)")
    ] = None
    date_to: Annotated[
        date | None, Query(alias="to", description="Reported on or before (local date)")
    ] = None
    q: Annotated[str | None, Query(description="Text in description, number or address")] = None

    def build(self, tab: str | None = None, near_share: float = 0.25) -> desk.DeskFilters:
        """The filters as ``DeskFilters``; 422 naming an unknown status."""
        bad = [s for s in self.status or [] if s not in STATUSES]
        if bad:
            raise InvalidInput(
                f"unknown status {bad[0]!r}; one of {', '.join(STATUSES)}", field="status"
            )
        return desk.DeskFilters(
            status=self.status or None,
            category=self.category or None,
            unit=self.unit or None,
            team_id=self.team_id,
            reporter_id=self.reporter_id,
            date_from=self.date_from,
            date_to=self.date_to,
            q=self.q or None,
            tab=tab,
            near_share=near_share,
        )


@router.get(
    "/queue",
    summary="The desk's case queue: one tab, filtered, most urgent first, paged",
    response_model=CaseCollection,
    response_class=GeoJSONResponse,
    responses=refusals(401, 403, 422),
)
def queue(
    request: Request,
    conn: ReadConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    page: Annotated[PageParams, Depends()],
    filters: Annotated[QueueFilters, Depends()],
    tab: Annotated[
        str | None, Query(pattern=TAB_PATTERN, description="A queue tab; none: every case")
    ] = None,
) -> Response:
    """Supervisors and admins: the cases of ``tab`` (cases/desk.py TABS) in their
    jurisdiction under the filters, as GeoJSON points (``numberMatched``, page links),
    sorted by urgency: least time left before the deadline first, then those without a
    deadline (reported) oldest first. 403 for other roles."""
    fc = desk.queue(
        conn,
        principal,
        filters.build(tab, settings.desk_near_deadline_share),
        tz=settings.timezone,
        limit=page.limit,
        offset=page.offset,
    )
    return page.answer(request, fc)


@router.get(
    "/counts",
    summary="The desk's live tab counts (poll with If-None-Match)",
    response_model=DeskCounts,
    responses={
        304: {"description": "Unchanged since the ETag sent in If-None-Match"},
        **refusals(401, 403, 422),
    },
)
def counts(
    request: Request,
    conn: ReadConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    filters: Annotated[QueueFilters, Depends()],
) -> Response:
    """Supervisors and admins: how many cases each tab holds under the filters, the open
    cases and the approvals waiting for them (``GET /api/v1/approvals``' total). Carries
    an ETag of its figures and answers 304 to a matching If-None-Match (RFC 9110 §13.1.2,
    api/conditional.py): the desk polls it and reloads its list only when a figure moved.
    403 for other roles."""
    share = settings.desk_near_deadline_share
    found = desk.counts(conn, principal, filters.build(), tz=settings.timezone, near_share=share)
    body = {
        "tabs": {name: found[name] for name in desk.TABS},
        "open": found["open"],
        "changed_at": found["changed_at"],
        "approvals": approvals.inbox(conn, principal, limit=1)["total"],
        "near_deadline_share": share,
    }
    return conditional.respond(
        request.headers,
        json.dumps(jsonable_encoder(body), separators=(",", ":")),
        media_type="application/json",
        headers={"Cache-Control": "private, no-cache"},
    )


@router.get(
    "/workload",
    summary="The workload board: per team and per grid worker, over a period",
    response_model=WorkloadBoard,
    responses=refusals(401, 403, 422),
)
def workload_board(
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    period: Annotated[
        str,
        Query(
            pattern="^(" + "|".join(workload.PERIODS) + ")$",
            description="This week (from Monday), month or quarter, in the district's time",
        ),
    ] = "week",
) -> dict:
    """Supervisors and admins: per team open, overdue, handled, closed, on-time and
    rework rates; per grid worker reports and cases awaiting their check — over the
    viewer's cases only (cases/workload.py, definitions in the answer). 403 for others."""
    return workload.board(conn, principal, settings, period)


@router.get(
    "/shift",
    summary="The shift view: arrived since my last shift, urged without a reply, likely late",
    response_model=ShiftView,
    responses=refusals(401, 403, 422),
)
def shift_view(conn: ConnDep, principal: PrincipalDep) -> dict:
    """Supervisors and admins, over their jurisdiction: cases reported since their
    previous sign-in began (else the last 12 hours), urged cases the team has not
    answered, and the running cases whose predicted finish (their team's 80th percentile
    of dispatched → handled hours for the category, 90 days) passes the deadline
    (cases/workload.py ``likely_late``). 403 for others."""
    return workload.shift(conn, principal)


@router.get(
    "/saved-searches",
    summary="My saved searches (named views of the queue)",
    response_model=SavedSearches,
    responses=refusals(401, 403, 422),
)
def list_saved_searches(conn: ConnDep, principal: PrincipalDep) -> dict:
    """The viewer's own saved searches, by name (desk/saved_searches.py)."""
    return {"saved_searches": saved_searches.list_saved(conn, principal)}


@router.post(
    "/saved-searches",
    status_code=201,
    summary="Save a view of the queue under a name",
    response_model=SavedSearch,
    responses=refusals(401, 403, 409, 422),
)
def create_saved_search(
    settings: SettingsDep, principal: PrincipalDep, body: SavedSearchCreate
) -> dict:
    """The query is the desk's URL query string, checked against the queue's tab and
    filters (422 with ``field`` ``query.<name>``) and stored canonical; 409 (``field``
    ``name``) for a name the viewer already uses."""
    with transaction(settings) as conn:
        return saved_searches.save(conn, principal, body.name, body.query)


@router.delete(
    "/saved-searches/{search_id}",
    summary="Delete one of my saved searches",
    response_model=SavedSearch,
    responses=refusals(401, 403, 404, 422),
)
def delete_saved_search(
    settings: SettingsDep,
    principal: PrincipalDep,
    search_id: Annotated[int, Path(gt=0)],
) -> dict:
    """Answers the deleted search; 404 for an id the viewer has none of (another
    user's included)."""
    with transaction(settings) as conn:
        return saved_searches.delete(conn, principal, search_id)


@router.post(
    "/bulk",
    summary="One action (" + ", ".join(a.value for a in bulk.BULK_ACTIONS) + ") on many cases",
    response_model=BulkResult,
    responses=refusals(401, 403, 422),
)
def bulk_action(
    settings: SettingsDep, principal: PrincipalDep, body: bulk.BulkRequest
) -> JSONResponse:
    """Supervisors and admins: ``action`` on each of ``case_ids`` (1–500, distinct),
    each through the one workflow rule (cases/actions.py) in its own savepoint of one
    transaction: every applied case gets its own timeline event; a case the rule refuses
    (409 state or ``case_locked``, 403, 404 outside the jurisdiction, 422) is listed under
    ``refused`` with its ``error`` and ``detail`` and the rest are applied. ``dispatch``
    takes ``team_id`` (without it, what a single dispatch does without one: each case is
    refused naming ``team_id``). 422 for a bad request (nothing written), 403 for other
    roles."""
    with transaction(settings) as conn:
        result = bulk.apply_bulk(conn, principal, body, settings)
    return JSONResponse(jsonable_encoder(result))
