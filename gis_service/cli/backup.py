"""``gis-service backup`` and ``gis-service restore`` (issue 14, item 6): thin wrappers
over gis_service/backup; docs/backup.md walks through them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from gis_service.backup import dump, restore
from gis_service.backup.manifest import BackupError
from gis_service.cli.progress import steps
from gis_service.db import cluster
from gis_service.settings import get_settings

console = Console(stderr=True)


def backup_cmd(
    out: Path = typer.Option(None, "--out", help="A new (or empty) directory for the set."),
    root: Path = typer.Option(
        None, "--root", help="A backup root: the set goes to ROOT/<UTC time>, linked to the last."
    ),
    previous: Path = typer.Option(
        None, "--previous", help="An earlier set: unchanged photos are hard-linked from it."
    ),
    base: bool = typer.Option(
        False, "--base", help="pg_basebackup of the cluster (for --pitr) instead of pg_dump."
    ),
) -> None:
    """Back up the database, the case photos and the signing key, with a manifest and
    SHA-256 checksums; photos are incremental against --previous (or ROOT's last set)."""
    if (out is None) == (root is None):
        raise BackupError("give exactly one of --out DIR and --root DIR")
    if root is not None and previous is not None:
        raise BackupError("--root picks the previous set itself; --previous goes with --out")
    settings = get_settings()
    with steps("backup") as step:
        if root is not None:
            summary = dump.backup_into_root(settings, root, base=base, progress=step)
        elif base:
            summary = dump.base_backup(settings, out, previous, progress=step)
        else:
            summary = dump.backup(settings, out, previous, progress=step)
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    print(summary.line())


def restore_cmd(
    source: Path = typer.Argument(..., help="A backup set (a directory with manifest.json)."),
    force: bool = typer.Option(False, "--force", help="Replace a target that already holds data."),
    pitr: bool = typer.Option(
        False, "--pitr", help="SOURCE is a base backup: recover to --target-time from the WAL."
    ),
    target_time: str = typer.Option(
        None, "--target-time", help="ISO 8601; without an offset, local time (GIS_TIMEZONE)."
    ),
    archive: Path = typer.Option(
        None, "--archive", help="The WAL archive (default: the one the base backup names)."
    ),
    photos_from: list[Path] = typer.Option(
        None, "--photos-from", help="With --pitr: a later set whose photos are added too."
    ),
) -> None:
    """Restore a backup set into an empty database (checksums verified first), or with
    --pitr recover the local cluster to a moment from a base backup and the WAL archive."""
    settings = get_settings()
    with steps("restore") as step:
        if pitr:
            if not target_time:
                raise BackupError("--pitr needs --target-time")
            moment = restore.parse_target_time(target_time, settings.timezone)
            summary = restore.restore_pitr(
                settings, source, moment, archive, force, step, photos_from or ()
            )
        else:
            if target_time or archive or photos_from:
                raise BackupError("--target-time, --archive and --photos-from go with --pitr")
            cluster.start(settings)
            summary = restore.restore(settings, source, force, step)
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    print(summary.line())
