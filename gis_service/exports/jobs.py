"""Large exports as jobs: a row in ``export_job`` any worker can answer about, the file
under ``var_dir/exports`` until it expires (the imports' pattern, imports/jobs.py: the
row is written apart from the work, so a failed export still leaves its reason).

* A job belongs to who asked (``owner``: ``user:<id>``; the anonymous public view
  ``public``, the same for everyone anonymous): someone else asking about it, or for its
  file, gets 404, as for a case outside their jurisdiction. The file holds what its owner
  saw when it was written (their scope then).
* Progress: ``rows_written`` of ``rows_total``, updated as the writer goes.
* A job whose ``expires_at`` (created + ``Settings.export_ttl_hours``) has passed is gone:
  its row and file are removed by the next job started (``sweep``) and it answers 404.
* The work runs in this process, one export at a time (``ThreadPoolExecutor`` of one
  worker): a million cases take one core for a while; others queue (``queued``). When the
  service stops, the queued ones are recorded as failed (``shutdown``, from the app's
  lifespan).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import traceback
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import public_view, scope_key
from gis_service.db.engine import get_engine, transaction
from gis_service.errors import GisServiceError, NotFound
from gis_service.exports.formats import MEDIA_TYPES, Format
from gis_service.exports.service import ExportRequest, run
from gis_service.memory import release
from gis_service.settings import Settings

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
#: jobs queued or running in this process: future → (settings, job id)
_pending: dict[Future, tuple[Settings, str]] = {}
_lock = threading.Lock()
#: ``rows_written`` is stored at most this often (rows)
PROGRESS_ROWS = 10_000
STATUS_URL = "/api/v1/exports/jobs/{id}"


def owner_of(principal: Principal) -> str:
    """Whose a job is: the account, or the anonymous public view as a whole."""
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    if public_view(principal):
        return "public"
    return scope_key(principal)


def folder(settings: Settings) -> Path:
    path = settings.var_dir / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def start(
    settings: Settings,
    principal: Principal,
    request: ExportRequest,
    *,
    query: str,
    total: int | None,
) -> dict[str, Any]:
    """Record the job and queue the work; returns its status (``status`` queued). The
    download's name (``filename``) is fixed now, in the district's time."""
    sweep(settings)
    with transaction(settings) as conn:
        job_id = conn.execute(
            text(
                "INSERT INTO export_job (owner, kind, format, query, rows_total, filename, "
                "expires_at) VALUES (:owner, :kind, :fmt, :query, :total, :name, "
                "now() + :ttl) RETURNING id::text"
            ),
            {
                "owner": owner_of(principal),
                "kind": request.kind,
                "fmt": request.fmt.value,
                "query": query[:4000],
                "total": total,
                "name": request.filename(settings),
                "ttl": timedelta(hours=settings.export_ttl_hours),
            },
        ).scalar_one()
        job = _row(conn, job_id)
    with _lock:
        future = _executor.submit(execute, settings, job_id, request)
        _pending[future] = (settings, job_id)
    future.add_done_callback(_forget)
    return public(job)


def _forget(future: Future) -> None:
    with _lock:
        _pending.pop(future, None)


def shutdown() -> None:
    """The service stops: exports still queued are not started and are recorded as failed
    (so nobody polls them for ever); one being written finishes. A later ``start`` (the app
    started anew) gets a fresh worker."""
    global _executor
    with _lock:
        pool, _executor = _executor, ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
        known = list(_pending.items())
    # outside the lock: cancel() runs the done callback (_forget), which takes it
    queued = [(f, job) for f, job in known if f.cancel()]
    pool.shutdown(wait=False, cancel_futures=True)
    for _, (settings, job_id) in queued:
        error = {
            "error": "service_not_ready",
            "detail": "the service stopped before the export ran",
        }
        with transaction(settings) as conn:
            conn.execute(
                text(
                    "UPDATE export_job SET status = 'failed', error = CAST(:e AS jsonb), "
                    "finished_at = now(), updated_at = now() WHERE id = CAST(:id AS uuid)"
                ),
                {"id": job_id, "e": json.dumps(error)},
            )


def _path(settings: Settings, job_id: str, fmt: str) -> Path:
    return folder(settings) / f"{job_id}.{fmt}"


def execute(settings: Settings, job_id: str, request: ExportRequest) -> Future | None:
    """Write the job's file; record success or the error. Never raises."""
    out = _path(settings, job_id, request.fmt.value)
    partial = out.with_suffix(out.suffix + ".part")

    def update(sql: str, **params: Any) -> None:
        with transaction(settings) as conn:
            conn.execute(
                text(f"UPDATE export_job SET {sql}, updated_at = now() WHERE id = :id"),
                {"id": job_id, **params},
            )

    last = 0

    def progress(n: int) -> None:
        nonlocal last
        if n - last >= PROGRESS_ROWS:
            last = n
            update("rows_written = :n", n=n)

    try:
        update("status = 'running'")
        rows = run(settings, request, partial, progress)
        partial.rename(out)
        update(
            "status = 'succeeded', rows_written = :n, rows_total = :n, bytes = :b, "
            "finished_at = now()",
            n=rows,
            b=out.stat().st_size,
        )
    except Exception as exc:  # any failure must end in the job's row
        partial.unlink(missing_ok=True)
        error = (
            exc.to_dict()
            if isinstance(exc, GisServiceError)
            else {"error": "internal_error", "detail": f"{type(exc).__name__}: {exc}"}
        )
        if not isinstance(exc, GisServiceError):
            traceback.print_exc()
        update(
            "status = 'failed', error = CAST(:e AS jsonb), finished_at = now()",
            e=json.dumps(error, ensure_ascii=False, default=str),
        )
    finally:
        release()  # gis_service/memory.py: the writer's buffers are gone; return the pages
    return None


def _row(conn: Connection, job_id: str) -> dict[str, Any] | None:
    try:
        uuid.UUID(job_id)
    except ValueError:
        return None
    row = (
        conn.execute(
            text(
                "SELECT id::text, owner, kind, format, query, status, rows_total, rows_written, "
                "filename, bytes, error, created_at, finished_at, expires_at, "
                "expires_at <= now() AS expired FROM export_job WHERE id = CAST(:id AS uuid)"
            ),
            {"id": job_id},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def _owned(conn: Connection, principal: Principal, job_id: str) -> dict[str, Any]:
    job = _row(conn, job_id)
    if job is None or job["owner"] != owner_of(principal) or job["expired"]:
        raise NotFound(f"no export job {job_id} of yours (jobs expire)", job_id=job_id)
    return job


def public(job: dict[str, Any]) -> dict[str, Any]:
    """The job as its status URL answers it (exports/schemas.py ExportJob)."""
    url = STATUS_URL.format(id=job["id"])
    total, written = job["rows_total"], job["rows_written"]
    done = job["status"] == "succeeded"
    return {
        "id": job["id"],
        "kind": job["kind"],
        "format": job["format"],
        "status": job["status"],
        "rows_total": total,
        "rows_written": written,
        "progress": 1.0 if done else (round(written / total, 4) if total else 0.0),
        "filename": job["filename"],
        "bytes": job["bytes"],
        "error": job["error"],
        "created_at": job["created_at"],
        "finished_at": job["finished_at"],
        "expires_at": job["expires_at"],
        "status_url": url,
        "download_url": f"{url}/file" if done else None,
    }


def status(conn: Connection, principal: Principal, job_id: str) -> dict[str, Any]:
    """The owner's job (404 for anyone else, or once expired)."""
    return public(_owned(conn, principal, job_id))


def download(
    conn: Connection, settings: Settings, principal: Principal, job_id: str
) -> tuple[Path, str, str]:
    """(file, download name, media type) of the owner's finished job; 404 otherwise (not
    theirs, expired, or not written yet: ``status`` says which)."""
    job = _owned(conn, principal, job_id)
    path = _path(settings, job["id"], job["format"])
    if job["status"] != "succeeded" or not path.exists():
        raise NotFound(
            f"export job {job_id} has no file ({job['status']}); ask its status_url",
            job_id=job_id,
            status=job["status"],
        )
    return path, job["filename"], MEDIA_TYPES[Format(job["format"])]


def sweep(settings: Settings) -> int:
    """Remove expired jobs and their files; returns how many."""
    with get_engine(settings).begin() as conn:
        gone = conn.execute(
            text("DELETE FROM export_job WHERE expires_at <= now() RETURNING id::text, format")
        ).all()
    base = folder(settings)
    for job_id, fmt in gone:
        (base / f"{job_id}.{fmt}").unlink(missing_ok=True)
    # an answer's folder whose client left before it was sent (so it was never removed)
    stale = time.time() - settings.export_ttl_hours * 3600
    for tmp in base.glob("tmp-*"):
        if tmp.stat().st_mtime < stale:
            remove(tmp)
    return len(gone)


def temp_folder(settings: Settings) -> Path:
    """A fresh folder for an export answered at once (removed once sent)."""
    path = folder(settings) / f"tmp-{uuid.uuid4().hex}"
    path.mkdir()
    return path


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
