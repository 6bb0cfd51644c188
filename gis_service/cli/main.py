"""Entry point of ``gis-service``; errors print one clear line and exit non-zero."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from gis_service.audit import actor as audit_actor
from gis_service.cli import (
    access,
    audit,
    backup,
    categories,
    cluster,
    db,
    export,
    imports,
    maps,
    monthly,
    notify,
    open311,
    partitions,
    people,
    serve,
    tiles,
    walks,
)
from gis_service.errors import GisServiceError

app = typer.Typer(
    help="Grid management and issue tracking on PostGIS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(ctx: typer.Context) -> None:
    """Every command acts as the person at the terminal: its changes to audited tables
    are recorded as ``cli:<os user>`` (gis_service/audit/actor.py). Not ``serve``: the
    server's requests carry their own signed-in actors."""
    if ctx.invoked_subcommand == "serve":
        return
    token = audit_actor.act_as(audit_actor.cli_actor())
    ctx.call_on_close(lambda: audit_actor.restore(token))


app.add_typer(db.app, name="db")
app.add_typer(cluster.app, name="cluster")
app.add_typer(imports.app, name="import")
app.add_typer(people.users_app, name="users")
app.add_typer(people.teams_app, name="teams")
app.add_typer(categories.app, name="categories")
app.add_typer(open311.app, name="open311")
app.add_typer(access.app, name="access")
app.add_typer(tiles.app, name="tiles")
app.add_typer(maps.app, name="maps")
app.add_typer(audit.app, name="audit")
app.add_typer(monthly.app, name="report")
app.add_typer(notify.app, name="notify")
app.add_typer(export.app, name="export")
app.add_typer(walks.app, name="walks")
app.add_typer(partitions.app, name="partitions")
app.command("serve")(serve.serve)
app.command("demo")(serve.demo)
app.command("backup")(backup.backup_cmd)
app.command("restore")(backup.restore_cmd)


def run() -> None:
    try:
        app()
    except GisServiceError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc.message}")
        sys.exit(2)
