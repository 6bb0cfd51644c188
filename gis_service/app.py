"""create_app(settings) -> FastAPI. Nothing is built at import time.

Everything the browser loads is served from here (Swagger UI from the installed
swagger-ui-bundle package): government networks are often isolated from the internet.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.routing import Route
from swagger_ui_bundle import swagger_ui_path

from gis_service import __version__
from gis_service.access.fast import FastIsochrone
from gis_service.access.jobs import Pending
from gis_service.admin.pages import router as admin_pages_router
from gis_service.api import handlers, openapi, readyourwrites, security
from gis_service.api.guard import RequestGuard
from gis_service.api.health import router as health_router
from gis_service.api.router import api_router
from gis_service.api.services import Services
from gis_service.cases.routes import fast_report
from gis_service.db.asyncpool import close_pools
from gis_service.desk.board_pages import router as board_pages_router
from gis_service.desk.case_page import router as case_page_router
from gis_service.desk.pages import router as desk_pages_router
from gis_service.exports import jobs as export_jobs
from gis_service.maps.assets import APP_DIR, VENDOR_DIR
from gis_service.maps.routes import router as maps_router
from gis_service.memory import Trimmer, cap_arenas, fix_mmap_threshold
from gis_service.mobile.routes import router as mobile_router
from gis_service.mobile.shell import MOBILE_DIR
from gis_service.mobile.shell import version as mobile_version
from gis_service.ogc.routes import router as ogc_router
from gis_service.open311.routes import router as open311_router
from gis_service.settings import Settings, get_settings
from gis_service.static_files import CompressedStaticFiles
from gis_service.tiles.routes import router as tiles_router

DESCRIPTION = """
Grid management and issue tracking for city communities: the four-level grid
(district → subdistrict → community → grid → building), service points, and the tools to
locate a point in the grid. Coordinates are stored in WGS-84; inputs may be GCJ-02 or BD-09.
"""


def _install_pending(app: FastAPI) -> None:
    """A long access job answers 202 with where to ask again."""

    async def pending(_: Request, exc: Pending) -> JSONResponse:
        body = exc.job.public()
        return JSONResponse(body, status_code=202, headers={"Location": body["status_url"]})

    app.add_exception_handler(Pending, pending)


def _warm_cube(services: Services) -> None:
    import logging

    try:
        services.cube.facts()
    except Exception:  # the first request will try again and report the error
        logging.getLogger(__name__).warning("statistics cube not loaded", exc_info=True)


def _warm_access(services: Services) -> None:
    """Load the walking network into memory before the first isochrone asks for it
    (12 s at a million edges). No network yet is not an error."""
    import logging

    from gis_service.db.engine import get_engine
    from gis_service.errors import NotFound

    try:
        with get_engine(services.settings).connect() as conn:
            services.access.get(conn)
    except NotFound:
        pass
    except Exception:  # the first request will try again and report the error
        logging.getLogger(__name__).warning("walking network not loaded", exc_info=True)


async def _open_report_pool(settings: Settings) -> None:
    """Open the report path's connections before the first report, not during it (a
    burst at start otherwise waits for eight connections to open)."""
    import logging

    from gis_service.db.asyncpool import get_pool

    try:
        await get_pool(settings)
    except Exception:  # no database yet: the first report will try again and say so
        logging.getLogger(__name__).warning("report pool not opened", exc_info=True)


def _no_telemetry() -> dict:
    """Recent FastAPI instruments every request with OpenTelemetry spans, metrics and logs
    by default. We export none of them, and on the report path the no-op instruments cost
    measurable time per request, so they are switched off where the option exists."""
    import inspect

    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {
        "telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    fix_mmap_threshold()  # before the request threads: large arrays go back when freed
    cap_arenas(settings.malloc_arena_max)  # and their small blocks share a few arenas
    services = Services.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        imports = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import")
        services.import_executor = imports
        # Load the statistics cube in the background, so the first supervisor to open a
        # report does not wait for it (~8 s at 1 M cases).
        warmers = [
            threading.Thread(target=_warm_cube, args=(services,), name="warm-cube", daemon=True),
            threading.Thread(
                target=_warm_access, args=(services,), name="warm-access", daemon=True
            ),
        ]
        for t in warmers:
            t.start()
        trimmer = Trimmer(settings.malloc_trim_seconds).start()
        await _open_report_pool(settings)
        # Objects alive at start (modules, routes, settings) never become garbage: keep
        # them out of every collection, so a full one does not stall a report.
        gc.freeze()
        yield
        # a warm-up still reading when the app stops would hold its locks against
        # whatever comes next (a migration, a test's TRUNCATE): let it finish first
        for t in warmers:
            t.join(timeout=60)
        trimmer.stop()
        imports.shutdown(wait=True)
        if services.import_executor is imports:
            services.import_executor = None
        services.access_jobs.shutdown()
        export_jobs.shutdown()  # queued exports are recorded as failed (exports/jobs.py)
        await close_pools()
        plain_isochrone.close()

    app = FastAPI(
        **_no_telemetry(),
        title="gis_service",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    # the one place the services live; routes read them through api/deps.py
    app.state.services = services
    handlers.install(app)
    openapi.install(app)
    _install_pending(app)
    # every value of every request is checked before any route (api/guard.py)
    app.add_middleware(RequestGuard, fastapi_app=app, settings=settings)
    if settings.read_database_url:  # reads on standbys: writes stamp X-Min-LSN
        readyourwrites.install(app, settings)
    # the security headers of every answer, errors included, by kind (api/security.py)
    security.install(app, settings)
    # The report path first, as a plain route (see cases/routes.py: fast_report).
    app.router.routes.append(
        Route("/api/v1/cases", fast_report, methods=["POST"], include_in_schema=False)
    )
    # and the plain isochrone requests (access/fast.py: FastAPI's route answers the rest)
    plain_isochrone = FastIsochrone()
    app.router.routes.append(plain_isochrone)
    app.include_router(health_router)
    app.include_router(api_router)
    app.include_router(open311_router)
    app.include_router(ogc_router)
    app.include_router(tiles_router)
    app.include_router(maps_router)
    app.include_router(mobile_router)
    app.include_router(desk_pages_router)
    app.include_router(board_pages_router)
    app.include_router(case_page_router)
    app.include_router(admin_pages_router)
    app.mount(
        "/static/swagger", CompressedStaticFiles(directory=str(swagger_ui_path)), name="swagger"
    )
    # ?v=<build> URLs (the phone app's) are cached for a year; see static_files.py
    app.mount(
        "/static/app",
        CompressedStaticFiles(directory=str(APP_DIR), version=mobile_version),
        name="app-static",
    )
    app.mount(
        "/static/mobile",
        CompressedStaticFiles(directory=str(MOBILE_DIR), version=mobile_version),
        name="mobile-static",
    )
    # Leaflet and plugins from npm (make assets); absent until installed, then served
    app.mount(
        "/static/vendor",
        CompressedStaticFiles(directory=str(VENDOR_DIR), check_dir=False, version=mobile_version),
        name="vendor",
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="gis_service API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )

    return app
