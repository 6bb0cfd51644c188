"""``/api/v1/cases/{case_id}/lock``: the case lock's routes (issue 15 item 4). Thin: the
rule is cases/locks.py's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from gis_service.api.deps import ConnDep, PrincipalDep, SettingsDep
from gis_service.api.schemas import refusals
from gis_service.cases import locks
from gis_service.cases.schemas import CaseLock
from gis_service.db.engine import transaction

router = APIRouter(tags=["cases"])
CaseId = Annotated[int, Path(gt=0, description="Case id")]


@router.get(
    "/cases/{case_id}/lock",
    summary="Who is working on the case at the desk (null holder: free)",
    response_model=CaseLock,
    responses=refusals(401, 403, 404, 422),
)
def get_lock(conn: ConnDep, principal: PrincipalDep, case_id: CaseId) -> JSONResponse:
    """Anyone who may read the case: ``{case_id, holder: {user_id, name} | null,
    acquired_at, expires_at, mine}``; an expired lock reads as free. 404 outside the
    jurisdiction."""
    return JSONResponse(jsonable_encoder(locks.state(conn, principal, case_id)))


@router.put(
    "/cases/{case_id}/lock",
    summary="Take or renew the case's lock (dispatchers; admins may take it over)",
    response_model=CaseLock,
    responses=refusals(401, 403, 404, 409, 422),
)
def put_lock(
    settings: SettingsDep,
    principal: PrincipalDep,
    case_id: CaseId,
    take_over: Annotated[
        bool, Query(description="Admins: take the lock from the dispatcher who holds it")
    ] = False,
) -> JSONResponse:
    """Supervisors and admins: the lock for ``case_lock_seconds`` (default 120 s) from
    now; call again before it ends to keep it (the holder keeps ``acquired_at``). 409
    ``case_locked`` with ``holder`` and ``expires_at`` while another dispatcher holds it;
    with ``take_over=true`` an admin takes it anyway (``taken_over_from`` names whom from;
    403 for a supervisor). 403 for other roles; 404 outside the jurisdiction."""
    with transaction(settings) as conn:
        result = locks.acquire(conn, principal, case_id, settings, take_over=take_over)
    return JSONResponse(jsonable_encoder(result))


@router.delete(
    "/cases/{case_id}/lock",
    summary="Release the case's lock (its holder, or an admin)",
    response_model=CaseLock,
    responses=refusals(401, 403, 404, 409, 422),
)
def delete_lock(settings: SettingsDep, principal: PrincipalDep, case_id: CaseId) -> JSONResponse:
    """The lock now (free). 409 ``case_locked`` when another dispatcher holds it and you
    are not an admin; releasing a free lock is a no-op. 403 for roles other than
    dispatchers; 404 outside the jurisdiction."""
    with transaction(settings) as conn:
        result = locks.release(conn, principal, case_id)
    return JSONResponse(jsonable_encoder(result))
