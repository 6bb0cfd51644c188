"""The v1 API: every domain's router mounted under /api/v1."""

from fastapi import APIRouter

from gis_service.access.routes import router as access_router
from gis_service.admin.api import router as admin_router
from gis_service.api.schemas import ALWAYS
from gis_service.api.vocabulary import router as vocabulary_router
from gis_service.audit.routes import router as audit_router
from gis_service.auth.routes import router as auth_router
from gis_service.cases.lock_routes import router as case_lock_router
from gis_service.cases.routes import router as cases_router
from gis_service.desk.api import router as desk_router
from gis_service.exports.routes import router as exports_router
from gis_service.hotspots.routes import router as hotspots_router
from gis_service.imports.routes import router as imports_router
from gis_service.notify.routes import router as notify_router
from gis_service.reports.routes import router as reports_router
from gis_service.service_points.routes import router as points_router
from gis_service.stats.routes import router as stats_router
from gis_service.units.routes import router as units_router
from gis_service.walks.routes import router as walks_router

# every operation may refuse a value with 422 (the request guard, validation); routers and
# routes add the refusals of their own (api/schemas.py ``refusals``)
api_router = APIRouter(prefix="/api/v1", responses=ALWAYS)
api_router.include_router(auth_router)
api_router.include_router(cases_router)
api_router.include_router(case_lock_router)
api_router.include_router(stats_router)
api_router.include_router(hotspots_router)
api_router.include_router(units_router)
api_router.include_router(points_router)
api_router.include_router(imports_router)
api_router.include_router(access_router)
api_router.include_router(vocabulary_router)
api_router.include_router(audit_router)
api_router.include_router(desk_router)
api_router.include_router(admin_router)
api_router.include_router(reports_router)
api_router.include_router(notify_router)
api_router.include_router(exports_router)
api_router.include_router(walks_router)
