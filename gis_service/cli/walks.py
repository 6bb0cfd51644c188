"""``gis-service walks prune``: raw positions past the retention period reduced to the
cleaned track and the daily figures (gis_service/walks/retention.py)."""

from __future__ import annotations

import typer
from rich.console import Console

from gis_service.cli.progress import steps
from gis_service.db import cluster
from gis_service.settings import get_settings

app = typer.Typer(help="Grid walks: retention of the raw positions.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def prune(
    older_than_days: int = typer.Option(
        None,
        "--older-than-days",
        min=0,
        help="Walks ended more than this many days ago (default GIS_WALK_RAW_RETENTION_DAYS)",
    ),
) -> None:
    """Remove the raw positions of walks ended before the retention period; their tracks,
    visited buildings and daily figures stay."""
    from gis_service.walks.retention import prune as run

    settings = get_settings()
    cluster.start(settings)
    with steps("walks prune") as step:
        done = run(settings, older_than_days, step)
    console.print(f"[green]{done.summary()}[/]")
