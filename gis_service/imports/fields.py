"""Reading attribute values from imported rows, with messages that name the feature."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from gis_service.errors import ImportRejected


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


def text_value(value: Any) -> str | None:
    """A cell as stripped text; numbers that are whole (410105.0 from a .dbf) lose the .0."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def count_value(value: Any, feature: int, field: str) -> int | None:
    text = text_value(value)
    if text is None:
        return None
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        raise ImportRejected(
            f"feature {feature}: {field} {text!r} is not a number", feature=feature
        ) from None
    if number < 0 or not number.is_integer():
        raise ImportRejected(
            f"feature {feature}: {field} {text!r} must be a whole number ≥ 0", feature=feature
        )
    return int(number)
