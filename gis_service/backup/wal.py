"""Continuous archiving of the write-ahead log, for point-in-time recovery.

PostgreSQL docs §26.3.1 "Setting Up WAL Archiving": ``wal_level`` replica or higher,
``archive_mode = on`` and an ``archive_command`` that copies each finished WAL segment
into the archive and fails if a *different* file of that name is already there (an
identical one counts as done, so a retry after a crash succeeds). The copy goes to a
temporary name first and is renamed, so the archive never holds half a segment.
``archive_timeout`` (§20.5.3) bounds how much a quiet server can lose: a segment is
switched and archived at least this often.

The configuration is one file in the data directory, ``gis_service_wal.conf``, included
from postgresql.conf and kept across starts: ``gis-service db up --archive-wal DIR``
(or the setting ``GIS_WAL_ARCHIVE_DIR``) writes it, ``--no-archive-wal`` removes it.
Changing ``archive_mode`` or ``wal_level`` needs a server restart (§20.5.3), which
``cluster.start`` does when the running server's values differ from the file's.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

CONF = "gis_service_wal.conf"
INCLUDE = f"include_if_exists = '{CONF}'"
#: at most this many seconds of a quiet server's commits are not yet archived
ARCHIVE_TIMEOUT_S = 60
MARK = "# archive directory: "


def archive_command(archive: Path) -> str:
    """The shell command PostgreSQL runs per segment (%p its path, %f its file name)."""
    d = shlex.quote(str(archive))
    return (
        f"test -f {d}/%f && cmp -s %p {d}/%f || "
        f"(test ! -f {d}/%f && cp %p {d}/%f.part && mv {d}/%f.part {d}/%f)"
    )


def restore_command(archive: Path) -> str:
    """The command recovery uses to fetch a segment back (§26.3.4)."""
    d = shlex.quote(str(archive))
    return f"cp {d}/%f %p"


def _conf_text(archive: Path) -> str:
    command = archive_command(archive).replace("'", "''")
    return (
        "# Written by gis-service db up --archive-wal (gis_service/backup/wal.py).\n"
        f"{MARK}{archive}\n"
        "wal_level = replica\n"
        "archive_mode = on\n"
        f"archive_command = '{command}'\n"
        f"archive_timeout = {ARCHIVE_TIMEOUT_S}\n"
    )


def configured_archive(pgdata: Path) -> Path | None:
    """The archive directory a data directory's configuration names (None: not archiving
    or not readable here)."""
    try:
        lines = (pgdata / CONF).read_text().splitlines()
    except OSError:
        return None
    found = [line[len(MARK) :] for line in lines if line.startswith(MARK)]
    return Path(found[0]) if found else None


def configure(pgdata: Path, archive: Path | None) -> bool:
    """Write (``archive`` given) or remove (None) the archiving configuration of a data
    directory; returns whether it changed. The archive directory is created and made
    writable by the server's user. Raises ClusterError if that user cannot write it."""
    from gis_service.db import cluster
    from gis_service.errors import ClusterError

    conf = pgdata / CONF
    old = conf.read_text() if conf.exists() else None
    main = pgdata / "postgresql.conf"
    if archive is None:
        if old is None:
            return False
        conf.unlink()
        return True
    archive = archive.absolute()
    archive.mkdir(parents=True, exist_ok=True)
    if cluster._is_root():
        archive.chmod(0o700)
        shutil.chown(archive, "postgres", "postgres")
    if not cluster._owner_can_use(archive):
        raise ClusterError(f"the PostgreSQL server's user cannot write to {archive}")
    text_ = main.read_text()
    if INCLUDE not in text_:
        main.write_text(text_ + f"\n{INCLUDE}\n")
    new = _conf_text(archive)
    if new == old:
        return False
    conf.write_text(new)
    if cluster._is_root():
        shutil.chown(conf, "postgres", "postgres")
    return True


def wanted(pgdata: Path) -> dict[str, str]:
    """The restart-only settings the data directory's configuration asks for."""
    if (pgdata / CONF).is_file():
        return {"archive_mode": "on", "wal_level": "replica"}
    return {"archive_mode": "off"}


def needs_restart(cur, pgdata: Path) -> bool:
    """Whether the running server (cursor ``cur``) differs from ``wanted``: archive_mode
    and wal_level take effect only at server start."""
    for name, value in wanted(pgdata).items():
        cur.execute("SELECT current_setting(%s)", (name,))
        if cur.fetchone()[0] != value:
            return True
    return False


def switch_and_wait(cur, timeout: float = 30) -> str:
    """Close the current WAL segment (pg_switch_wal, §9.27.3) and wait until the archiver
    has archived it; returns its file name. Raises TimeoutError naming the segment."""
    import time

    cur.execute("SELECT pg_walfile_name(pg_switch_wal())")
    segment = cur.fetchone()[0]
    deadline = time.monotonic() + timeout
    while True:
        cur.execute("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver")
        archived, failed = cur.fetchone()
        if archived and archived >= segment:
            return segment
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"WAL segment {segment} not archived within {timeout:g} s "
                f"(last archived {archived}, last failed {failed})"
            )
        time.sleep(0.1)
