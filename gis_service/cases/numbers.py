"""Case numbers (案件编号) read back: the one place a number is taken apart.

A number is made by ``report_case()`` (cases/report.sql; the demo generator writes the
same) as the district's code (``CODE_LENGTH`` of the district level, units/codes.py), the
local date of the report in the service's zone (``YYYYMMDD``) and a serial of
``SERIAL_DIGITS`` digits from ``case_no_seq``: ``410199`` ``20261201`` ``000042``. The date
names the month the case's id carries (cases/partitions.py), so a lookup by number adds the
month's id range and touches one month's partition instead of probing every month's
``case_no`` index — two months when the day lies within a day of a month's end, which
covers any difference between the zone the number was written in and the partitions'
zone (fixed at migration 0018) up to a whole day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from gis_service.cases import partitions
from gis_service.units.codes import CODE_LENGTH, LEVELS

DISTRICT_DIGITS = CODE_LENGTH[LEVELS[0]]
"""The district code's digits at the front of a number."""
SERIAL_DIGITS = 6
"""The serial's digits at the end (``lpad(nextval('case_no_seq') % 1000000, 6)``)."""

_NUMBER = re.compile(rf"^(\d{{{DISTRICT_DIGITS}}})(\d{{8}})(\d{{{SERIAL_DIGITS}}})$")


@dataclass(frozen=True)
class CaseNumber:
    """A case number's parts: district code, local report date, serial."""

    district: str
    day: date
    serial: str


def parse(case_no: str) -> CaseNumber | None:
    """The parts of ``case_no``, or None when it is not a case number of this shape (a
    lookup of such a string simply finds nothing, by every month's index)."""
    m = _NUMBER.match(case_no or "")
    if not m:
        return None
    try:
        day = datetime.strptime(m.group(2), "%Y%m%d").date()
    except ValueError:
        return None
    return CaseNumber(m.group(1), day, m.group(3))


def with_day(case_no: str, day: date) -> str:
    """``case_no`` as it would read had the case been reported on local ``day``."""
    n = parse(case_no)
    if n is None:
        raise ValueError(f"not a case number: {case_no!r}")
    return f"{n.district}{day:%Y%m%d}{n.serial}"


def lookup_sql(
    case_id: str, column: str, numbers: list[str], prefix: str = "n"
) -> tuple[str, dict[str, Any]]:
    """SQL matching the cases whose ``column`` (SQL of the case number, e.g. ``c.case_no``)
    is one of ``numbers``, with the id range of each number's month (``case_id``: SQL of
    the case id, e.g. ``c.id``) so the planner prunes to those months. Parameters are named
    ``:<prefix>…``. When one of ``numbers`` does not parse, no range is added (every month
    is probed; such a string finds nothing unless a case carries it). Returns (sql,
    params).

    The range of a number dated D: reports from D − 1 to D + 2 (UTC days) — the local day D
    in any zone within a day of UTC — through ``partitions.period_sql``."""
    params: dict[str, Any] = {f"{prefix}_nos": list(numbers)}
    days = sorted({n.day for n in map(parse, numbers) if n is not None})
    if not days or any(parse(x) is None for x in numbers):
        return f"{column} = ANY(:{prefix}_nos)", params
    ranges = []
    for i, day in enumerate(days):
        params[f"{prefix}_from{i}"] = datetime.combine(day - timedelta(days=1), time(), UTC)
        params[f"{prefix}_to{i}"] = datetime.combine(day + timedelta(days=2), time(), UTC)
        ranges.append(partitions.period_sql(case_id, f":{prefix}_from{i}", f":{prefix}_to{i}"))
    return f"{column} = ANY(:{prefix}_nos) AND ({' OR '.join(ranges)})", params
