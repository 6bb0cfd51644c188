"""``gis-service restore``: a backup set back into an empty database, or a base backup
replayed from the WAL archive up to a chosen moment (``--pitr``).

Both first verify every file of the set against its SHA-256 (manifest.py) and refuse a
target that already holds data unless ``force`` is given; neither leaves a half-written
target behind:

- a dump (pg_restore, PostgreSQL docs "pg_restore") goes into a new temporary database
  on the target server; only when it is complete and its row counts equal those the
  manifest recorded within the dump's snapshot does it replace the target database
  (DROP DATABASE, then ALTER DATABASE ... RENAME: for that moment the target is absent,
  i.e. clearly empty). Photos are staged beside the photo directory and moved into place
  before the database appears (as the report path does: files before the rows naming
  them); the signing key is written last, atomically.
- a point-in-time recovery (PostgreSQL docs §26.3.4 "Recovering Using a Continuous
  Archive Backup") copies the base backup into a new data directory beside the target's,
  adds ``recovery.signal`` with ``restore_command`` and ``recovery_target_time`` and
  ``recovery_target_action = 'promote'``, starts the server and waits for recovery to
  end. On failure the new data directory is removed and a replaced one (``force``) is
  put back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from psycopg2 import sql

from gis_service.backup import pgtools, wal
from gis_service.backup.manifest import (
    BASE,
    DUMP,
    KEY,
    PHOTOS,
    BackupError,
    Manifest,
    TargetNotEmpty,
    verify,
)
from gis_service.cases import photos as photo_store
from gis_service.db import cluster
from gis_service.imports.report import Progress, no_progress
from gis_service.settings import Settings

RECOVERY_CONF = "gis_service_recovery.conf"
#: a point-in-time recovery must end within this many seconds
RECOVERY_TIMEOUT_S = 600
#: how long a server that failed its recovery may take to stop before we call it stuck
SERVER_STOP_WAIT_S = 10.0


@dataclass
class RestoreSummary:
    """What a restore put in place; ``rows`` per table of the restored database."""

    source: Path
    kind: str
    database: str
    rows: dict[str, int] = field(default_factory=dict)
    photos: int = 0
    alembic_revision: str | None = None
    seconds: float = 0.0
    recovered_to: str | None = None
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        cases = self.rows.get("public.cases")
        what = f"{len(self.rows)} tables, {sum(self.rows.values())} rows"
        if cases is not None:
            what += f" ({cases} cases)"
        to = f" recovered to {self.recovered_to}," if self.recovered_to else ""
        return (
            f"restored {self.source} into database {self.database}:{to} {what}, "
            f"{self.photos} photo files, schema at {self.alembic_revision} "
            f"in {self.seconds:.1f} s"
        )


def parse_target_time(text: str, timezone: str) -> datetime:
    """An ISO 8601 moment; without an offset it is local time in ``timezone`` (the
    district's, Settings.timezone). Raises BackupError naming the text."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BackupError(
            f"--target-time {text!r} is not an ISO 8601 time such as 2026-11-30T14:05:00+08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment


# ---------------------------------------------------------------- the target, before


def target_holdings(settings: Settings, database: bool = True) -> list[str]:
    """What the target already holds, in words: the database's user tables (see
    pgtools.USER_TABLES_SQL) and files in the photo directory. Empty list: empty."""
    held: list[str] = []
    if database:
        conn = pgtools.connect(settings, "postgres")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.db_name,))
                exists = cur.fetchone() is not None
        finally:
            conn.close()
        if exists:
            conn = pgtools.connect(settings)
            try:
                with conn.cursor() as cur:
                    rows = pgtools.row_counts(cur)
            finally:
                conn.close()
            if rows:
                held.append(
                    f"database {settings.db_name} has {len(rows)} tables "
                    f"({sum(rows.values())} rows)"
                )
    root = settings.photos_path
    if root.is_dir():
        n = sum(1 for p in root.rglob("*") if p.is_file())
        if n:
            held.append(f"the photo directory {root} holds {n} files")
    return held


def _refuse_unless(force: bool, held: list[str]) -> None:
    if held and not force:
        raise TargetNotEmpty(
            "the restore target is not empty: "
            + "; ".join(held)
            + ". A restore replaces it: pass --force to do so, or point GIS_DB_NAME/"
            "GIS_VAR_DIR at an empty one",
            holds=held,
        )


# ---------------------------------------------------------------- restore of a dump


def restore(
    settings: Settings, source: Path, force: bool = False, progress: Progress = no_progress
) -> RestoreSummary:
    """Restore a ``kind: dump`` set into ``settings``' database, photo directory and
    signing key. The server must be running (``gis-service db up``). Raises BackupError
    (a corrupted or incomplete set, naming the files; a client program failing) or
    TargetNotEmpty; in both cases the target is as it was."""
    started = time.monotonic()
    source = source.absolute()
    progress("verifying checksums")
    manifest = verify(source, progress)
    if manifest.kind != "dump":
        raise BackupError(f"{source} is a base backup: restore it with --pitr")
    _refuse_unless(force, target_holdings(settings))

    temp = f"{settings.db_name[:40]}_restoring_{os.getpid()}"
    staging: Path | None = None
    _admin(settings, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)"), temp)
    _admin(settings, sql.SQL("CREATE DATABASE {}"), temp)
    try:
        progress("pg_restore")
        pgtools.run(
            [
                pgtools.program("pg_restore"),
                "--exit-on-error",
                "--no-owner",
                "--no-password",
                "--dbname",
                temp,
                source / DUMP,
            ],
            "pg_restore",
            env=pgtools.libpq_env(settings, temp),
        )
        progress("row counts")
        rows, revision = _read_back(settings, temp)
        _check_rows(manifest, rows)
        progress("photos")
        staging, n_photos = _stage_photos(settings, source, manifest)
        _place_photos(settings, staging)
        staging = None
        progress("database")
        _admin(settings, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)"), settings.db_name)
        _admin(
            settings,
            sql.SQL("ALTER DATABASE {} RENAME TO {}"),
            temp,
            settings.db_name,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            _admin(settings, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)"), temp)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    summary = RestoreSummary(
        source=source,
        kind="dump",
        database=settings.db_name,
        rows=rows,
        photos=n_photos,
        alembic_revision=revision,
    )
    summary.warnings += _place_key(settings, source)
    summary.warnings += _revision_note(revision)
    summary.seconds = time.monotonic() - started
    return summary


def _admin(settings: Settings, statement: sql.SQL, *names: str) -> None:
    """One statement with database names on the server's ``postgres`` database."""
    conn = pgtools.connect(settings, "postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement.format(*(sql.Identifier(n) for n in names)))
    finally:
        conn.close()


def _read_back(settings: Settings, dbname: str) -> tuple[dict[str, int], str | None]:
    conn = pgtools.connect(settings, dbname)
    try:
        with conn.cursor() as cur:
            return pgtools.row_counts(cur), pgtools.alembic_revision(cur)
    finally:
        conn.close()


def _check_rows(manifest: Manifest, rows: dict[str, int]) -> None:
    """Every table the snapshot held, with as many rows as it held."""
    expected: dict[str, int] = manifest.database.get("rows", {})
    wrong = [
        f"{t}: {rows.get(t, 'no table')} rows, the backup's snapshot held {n}"
        for t, n in expected.items()
        if rows.get(t) != n
    ]
    if wrong:
        raise BackupError("the restored database differs from the backup: " + "; ".join(wrong))


def _stage_photos(settings: Settings, source: Path, manifest: Manifest) -> tuple[Path, int]:
    """Copy the set's photos beside the target's photo directory; (staging dir, count)."""
    root = settings.photos_path.absolute()
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.restoring-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    prefix = PHOTOS + "/"
    n = 0
    for f in manifest.files:
        if f.path.startswith(prefix):
            dst = staging / f.path[len(prefix) :]
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / f.path, dst)
            n += 1
    return staging, n


def _place_photos(settings: Settings, staging: Path) -> None:
    """An absent or empty photo directory becomes the staging directory (one rename);
    into a non-empty one (``force``) each photo it lacks is moved (content-addressed:
    a file of that name already holds the same photo)."""
    root = settings.photos_path.absolute()
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    if not root.exists():
        os.rename(staging, root)
        return
    for src in sorted(p for p in staging.rglob("*") if p.is_file()):
        dst = root / src.relative_to(staging)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    shutil.rmtree(staging, ignore_errors=True)


def _place_key(settings: Settings, source: Path) -> list[str]:
    """Write the set's signing key where Settings.signing_key reads it (var_dir/secret_key,
    atomically, mode 0600); a warning if GIS_SECRET_KEY overrides it with another key."""
    key = (source / KEY).read_text().strip()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    path = settings.var_dir / "secret_key"
    tmp = path.with_name(f".secret_key.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    if settings.secret_key and settings.secret_key != key:
        return [
            f"GIS_SECRET_KEY is set and differs from the restored key (now in {path}): "
            "tokens signed before the backup verify only once GIS_SECRET_KEY is unset or "
            "set to that key"
        ]
    return []


def _revision_note(revision: str | None) -> list[str]:
    from alembic.script import ScriptDirectory

    from gis_service.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision != head:
        return [
            f"the restored schema is at {revision}, this code's at {head}: "
            "run gis-service db migrate"
        ]
    return []


# ---------------------------------------------------------------- point-in-time recovery


def restore_pitr(
    settings: Settings,
    source: Path,
    target_time: datetime,
    archive: Path | None = None,
    force: bool = False,
    progress: Progress = no_progress,
    photos_from: list[Path] | tuple[Path, ...] = (),
) -> RestoreSummary:
    """Recover the local cluster of ``settings`` (a new data directory on its port) from a
    ``kind: base`` set and the WAL archive (``archive``; default the one the set names)
    up to ``target_time`` (aware), then put the set's photos and key in place. Photos
    taken after the base backup are in no base: ``photos_from`` names later sets (each
    verified) whose photos are added (content-addressed, so any later set is a superset).

    Raises BackupError: corrupted set, no archive, a target time before the end of the
    base backup (recovery cannot stop inside it, §26.3.4), or recovery failing (e.g. the
    archive does not reach the target: "recovery ended before configured recovery target
    was reached"); TargetNotEmpty if a cluster or photos are already there."""
    started = time.monotonic()
    source = source.absolute()
    if settings.database_url:
        raise BackupError("--pitr makes the local cluster; DATABASE_URL points at another server")
    progress("verifying checksums")
    manifest = verify(source, progress)
    if manifest.kind != "base":
        raise BackupError(f"{source} is a database dump: restore it without --pitr")
    later = [(p.absolute(), verify(p.absolute(), progress)) for p in photos_from]
    db = manifest.database
    archive = archive or (Path(db["wal_archive_dir"]) if db.get("wal_archive_dir") else None)
    if archive is None or not archive.is_dir():
        raise BackupError(
            f"the WAL archive {archive or '(none named by the set)'} is not a directory: "
            "give it with --archive DIR"
        )
    base_end = datetime.fromisoformat(db["base_finished_at"])
    if target_time.tzinfo is None:
        raise BackupError("the target time needs a time zone")
    if target_time < base_end:
        raise BackupError(
            f"target time {target_time.isoformat()} is before the end of the base backup "
            f"({base_end.isoformat()}): recovery cannot stop inside a base backup; use an "
            "older base"
        )
    pgdata = cluster.data_dir(settings)
    held = []
    if (pgdata / "PG_VERSION").exists():
        held.append(f"a PostgreSQL cluster exists in {pgdata}")
    held += target_holdings(settings, database=False)
    _refuse_unless(force, held)

    progress("copying the base backup")
    staging = pgdata.parent / f".{pgdata.name}.restoring-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source / BASE, staging, symlinks=True)
    _recovery_files(settings, staging, pgdata, archive, target_time)
    if cluster._is_root():
        for p in [staging, *staging.rglob("*")]:
            shutil.chown(p, "postgres", "postgres")
    staging.chmod(0o700)

    aside: Path | None = None
    was_running = cluster.is_running(pgdata)
    if (pgdata / "PG_VERSION").exists():
        cluster.stop(settings)
        aside = pgdata.with_name(f"{pgdata.name}.before-restore-{int(time.time())}")
        os.rename(pgdata, aside)
    elif pgdata.exists():
        shutil.rmtree(pgdata)
    os.rename(staging, pgdata)
    as_source = settings.model_copy(update={"db_name": db["name"], "wal_archive_dir": None})
    try:
        progress("recovering (replaying the WAL archive)")
        _start_recovery(as_source, pgdata)
        _wait_for_promotion(as_source, pgdata)
        (pgdata / RECOVERY_CONF).unlink()
        cluster._run(
            [str(cluster.pg_bindir() / "pg_ctl"), "reload", "-s", "-D", str(pgdata)],
            "pg_ctl reload",
        )
        if db["name"] != settings.db_name:
            rename = sql.SQL("ALTER DATABASE {} RENAME TO {}")
            _admin(settings, rename, db["name"], settings.db_name)
        rows, revision = _read_back(settings, settings.db_name)
    except BaseException:
        with contextlib.suppress(Exception):
            cluster.stop(settings)
        shutil.rmtree(pgdata, ignore_errors=True)
        if aside is not None:
            os.rename(aside, pgdata)
            if was_running:  # as it was
                with contextlib.suppress(Exception):
                    cluster.start(settings)
        raise
    progress("photos")
    staged, n_photos = _stage_photos(settings, source, manifest)
    _place_photos(settings, staged)
    for later_set, later_manifest in later:
        staged, _ = _stage_photos(settings, later_set, later_manifest)
        _place_photos(settings, staged)
    if later:
        n_photos = sum(1 for p in settings.photos_path.rglob("*") if p.is_file())
    summary = RestoreSummary(
        source=source,
        kind="base",
        database=settings.db_name,
        rows=rows,
        photos=n_photos,
        alembic_revision=revision,
        recovered_to=target_time.isoformat(),
    )
    summary.warnings += _place_key(settings, source)
    missing = missing_photos(settings)
    if missing:
        summary.warnings.append(
            f"{len(missing)} photos the recovered database names are not in "
            f"{settings.photos_path} (taken after the base backup): add a later set with "
            "--photos-from, or copy them from the old photo directory (docs/backup.md)"
        )
    if aside is not None:
        summary.warnings.append(f"the replaced cluster is kept in {aside}")
    summary.warnings += _revision_note(revision)
    summary.seconds = time.monotonic() - started
    return summary


def _recovery_files(
    settings: Settings, staging: Path, pgdata: Path, archive: Path, target_time: datetime
) -> None:
    """recovery.signal, the recovery settings (§26.3.4, §20.5.5) and this cluster's own
    port and socket directory (the base carries the source's)."""
    (staging / "postmaster.pid").unlink(missing_ok=True)
    (staging / "postmaster.opts").unlink(missing_ok=True)
    with (staging / "postgresql.conf").open("a") as fh:
        fh.write(cluster.SERVER_CONF.format(port=settings.db_port, socket_dir=pgdata))
        fh.write(f"include_if_exists = '{RECOVERY_CONF}'\n")
    command = wal.restore_command(archive.absolute()).replace("'", "''")
    (staging / RECOVERY_CONF).write_text(
        "# Written by gis-service restore --pitr; removed once recovery has ended.\n"
        f"restore_command = '{command}'\n"
        f"recovery_target_time = '{target_time.isoformat()}'\n"
        "recovery_target_action = 'promote'\n"
    )
    (staging / "recovery.signal").touch()
    # the source's archive configuration would make this cluster archive into the
    # source's archive: keep it only if this target asks for archiving itself
    wal.configure(staging, settings.wal_archive_dir)


def _start_recovery(settings: Settings, pgdata: Path) -> None:
    """Start the server that replays the archive. A recovery that cannot reach its target
    ends the server on its own ("recovery ended before configured recovery target was
    reached", FATAL), which may happen while ``cluster.start`` still connects to it: then
    its failure is the recovery's, told with the server log's words (BackupError), not a
    refused connection."""
    try:
        cluster.start(settings)
    except Exception as exc:
        deadline = time.monotonic() + SERVER_STOP_WAIT_S
        while cluster.is_running(pgdata) and time.monotonic() < deadline:
            time.sleep(0.2)
        if cluster.is_running(pgdata):
            raise
        raise BackupError("recovery failed: " + _log_tail(pgdata)) from exc


def _wait_for_promotion(settings: Settings, pgdata: Path) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while True:
        if not cluster.is_running(pgdata):
            raise BackupError("recovery failed: " + _log_tail(pgdata))
        try:
            conn = pgtools.connect(settings, "postgres")
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_is_in_recovery()")
                    if not cur.fetchone()[0]:
                        return
            finally:
                conn.close()
        except Exception:  # the server may be stopping after a failed recovery
            pass
        if time.monotonic() > deadline:
            raise BackupError(
                f"recovery did not end within {RECOVERY_TIMEOUT_S} s: " + _log_tail(pgdata)
            )
        time.sleep(0.2)


def _log_tail(pgdata: Path) -> str:
    log = pgdata.parent / "postgres.log"
    lines = log.read_text(errors="replace").splitlines()[-6:] if log.exists() else []
    return " | ".join(lines) or "(no server log)"


def missing_photos(settings: Settings) -> list[str]:
    """SHA-256 names of photos the database refers to that the photo directory lacks."""
    conn = pgtools.connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.case_photo') IS NOT NULL")
            if not cur.fetchone()[0]:
                return []
            cur.execute("SELECT DISTINCT sha256, mime FROM case_photo")
            refs = cur.fetchall()
    finally:
        conn.close()
    root = settings.photos_path
    return [
        sha
        for sha, mime in refs
        if not photo_store.path_for(root, sha, photo_store.EXTENSIONS.get(mime, "bin")).is_file()
    ]
