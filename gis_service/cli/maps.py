"""``gis-service maps export``: self-contained HTML versions of the map pages."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from gis_service.cli.progress import steps
from gis_service.db import cluster
from gis_service.db.engine import get_engine
from gis_service.settings import get_settings

app = typer.Typer(help="Map pages.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def export(
    out: Path = typer.Option(..., help="Folder to write the pages into."),
    unit: str = typer.Option(None, help="Only this unit (code)."),
    date_from: str = typer.Option(None, "--from", help="First day, YYYY-MM-DD."),
    date_to: str = typer.Option(None, "--to", help="Last day, YYYY-MM-DD."),
    lang: str = typer.Option("zh", help="zh or en."),
) -> None:
    """Write resolution, cases, units (and coverage) as HTML files that need no server."""
    from gis_service.errors import InvalidInput
    from gis_service.maps.export import export as run
    from gis_service.stats.cube import CaseCube

    if lang not in ("zh", "en"):
        raise InvalidInput("--lang must be zh or en")
    try:
        first = date.fromisoformat(date_from) if date_from else None
        last = date.fromisoformat(date_to) if date_to else None
    except ValueError as exc:
        raise InvalidInput(f"--from/--to: {exc}") from exc
    settings = get_settings()
    cluster.start(settings)
    with steps("export") as step, get_engine(settings).connect() as conn:
        if (
            unit
            and not conn.exec_driver_sql(
                "SELECT 1 FROM admin_unit WHERE code = %(c)s", {"c": unit}
            ).first()
        ):
            raise InvalidInput(f"--unit {unit}: no such unit")
        step("figures and pages")
        done = run(
            conn, CaseCube(settings), out, unit=unit, date_from=first, date_to=last, lang=lang
        )
    console.print(f"[green]{done.summary()} in {out}[/]")
