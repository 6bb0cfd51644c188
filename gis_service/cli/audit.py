"""``gis-service audit export``: the audit log to a file (docs/audit.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console

from gis_service.audit import export, log
from gis_service.cli.session import database
from gis_service.settings import get_settings

app = typer.Typer(help="The audit log of privileged changes.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("export")
def export_log(
    out: Path = typer.Option(..., "--out", help="File to write: .csv or .jsonl"),
    fmt: export.ExportFormat = typer.Option(
        None, "--format", help="csv or jsonl (default: from the file name)"
    ),
    since: datetime = typer.Option(None, help="From this moment (district time if no offset)."),
    until: datetime = typer.Option(None, help="Before this moment."),
    actor: str = typer.Option(None, help="e.g. user:admin or cli:root"),
    kind: str = typer.Option(None, help=" | ".join(log.KINDS)),
    table: str = typer.Option(None, help="An audited table, e.g. app_user."),
    target: str = typer.Option(None, help="The changed row's key (id, code, username)."),
    operation: str = typer.Option(None, help=" | ".join(log.OPERATIONS)),
) -> None:
    """Write every matching entry, newest first: CSV in UTF-8 with a byte-order mark (opens
    in Excel), or JSON Lines."""
    fmt = fmt or export.format_of(out)
    f = log.AuditFilter(
        since=since,
        until=until,
        actor=actor,
        kind=kind,
        table=table,
        target=target,
        operation=operation,
    )
    settings = get_settings()
    f.where(settings)  # a refused filter is named before the file is touched
    with database() as conn:
        count = export.write(out, fmt, log.entries(conn, settings, f))
    console.print(f"[green]{count} audit entries written to {out}[/]")
