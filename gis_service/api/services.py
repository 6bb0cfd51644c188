"""The app's long-lived services, built once by ``create_app`` and read by routes through
the typed dependencies of api/deps.py (``CubeDep``, ``TileCacheDep``...), never through
``app.state`` by name."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp

from gis_service.access.jobs import AccessJobs
from gis_service.access.store import EngineCache
from gis_service.errors import ServiceNotReady
from gis_service.settings import Settings
from gis_service.stats.cube import CaseCube
from gis_service.tiles.basemap import Basemap
from gis_service.tiles.cache import TileCache
from gis_service.tiles.caseindex import CaseIndex


@dataclass
class Services:
    """Everything a request may share with the others in this process.

    ``import_executor`` runs imports one at a time; it exists while the app runs (made
    and shut down by the lifespan), so an import outside it is refused with 503."""

    settings: Settings
    cube: CaseCube
    access: EngineCache
    access_jobs: AccessJobs
    case_index: CaseIndex
    tiles: TileCache
    basemap: Basemap
    #: resolution figures per (level, jurisdiction) for unit tiles, per cube load
    tile_figures: dict[Any, Any] = field(default_factory=dict)
    #: the coverage page's proposed sites per (versions, reach, jurisdiction)
    map_memo: dict[Any, Any] = field(default_factory=dict)
    import_executor: ThreadPoolExecutor | None = None

    @classmethod
    def build(cls, settings: Settings) -> Services:
        cube = CaseCube(settings)
        return cls(
            settings=settings,
            cube=cube,
            access=EngineCache(),
            access_jobs=AccessJobs(),
            case_index=CaseIndex(cube, settings.tile_freshness_seconds),
            tiles=TileCache(settings.tile_cache_size),
            basemap=Basemap(settings.db_name),
        )

    def imports(self) -> ThreadPoolExecutor:
        if self.import_executor is None:
            raise ServiceNotReady(
                "imports are not running: the service is starting or stopping; try again",
                service="imports",
            )
        return self.import_executor


def services_of(app: ASGIApp) -> Services:
    """The services ``create_app`` stored on ``app`` (503 before it did)."""
    found = getattr(getattr(app, "state", None), "services", None)
    if found is None:
        raise ServiceNotReady("the service is not set up yet", service="app")
    return found
