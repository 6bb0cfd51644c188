"""The query parameters of ``/ogc/collections/{collectionId}/items`` (OGC 17-069r4 §7.15),
parsed and checked: a bad value raises ``InvalidInput`` naming the parameter, which the
OGC routes answer with 400 (§7.15.1 "Requirement 13 /req/core/query-param-invalid").

* ``bbox`` (§7.15.3): 4 or 6 numbers, CRS84 (longitude, latitude[, height]); the heights
  of a 6-number box are ignored (our features are 2D). A box whose west edge is east of
  its east edge crosses the antimeridian (Requirement 24) and is split in two.
* ``limit`` (§7.15.2): an integer ≥ 1, default :data:`LIMIT_DEFAULT`; a value above
  :data:`LIMIT_MAX` is not an error but served as the maximum (Requirement 21 B).
* ``datetime`` (§7.15.4): an RFC 3339 date-time (with ``Z`` or an offset) or a date, or an
  interval ``start/end`` with ``..`` (or nothing) for an open end. A date alone is the
  whole day in UTC. Applied to the collection's temporal property (cases: the report
  time); collections without one read it and ignore it.
* ``after`` / ``before``: the keyset cursor of the paging links (the feature id the page
  starts after or ends before); clients follow ``next``/``prev`` links, never build them.
* ``f``: ``json`` (the only encoding; GeoJSON for features).
* ``crs``, ``bbox-crs`` (OGC 18-058 Part 2, which clients such as GDAL send once a
  collection lists its ``crs``): only CRS84, the one CRS we serve; another is a 400.

Any other parameter is refused (Requirement 14 /req/core/query-param-unknown).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.datastructures import QueryParams

from gis_service.errors import InvalidInput

LIMIT_DEFAULT = 10
LIMIT_MAX = 10000
#: every query parameter of the items operation
ITEMS_PARAMS = ("bbox", "datetime", "limit", "after", "before", "f", "crs", "bbox-crs")
#: the parameters of the other OGC operations (one feature: also crs)
OTHER_PARAMS = ("f",)
ITEM_PARAMS = ("f", "crs")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
FORMATS = ("json",)
OPEN_END = ("", "..")

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Interval:
    """A closed interval of instants; None is an open end. An instant is start == end."""

    start: datetime | None
    end: datetime | None
    #: the end is exclusive (a date's day ends at the next midnight)
    end_open: bool = False


@dataclass(frozen=True)
class ItemsQuery:
    """The checked parameters of one items request, and the spellings its links repeat."""

    boxes: tuple[Box, ...] = ()
    interval: Interval | None = None
    limit: int = LIMIT_DEFAULT
    after: str | None = None
    before: str | None = None
    #: bbox and datetime as the request spelt them (links repeat them)
    bbox_text: str | None = None
    datetime_text: str | None = None

    def link_params(self) -> dict[str, Any]:
        """The filters of this request, in a fixed order, for the paging links."""
        out: dict[str, Any] = {}
        if self.bbox_text is not None:
            out["bbox"] = self.bbox_text
        if self.datetime_text is not None:
            out["datetime"] = self.datetime_text
        out["limit"] = self.limit
        return out


def check_known(query: QueryParams, known: tuple[str, ...]) -> None:
    """400 for a parameter the operation does not define, naming it (Requirement 14), or
    for one given twice; ``f`` must be ``json``."""
    for name in query:
        if name not in known:
            raise InvalidInput(
                f"unknown query parameter {name!r}; this operation takes: {', '.join(known)}",
                field=name,
            )
        if len(query.getlist(name)) > 1:
            raise InvalidInput(f"{name} is given more than once", field=name)
    f = query.get("f")
    if f is not None and f not in FORMATS:
        raise InvalidInput(f"f must be one of: {', '.join(FORMATS)} (got {f!r})", field="f")
    for name in ("crs", "bbox-crs"):
        value = query.get(name)
        if value is not None and value.strip("[]") != CRS84:
            raise InvalidInput(f"{name}: only {CRS84} is served (got {value!r})", field=name)


def parse_items(query: QueryParams, *, key_is_int: bool) -> ItemsQuery:
    """The checked :class:`ItemsQuery` of an items request; 400 naming the parameter."""
    check_known(query, ITEMS_PARAMS)
    bbox_text = query.get("bbox")
    datetime_text = query.get("datetime")
    after, before = query.get("after"), query.get("before")
    if after is not None and before is not None:
        raise InvalidInput("give after or before, not both", field="before")
    for name, value in (("after", after), ("before", before)):
        if value is not None and (value == "" or (key_is_int and not _is_int(value))):
            kind = "a feature id (an integer)" if key_is_int else "a feature id"
            raise InvalidInput(f"{name} must be {kind} (got {value!r})", field=name)
    return ItemsQuery(
        boxes=parse_bbox(bbox_text) if bbox_text is not None else (),
        interval=parse_datetime(datetime_text) if datetime_text is not None else None,
        limit=parse_limit(query.get("limit")),
        after=after,
        before=before,
        bbox_text=bbox_text,
        datetime_text=datetime_text,
    )


def _is_int(value: str) -> bool:
    return re.fullmatch(r"-?\d{1,18}", value) is not None


def parse_limit(value: str | None) -> int:
    """``limit``: an integer ≥ 1; above :data:`LIMIT_MAX` served as the maximum."""
    if value is None:
        return LIMIT_DEFAULT
    if not re.fullmatch(r"\d{1,12}", value.strip()) or int(value) < 1:
        raise InvalidInput(
            f"limit must be an integer from 1 to {LIMIT_MAX} (got {value!r})", field="limit"
        )
    return min(int(value), LIMIT_MAX)


def parse_bbox(value: str) -> tuple[Box, ...]:
    """``bbox``: 4 or 6 comma-separated numbers in CRS84 → one box, or two when it crosses
    the antimeridian."""
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise InvalidInput(
            f"bbox must be 4 or 6 comma-separated numbers (got {len(parts)})", field="bbox"
        )
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise InvalidInput(f"bbox must be numbers (got {value!r})", field="bbox") from None
    if not all(math.isfinite(n) for n in nums):
        raise InvalidInput("bbox numbers must be finite", field="bbox")
    if len(nums) == 6:  # minx, miny, minz, maxx, maxy, maxz: the heights are ignored
        nums = [nums[0], nums[1], nums[3], nums[4]]
    west, south, east, north = nums
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise InvalidInput("bbox longitudes must lie in -180…180", field="bbox")
    if not (-90 <= south <= north <= 90):
        raise InvalidInput(
            "bbox latitudes must lie in -90…90, the southern one first", field="bbox"
        )
    if west <= east:
        return ((west, south, east, north),)
    return ((west, south, 180.0, north), (-180.0, south, east, north))


def _instant(text: str, *, end: bool) -> tuple[datetime, bool]:
    """(instant, exclusive): a date-time, or a date's first instant (or, as an end, the
    next day's first instant, exclusive)."""
    if _RFC3339.match(text):
        try:
            return datetime.fromisoformat(text.replace("z", "Z").replace(" ", "T")), False
        except ValueError:
            pass
    elif _DATE.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return (start + timedelta(days=1), True) if end else (start, False)
    raise InvalidInput(
        f"datetime {text!r} is not an RFC 3339 date-time with an offset "
        "(2026-10-01T08:00:00Z) or a date (2026-10-01)",
        field="datetime",
    )


def parse_datetime(value: str) -> Interval:
    """``datetime``: an instant (a date: its whole day) or ``start/end`` with ``..`` for
    an open end; 400 if neither end is given or the start is after the end."""
    if "/" not in value:
        start, _ = _instant(value, end=False)
        if _DATE.match(value):
            end, _ = _instant(value, end=True)
            return Interval(start, end, end_open=True)
        return Interval(start, start)
    if value.count("/") != 1:
        raise InvalidInput("datetime holds at most one '/'", field="datetime")
    a, b = value.split("/")
    if a in OPEN_END and b in OPEN_END:
        raise InvalidInput("datetime: an interval needs at least one end", field="datetime")
    start = None if a in OPEN_END else _instant(a, end=False)[0]
    end, end_open = (None, False) if b in OPEN_END else _instant(b, end=True)
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"datetime: the start {a} is after the end {b}", field="datetime")
    return Interval(start, end, end_open)
