"""``gis-service backup``: the database, the case photos and the signing key in one set.

The database is dumped by pg_dump in its custom format from a snapshot this module
exports first (PostgreSQL docs §9.27.5 "Snapshot Synchronization Functions",
pg_export_snapshot; pg_dump ``--snapshot``): the manifest records the snapshot's time and
the row count of every table within it, so a restore can prove it got them all. Photos
are copied after the snapshot was taken: the report path writes a photo's file before
the row that names it commits (cases/attachments.py), so every photo the dump refers to
is already on disk. Photos are write-once and content-addressed (cases/photos.py), so a
photo with the same name and size in the previous set is the same photo: it is hard-linked
from there instead of copied (a set stays complete on its own; deleting an old set frees
only what no later set links).

``--base`` takes a pg_basebackup instead (with the WAL it needs, PostgreSQL docs §26.3.2
"Making a Base Backup"): the start of a point-in-time recovery (restore.py, wal.py).

A set is written to a hidden sibling directory and renamed into place when complete, so
a crash leaves no directory that looks like a finished set (manifest.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gis_service.backup import pgtools, wal
from gis_service.backup.manifest import (
    BASE,
    DUMP,
    KEY,
    MANIFEST,
    PHOTOS,
    BackupError,
    FileEntry,
    Manifest,
    copy_hashed,
    entry_for,
    read,
    write,
)
from gis_service.cases import photos as photo_store
from gis_service.db import cluster
from gis_service.imports.report import Progress, no_progress
from gis_service.settings import Settings


@dataclass
class BackupSummary:
    """What one backup wrote: ``bytes_written`` counts the bytes copied (not hard links)."""

    out: Path
    kind: str
    files: int = 0
    bytes_total: int = 0
    photos: int = 0
    photos_reused: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    missing_photos: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.kind} backup in {self.out}: {self.files} files, "
            f"{self.bytes_total / 1024**2:.1f} MiB ({self.bytes_written / 1024**2:.1f} MiB "
            f"written), {self.photos} photo files ({self.photos_reused} linked from the "
            f"previous set) in {self.seconds:.1f} s"
        )


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def backup(
    settings: Settings,
    out: Path,
    previous: Path | None = None,
    progress: Progress = no_progress,
) -> BackupSummary:
    """Dump the database (consistent snapshot), copy the photos and the signing key into
    the new directory ``out``; photos unchanged since ``previous`` (a finished set) are
    hard-linked from it. Raises BackupError if ``out`` exists and is not empty, if a
    client program fails (the partial set is removed), or if ``previous`` is not a set."""
    return _write_set(settings, out, previous, "dump", progress)


def base_backup(
    settings: Settings,
    out: Path,
    previous: Path | None = None,
    progress: Progress = no_progress,
) -> BackupSummary:
    """pg_basebackup of the whole cluster (plain format, WAL streamed into it, fast
    checkpoint) plus the photos and the key: the base of a point-in-time recovery. Its
    use beyond its own end needs the WAL archive (wal.py)."""
    return _write_set(settings, out, previous, "base", progress)


def backup_into_root(
    settings: Settings, root: Path, base: bool = False, progress: Progress = no_progress
) -> BackupSummary:
    """A new dated set ``root/<UTC time>`` (``20261130T120500.123Z``, ``-base`` for a base
    backup) whose photos link to the newest finished set
    in ``root`` (the nightly-job form: ``gis-service backup --root /srv/backups``)."""
    root.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z"
    stamp += "-base" if base else ""
    previous = latest_set(root)
    return _write_set(settings, root / stamp, previous, "base" if base else "dump", progress)


def latest_set(root: Path) -> Path | None:
    """The newest finished set under ``root`` (names sort by time), None if there is none."""
    sets = sorted(p for p in root.iterdir() if (p / MANIFEST).is_file())
    return sets[-1] if sets else None


def _write_set(
    settings: Settings, out: Path, previous: Path | None, kind: str, progress: Progress
) -> BackupSummary:
    started = time.monotonic()
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} already exists and is not empty: give a new directory")
    prev = (previous.absolute(), read(previous.absolute())) if previous else None
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    summary = BackupSummary(out=out, kind=kind)
    manifest = Manifest(kind=kind, created_at=now_utc(), previous=str(prev[0]) if prev else None)  # type: ignore[arg-type]
    try:
        if kind == "dump":
            manifest.database = _dump(settings, work, progress)
            manifest.files.append(entry_for(work, work / DUMP))
        else:
            manifest.database = _base(settings, work, progress)
            if manifest.database["archive_mode"] != "on":
                summary.warnings.append(
                    "WAL archiving is off: this base backup restores only to its own end "
                    "(gis-service db up --archive-wal DIR turns it on)"
                )
            progress("checksums of the base backup")
            manifest.files += [
                entry_for(work, p) for p in sorted((work / BASE).rglob("*")) if p.is_file()
            ]
        manifest.files += _photos(settings, work, prev, summary, progress)
        manifest.database["missing_photos"] = summary.missing_photos = _missing(
            settings, work, manifest.database.pop("photo_refs")
        )
        if summary.missing_photos:
            summary.warnings.append(
                f"{len(summary.missing_photos)} photos the database names are not in "
                f"{settings.photos_path} (listed in the manifest)"
            )
        manifest.signing_key, key_entry = _key(settings, work)
        manifest.files.append(key_entry)
        manifest.finished_at = now_utc()
        progress("manifest and checksums")
        write(work, manifest)
        _fsync_dir(work)
        if out.exists():
            out.rmdir()
        os.rename(work, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    summary.files = len(manifest.files) + 2
    summary.bytes_total = sum(f.size for f in manifest.files)
    summary.bytes_written += sum(
        f.size for f in manifest.files if not f.reused and not f.path.startswith(PHOTOS + "/")
    )
    summary.seconds = time.monotonic() - started
    return summary


def _dump(settings: Settings, work: Path, progress: Progress) -> dict:
    """pg_dump from an exported snapshot; the facts of that snapshot for the manifest."""
    progress("snapshot")
    conn = pgtools.connect(settings)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            # the first statement takes the transaction's snapshot; statement_timestamp()
            # is when it arrived, so whatever committed before that time is in the dump
            cur.execute(
                "SELECT pg_export_snapshot(), statement_timestamp(), "
                "current_setting('server_version'), current_database()"
            )
            snapshot, snapshot_at, server_version, dbname = cur.fetchone()
            facts = _facts(cur)
        progress("pg_dump")
        pgtools.run(
            [
                pgtools.program("pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                "--no-password",
                "--file",
                work / DUMP,
            ],
            "pg_dump",
            env=pgtools.libpq_env(settings),
        )
    finally:
        conn.close()
    return {
        "name": dbname,
        "server_version": server_version,
        "snapshot_at": snapshot_at.isoformat(),
        **facts,
    }


def _facts(cur) -> dict:
    """Alembic revision, row counts and the photos the database names (same snapshot)."""
    cur.execute("SELECT to_regclass('public.case_photo') IS NOT NULL")
    refs: list[list[str]] = []
    if cur.fetchone()[0]:
        cur.execute("SELECT DISTINCT sha256, mime FROM case_photo ORDER BY 1")
        refs = [list(r) for r in cur.fetchall()]
    return {
        "alembic_revision": pgtools.alembic_revision(cur),
        "rows": pgtools.row_counts(cur),
        "photo_refs": refs,
    }


def _base(settings: Settings, work: Path, progress: Progress) -> dict:
    conn = pgtools.connect(settings)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT statement_timestamp(), current_setting('server_version'), "
                "current_database(), current_setting('archive_mode'), "
                "current_setting('wal_level')"
            )
            started_at, server_version, dbname, archive_mode, wal_level = cur.fetchone()
            if wal_level == "minimal":
                raise BackupError(
                    "wal_level is minimal: a base backup needs replica (gis-service db up "
                    "--archive-wal DIR sets it)"
                )
            facts = _facts(cur)
        progress("pg_basebackup")
        pgtools.run(
            [
                pgtools.program("pg_basebackup"),
                "--pgdata",
                work / BASE,
                "--format=plain",
                "--wal-method=stream",
                "--checkpoint=fast",
                "--no-password",
                "--label",
                f"gis-service backup {work.name}",
            ],
            "pg_basebackup",
            env=pgtools.libpq_env(settings),
        )
        with conn.cursor() as cur:
            cur.execute("SELECT statement_timestamp()")
            (finished_at,) = cur.fetchone()
    finally:
        conn.close()
    archive = settings.wal_archive_dir
    if archive is None and not settings.database_url:
        archive = wal.configured_archive(cluster.data_dir(settings))
    return {
        "name": dbname,
        "server_version": server_version,
        "started_at": started_at.isoformat(),
        "base_finished_at": finished_at.isoformat(),
        "archive_mode": archive_mode,
        "wal_archive_dir": str(archive) if archive else None,
        **facts,
    }


def _photos(
    settings: Settings,
    work: Path,
    prev: tuple[Path, Manifest] | None,
    summary: BackupSummary,
    progress: Progress,
) -> list[FileEntry]:
    """Copy (or link from ``prev``) every stored photo and thumbnail."""
    root = settings.photos_path
    files = (
        sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))
        if root.is_dir()
        else []
    )
    before = prev[1].by_path() if prev else {}
    entries: list[FileEntry] = []
    for i, src in enumerate(files):
        if i % 100 == 0:
            progress(f"photos {i}/{len(files)}")
        rel = f"{PHOTOS}/{src.relative_to(root).as_posix()}"
        dst = work / rel
        size = src.stat().st_size
        old = before.get(rel)
        if prev and old and old.size == size and _link(prev[0] / rel, dst, size):
            entries.append(FileEntry(rel, size, old.sha256, reused=True))
            summary.photos_reused += 1
        else:
            n, digest = copy_hashed(src, dst)
            entries.append(FileEntry(rel, n, digest))
            summary.bytes_written += n
    summary.photos = len(files)
    return entries


def _link(old: Path, new: Path, size: int) -> bool:
    """Hard-link a previous set's file; False if it is gone, changed size, or the two sets
    are on different file systems (then the caller copies)."""
    try:
        if old.stat().st_size != size:
            return False
        new.parent.mkdir(parents=True, exist_ok=True)
        os.link(old, new)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EMLINK, errno.EPERM):
            return False
        raise


def _missing(settings: Settings, work: Path, refs: list[list[str]]) -> list[str]:
    """SHA-256 names of photos the database refers to whose file (or thumbnail) the set
    lacks."""
    missing = []
    for sha, mime in refs:
        ext = photo_store.EXTENSIONS.get(mime, "bin")
        paths = [photo_store.path_for(work / PHOTOS, sha, ext, thumb=t) for t in (False, True)]
        if not all(p.is_file() for p in paths):
            missing.append(sha)
    return missing


def _key(settings: Settings, work: Path) -> tuple[dict, FileEntry]:
    """The signing key (Settings.signing_key: GIS_SECRET_KEY or var_dir/secret_key)."""
    key = settings.signing_key()
    path = work / KEY
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    source = "GIS_SECRET_KEY" if settings.secret_key else str(settings.var_dir / "secret_key")
    return {"source": source}, entry_for(work, path)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
