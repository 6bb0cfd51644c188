"""``/api/v1/exports/…``: the exports as files, and the status and file of a large one.

``GET /exports/{kind}.{format}`` with ``format`` one of csv, xlsx, gpkg, geojson (formats.py)
and the same query parameters as the data's own route: the case list's filters and a desk
tab for ``cases``; ``GET /stats/resolution``'s for ``resolution``; ``GET /access/gaps``'
and ``GET /access/living-circle``'s for the other two. ``lang`` (zh, the default, or en)
picks the headers and labels. An export of more rows than ``Settings.export_job_rows``
answers 202 with a job (``Location``: its status URL); otherwise the file itself, written
whole before the answer starts (never a half-written file), as an attachment named in the
district's time. Thin: what each export holds is exports/service.py's.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask

from gis_service.access import service as access_service
from gis_service.access.reach import PARTY_REACH_M
from gis_service.access.routes import LEVEL as HANDLING_LEVEL
from gis_service.access.routes import (
    PENDING,
    ReachParam,
    WalkMinutesParam,
    WalkSpeedParam,
    _fresh,
)
from gis_service.api.deps import (
    AccessDep,
    AccessJobsDep,
    ConnDep,
    CubeDep,
    PrincipalDep,
    SettingsDep,
    ViewerDep,
)
from gis_service.api.params import BBoxParams
from gis_service.api.schemas import media, refusals
from gis_service.auth.principal import Principal
from gis_service.desk.api import TAB_PATTERN, QueueFilters
from gis_service.exports import jobs
from gis_service.exports.columns import Lang
from gis_service.exports.formats import MEDIA_TYPES, Format, content_disposition
from gis_service.exports.schemas import ExportJob
from gis_service.exports.service import (
    ExportRequest,
    cases_request,
    gaps_request,
    living_circle_request,
    resolution_request,
    run,
)
from gis_service.settings import Settings
from gis_service.stats.resolution import StatsQuery
from gis_service.units.codes import Level, level_pattern

router = APIRouter(prefix="/exports", tags=["exports"])

FILE = media("The export as a file (Content-Disposition: attachment)", *MEDIA_TYPES.values())
# GeoJSON is JSON: an RFC 7946 FeatureCollection, not an opaque string
FILE["content"][MEDIA_TYPES[Format.geojson]]["schema"] = {
    "type": "object",
    "description": "An RFC 7946 FeatureCollection",
    "required": ["type", "features"],
    "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}},
}
#: the answers of an export route: the file, or a job for a large one
ANSWERS = {
    200: FILE,
    202: {"model": ExportJob, "description": "A large export: a job; poll its status_url"},
}
FormatParam = Annotated[Format, Path(description="csv, xlsx, gpkg or geojson")]
LangParam = Annotated[Lang, Query(description="Headers and labels: zh (default) or en")]


def _send(settings: Settings, request: ExportRequest, conn=None) -> Response:
    """Write the export whole into a folder of its own, then send it; the folder goes
    once sent (or when writing fails)."""
    folder = jobs.temp_folder(settings)
    out = folder / f"export.{request.fmt.value}"
    try:
        run(settings, request, out, conn=conn)
    except BaseException:
        jobs.remove(folder)
        raise
    return _file(out, request.filename(settings), MEDIA_TYPES[request.fmt], folder)


def _file(path: FilePath, name: str, media_type: str, remove: FilePath | None) -> Response:
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Content-Disposition": content_disposition(name),
            "Cache-Control": "private, no-store",
        },
        background=BackgroundTask(jobs.remove, remove) if remove else None,
    )


def _answer(
    http: Request,
    settings: Settings,
    principal: Principal,
    request: ExportRequest,
    conn,
    *,
    prefer: bool,
) -> Response:
    """The file, or 202 with a job when it holds more than ``export_job_rows`` rows or
    the client prefers an asynchronous answer (``Prefer: respond-async``, RFC 7240 §4.1;
    the desk does, to show the progress)."""
    total = request.count(conn)
    if prefer or total > settings.export_job_rows:
        job = jobs.start(settings, principal, request, query=http.url.query, total=total)
        headers = {"Location": job["status_url"]}
        if prefer:
            headers["Preference-Applied"] = "respond-async"
        return JSONResponse(
            ExportJob.model_validate(job).model_dump(mode="json"), status_code=202, headers=headers
        )
    return _send(settings, request, conn)


def _prefers_async(prefer: str | None) -> bool:
    """RFC 7240: ``Prefer`` is a comma-separated list of preferences, names case-blind."""
    if not prefer:
        return False
    return any(p.split(";")[0].strip().lower() == "respond-async" for p in prefer.split(","))


@router.get(
    "/cases.{fmt}",
    summary="Cases as a file: CSV, XLSX, GeoPackage or GeoJSON, filtered as the case list",
    response_class=Response,
    responses={**ANSWERS, **refusals(401, 403, 422)},
)
def export_cases(
    http: Request,
    conn: ConnDep,
    principal: ViewerDep,
    settings: SettingsDep,
    fmt: FormatParam,
    filters: Annotated[QueueFilters, Depends()],
    area: Annotated[BBoxParams, Depends()],
    tab: Annotated[
        str | None, Query(pattern=TAB_PATTERN, description="A desk queue tab (cases/desk.py)")
    ] = None,
    overdue: Annotated[bool | None, Query(description="Only overdue (or only not)")] = None,
    lang: LangParam = Lang.zh,
    prefer: Annotated[
        str | None, Header(description="respond-async: always answer 202 with a job (RFC 7240)")
    ] = None,
) -> Response:
    """Every case in your jurisdiction under the filters of ``GET /api/v1/cases`` (and,
    from the desk, its tab), one row each with its number, status, priority, category
    (domain and sub-category), unit chain (subdistrict, community, grid: names and codes),
    the times of report, acceptance, dispatch, handling and closure, the deadline, team,
    assignee, overdue, closed on time, rework, rating and place (exports/cases.py).
    Without a sign-in: the public view (public categories; no description or address),
    as Open311's. 403 for planners (they read figures). 422 names a refused filter.
    More rows than ``Settings.export_job_rows``, or ``Prefer: respond-async``: 202 and a
    job (``Location``: its status URL)."""
    built = filters.build(tab, settings.desk_near_deadline_share)
    built.principal = principal
    built.bbox = area.parsed()
    built.overdue = overdue
    request = cases_request(principal, built, settings, fmt, lang)
    return _answer(http, settings, principal, request, conn, prefer=_prefers_async(prefer))


@router.get(
    "/resolution.{fmt}",
    summary="The resolution statistics per unit as a file (the monthly table sent up)",
    response_class=Response,
    responses={200: FILE, **refusals(401, 403, 422)},
)
def export_resolution(
    conn: ConnDep,
    cube: CubeDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    fmt: FormatParam,
    level: Annotated[str, Query(pattern=HANDLING_LEVEL)] = Level.community,
    date_from: Annotated[date | None, Query(alias="from", description="First day (local)")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last day, inclusive")] = None,
    category: Annotated[str | None, Query(description="A domain or sub-category")] = None,
    unit: Annotated[str | None, Query(description="Only units inside this one")] = None,
    lang: LangParam = Lang.zh,
) -> Response:
    """``GET /api/v1/stats/resolution``'s units and totals as a table: counts as numbers,
    the rates (办结率, 按期结案率, 返工率, 满意率) as percentages; in the GIS formats one
    feature per unit with its boundary (no totals). Defaults to the last 52 weeks."""
    q = StatsQuery.default_period(settings, level, date_from, date_to, category=category, unit=unit)
    return _send(settings, resolution_request(principal, cube, q, fmt, lang), conn)


@router.get(
    "/gaps.{fmt}",
    summary="The one-kilometre gaps as a file: buildings beyond the reach of every party "
    "organisation, with their residents",
    response_class=Response,
    responses={200: FILE, **refusals(401, 403, 422, 503), **PENDING},
)
def export_gaps(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    access: AccessDep,
    access_jobs: AccessJobsDep,
    fmt: FormatParam,
    max_m: ReachParam = PARTY_REACH_M,
    unit: Annotated[str | None, Query(description="Only buildings inside this unit")] = None,
    lang: LangParam = Lang.zh,
) -> Response:
    """``GET /api/v1/access/gaps`` as a table (planners, supervisors, admins; inside their
    scope): building, residents, walking distance to the nearest party organisation and
    its name; in the GIS formats each building's outline. 202 while the walking
    distances are being recomputed (the access job's status)."""
    versions = _fresh(access, access_jobs, settings, principal)
    request = gaps_request(principal, versions, fmt, lang, max_m=max_m, unit=unit)
    return _send(settings, request, conn)


@router.get(
    "/living-circle.{fmt}",
    summary="The quarter-hour living circle per unit as a file",
    response_class=Response,
    responses={200: FILE, **refusals(401, 403, 422, 503), **PENDING},
)
def export_living_circle(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    access: AccessDep,
    access_jobs: AccessJobsDep,
    fmt: FormatParam,
    level: Annotated[str, Query(pattern=level_pattern())] = "community",
    minutes: WalkMinutesParam = 15,
    speed_kmh: WalkSpeedParam = access_service.DEFAULT_SPEED_KMH,
    unit: Annotated[str | None, Query(description="Only units inside this one")] = None,
    lang: LangParam = Lang.zh,
) -> Response:
    """``GET /api/v1/access/living-circle`` as a table: per unit its residents, the share
    that reaches all six everyday services and the share for each (percentages), the
    service most missing; per building the distance to each. Same viewers as the route."""
    versions = _fresh(access, access_jobs, settings, principal)
    request = living_circle_request(
        principal,
        versions,
        fmt,
        lang,
        level=level,
        within_m=access_service.metres(minutes, speed_kmh),
        unit=unit,
    )
    return _send(settings, request, conn)


JobId = Annotated[str, Path(description="The job's id (its status_url)")]


@router.get(
    "/jobs/{job_id}",
    summary="A large export's status: progress, then the download link",
    response_model=ExportJob,
    responses=refusals(401, 404),
)
def export_job(conn: ConnDep, principal: ViewerDep, job_id: JobId) -> dict:
    """Your export job: ``status`` queued, running (``rows_written`` of ``rows_total``),
    succeeded (``download_url``) or failed (``error``). 404 for another's job or one that
    expired (``Settings.export_ttl_hours`` after it started)."""
    return jobs.status(conn, principal, job_id)


@router.get(
    "/jobs/{job_id}/file",
    summary="A finished export job's file",
    response_class=Response,
    responses={200: FILE, **refusals(401, 404)},
)
def export_job_file(
    conn: ConnDep, settings: SettingsDep, principal: ViewerDep, job_id: JobId
) -> Response:
    """The file of your finished export job (its name in Content-Disposition); 404 while
    it is not written yet, for another's job, or once it expired."""
    path, name, media_type = jobs.download(conn, settings, principal, job_id)
    return _file(path, name, media_type, None)
