"""Monthly report routes: make a draft, list and read versions, the PDF, send (freeze),
the changes since the previous sent version, and the drill-down from a figure to its
cases. Rules and shapes: reports/versions.py and reports/figures.py."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from gis_service.access.jobs import Pending
from gis_service.access.schemas import JobStatus
from gis_service.api.deps import ConnDep, CubeDep, PrincipalDep, SettingsDep
from gis_service.api.schemas import SIGNED_IN, media, refusals
from gis_service.auth.scope import scope_key
from gis_service.db.engine import transaction
from gis_service.errors import NotFound
from gis_service.reports import versions
from gis_service.reports.jobs import JOBS, Made
from gis_service.reports.schemas import (
    FigureCases,
    ReportChanges,
    ReportCreate,
    ReportSend,
    ReportVersionDetail,
    ReportVersions,
)

router = APIRouter(prefix="/reports", tags=["reports"], responses=SIGNED_IN)
PENDING = {202: {"model": JobStatus, "description": "Still printing: ask status_url"}}
VersionId = Annotated[int, Path(ge=1, le=2**62)]
Month = Annotated[str | None, Query(pattern=r"^2[0-9]{3}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


@router.post(
    "/monthly",
    summary="Make a draft of a unit's monthly report (figures, PDF)",
    status_code=201,
    response_model=ReportVersionDetail,
    responses={**PENDING, **refusals(404)},
)
def create_report(
    body: ReportCreate, principal: PrincipalDep, settings: SettingsDep, cube: CubeDep
) -> JSONResponse:
    """Computes the figures of ``unit`` for ``month`` and prints the PDF as a new draft
    version (201). Printing takes seconds: past ``GIS_IMPORT_WAIT_SECONDS`` the answer is
    202 with the job's ``status_url``; its ``summary`` names the version's URL when done.
    Supervisors and admins whose jurisdiction covers the unit (403 otherwise); 404 for a
    unit that does not exist, 422 for a bad month or a building."""
    versions.check_reader(principal, body.unit)
    tag = hashlib.sha256(f"{scope_key(principal)}:{principal.user_id}".encode()).hexdigest()
    name = f"monthly-{body.unit}-{body.month}-{body.lang}-{tag[:16]}"

    def work(progress):
        with transaction(settings) as conn:
            return Made(
                versions.create_draft(
                    conn,
                    cube,
                    principal,
                    settings,
                    body.unit,
                    body.month,
                    body.lang,
                    body.reason,
                    progress,
                )
            )

    try:
        made = JOBS.run(name, work, settings.import_wait_seconds)
    except Pending as pending:
        status = pending.job.public()
        return JSONResponse(status, status_code=202, headers={"Location": status["status_url"]})
    return JSONResponse(made.version, status_code=201)


@router.get(
    "/monthly",
    summary="The versions of a unit's monthly reports",
    response_model=ReportVersions,
)
def list_reports(
    conn: ConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    unit: Annotated[str, Query(pattern=r"^[0-9]{6,14}$", description="The unit's code")],
    month: Month = None,
) -> JSONResponse:
    """Newest month and version first; only for a unit the viewer's jurisdiction covers
    (403 otherwise)."""
    return JSONResponse(
        {"versions": versions.list_versions(conn, principal, settings, unit, month)}
    )


@router.get(
    "/monthly/{version_id}",
    summary="A version: its facts, frozen figures and changes",
    response_model=ReportVersionDetail,
    responses=refusals(404),
)
def get_report(
    conn: ConnDep, principal: PrincipalDep, settings: SettingsDep, version_id: VersionId
) -> JSONResponse:
    """404 for a version of a unit outside the viewer's jurisdiction."""
    return JSONResponse(versions.get_version(conn, principal, settings, version_id))


@router.get(
    "/monthly/{version_id}/pdf",
    summary="The version's PDF, exactly as stored (as sent, once sent)",
    response_class=Response,
    responses={200: media("The PDF", "application/pdf"), **refusals(404)},
)
def get_pdf(conn: ConnDep, principal: PrincipalDep, version_id: VersionId) -> Response:
    """The stored bytes; ``ETag`` is their SHA-256 (the version's ``pdf_sha256``)."""
    body, sha, name = versions.pdf_of(conn, principal, version_id)
    return Response(
        body,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{name}"',
            "ETag": f'"{sha}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.post(
    "/monthly/{version_id}/send",
    summary="Send a draft to the level above: freeze it",
    response_model=ReportVersionDetail,
    responses=refusals(404, 409),
)
def send_report(
    body: ReportSend, principal: PrincipalDep, settings: SettingsDep, version_id: VersionId
) -> JSONResponse:
    """Freezes the draft (its figures as computed; the PDF printed once more with the
    sender, the reason and the changes, and kept byte for byte). 409 if it was sent
    already; 422 (``field: reason``) for a correction without a reason."""
    with transaction(settings) as conn:
        out = versions.send(conn, principal, settings, version_id, body.reason)
    return JSONResponse(out)


@router.get(
    "/monthly/{version_id}/diff",
    summary="What changed since the previous sent version, and why",
    response_model=ReportChanges,
    responses=refusals(404),
)
def report_changes(conn: ConnDep, principal: PrincipalDep, version_id: VersionId) -> JSONResponse:
    """Per unit and figure, old → new (empty for a first version), with the reason."""
    return JSONResponse(versions.changes_of(conn, principal, version_id))


@router.get(
    "/monthly/{version_id}/figures/{key}/cases",
    summary="The cases behind one figure of a version (drill-down)",
    response_model=FigureCases,
    responses=refusals(404),
)
def figure_cases(
    conn: ConnDep,
    principal: PrincipalDep,
    version_id: VersionId,
    key: Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9_.\-]+$")],
    limit: Annotated[int, Query(ge=1, le=10_000, description="Cases per page")] = 1000,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """``key``: ``totals.<figure>``, ``table.<unit>.<figure>``, ``trend.<YYYY-MM>.<figure>``,
    ``overdue``, ``rework`` or ``satisfaction.<1-5>``; a rate's key gives its numerator's
    cases and both parts' keys. ``count`` is the figure; ``case_ids`` and ``cases`` the
    page from ``offset``."""
    return JSONResponse(versions.figure_cases(conn, principal, version_id, key, limit, offset))


@router.get(
    "/jobs/{name}",
    summary="Status of a report being printed",
    response_model=JobStatus,
    responses=refusals(404),
)
def job_status(principal: PrincipalDep, name: Annotated[str, Path(max_length=120)]) -> Response:
    """Running, done (``summary`` names the version) or failed (``error``)."""
    job = JOBS.get(name)
    if job is None:
        raise NotFound(f"no report job {name!r} has run in this process")
    return JSONResponse(job.public())
