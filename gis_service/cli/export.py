"""``gis-service export cases|stats|gaps|living-circle``: an export to a file (the API's
exports, gis_service/exports/), with progress and a one-line summary.

The terminal reads as an admin (the whole district) unless ``--as USERNAME`` names an
account, whose jurisdiction then applies, as it would through the API. The format comes
from ``--format`` or the file's suffix (.csv, .xlsx, .gpkg, .geojson).
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.cli.progress import steps
from gis_service.db import cluster
from gis_service.db.engine import get_engine
from gis_service.errors import InvalidInput, NotFound
from gis_service.exports import service
from gis_service.exports.columns import Lang
from gis_service.exports.formats import Format, format_of
from gis_service.settings import Settings, get_settings

app = typer.Typer(
    help="Exports: cases, the resolution statistics, the one-kilometre gaps and the living "
    "circle as CSV, XLSX, GeoPackage or GeoJSON.",
    no_args_is_help=True,
)
console = Console(stderr=True)

OUT = typer.Option(..., "--out", help="File to write: .csv, .xlsx, .gpkg or .geojson")
FORMAT = typer.Option(None, "--format", help="csv, xlsx, gpkg or geojson (default: --out's)")
LANG = typer.Option(Lang.zh, "--lang", help="Headers and labels: zh or en")
AS = typer.Option(None, "--as", help="Export with this account's jurisdiction (username)")
UNIT = typer.Option(None, "--unit", help="Only inside this unit (code)")


def _principal(conn: Connection, username: str | None) -> Principal:
    if username is None:
        return Principal(role=Role.admin, username="cli", display_name="cli")
    row = (
        conn.execute(
            text(
                "SELECT id, username, display_name, role, scopes, team_id FROM app_user "
                "WHERE username = :u AND active"
            ),
            {"u": username},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no active account {username!r}")
    return Principal(
        role=Role(row["role"]),
        user_id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        scopes=tuple(row["scopes"] or ()),
        team_id=row["team_id"],
    )


def _format(out: Path, fmt: Format | None) -> Format:
    return fmt or format_of(out.name, field="out")


def _write(settings: Settings, request: service.ExportRequest, out: Path, conn: Connection) -> None:
    """Count, write with progress, and print the one-line summary."""
    started = time.perf_counter()
    with steps(f"export {request.kind} → {out.name}") as step:
        step("counting")
        total = request.count(conn)
        shown = f" of {total:,}" if total else ""
        step("writing")
        rows = service.run(
            settings, request, out, lambda n: step(f"{n:,}{shown} rows written"), conn=conn
        )
    seconds = time.perf_counter() - started
    size = out.stat().st_size
    console.print(
        f"[green]{rows:,} rows of {request.kind} written to {out} "
        f"({request.fmt.value}, {size / 1e6:.1f} MB) in {seconds:.1f} s[/]"
    )


def _session(username: str | None) -> tuple[Settings, Connection, Principal]:
    settings = get_settings()
    cluster.start(settings)
    conn = get_engine(settings).connect()
    try:
        return settings, conn, _principal(conn, username)
    except BaseException:
        conn.close()
        raise


@app.command("cases")
def cases_cmd(
    out: Path = OUT,
    fmt: Format = FORMAT,
    lang: Lang = LANG,
    as_user: str = AS,
    unit: str = UNIT,
    status: list[str] = typer.Option(None, "--status", help="A status (repeat for more)"),
    category: str = typer.Option(None, help="A domain or sub-category code"),
    team_id: int = typer.Option(None, "--team-id", help="Dispatched to this team"),
    date_from: str = typer.Option(None, "--from", help="Reported on or after (YYYY-MM-DD)"),
    date_to: str = typer.Option(None, "--to", help="Reported on or before (YYYY-MM-DD)"),
    tab: str = typer.Option(None, help="A desk queue tab, e.g. overdue"),
    overdue: bool = typer.Option(None, "--overdue/--not-overdue", help="Only (not) overdue"),
    q: str = typer.Option(None, help="Text in description, number or address"),
) -> None:
    """Every case (in the account's jurisdiction) under the case list's filters."""
    from gis_service.cases.desk import TABS
    from gis_service.desk.api import QueueFilters

    fmt = _format(out, fmt)
    if tab is not None and tab not in TABS:
        raise InvalidInput(f"tab {tab!r} is not one of {', '.join(TABS)}", field="tab")
    filters = QueueFilters(
        status=status or None,
        category=category,
        unit=unit,
        team_id=team_id,
        date_from=_day(date_from, "from"),
        date_to=_day(date_to, "to"),
        q=q,
    )
    settings, conn, principal = _session(as_user)
    with conn:
        built = filters.build(tab, settings.desk_near_deadline_share)
        built.principal = principal
        built.overdue = overdue
        request = service.cases_request(principal, built, settings, fmt, lang)
        _write(settings, request, out, conn)


@app.command("stats")
def stats_cmd(
    out: Path = OUT,
    fmt: Format = FORMAT,
    lang: Lang = LANG,
    as_user: str = AS,
    unit: str = UNIT,
    level: str = typer.Option("community", help="district, subdistrict, community or grid"),
    date_from: str = typer.Option(None, "--from", help="First day (default: 52 weeks back)"),
    date_to: str = typer.Option(None, "--to", help="Last day, inclusive (default: today)"),
    category: str = typer.Option(None, help="A domain or sub-category code"),
) -> None:
    """The resolution statistics per unit of the level, with the totals (rates as %)."""
    from gis_service.stats.cube import CaseCube
    from gis_service.stats.resolution import StatsQuery

    fmt = _format(out, fmt)
    settings = get_settings()
    q = StatsQuery.default_period(
        settings,
        level,
        _day(date_from, "from"),
        _day(date_to, "to"),
        category=category,
        unit=unit,
    )
    q.check()
    settings, conn, principal = _session(as_user)
    with conn:
        request = service.resolution_request(principal, CaseCube(settings), q, fmt, lang)
        _write(settings, request, out, conn)


def _versions(settings: Settings, conn: Connection) -> list[int]:
    """The walking distances' versions, recomputed first if the network, the service
    points or the units changed since (as ``gis-service access compute``)."""
    from gis_service.access import reach
    from gis_service.access.store import EngineCache
    from gis_service.db.engine import transaction

    if (current := reach.fresh_versions(conn)) is not None:
        return current
    title = "walking distances are out of date: recomputing"
    with steps(title) as step, transaction(settings) as tx:
        engine = EngineCache().get(tx)
        return reach.compute(tx, engine, step).versions


@app.command("gaps")
def gaps_cmd(
    out: Path = OUT,
    fmt: Format = FORMAT,
    lang: Lang = LANG,
    as_user: str = AS,
    unit: str = UNIT,
    max_m: float = typer.Option(1000.0, "--max-m", help="The reach in metres (0 < m ≤ 3000)"),
) -> None:
    """Buildings farther than the reach from every party organisation, with residents."""
    from gis_service.access.coverage import require_figure_reader
    from gis_service.access.reach import SEARCH_LIMIT_M

    fmt = _format(out, fmt)
    if not 0 < max_m <= SEARCH_LIMIT_M:
        raise InvalidInput(
            f"--max-m must be more than 0 and at most {SEARCH_LIMIT_M:g}", field="max_m"
        )
    settings, conn, principal = _session(as_user)
    with conn:
        require_figure_reader(principal)
        versions = _versions(settings, conn)
        request = service.gaps_request(principal, versions, fmt, lang, max_m=max_m, unit=unit)
        _write(settings, request, out, conn)


@app.command("living-circle")
def living_circle_cmd(
    out: Path = OUT,
    fmt: Format = FORMAT,
    lang: Lang = LANG,
    as_user: str = AS,
    unit: str = UNIT,
    level: str = typer.Option("community", help="A unit level, down to building"),
    minutes: float = typer.Option(15.0, help="Walking minutes (0 < m ≤ 45)"),
    speed_kmh: float = typer.Option(4.0, "--speed-kmh", help="Walking speed (0 < v ≤ 20)"),
) -> None:
    """The quarter-hour living circle per unit: who reaches all six everyday services."""
    from gis_service.access import service as access_service
    from gis_service.access.coverage import require_figure_reader
    from gis_service.units.codes import Level

    fmt = _format(out, fmt)
    if level not in {lvl.value for lvl in Level}:
        raise InvalidInput(f"level {level!r} is not a unit level", field="level")
    if not (
        0 < minutes <= access_service.MAX_WALK_MINUTES
        and 0 < speed_kmh <= access_service.MAX_SPEED_KMH
    ):
        raise InvalidInput(
            f"minutes must be in (0, {access_service.MAX_WALK_MINUTES:g}] and speed in "
            f"(0, {access_service.MAX_SPEED_KMH:g}]",
            field="minutes",
        )
    settings, conn, principal = _session(as_user)
    with conn:
        require_figure_reader(principal)
        versions = _versions(settings, conn)
        request = service.living_circle_request(
            principal,
            versions,
            fmt,
            lang,
            level=level,
            within_m=access_service.metres(minutes, speed_kmh),
            unit=unit,
        )
        _write(settings, request, out, conn)


def _day(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--{field} {value!r} is not a date (YYYY-MM-DD)", field=field) from None
