"""POST /imports: upload a file, get the QA report (or a status URL if it takes long)."""

from __future__ import annotations

import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from gis_service.api.deps import AdminDep, ConnDep, ImportExecutorDep, SettingsDep
from gis_service.api.schemas import SIGNED_IN, refusals
from gis_service.errors import InvalidInput, TooLarge
from gis_service.geo.bounds import GEOMETRY_INPUT
from gis_service.geo.coords import CoordSys
from gis_service.imports import jobs
from gis_service.imports.boundaries import BoundaryOptions
from gis_service.imports.points import PointOptions
from gis_service.imports.schemas import ImportRun, ImportStarted
from gis_service.settings import Settings
from gis_service.timezone import local_iso
from gis_service.units.codes import Level

router = APIRouter(tags=["imports"], responses=SIGNED_IN)


def _save(upload: UploadFile, folder: Path, max_bytes: int) -> Path:
    """The upload written to ``folder``; 413 past ``max_bytes`` (``import_max_bytes``)."""
    name = Path(upload.filename or "upload").name
    if not name or name.startswith("."):
        raise InvalidInput("the uploaded file needs a name with its extension", field="file")
    folder.mkdir(parents=True)
    target = folder / name
    size = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"{name} is larger than {max_bytes:,} bytes", field="file")
            out.write(chunk)
    return target


def _status_url(request: Request, run_id: str) -> str:
    return str(request.url_for("get_import", run_id=run_id))


@router.post(
    "/imports",
    summary="Import a file and return its QA report",
    status_code=201,
    response_model=ImportStarted,
    responses={
        202: {"model": ImportStarted, "description": "Still importing: ask status_url"},
        **refusals(503),
    },
)
def create_import(
    request: Request,
    settings: SettingsDep,
    executor: ImportExecutorDep,
    _: AdminDep,
    file: Annotated[
        UploadFile,
        File(
            description="GeoJSON, GeoPackage, zipped Shapefile, CSV; each feature held to the "
            "geometry limits (422 listing each feature at fault)",
            json_schema_extra={GEOMETRY_INPUT: "file"},
        ),
    ],
    kind: Annotated[str, Form(description="boundaries, points or roster")] = "boundaries",
    level: Annotated[
        Level | None, Form(description="Level of the units (kind=boundaries)", examples=["grid"])
    ] = None,
    point_kind: Annotated[str | None, Form(description="Service-point kind (kind=points)")] = None,
    code_field: Annotated[str | None, Form()] = None,
    name_field: Annotated[str | None, Form()] = None,
    parent_field: Annotated[str | None, Form()] = None,
    parent: Annotated[str | None, Form()] = None,
    crs: Annotated[str | None, Form()] = None,
    coord_sys: Annotated[CoordSys, Form()] = CoordSys.wgs84,
    encoding: Annotated[str | None, Form()] = None,
    dry_run: Annotated[bool, Form()] = False,
) -> JSONResponse:
    if kind == "boundaries" and level is None:
        raise InvalidInput("level is required for kind=boundaries", field="level")
    if kind == "points" and not point_kind:
        raise InvalidInput("point_kind is required for kind=points", field="point_kind")
    path = _save(file, settings.var_dir / "uploads" / uuid.uuid4().hex, settings.import_max_bytes)
    req = jobs.ImportRequest(kind=kind, path=path)
    if kind == "boundaries" and level is not None:
        req.boundary = BoundaryOptions(
            level=level,
            code_field=code_field,
            name_field=name_field,
            parent_field=parent_field,
            parent=parent,
            crs=crs,
            coord_sys=coord_sys,
            encoding=encoding,
            dry_run=dry_run,
        )
    elif kind == "points" and point_kind:
        req.points = PointOptions(
            kind=point_kind, name_field=name_field, crs=crs, coord_sys=coord_sys, dry_run=dry_run
        )
    run_id, future = jobs.submit(executor, settings, req)
    status_url = _status_url(request, run_id)
    try:
        future.result(timeout=settings.import_wait_seconds)
    except FutureTimeout:
        return JSONResponse(
            {"id": run_id, "status": "running", "status_url": status_url},
            status_code=202,
            headers={"Location": status_url},
        )
    run = jobs.get_run_fresh(settings, run_id)
    body = {"id": run_id, "status": run["status"], "status_url": status_url}
    if run["status"] == "failed":
        return JSONResponse(
            {**run["error"], **body}, status_code=422, headers={"Location": status_url}
        )
    return JSONResponse(
        {**body, "report": run["report"]}, status_code=201, headers={"Location": status_url}
    )


@router.get(
    "/imports/{run_id}",
    summary="Status and QA report of an import",
    name="get_import",
    response_model=ImportRun,
    responses=refusals(404),
)
def get_import(conn: ConnDep, settings: SettingsDep, admin: AdminDep, run_id: str) -> JSONResponse:
    """An import's row: status, parameters, QA report or error, for admins like the import
    itself (the report names features, people and phones from the file); ``created_at``,
    ``started_at`` and ``finished_at`` are ISO 8601 in the district's time (``+08:00``)."""
    run = jobs.get_run(conn, run_id)
    return JSONResponse(jsonable(run, settings))


def jsonable(run: dict, settings: Settings) -> dict:
    """The row with its moments written in the district's time (gis_service/timezone.py)."""
    return {k: (local_iso(v, settings) if isinstance(v, datetime) else v) for k, v in run.items()}
