"""``gis-service partitions list|ensure|detach|attach``: the monthly partitions of the case
history (gis_service/cases/partitions.py, docs/scale.md "History that grows")."""

from __future__ import annotations

import typer
from rich.console import Console

from gis_service.cases import partitions
from gis_service.cli.session import database
from gis_service.settings import get_settings

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
    """Detach every month before ``--before`` from cases and case_event, with the rows of
    other tables that reference its cases (photos, approvals, locks, reminders, retry
    keys) moved to ``archive.<table>_yYYYYmMM``; one transaction. Prints each table
    detached or made. The tables stay, queryable by name; archive them with ``pg_dump -t``
    and drop them after, or ``attach`` the month again. Photo files stay on disk. Refused,
    naming why, for months inside the statistics' recent window, months with open cases,
    and months whose cases later cases are duplicates of."""
    with database() as conn:
        done = partitions.detach_before(conn, before, get_settings())
    for name in done:
        typer.echo(name)
    console.print(f"[green]{sum(not n.startswith('archive.') for n in done)} tables detached[/]")


@app.command()
def attach(
    month: str = typer.Argument(..., help="The detached month (YYYY-MM, or legacy)"),
) -> None:
    """Attach a detached month again: its cases and timelines back into the history and
    its archived rows (``archive.<table>_yYYYYmMM``) back into their tables; one
    transaction. Refused for a month with no tables and for an attached month."""
    with database() as conn:
        done = partitions.attach(conn, month)
    for name in done:
        typer.echo(name)
    console.print(f"[green]month {month} attached[/]")
