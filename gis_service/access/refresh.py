"""Refresh the cached access results after the service points changed, as the access
routes do when a figure is asked for: the same named jobs (access/jobs.py) running the
same work — ``circles`` (access/circles.py ``refresh``: the stale quarter-hour circles and
the unions) and ``buildings`` (access/reach.py ``compute``: every building's walking
distances). What is stale is decided by the versions the database triggers bump
(migration 0003: any change to ``service_point`` bumps ``points_version``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, text

from gis_service.access.engine import AccessEngine
from gis_service.access.jobs import AccessJobs, Job, Pending
from gis_service.access.store import EngineCache
from gis_service.db.engine import get_engine, transaction
from gis_service.imports.report import Progress
from gis_service.settings import Settings
from gis_service.units.codes import Level

Work = Callable[[Connection, AccessEngine, Progress], Any]


def in_job(
    access: EngineCache, jobs: AccessJobs, settings: Settings, name: str, work: Work, wait: float
) -> Any:
    """Run ``work(conn, engine, progress)`` in one transaction as the job ``name`` (a job
    of that name already running is shared); its result within ``wait`` seconds, else
    :class:`Pending` with the job."""

    def body(progress: Progress) -> Any:
        with transaction(settings) as conn:
            return work(conn, access.get(conn), progress)

    return jobs.run(name, body, wait)


def after_points_change(access: EngineCache, jobs: AccessJobs, settings: Settings) -> list[Job]:
    """Start the ``circles`` and ``buildings`` jobs without waiting (a request that reads
    a figure meanwhile joins the running job); the jobs started. Nothing to start without
    a walking network, and no building distances without buildings."""
    from gis_service.access import circles, reach

    with get_engine(settings).connect() as conn:
        network, buildings = conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM walk_edge), "
                "EXISTS (SELECT 1 FROM admin_unit WHERE level = :building)"
            ),
            {"building": Level.building.value},
        ).one()
    todo: list[tuple[str, Work]] = []
    if network:
        todo.append(("circles", circles.refresh))
        if buildings:
            todo.append(("buildings", reach.compute))
    started = []
    for name, work in todo:
        try:
            in_job(access, jobs, settings, name, work, 0)
        except Pending as pending:
            started.append(pending.job)
        else:
            started.append(jobs.get(name))
    return started
