"""/healthz: is the database there, with PostGIS and the current schema, and which of the
parts that serve from it are ready or down."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from gis_service import __version__
from gis_service.api.deps import ServicesDep
from gis_service.api.handlers import DATABASE_FAULTS, database_unavailable, error_response
from gis_service.api.schemas import HealthPublic, refusals
from gis_service.api.services import Services
from gis_service.db.asyncpool import report_path_status
from gis_service.db.engine import database_status
from gis_service.notify.health import notifier_status

router = APIRouter(tags=["health"])


def _parts(services: Services, database_up: bool, report_path: str) -> dict[str, Any]:
    """The state of each part: ``statistics`` (the in-memory cube: ``loading`` until its
    first sync, ``failed`` when its last sync failed — the next one tries again — else
    ``ready``), ``access`` (the walking network's engine: ``ready`` or ``not_loaded``),
    ``report_path`` (the report's asyncpg pool: ``ok`` or ``unreachable``); ``down``
    lists the parts that cannot serve now."""
    cube = services.cube
    statistics = "failed" if cube.last_error else "ready" if cube.synced_at > 0 else "loading"
    down = [] if database_up else ["database"]
    down += ["report_path"] if report_path != "ok" else []
    down += ["statistics"] if statistics == "failed" else []
    return {
        # stats_ready: the statistics cube is loaded (it loads in the background after
        # start, taking the process's CPU for a few seconds at 1 M cases; load tests wait
        # for it).
        "stats_ready": cube.synced_at > 0,
        "access_ready": services.access.ready,
        "statistics": statistics,
        "access": "ready" if services.access.ready else "not_loaded",
        "report_path": report_path,
        "down": down,
    }


@router.get(
    "/healthz",
    summary="Liveness and database check",
    response_model=HealthPublic,
    responses=refusals(422, 503),
)
async def healthz(services: ServicesDep) -> JSONResponse:
    """200 ``status: ok`` with the PostGIS version, the schema revision and the state of
    each part (``statistics``, ``access``, ``report_path``; ``down`` lists what cannot
    serve) and ``notifier``: the notification sender's state (running, stale,
    not_running), its heartbeat's age in seconds and the pending and dead deliveries.
    When the database does not answer: 503 in our error body
    (``database_unavailable``, with Retry-After like every database fault,
    api/handlers.py) with ``status: error``, ``database: unreachable`` and the parts."""
    settings = services.settings
    report_path = await report_path_status(settings)
    try:
        postgis, revision = await run_in_threadpool(database_status, settings)
    except (SQLAlchemyError, *DATABASE_FAULTS) as exc:
        fault = database_unavailable(exc, settings.db_retry_after_seconds)
        fault.extra |= {"status": "error", "database": "unreachable"}
        fault.extra |= _parts(services, False, report_path)
        return error_response(fault)
    try:
        notifier = await run_in_threadpool(notifier_status, settings)
    except SQLAlchemyError as exc:  # a schema without the notification tables yet
        notifier = {"state": "unknown", "detail": type(exc).__name__}
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "database": "ok",
            "postgis": postgis,
            "schema": revision,
            **_parts(services, True, report_path),
            # the notification sender (notify/health.py): heartbeat age, pending, dead
            "notifier": notifier,
        }
    )
