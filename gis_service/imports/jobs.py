"""Imports as jobs: a row in import_run that the API can poll while the work runs.

The data an import writes is one transaction; the job row is written apart from it so
that a failed import still leaves its status and the reason behind.
"""

from __future__ import annotations

import contextvars
import json
import shutil
import traceback
import uuid
import zipfile
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis_service.db.engine import get_engine, transaction
from gis_service.errors import GisServiceError, ImportRejected, InvalidInput, NotFound
from gis_service.imports.boundaries import BoundaryOptions, import_boundaries
from gis_service.imports.points import PointOptions, import_points
from gis_service.imports.report import ImportReport
from gis_service.imports.roster import read_roster, replace_roster
from gis_service.memory import release
from gis_service.settings import Settings

KINDS = ("boundaries", "points", "roster")
DATA_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".csv")


@dataclass
class ImportRequest:
    kind: str
    path: Path
    boundary: BoundaryOptions | None = None
    points: PointOptions | None = None

    def params(self) -> dict[str, Any]:
        opts = self.boundary or self.points
        return opts.as_params() if opts else {}


def unpack(upload: Path, settings: Settings) -> Path:
    """A zip (a shapefile's parts travel zipped) is unpacked; the data file is returned.

    Refused (ImportRejected, 422) before anything is written: more members than
    ``zip_max_members``, a path that leaves the folder, or declared sizes over
    ``zip_max_bytes``; while extracting, the bytes actually written are counted, so a zip
    that understates its sizes is stopped at the same limit and its files removed."""
    if upload.suffix.lower() != ".zip":
        return upload
    target = upload.parent / "unzipped"
    try:
        with zipfile.ZipFile(upload) as zf:
            _extract(zf, target, upload.name, settings.zip_max_bytes, settings.zip_max_members)
    except zipfile.BadZipFile:
        raise ImportRejected(f"{upload.name} is not a valid zip file") from None
    except ImportRejected:
        shutil.rmtree(target, ignore_errors=True)
        raise
    found = sorted(p for p in target.rglob("*") if p.suffix.lower() in DATA_SUFFIXES)
    if len(found) != 1:
        names = [p.name for p in found] or "none"
        raise ImportRejected(f"{upload.name}: expected one data file in the zip, found {names}")
    return found[0]


def _extract(
    zf: zipfile.ZipFile, target: Path, name: str, max_bytes: int, max_members: int
) -> None:
    members = zf.infolist()
    if len(members) > max_members:
        raise ImportRejected(f"{name}: {len(members):,} files in the zip, at most {max_members:,}")
    for m in members:
        if m.filename.startswith("/") or ".." in Path(m.filename).parts:
            raise ImportRejected(f"{name}: unsafe path {m.filename!r} in the zip")
    declared = sum(m.file_size for m in members)
    if declared > max_bytes:
        raise ImportRejected(f"{name} unpacks to {declared:,} bytes, at most {max_bytes:,}")
    written = 0
    for m in members:
        out = target / m.filename
        if m.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(m) as src, out.open("wb") as dst:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > max_bytes:
                    raise ImportRejected(
                        f"{name} unpacks to more than {max_bytes:,} bytes (its directory says less)"
                    )
                dst.write(chunk)


def create_run(settings: Settings, request: ImportRequest) -> str:
    if request.kind not in KINDS:
        raise InvalidInput(f"kind {request.kind!r} must be one of {list(KINDS)}", field="kind")
    with transaction(settings) as conn:
        return str(
            conn.execute(
                text(
                    "INSERT INTO import_run (kind, filename, params) "
                    "VALUES (:k, :f, CAST(:p AS jsonb)) RETURNING id"
                ),
                {
                    "k": request.kind,
                    "f": request.path.name,
                    "p": json.dumps(request.params(), ensure_ascii=False, default=str),
                },
            ).scalar_one()
        )


def _storable(value: Any) -> Any:
    """JSON for a jsonb column: PostgreSQL refuses NUL (\\u0000) in jsonb text, so a NUL
    that an error message or a field name carries from the file becomes U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def _finish(
    settings: Settings, run_id: str, status: str, report: dict | None, error: dict | None
) -> None:
    report, error = _storable(report), _storable(error)
    with transaction(settings) as conn:
        conn.execute(
            text(
                "UPDATE import_run SET status = :s, report = CAST(:r AS jsonb), "
                "error = CAST(:e AS jsonb), finished_at = now() WHERE id = :id"
            ),
            {
                "s": status,
                "id": run_id,
                "r": json.dumps(report, ensure_ascii=False, default=str) if report else None,
                "e": json.dumps(error, ensure_ascii=False, default=str) if error else None,
            },
        )


def execute(settings: Settings, run_id: str, request: ImportRequest) -> None:
    """Run the import; record success or the error. Never raises."""
    with transaction(settings) as conn:
        conn.execute(
            text("UPDATE import_run SET status = 'running', started_at = now() WHERE id = :id"),
            {"id": run_id},
        )
    try:
        path = unpack(request.path, settings)
        report: ImportReport
        if request.kind == "boundaries" and request.boundary:
            report = import_boundaries(path, request.boundary, settings=settings, import_id=run_id)
        elif request.kind == "points" and request.points:
            report = import_points(path, request.points, settings=settings, import_id=run_id)
        else:
            report = replace_roster(read_roster(path), filename=path.name, settings=settings)
        _finish(settings, run_id, "succeeded", report.to_dict(), None)
    except GisServiceError as exc:
        _finish(settings, run_id, "failed", None, exc.to_dict())
    except Exception as exc:  # any failure, expected or not, must end in the job's row
        _finish(
            settings,
            run_id,
            "failed",
            None,
            {
                "error": "internal_error",
                "detail": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(limit=3),
            },
        )
    finally:
        shutil.rmtree(request.path.parent, ignore_errors=True)
        release()  # a large file's frame is gone: give its pages back (gis_service/memory.py)


def submit(executor: Executor, settings: Settings, request: ImportRequest) -> tuple[str, Future]:
    """Record the run and start it on ``executor``; the work runs in a copy of the caller's
    context, so its transactions carry the caller as the audit log's actor (audit/actor.py)."""
    run_id = create_run(settings, request)
    context = contextvars.copy_context()
    return run_id, executor.submit(context.run, execute, settings, run_id, request)


def get_run(conn: Connection, run_id: str) -> dict[str, Any]:
    try:
        uuid.UUID(run_id)
    except ValueError:
        raise NotFound(f"no import {run_id}") from None
    row = conn.execute(
        text(
            "SELECT id::text, kind, filename, params, status, report, error, created_at, "
            "started_at, finished_at FROM import_run WHERE id = CAST(:id AS uuid)"
        ),
        {"id": run_id},
    ).first()
    if row is None:
        raise NotFound(f"no import {run_id}")
    return dict(row._mapping)


def get_run_fresh(settings: Settings, run_id: str) -> dict[str, Any]:
    with get_engine(settings).connect() as conn:
        return get_run(conn, run_id)
