"""Reading attribute values from imported rows: the rules every imported cell obeys.

Every text cell that an import stores (names, codes, addresses, roster entries, the extra
attributes of a boundary) goes through ``text_value``; every count through ``count_value``.
A cell that breaks a rule is a per-feature problem naming the feature and the field
(``Cells``), so bad text never reaches PostgreSQL, which cannot store NUL characters and
whose ``integer`` columns end at 2,147,483,647.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gis_service.errors import ImportRejected
from gis_service.imports.problems import Problems

MAX_NAME_CHARS = 100
"""Longest name of a unit, service point or person (characters)."""
MAX_TEXT_CHARS = 1000
"""Longest other text cell: address, opening hours, an extra attribute (characters)."""
MAX_INTEGER = 2**31 - 1
"""PostgreSQL ``integer``: the largest count (population, households) a unit stores."""
MAX_SMALLINT = 2**15 - 1
"""PostgreSQL ``smallint``: the largest roster sort key."""
# C0 control characters other than tab, line feed and carriage return, and DEL: NUL cannot
# be stored at all, the others are invisible damage (a file cut or mis-decoded).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class CellError(ValueError):
    """A cell's value breaks one of the rules above; the message says which."""


def pick_column(
    columns: list[str], wanted: str | None, names: tuple[str, ...], what: str
) -> str | None:
    """The column to use: the one asked for (which must exist) or the first known name."""
    if wanted:
        if wanted not in columns:
            raise ImportRejected(f"field {wanted!r} ({what}) is not in the file; fields: {columns}")
        return wanted
    lowered = {str(c).lower().strip(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def _shown(text: str, limit: int = 20) -> str:
    """A value quoted for a message: control characters escaped, long text cut."""
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def text_value(value: Any, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """A cell as stripped text, or None when empty; numbers that are whole (410105.0 from a
    .dbf) lose the .0.

    Raises CellError for text with a NUL or other control character (tab and line breaks
    are allowed), text that is not valid Unicode (a lone surrogate), and text longer than
    ``max_chars`` characters.
    """
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None  # None, NaN, pandas' NA and NaT: an empty cell
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        return None
    bad = _CONTROL.search(text)
    if bad:
        raise CellError(
            f"{_shown(text)} contains the control character U+{ord(bad.group()):04X} "
            f"at position {bad.start() + 1}"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CellError(f"{_shown(text)} is not valid Unicode ({exc.reason})") from None
    if len(text) > max_chars:
        raise CellError(f"{_shown(text)} is {len(text):,} characters long; at most {max_chars:,}")
    return text


def count_value(value: Any, maximum: int = MAX_INTEGER) -> int | None:
    """A whole number 0…``maximum`` (thousands separators allowed), or None when empty.

    A float NaN is how GDAL and pandas give an empty numeric cell, so it is None; the text
    "NaN", infinities, fractions, negative and too large numbers raise CellError.
    """
    text = text_value(value)
    if text is None:
        return None
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        raise CellError(f"{_shown(text)} is not a number") from None
    if not math.isfinite(number):
        raise CellError(f"{_shown(text)} is not a finite number")
    if number < 0 or not number.is_integer() or number > maximum:
        raise CellError(f"{_shown(text)} must be a whole number from 0 to {maximum:,}")
    return int(number)


@dataclass
class Cells:
    """One feature's cells read by the rules above; a broken rule becomes a problem of
    this feature naming the field, and the cell reads as None."""

    seq: int
    problems: Problems
    label: dict[str, Any] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)
    """The columns whose cell broke a rule."""

    def _problem(self, column: str, exc: CellError) -> None:
        self.bad.add(column)
        self.problems.add(self.seq, f"field {column!r}: {exc}", field=column, **self.label)

    def text(self, column: str | None, value: Any, max_chars: int = MAX_TEXT_CHARS) -> str | None:
        if column is None:
            return None
        try:
            return text_value(value, max_chars)
        except CellError as exc:
            self._problem(column, exc)
            return None

    def count(self, column: str | None, value: Any, maximum: int = MAX_INTEGER) -> int | None:
        if column is None:
            return None
        try:
            return count_value(value, maximum)
        except CellError as exc:
            self._problem(column, exc)
            return None

    def label_text(self, value: Any) -> str | None:
        """A value to label the feature with in problems (None if it breaks a rule)."""
        try:
            return text_value(value, MAX_NAME_CHARS)
        except CellError:
            return None
