"""What an export holds: its columns, declared once per export and read by every format.

A :class:`Column` has the identifier the GIS formats and the code use (``name``), the
header people read in each language (``zh``, ``en``) and a :class:`Kind` that says how
each format writes the value:

========  ==========================  ==================================  ===============
kind      value in the rows           CSV / XLSX                          GPKG / GeoJSON
========  ==========================  ==================================  ===============
text      str                         text (formula-escaped in CSV)       String
int       int                         number                              Integer64
number    float                       number                              Real
date      date                        ``YYYY-MM-DD`` / an Excel date      Date
datetime  aware datetime (instant)    district time (timezone.py) / an    DateTime, the
                                      Excel date-time, naive local        same instant
percent   float, a share 0…1          ``85.2%`` / a number, ``0.0%``      Real (0…1)
bool      bool                        是/否 (yes/no) / 是/否                Integer (0/1)
========  ==========================  ==================================  ===============

None is an empty cell (NULL in the GIS formats) in every kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    text = "text"
    int = "int"
    number = "number"
    date = "date"
    datetime = "datetime"
    percent = "percent"
    bool = "bool"


class Lang(StrEnum):
    zh = "zh"
    en = "en"


@dataclass(frozen=True)
class Column:
    name: str
    zh: str
    en: str
    kind: Kind = Kind.text
    #: the XLSX column width in characters; None: from the header and the kind
    width: float | None = None

    def label(self, lang: Lang | str) -> str:
        return self.zh if lang == Lang.zh else self.en

    def xlsx_width(self, lang: Lang | str) -> float:
        if self.width is not None:
            return self.width
        header = sum(2 if ord(ch) > 0x2E7F else 1 for ch in self.label(lang)) + 2
        return float(max(header, _KIND_WIDTH[self.kind]))


_KIND_WIDTH: dict[Kind, int] = {
    Kind.text: 12,
    Kind.int: 8,
    Kind.number: 10,
    Kind.date: 11,
    Kind.datetime: 17,
    Kind.percent: 9,
    Kind.bool: 6,
}

#: a row: column name → value (see the module for each kind's value); a row of an export
#: with geometry also carries ``GEOMETRY`` (WKB bytes in EPSG:4326, or None)
Row = dict[str, Any]
GEOMETRY = "__geometry__"


@dataclass
class Table:
    """One export, ready to write: its columns, its rows (an iterator: a large export is
    read from a server-side cursor while it is written) and how many rows there are
    (``total``, for progress; None when unknown)."""

    kind: str
    columns: list[Column]
    rows: Iterator[Row]
    total: int | None = None
    #: the geometry type of ``GEOMETRY`` (``Point``, ``MultiPolygon``…); None: no geometry
    geometry_type: str | None = None
    #: the sheet / layer name
    title: str = "export"
    #: closes what the rows are read from (a connection) once written or abandoned
    close: Callable[[], None] = field(default=lambda: None)


def bool_label(value: bool, lang: Lang | str) -> str:
    """是/否 in Chinese, yes/no in English: a spreadsheet's reader's words, not true/false."""
    if lang == Lang.zh:
        return "是" if value else "否"
    return "yes" if value else "no"
