"""/healthz: is the database there, with PostGIS and the current schema."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from gis_service import __version__
from gis_service.api.deps import ServicesDep
from gis_service.api.schemas import HealthPublic, refusals
from gis_service.db.engine import database_status

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Liveness and database check",
    response_model=HealthPublic,
    responses=refusals(422, 503),
)
def healthz(services: ServicesDep) -> JSONResponse:
    """503 in our error body (``database_unavailable``) with ``status: error`` and
    ``database: unreachable`` when the database does not answer."""
    try:
        postgis, revision = database_status(services.settings)
    except SQLAlchemyError as exc:
        return JSONResponse(
            {
                "error": "database_unavailable",
                "status": "error",
                "database": "unreachable",
                "detail": str(exc.__cause__ or exc).splitlines()[0],
            },
            status_code=503,
        )
    cube = services.cube
    # stats_ready: the statistics cube is loaded (it loads in the background after start,
    # taking the process's CPU for a few seconds at 1 M cases; load tests wait for it).
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "database": "ok",
            "postgis": postgis,
            "schema": revision,
            "stats_ready": cube.synced_at > 0,
            "access_ready": services.access.ready,
        }
    )
