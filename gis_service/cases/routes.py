"""Routes of the case loop: thin; the work is in report.py, service.py, actions.py."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import ValidationError

from gis_service.api import conditional
from gis_service.api.deps import (
    AccessDep,
    ConnDep,
    PrincipalDep,
    ReadConnDep,
    SettingsDep,
    ViewerDep,
)
from gis_service.api.params import BBoxParams, PageParams, PointParams
from gis_service.api.schemas import GeoJSONResponse, media, refusals
from gis_service.api.services import services_of
from gis_service.auth import sessions, tokens
from gis_service.auth.principal import Principal
from gis_service.cases import (
    actions,
    approvals,
    attachments,
    categories,
    report,
    service,
    suggestions,
    teams,
    templates,
)
from gis_service.cases.photos import Processed, check_size, process
from gis_service.cases.schemas import (
    ActionResult,
    ApprovalInbox,
    CaseCollection,
    CaseDetail,
    CaseReported,
    CaseTemplates,
    Categories,
    DecisionResult,
    DelegationPublic,
    Delegations,
    NearbyCases,
    PhotoPublic,
    PhotoPublished,
    RatingPublic,
    Teams,
    TeamSuggestions,
    TemplatePublic,
)
from gis_service.cases.workflow import ACTIONS, STATUSES, ApprovalState
from gis_service.db.engine import transaction
from gis_service.errors import InvalidInput, TooLarge, Unauthorized
from gis_service.settings import Settings

router = APIRouter(tags=["cases"])
GEOJSON = "application/geo+json"
MAX_REPORT_PHOTOS = 3
CaseId = Annotated[int, Path(gt=0, description="Case id")]


def _report_schema() -> dict[str, Any]:
    # its $defs are moved to components.schemas by api/openapi.py (hoist_defs)
    schema = report.CaseReport.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "multipart/form-data": {
                    "schema": {
                        **schema,
                        "properties": {
                            **schema["properties"],
                            "photo": {
                                "type": "array",
                                "maxItems": MAX_REPORT_PHOTOS,
                                "items": {"type": "string", "format": "binary"},
                            },
                        },
                    }
                },
            },
        }
    }


@router.post(
    "/cases",
    summary="Report a problem found on a grid walk",
    status_code=201,
    openapi_extra=_report_schema(),
    response_model=CaseReported,
    responses={
        200: {
            "model": CaseReported,
            "description": "A retry with the same Idempotency-Key: the same case",
        },
        201: {"description": "The new case, its unit chain and possible duplicates"},
        **refusals(401, 403, 413, 415, 422),
    },
)
async def report_case(
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Any unique string per report; a retry with it never makes a second case"
        ),
    ] = None,
) -> Response:
    """JSON, or multipart/form-data with the same fields and up to three `photo` files
    (the first photo's EXIF GPS fills lon/lat when they are missing)."""
    return await handle_report(request, principal, settings, idempotency_key)


async def fast_report(request: Request) -> Response:
    """The same endpoint as a plain Starlette route, placed before FastAPI's router: at a
    thousand reports a second FastAPI's routing and dependency solving were a quarter of
    the request's CPU (py-spy). The FastAPI route above documents it and behaves alike.
    The session is checked by ``report_case()`` in the report's own round trip (one round
    trip a report instead of two), or first wherever the report stops before it."""
    settings = services_of(request.app).settings
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "sign in first: send Authorization: Bearer <token> (POST /api/v1/auth/token)"
        )
    principal = tokens.read(token, settings)
    return await handle_report(
        request, principal, settings, request.headers.get("idempotency-key"), checked=False
    )


async def handle_report(
    request: Request,
    principal: Principal,
    settings: Settings,
    key: str | None,
    *,
    checked: bool = True,
) -> Response:
    """``checked``: the session was checked already; if not, it is before anything other
    than ``report_case()`` (which checks it itself) can answer — a refusal of the payload,
    the photos' processing — so an ended sign-in hears 401 first, as on every route."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        if not checked:
            await sessions.check(settings, principal)
        # photos are checked before the case is written: a bad photo refuses the whole
        # report, never leaves a case without the photos its reporter sent
        payload, uploads = await _multipart_report(request, settings)
    else:
        try:
            payload = report.CaseReport.model_validate_json(await request.body())
        except ValidationError as exc:
            if not checked:
                await sessions.check(settings, principal)
            raise RequestValidationError(_body_errors(exc)) from None
        uploads = []
    result = await report.report(
        settings,
        principal,
        payload,
        key,
        photo_sha256=[meta.sha256 for meta, *_ in uploads],
        checked=checked,
    )
    body = result.json
    # A replay stores its photos too: a phone whose connection broke after the case was
    # written but before its photos were resends the whole report with the same key, and
    # photos are idempotent per case (by content), so each is stored exactly once.
    if uploads:
        data = result.as_dict()
        data["photos"] = await run_in_threadpool(
            _store_photos, settings, principal, result.id, uploads
        )
        body = json.dumps(jsonable_encoder(data), ensure_ascii=False)
    return Response(
        body,
        status_code=201 if result.created else 200,
        media_type="application/json",
        headers={"Location": f"/api/v1/cases/{result.id}"},
    )


def _body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]


async def _multipart_report(
    request: Request, settings: Settings
) -> tuple[report.CaseReport, list[Processed]]:
    length = int(request.headers.get("content-length") or 0)
    limit = MAX_REPORT_PHOTOS * settings.photo_max_bytes + 1024 * 1024
    if length > limit:
        raise TooLarge(
            f"the report is {length / 2**20:.1f} MB; up to {MAX_REPORT_PHOTOS} "
            f"photos of {settings.photo_max_bytes / 2**20:g} MB each are accepted"
        )
    form = await request.form(max_files=MAX_REPORT_PHOTOS, max_fields=20)
    fields = {k: v for k, v in form.items() if isinstance(v, str) and v != ""}
    uploads = [
        await _read_upload(f, settings) for f in form.getlist("photo") if not isinstance(f, str)
    ]
    checked = await run_in_threadpool(
        lambda: [process(data, settings.photo_max_bytes) for data in uploads]
    )
    if ("lon" not in fields or "lat" not in fields) and checked:
        meta = checked[0][0]
        if meta.exif_lon is not None and meta.exif_lat is not None:
            fields.update(lon=str(meta.exif_lon), lat=str(meta.exif_lat), coord_sys="wgs84")
    try:
        return report.CaseReport.model_validate(fields), checked
    except ValidationError as exc:
        raise RequestValidationError(_body_errors(exc)) from None


async def _read_upload(upload: UploadFile, settings: Settings) -> bytes:
    data = await upload.read(settings.photo_max_bytes + 1)
    check_size(len(data), settings.photo_max_bytes)
    return data


def _store_photos(
    settings: Settings, principal: Principal, case_id: int, uploads: list[Processed]
) -> list[dict[str, Any]]:
    with transaction(settings) as conn:
        return [
            attachments.add_processed(conn, settings, principal, case_id, "before", p)
            for p in uploads
        ]


@router.get(
    "/cases",
    summary="Cases in your jurisdiction as GeoJSON, filtered and paged",
    response_model=CaseCollection,
    response_class=GeoJSONResponse,
    responses=refusals(401, 403, 422),
)
def list_cases(
    request: Request,
    conn: ReadConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    page: Annotated[PageParams, Depends()],
    area: Annotated[BBoxParams, Depends()],
    status: Annotated[list[str] | None, Query(description="One or more statuses")] = None,
    category: Annotated[str | None, Query(description="A domain or sub-category")] = None,
    unit: Annotated[str | None, Query(description="Cases inside this unit")] = None,
    team_id: Annotated[int | None, Query()] = None,
    mine: Annotated[bool, Query(description="Only cases I reported")] = False,
    overdue: Annotated[bool | None, Query()] = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    q: Annotated[str | None, Query(description="Text in description, number or address")] = None,
    order: Annotated[str, Query(pattern="^(newest|oldest|deadline)$")] = "newest",
) -> JSONResponse:
    bad = [s for s in status or [] if s not in STATUSES]
    if bad:
        raise InvalidInput(
            f"unknown status {bad[0]!r}; one of {', '.join(STATUSES)}", field="status"
        )
    filters = service.CaseFilters(
        status=status,
        category=category,
        unit=unit,
        team_id=team_id,
        reporter_id=principal.user_id if mine else None,
        overdue=overdue,
        date_from=date_from,
        date_to=date_to,
        bbox=area.parsed(),
        q=q,
    )
    fc = service.list_cases(
        conn,
        principal,
        filters,
        tz=settings.timezone,
        limit=page.limit,
        offset=page.offset,
        order=order,
    )
    return page.answer(request, fc)


@router.get(
    "/cases/nearby",
    summary="Open cases near a point: possible duplicates",
    response_model=NearbyCases,
    responses=refusals(401, 403, 422),
)
def nearby(
    conn: ReadConnDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    point: Annotated[PointParams, Depends()],
    category: Annotated[str | None, Query()] = None,
    radius_m: Annotated[
        float | None,
        Query(gt=0, le=500, description="Default: the radius reports use (duplicate_radius_m)"),
    ] = None,
) -> JSONResponse:
    """Open cases within ``radius_m`` metres reported in the last duplicate_window_days
    days — by default exactly the search a report's possible_duplicates makes: the nearest
    ``duplicate_list_max`` (default 5) and ``total``, how many there are."""
    lon, lat = point.wgs84()
    radius = settings.duplicate_radius_m if radius_m is None else radius_m
    found, total = service.nearby_open(
        conn,
        principal,
        lon,
        lat,
        category,
        radius,
        settings.duplicate_window_days,
        settings.duplicate_list_max,
    )
    return JSONResponse(jsonable_encoder({"cases": found, "total": total}))


@router.get(
    "/cases/{case_id}",
    summary="One case with its timeline, photos and team",
    response_model=CaseDetail,
    responses=refusals(401, 403, 404, 422),
)
def get_case(conn: ConnDep, principal: PrincipalDep, case_id: CaseId) -> JSONResponse:
    case = service.get_case(conn, principal, case_id)
    return JSONResponse(jsonable_encoder(case))


@router.post(
    "/cases/{case_id}/actions",
    summary="Move a case along the loop: " + ", ".join(ACTIONS),
    response_model=ActionResult,
    responses=refusals(401, 403, 404, 409, 422),
)
def act(
    settings: SettingsDep, principal: PrincipalDep, case_id: CaseId, body: actions.ActionRequest
) -> JSONResponse:
    """The rules are cases/workflow.py's (statuses, who, notes; GB/T 30428 for extend,
    park, resume, void, urge and reply). 409 when the status does not allow the action,
    with ``allowed``: what you may do now. ``extend`` needs ``extension_hours`` and files
    an approval (GET /api/v1/approvals); ``park`` needs ``review_on`` (a later local date)."""
    with transaction(settings) as conn:
        result = actions.apply_action(conn, principal, case_id, body, settings)
    return JSONResponse(jsonable_encoder(result))


@router.get(
    "/cases/{case_id}/templates",
    summary="Reply and reason templates for this case's notes (回复模板/理由模板)",
    response_model=CaseTemplates,
    responses=refusals(401, 403, 404, 422),
)
def case_templates(
    conn: ConnDep,
    principal: PrincipalDep,
    case_id: CaseId,
    action: Annotated[
        str | None, Query(description="Only this action's templates, e.g. reject")
    ] = None,
) -> JSONResponse:
    """The active templates that apply to the case: of its sub-category, its domain, then
    of any category (most specific first). 404 outside your jurisdiction; 422 for an
    action no template is kept for (cases/templates.py)."""
    return JSONResponse(jsonable_encoder(templates.for_case(conn, principal, case_id, action)))


@router.post(
    "/templates",
    status_code=201,
    summary="Add a reply or reason template (admins)",
    response_model=TemplatePublic,
    responses=refusals(401, 403, 422),
)
def create_template(
    settings: SettingsDep, principal: PrincipalDep, body: templates.TemplateRequest
) -> JSONResponse:
    """422 naming ``category_code`` (no active category) or ``action`` (not an action
    templates are kept for: the vocabulary's template_actions)."""
    with transaction(settings) as conn:
        result = templates.create(conn, principal, body)
    return JSONResponse(jsonable_encoder(result), status_code=201)


@router.delete(
    "/templates/{template_id}",
    summary="Withdraw a reply or reason template (admins)",
    response_model=TemplatePublic,
    responses=refusals(401, 403, 404, 422),
)
def withdraw_template(
    settings: SettingsDep,
    principal: PrincipalDep,
    template_id: Annotated[int, Path(gt=0, description="Template id")],
) -> JSONResponse:
    """The template is deactivated (kept, with its history in the audit log)."""
    with transaction(settings) as conn:
        result = templates.withdraw(conn, principal, template_id)
    return JSONResponse(jsonable_encoder(result))


@router.get(
    "/cases/{case_id}/team-suggestions",
    summary="Teams that may take this case, the responsible one first (dispatchers)",
    response_model=TeamSuggestions,
    responses=refusals(401, 403, 404, 422),
)
def team_suggestions(
    conn: ConnDep, principal: PrincipalDep, access: AccessDep, case_id: CaseId
) -> JSONResponse:
    """Each team with ``open_cases``, ``overdue_cases`` (case_overdue()), ``distance_m``
    from its base (a point inside its unit) and ``distance_kind`` (network: walked;
    straight: no network reached). Rules and order: cases/suggestions.py."""
    found = suggestions.suggest(conn, principal, case_id, access)
    return JSONResponse(jsonable_encoder(found))


@router.get(
    "/approvals",
    summary="The approval inbox: extension requests waiting for your decision",
    response_model=ApprovalInbox,
    responses=refusals(401, 403, 422),
    tags=["approvals"],
)
def approval_inbox(
    conn: ConnDep,
    principal: PrincipalDep,
    state: Annotated[ApprovalState, Query(description="pending (default), approved, refused")] = (
        ApprovalState.pending
    ),
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """Supervisors and admins: the requests of the level they answer for (auth/scope.py
    ``approval_filter``) and of those who delegated to them, earliest due first, each with
    its clock (``requested_at``, ``due_by``, ``past_due``, ``hours_left``)."""
    found = approvals.inbox(conn, principal, state=state, limit=limit, offset=offset)
    return JSONResponse(jsonable_encoder(found))


@router.post(
    "/approvals/decisions",
    summary="Approve or refuse many requests at once; failures listed by id",
    response_model=DecisionResult,
    responses=refusals(401, 403, 422),
    tags=["approvals"],
)
def decide_approvals(
    settings: SettingsDep, principal: PrincipalDep, body: approvals.DecisionRequest
) -> JSONResponse:
    """Each request gets its own event on its case's timeline; one that cannot be decided
    (not yours, already decided, asked by you, case closed) is listed under ``failed``
    with the reason and the rest are applied. Refusing needs ``note``."""
    with transaction(settings) as conn:
        result = approvals.decide(conn, principal, body)
    return JSONResponse(jsonable_encoder(result))


@router.get(
    "/approvals/delegations",
    summary="Delegations of my approvals: given and received",
    response_model=Delegations,
    responses=refusals(401, 403),
    tags=["approvals"],
)
def list_delegations(conn: ConnDep, principal: PrincipalDep) -> JSONResponse:
    return JSONResponse(jsonable_encoder(approvals.delegations(conn, principal)))


@router.post(
    "/approvals/delegations",
    status_code=201,
    summary="Delegate my approvals to another supervisor for a period",
    response_model=DelegationPublic,
    responses=refusals(401, 403, 422),
    tags=["approvals"],
)
def create_delegation(
    settings: SettingsDep, principal: PrincipalDep, body: approvals.DelegationRequest
) -> JSONResponse:
    """During ``starts_at``..``ends_at`` the delegate sees and decides my approvals (on my
    behalf, recorded on each decision)."""
    with transaction(settings) as conn:
        result = approvals.delegate(conn, principal, body)
    return JSONResponse(jsonable_encoder(result), status_code=201)


@router.delete(
    "/approvals/delegations/{delegation_id}",
    summary="End a delegation now",
    response_model=DelegationPublic,
    responses=refusals(401, 403, 404, 422),
    tags=["approvals"],
)
def revoke_delegation(
    settings: SettingsDep,
    principal: PrincipalDep,
    delegation_id: Annotated[int, Path(gt=0)],
) -> JSONResponse:
    with transaction(settings) as conn:
        result = approvals.revoke(conn, principal, delegation_id)
    return JSONResponse(jsonable_encoder(result))


@router.post(
    "/cases/{case_id}/photos",
    status_code=201,
    summary="Attach a photo (JPEG, PNG or WebP up to 10 MB) before or after the work",
    response_model=PhotoPublic,
    responses={
        200: {"model": PhotoPublic, "description": "These bytes were already stored"},
        **refusals(401, 403, 404, 413, 415, 422),
    },
)
async def upload_photo(
    request: Request,
    settings: SettingsDep,
    principal: PrincipalDep,
    case_id: CaseId,
    file: UploadFile,
    stage: Annotated[str, Form(pattern="^(before|after)$")] = "before",
) -> JSONResponse:
    length = int(request.headers.get("content-length") or 0)
    if length > settings.photo_max_bytes + 64 * 1024:
        check_size(length, settings.photo_max_bytes)
    data = await _read_upload(file, settings)

    def store() -> dict[str, Any]:
        with transaction(settings) as conn:
            return attachments.add_photo(conn, settings, principal, case_id, stage, data)

    result = await run_in_threadpool(store)
    return JSONResponse(result, status_code=201 if result["created"] else 200)


@router.get(
    "/cases/{case_id}/photos/{photo_id}",
    summary="A photo (EXIF removed) or thumbnail",
    response_class=FileResponse,
    responses={
        200: media("The photo, or its JPEG thumbnail", "image/jpeg", "image/png", "image/webp"),
        304: {"description": "Not modified (If-None-Match)"},
        **refusals(401, 404, 422),
    },
)
def get_photo(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: ViewerDep,
    case_id: CaseId,
    photo_id: Annotated[int, Path(gt=0)],
    thumb: Annotated[bool, Query()] = False,
) -> Response:
    """Staff: the photos of the cases they may see. Without credentials: only a published
    photo of a case in the public view (the Open311 media_url), else 404. Conditional GET
    (ETag) through api/conditional.py."""
    path, mime = attachments.photo_file(conn, settings, principal, case_id, photo_id, thumb)
    return conditional.file_response(
        request.headers,
        path,
        media_type=mime,
        headers={"Cache-Control": "private, max-age=31536000, immutable"},
    )


PhotoId = Annotated[int, Path(gt=0, description="Photo id")]


@router.post(
    "/cases/{case_id}/photos/{photo_id}/publish",
    summary="Publish a photo to the public view (supervisors and admins)",
    response_model=PhotoPublished,
    responses=refusals(401, 403, 404, 422),
)
def publish_photo(
    settings: SettingsDep, principal: PrincipalDep, case_id: CaseId, photo_id: PhotoId
) -> JSONResponse:
    """The photo then shows in the public view (Open311 media_url without api_key) and is
    served to anyone while its case's category is public. 403 for other roles, 404 outside
    the jurisdiction. Returns {id, case_id, published_at}."""
    with transaction(settings) as conn:
        result = attachments.publish_photo(conn, principal, case_id, photo_id)
    return JSONResponse(jsonable_encoder(result))


@router.delete(
    "/cases/{case_id}/photos/{photo_id}/publish",
    summary="Withdraw a published photo from the public view (supervisors and admins)",
    response_model=PhotoPublished,
    responses=refusals(401, 403, 404, 422),
)
def unpublish_photo(
    settings: SettingsDep, principal: PrincipalDep, case_id: CaseId, photo_id: PhotoId
) -> JSONResponse:
    """As publishing, the other way: published_at becomes null."""
    with transaction(settings) as conn:
        result = attachments.publish_photo(conn, principal, case_id, photo_id, published=False)
    return JSONResponse(jsonable_encoder(result))


@router.get(
    "/categories",
    summary="The case taxonomy: domains, sub-categories, deadlines",
    response_model=Categories,
    response_model_exclude_unset=True,
    responses=refusals(422),
)
def list_categories(conn: ConnDep) -> dict[str, Any]:
    return {"domains": categories.list_categories(conn)}


@router.get(
    "/teams",
    summary="Service teams that work in your jurisdiction",
    response_model=Teams,
    response_model_exclude_unset=True,
    responses=refusals(401, 403, 422),
)
def list_teams(
    conn: ConnDep,
    principal: PrincipalDep,
    unit: Annotated[str | None, Query(description="Teams serving this unit")] = None,
) -> dict[str, Any]:
    return {"teams": teams.list_teams(conn, principal, unit)}


@router.post(
    "/public/rate/{token}",
    summary="A resident rates a closed case (public link)",
    response_model=RatingPublic,
    response_model_exclude_unset=True,
    responses=refusals(404, 409, 422),
)
def rate_by_link(
    settings: SettingsDep,
    token: Annotated[str, Path(max_length=64)],
    score: Annotated[int, Form(ge=1, le=5)],
    note: Annotated[str | None, Form(max_length=500)] = None,
) -> dict[str, Any]:
    import uuid

    try:
        uuid.UUID(token)
    except ValueError:
        raise InvalidInput("this rating link is not valid", field="token") from None
    with transaction(settings) as conn:
        return actions.rate_by_link(conn, token, score, note)
