"""Exports of the audit log: CSV (UTF-8 with a byte-order mark, so Excel opens Chinese
text correctly) and JSON Lines (one entry per line, https://jsonlines.org), the same
entries and columns (log.py ``COLUMNS``) for the API and the CLI.

In the CSV, ``changed`` is its columns joined by ``;`` and ``old``/``new`` are JSON text;
the byte-order mark and the formula escaping are the exports' (gis_service/exports/
tabular.py, the one home of tabular writing). The JSON Lines export carries every value
unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

from gis_service.audit.log import COLUMNS
from gis_service.exports.tabular import CHUNK, csv_chunks, escape


class ExportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


MEDIA_TYPES: dict[ExportFormat, str] = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.jsonl: "application/jsonl",
}


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "changed":
        value = ";".join(value)
    elif isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return escape(str(value))


def _csv_lines(entries: Iterable[dict[str, Any]]) -> Iterator[str]:
    return csv_chunks(list(COLUMNS), ([_cell(c, e[c]) for c in COLUMNS] for e in entries))


def _jsonl_lines(entries: Iterable[dict[str, Any]]) -> Iterator[str]:
    lines: list[str] = []
    for e in entries:
        lines.append(json.dumps(e, ensure_ascii=False, default=str) + "\n")
        if len(lines) == CHUNK:
            yield "".join(lines)
            lines = []
    yield "".join(lines)


def chunks(fmt: ExportFormat, entries: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """The export as UTF-8 byte chunks (a streamed answer)."""
    lines = _csv_lines(entries) if fmt is ExportFormat.csv else _jsonl_lines(entries)
    for text in lines:
        if text:
            yield text.encode("utf-8")


def write(path: Path, fmt: ExportFormat, entries: Iterable[dict[str, Any]]) -> int:
    """Write the export to ``path``; returns how many entries it holds."""
    count = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal count
        for e in entries:
            count += 1
            yield e

    with path.open("wb") as out:
        for chunk in chunks(fmt, counted()):
            out.write(chunk)
    return count


def format_of(path: Path) -> ExportFormat:
    """The format a file name asks for: ``.csv`` or ``.jsonl`` (``.ndjson``)."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "ndjson":
        return ExportFormat.jsonl
    try:
        return ExportFormat(suffix)
    except ValueError:
        from gis_service.errors import InvalidInput

        raise InvalidInput(
            f"{path.name}: the export is written as .csv or .jsonl (give --format)",
            field="out",
        ) from None
