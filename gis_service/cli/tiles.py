"""``gis-service tiles seed``: cut the offline basemap ahead of time into tiles/cache."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from gis_service.db import cluster
from gis_service.db.engine import get_engine
from gis_service.settings import get_settings

app = typer.Typer(help="The offline basemap's tile cache.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def seed(
    maxzoom: int = typer.Option(15, min=0, max=18, help="Deepest zoom to cut."),
    minzoom: int = typer.Option(10, min=0, max=18, help="Shallowest zoom to cut."),
) -> None:
    """Cut every basemap tile over the data from minzoom to maxzoom."""
    from gis_service.tiles.basemap import Basemap
    from gis_service.tiles.routes import versions_of

    if minzoom > maxzoom:
        raise typer.BadParameter("--minzoom must not be deeper than --maxzoom")
    settings = get_settings()
    cluster.start(settings)
    basemap = Basemap(settings.db_name)
    with (
        get_engine(settings).connect() as conn,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar,
    ):
        task = bar.add_task(f"basemap z{minzoom}–{maxzoom}", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        tiles, size = basemap.seed(conn, versions_of(conn), minzoom, maxzoom, step)
    console.print(
        f"[green]{tiles:,} basemap tiles, {size / 1e6:,.1f} MB, in {basemap.cache_dir}[/]"
    )
