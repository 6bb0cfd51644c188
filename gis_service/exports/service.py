"""An export asked for, whatever asks (the API, a job, the CLI): what it holds, how it is
written, and the one ``run`` that writes it.

An :class:`ExportRequest` carries ``open(conn)``, which builds the export's
:class:`~gis_service.exports.columns.Table` on a connection of its own (the cases' rows
stream from it while they are written), and ``count(conn)``, how many rows it will hold
(the API compares it with ``Settings.export_job_rows`` to answer at once or start a job).
The builders below are the only places that decide what each export holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from gis_service.auth.principal import Principal
from gis_service.cases.service import CaseFilters
from gis_service.db.engine import get_engine
from gis_service.errors import InvalidInput
from gis_service.exports import cases, figures
from gis_service.exports.columns import Lang, Table
from gis_service.exports.formats import GIS, Format, write
from gis_service.exports.tabular import XLSX_MAX_ROWS
from gis_service.settings import Settings
from gis_service.stats.cube import CaseCube
from gis_service.stats.resolution import StatsQuery, resolution
from gis_service.timezone import local_now, zone_name

#: export kind → (file name in Chinese, in English); the URL's and the CLI's names
KINDS: dict[str, tuple[str, str]] = {
    "cases": ("案件", "cases"),
    "resolution": ("办结率统计", "resolution"),
    "gaps": ("一公里覆盖缺口", "gaps"),
    "living-circle": ("十五分钟生活圈", "living-circle"),
}


@dataclass
class ExportRequest:
    kind: str
    fmt: Format
    lang: Lang
    open: Callable[[Connection], Table]
    count: Callable[[Connection], int]

    def filename(self, settings: Settings) -> str:
        """``案件-20261130-1814.xlsx``: the kind in the export's language and the moment
        in the district's time."""
        zh, en = KINDS[self.kind]
        stamp = local_now(settings).strftime("%Y%m%d-%H%M")
        return f"{zh if self.lang == Lang.zh else en}-{stamp}.{self.fmt.value}"


def cases_request(
    principal: Principal, filters: CaseFilters, settings: Settings, fmt: Format, lang: Lang
) -> ExportRequest:
    """Every case the viewer sees under the case list's filters (exports/cases.py)."""
    tz = zone_name(settings)
    total: dict[str, int] = {}

    def count(conn: Connection) -> int:
        total["n"] = cases.count(conn, principal, filters, tz=tz)
        if fmt is Format.xlsx and total["n"] > XLSX_MAX_ROWS:
            raise InvalidInput(
                f"{total['n']:,} cases do not fit one Excel sheet ({XLSX_MAX_ROWS:,} rows): "
                "narrow the filters or export csv",
                field="fmt",
            )
        return total["n"]

    def open_(conn: Connection) -> Table:
        return cases.table(
            conn, principal, filters, tz=tz, lang=lang, geometry=fmt in GIS, total=total.get("n")
        )

    return ExportRequest("cases", fmt, lang, open_, count)


def resolution_request(
    principal: Principal, cube: CaseCube, q: StatsQuery, fmt: Format, lang: Lang
) -> ExportRequest:
    """The resolution statistics per unit of ``q.level`` (stats/resolution.py)."""

    def open_(conn: Connection) -> Table:
        answer = resolution(conn, cube, principal, q)
        return figures.resolution_table(conn, answer, lang=lang, geometry=fmt in GIS)

    q.check()  # a refused query is named before anything runs
    return ExportRequest("resolution", fmt, lang, open_, lambda conn: 0)


def gaps_request(
    principal: Principal,
    versions: list[int],
    fmt: Format,
    lang: Lang,
    *,
    max_m: float,
    unit: str | None,
) -> ExportRequest:
    """The buildings beyond ``max_m`` from every party organisation (access/coverage.py)."""
    from gis_service.access import coverage

    def open_(conn: Connection) -> Table:
        answer = coverage.gaps(conn, principal, versions, max_m=max_m, unit=unit)
        return figures.gaps_table(answer, lang=lang, geometry=fmt in GIS)

    return ExportRequest("gaps", fmt, lang, open_, lambda conn: 0)


def living_circle_request(
    principal: Principal,
    versions: list[int],
    fmt: Format,
    lang: Lang,
    *,
    level: str,
    within_m: float,
    unit: str | None,
) -> ExportRequest:
    """The living circle per unit of ``level`` (access/coverage.py)."""
    from gis_service.access import coverage

    def open_(conn: Connection) -> Table:
        answer = coverage.living_circle(
            conn, principal, versions, level=level, within_m=within_m, unit=unit
        )
        return figures.living_circle_table(conn, answer, lang=lang, geometry=fmt in GIS)

    return ExportRequest("living-circle", fmt, lang, open_, lambda conn: 0)


def run(
    settings: Settings,
    request: ExportRequest,
    out: Path,
    progress: Callable[[int], None] | None = None,
    conn: Connection | None = None,
) -> int:
    """Write the export to ``out``; returns its rows. On ``conn`` if given, else on a
    connection of its own, closed when done."""
    own = conn is None
    conn = conn or get_engine(settings).connect()
    try:
        table = request.open(conn)
        return write(table, request.fmt, out, request.lang, settings, progress)
    finally:
        if own:
            conn.close()
