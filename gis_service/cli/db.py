"""``gis-service db``: the project-local cluster and the migrations."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console

from gis_service.backup import wal
from gis_service.cli import progress
from gis_service.db import cluster, migrate
from gis_service.settings import Settings, get_settings

app = typer.Typer(help="Manage the database (local cluster, migrations).", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def up(
    archive_wal: Path = typer.Option(
        None, "--archive-wal", help="Archive the WAL into DIR (point-in-time recovery)."
    ),
    no_archive_wal: bool = typer.Option(False, "--no-archive-wal", help="Stop archiving."),
) -> None:
    """Initialise (first time) and start the local cluster on 127.0.0.1; --archive-wal
    turns on continuous WAL archiving, kept across starts (docs/backup.md)."""
    settings = get_settings()
    if archive_wal is not None:
        settings = settings.model_copy(update={"wal_archive_dir": archive_wal})
    elif no_archive_wal:
        wal.configure(cluster.data_dir(settings), None)
    st = cluster.start(settings)
    where = f"data in {st.data_dir}, port {st.port}" if st.port else "external DATABASE_URL"
    console.print(f"[green]database up[/] ({where})")
    print(st.url)


@app.command()
def down() -> None:
    """Stop the local cluster (its data stays)."""
    cluster.stop(get_settings())
    console.print("database stopped")


@app.command()
def status() -> None:
    """Say whether the database is running, and where."""
    st = cluster.status(get_settings())
    state = "[green]running[/]" if st.running else "[red]stopped[/]"
    console.print(f"{state}  {st.url}  data: {st.data_dir}")
    raise typer.Exit(0 if st.running else 3)


@app.command()
def url() -> None:
    """Print the database URL (for psql, notebooks, DATABASE_URL)."""
    print(cluster.public_url(get_settings()))


@app.command("migrate")
def migrate_cmd(
    revision: str = typer.Argument("head", help="Target revision."),
    no_fold: bool = typer.Option(
        False, "--no-fold", help="Leave the statistics' roll-up fold to the first API start."
    ),
) -> None:
    """Bring the schema to ``revision`` (creates the extensions on first run). At head,
    then fold the days that left the statistics' recent window into the daily roll-up
    (stats/rollup.py), a month per transaction with a progress bar, so the first API start
    after an upgrade finds it done (574 s at ten million cases); ``--no-fold`` skips it."""
    settings = get_settings()
    cluster.start(settings)
    migrate.upgrade(settings, revision)
    console.print(f"schema at {migrate.current_revision(settings)}")
    if revision == "head" and not no_fold:
        fold(settings)


def fold(settings: Settings) -> None:
    """Fold the roll-up up to its boundary month by month, with a bar and a summary line."""
    from gis_service.db.engine import get_engine, transaction
    from gis_service.stats import rollup

    started = time.monotonic()
    with get_engine(settings).connect() as conn:
        plan = rollup.fold_plan(conn, settings)
    if plan.first is None:
        console.print(f"roll-up already folded before {plan.before.isoformat()}")
        return
    rows = 0
    with progress.bar("folding the roll-up", len(plan.steps)) as step:
        for until in plan.steps:
            with transaction(settings) as conn:
                rows += rollup.fold_step(conn, plan, until)
            step(f"before {until.isoformat()}")
    days = (plan.before - plan.first).days
    if not days:
        console.print(f"roll-up folded: no cases before {plan.before.isoformat()}")
        return
    console.print(
        f"[green]roll-up folded[/]: {days} days from {plan.first.isoformat()} to "
        f"{(plan.before - timedelta(days=1)).isoformat()}, {rows} rows, "
        f"{time.monotonic() - started:.1f} s"
    )
