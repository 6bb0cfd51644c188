"""``gis-service categories``: the case taxonomy is data; load another one from JSON."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from gis_service.cases.categories import list_categories, load_taxonomy, read_taxonomy
from gis_service.cli.session import database

app = typer.Typer(
    help="The case taxonomy (domains, sub-categories, deadlines).", no_args_is_help=True
)
console = Console()


@app.command("load")
def load(file: Path = typer.Argument(..., help="JSON like cases/taxonomy.json")) -> None:
    """Replace the taxonomy; categories missing from FILE are deactivated, not deleted."""
    rows = read_taxonomy(file)
    with database() as conn:
        counts = load_taxonomy(conn, rows)
    console.print(
        f"taxonomy loaded: {counts['active']} active categories, {counts['inactive']} deactivated"
    )


@app.command("list")
def show() -> None:
    with database() as conn:
        domains = list_categories(conn)
    for d in domains:
        console.print(
            f"[bold]{d['code']}[/] {d['name_zh']} / {d['name_en']} "
            f"({d['deadline_hours']} h, {d['handling_level']})"
        )
        for c in d["children"]:
            console.print(f"  {c['code']} {c['name_zh']} ({c['deadline_hours']} h)")
