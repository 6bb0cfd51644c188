"""``gis-service report monthly``: a unit's monthly report as a PDF (reports/)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from gis_service.cli.progress import steps
from gis_service.db import cluster
from gis_service.db.engine import transaction
from gis_service.settings import get_settings

app = typer.Typer(help="Monthly reports: the PDF a unit sends to the level above.")
console = Console(stderr=True)


@app.command()
def monthly(
    unit: str = typer.Option(..., help="The unit's code (district, subdistrict, community)."),
    month: str = typer.Option(..., help="YYYY-MM, a month in the district's time."),
    out: Path = typer.Option(None, help="Write the PDF here (default: ./monthly-…pdf)."),
    send: bool = typer.Option(False, "--send", help="Send (freeze) the new version."),
    reason: str = typer.Option(None, help="Why: needed when correcting a sent version."),
    lang: str = typer.Option("zh", help="zh (default) or en."),
) -> None:
    """Compute the figures, print the PDF as a new draft version and, with --send, freeze
    it. As an admin (the person at the terminal: cli:<os user>)."""
    from gis_service.audit import actor as audit_actor
    from gis_service.auth.principal import Principal, Role
    from gis_service.reports import versions
    from gis_service.reports.figures import parse_month
    from gis_service.stats.cube import CaseCube

    parse_month(month)  # a bad month fails before the database starts
    settings = get_settings()
    cluster.start(settings)
    who = audit_actor.cli_actor().name
    principal = Principal(role=Role.admin, username=who, display_name=who)
    with steps("monthly report") as step, transaction(settings) as conn:
        step("loading the cases")
        made = versions.create_draft(
            conn, CaseCube(settings), principal, settings, unit, month, lang, reason, step
        )
        if send:
            step("sending")
            made = versions.send(conn, principal, settings, made["id"], reason)
        body, _sha, name = versions.pdf_of(conn, principal, made["id"])
    target = out or Path(name)
    target.write_bytes(body)
    t = made["figures"]["totals"]
    rate = "—" if t["resolution_rate"] is None else f"{t['resolution_rate'] * 100:.1f}%"
    console.print(
        f"[green]{made['unit_name']} {made['month']} v{made['version']} {made['status']}: "
        f"{t['reported']} cases, resolution {rate}, "
        f"{len(made['figures']['overdue'])} overdue → {target} ({len(body):,} bytes)[/]"
    )
