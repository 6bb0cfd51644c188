"""``gis-service partitions list|ensure|detach``: the monthly partitions of the case
history (gis_service/cases/partitions.py, docs/scale.md "History that grows")."""

from __future__ import annotations

import typer
from rich.console import Console

from gis_service.cases import partitions
from gis_service.cli.session import database

app = typer.Typer(help="Monthly partitions of cases and their timelines.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("list")
def list_() -> None:
    """Every month table, oldest first: table, month (YYYY-MM or legacy), attached or
    detached, estimated rows (-1: not analysed yet). Tab-separated on stdout."""
    with database() as conn:
        rows = partitions.listing(conn)
    for p in rows:
        state = "attached" if p.attached else "detached"
        typer.echo(f"{p.name}\t{p.table}\t{p.month}\t{state}\t{p.rows}")


@app.command()
def ensure(
    ahead: int = typer.Option(
        partitions.AHEAD, "--ahead", min=0, max=120, help="Months after the current one"
    ),
    since: str = typer.Option(
        None, "--from", help="Also every month from this one (YYYY-MM), e.g. for a load"
    ),
) -> None:
    """Make the partitions of the current month and the next ``--ahead`` ones (and from
    ``--from`` on) that do not exist yet. Run it monthly (a systemd timer or cron)."""
    with database() as conn:
        months = partitions.months_around(conn, ahead)
        if since is not None:
            first = partitions.month_index(conn, since)
            months = range(min(first, months.start), months.stop)
        made = partitions.ensure(conn, months)
    console.print(
        f"[green]{len(made)} partitions made[/]" + (f": {', '.join(made)}" if made else "")
    )


@app.command()
def detach(
    before: str = typer.Option(..., "--before", help="Detach the months before this (YYYY-MM)"),
) -> None:
    """Detach every month before ``--before`` from cases and case_event (timelines first).
    The tables stay, queryable by name; archive them with ``pg_dump -t <table>`` and drop
    them after. Refused, naming the rows, while photos, approvals, reminders or later
    duplicates still reference those cases."""
    with database() as conn:
        done = partitions.detach_before(conn, before)
    for name in done:
        typer.echo(name)
    console.print(f"[green]{len(done)} tables detached[/]")
