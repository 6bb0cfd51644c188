"""Printing a QA report as tables, ending with its one-line summary."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from gis_service.imports.report import ImportReport

SECTIONS: dict[str, str] = {
    "repaired": "Invalid geometries repaired (make_valid)",
    "outside_parent": "Outside their parent",
    "overlaps": "Overlaps between siblings",
    "gaps": "Gaps: parent ground no child covers",
    "duplicates": "Possible duplicates",
    "unlocated": "Outside every unit",
}


def _table(title: str, rows: list[dict[str, Any]], limit: int = 20) -> Table:
    table = Table(title=f"{title} ({len(rows)})", title_justify="left")
    columns = list(rows[0].keys())
    for c in columns:
        table.add_column(c)
    for r in rows[:limit]:
        table.add_row(*[("" if r[c] is None else str(r[c])) for c in columns])
    if len(rows) > limit:
        table.add_row(*["…"] * len(columns))
    return table


def print_report(report: ImportReport, console: Console, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    for note in report.notes:
        console.print(f"[dim]note:[/] {note}")
    for key, title in SECTIONS.items():
        rows = getattr(report, key)
        if rows:
            console.print(_table(title, rows))
    colour = "yellow" if report.warnings else "green"
    console.print(f"[{colour}]{report.summary()}[/]")
