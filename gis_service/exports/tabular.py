"""Tables people open in a spreadsheet: CSV (UTF-8 with a byte-order mark) and XLSX.

The one home of tabular writing (the audit log's export writes its CSV here too):

* CSV is UTF-8 with a byte-order mark, so Excel opens Chinese text correctly, and CRLF
  line ends (RFC 4180). A text cell that starts with ``= + - @`` or a tab or carriage
  return is prefixed with ``'`` (:func:`escape`), so a spreadsheet shows it as text instead
  of running it as a formula (OWASP "CSV injection").
* XLSX is written by openpyxl in write-only mode (rows go to the file as they come, so a
  million cases never sit in memory): the header row bold and frozen, each column's width
  from its :class:`~gis_service.exports.columns.Column`, dates and times as real Excel
  dates in the district's time (Excel has no zones: naive local date-times,
  ``timezone.py``), shares as numbers formatted ``0.0%``, counts as numbers. A text that
  starts with ``=`` is stored as text, never as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from gis_service.exports.columns import Column, Kind, Lang, Row, Table, bool_label
from gis_service.settings import Settings
from gis_service.timezone import zone

BOM = "\ufeff"
#: what a spreadsheet reads as the start of a formula (OWASP "CSV injection")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: rows written per chunk of a streamed CSV, and between two progress reports
CHUNK = 500
PROGRESS_EVERY = 5000
XLSX_PERCENT = "0.0%"
#: rows an XLSX sheet holds below its header (Excel's limit: 1,048,576 rows)
XLSX_MAX_ROWS = 1_048_575

Progress = Callable[[int], None]


def escape(text: str) -> str:
    """``text`` as a spreadsheet shows it as text: ``'`` before a formula's first sign."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_chunks(header: list[str], rows: Iterable[list[str]]) -> Iterator[str]:
    """CSV text in chunks: the byte-order mark and the header first, then ``CHUNK`` rows
    at a time (cells already written as text: :func:`escape` them)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield BOM + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_cell(column: Column, value: Any, lang: Lang | str, settings: Settings) -> str:
    """One value as CSV text, by its column's kind (columns.py)."""
    return csv_formatter(column, lang, settings)(value)


def csv_formatter(column: Column, lang: Lang | str, settings: Settings) -> Callable[[Any], str]:
    """The function that writes one column's values as CSV text: chosen once per column,
    not per cell (a million cases have thirty million cells). A moment is written in the
    district's time as ``timezone.py`` LOCAL_FORMAT (``2026-11-30 18:14``; ``isoformat``
    writes the same text ten times faster than ``strftime``, tests/test_exports.py)."""
    kind = column.kind
    if kind is Kind.datetime:
        tz = zone(settings)

        def moment(v: Any) -> str:
            if v is None:
                return ""
            return v.astimezone(tz).replace(tzinfo=None).isoformat(" ", "minutes")

        return moment
    if kind is Kind.date:
        return lambda v: "" if v is None else v.isoformat()
    if kind is Kind.percent:
        return lambda v: "" if v is None else f"{v * 100:.2f}%"
    if kind is Kind.bool:
        yes, no = bool_label(True, lang), bool_label(False, lang)
        return lambda v: "" if v is None else (yes if v else no)
    if kind in (Kind.int, Kind.number):
        return lambda v: "" if v is None else str(v)

    def text(v: Any) -> str:
        if v is None:
            return ""
        v = str(v)
        return "'" + v if v.startswith(FORMULA_PREFIXES) else v

    return text


def _counted(rows: Iterable[Row], progress: Progress | None) -> Iterator[Row]:
    n = 0
    for row in rows:
        yield row
        n += 1
        if progress and n % PROGRESS_EVERY == 0:
            progress(n)
    if progress:
        progress(n)


def write_csv(
    table: Table, out: Path, lang: Lang | str, settings: Settings, progress: Progress | None = None
) -> int:
    """Write ``table`` to ``out`` as CSV; returns the number of rows."""
    cols = table.columns
    writers = [(c.name, csv_formatter(c, lang, settings)) for c in cols]
    count = 0

    def cells() -> Iterator[list[str]]:
        nonlocal count
        for row in _counted(table.rows, progress):
            count += 1
            yield [fmt(row.get(name)) for name, fmt in writers]

    with out.open("w", encoding="utf-8", newline="") as f:
        for chunk in csv_chunks([c.label(lang) for c in cols], cells()):
            f.write(chunk)
    return count


def write_xlsx(
    table: Table, out: Path, lang: Lang | str, settings: Settings, progress: Progress | None = None
) -> int:
    """Write ``table`` to ``out`` as one XLSX sheet (see the module); returns the rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    tz = zone(settings)
    ws = wb.create_sheet(title=_sheet_title(table.title))
    cols = table.columns
    for i, col in enumerate(cols, 1):
        ws.column_dimensions[get_column_letter(i)].width = col.xlsx_width(lang)
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for col in cols:
        cell = WriteOnlyCell(ws, value=col.label(lang))
        cell.font = bold
        header.append(cell)
    ws.append(header)

    def styled(value: Any, number_format: str) -> Any:
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = number_format
        return cell

    def as_text(value: str) -> Any:
        if not value.startswith("="):
            return value
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"  # openpyxl reads a leading = as a formula
        return cell

    def xlsx_value(col: Column, value: Any) -> Any:
        if value is None:
            return None
        kind = col.kind
        if kind is Kind.datetime:  # openpyxl writes it as a date with yyyy-mm-dd h:mm:ss
            return value.astimezone(tz).replace(tzinfo=None)
        if kind is Kind.date:  # ... and a date with yyyy-mm-dd
            return value
        if kind is Kind.percent:
            return styled(float(value), XLSX_PERCENT)
        if kind is Kind.bool:
            return bool_label(bool(value), lang)
        if kind in (Kind.int, Kind.number):
            return value
        return as_text(str(value))

    count = 0
    for row in _counted(table.rows, progress):
        ws.append([xlsx_value(c, row.get(c.name)) for c in cols])
        count += 1
    wb.save(out)
    return count


def _sheet_title(title: str) -> str:
    """Excel's rule for a sheet name: at most 31 characters, none of ``[]:*?/\\``."""
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)
    return cleaned[:31] or "export"
