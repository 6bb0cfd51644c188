"""Query parameters as small dataclasses, so each route says what it accepts, and the one
rule for what text and numbers any request may carry (used by ``api/guard.py`` on every
query, path, header, form and JSON value before a route sees it)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from gis_service.errors import InvalidInput
from gis_service.geo.checks import check_lon_lat
from gis_service.geo.coords import CoordSys, point_to_wgs84
from gis_service.geo.geojson import page_links

MAX_LIMIT = 1000
#: the longest single text value any request may carry (characters). Fields with a
#: tighter limit say so in their own model (e.g. a case description: 2000).
MAX_TEXT = 10_000
#: characters no stored or answered text may hold: the C0 controls other than tab, line
#: feed and carriage return (PostgreSQL text cannot hold NUL; XML 1.0 §2.2, which the
#: Open311 XML answers follow, allows none of them), UTF-16 surrogates (not encodable in
#: UTF-8) and the non-characters U+FFFE, U+FFFF (not XML characters either).
BAD_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: integers beyond PostgreSQL's bigint cannot name or count anything we store
MAX_INT = 2**63 - 1


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be accepted as text, or None when it can."""
    if len(value) > MAX_TEXT:
        return f"is {len(value)} characters long; at most {MAX_TEXT} are accepted"
    bad = BAD_CHARACTERS.search(value)
    if bad and "\udc80" <= bad.group() <= "\udcff":  # a byte that was not UTF-8
        return "is not UTF-8 text"
    if bad:
        return (
            f"holds the control character U+{ord(bad.group()):04X} at position "
            f"{bad.start()}; text may not contain control characters"
        )
    return None


def decode_text(raw: bytes) -> tuple[str | None, str | None]:
    """(text, None), or (None, why) when ``raw`` is not acceptable UTF-8 text."""
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"is not UTF-8 text (byte 0x{raw[exc.start]:02X} at {exc.start})"
    return value, text_problem(value)


def number_problem(value: float | int) -> str | None:
    """Why a number cannot be accepted (NaN, ±Infinity, 1e999, beyond bigint), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (NaN and Infinity are not numbers we can store)"
    if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
        return f"is out of range (at most ±{MAX_INT})"
    return None


@dataclass
class BBoxParams:
    bbox: Annotated[
        str | None,
        Query(
            description="minlon,minlat,maxlon,maxlat in WGS-84", examples=["113.6,34.7,113.9,34.9"]
        ),
    ] = None

    def parsed(self) -> tuple[float, float, float, float] | None:
        if self.bbox is None:
            return None
        try:
            minx, miny, maxx, maxy = (float(v) for v in self.bbox.split(","))
        except ValueError:
            raise InvalidInput(
                f"bbox {self.bbox!r} must be four numbers: minlon,minlat,maxlon,maxlat",
                field="bbox",
            ) from None
        if any(not math.isfinite(v) for v in (minx, miny, maxx, maxy)):
            raise InvalidInput(f"bbox {self.bbox!r} must be four finite numbers", field="bbox")
        check_lon_lat(minx, miny)
        check_lon_lat(maxx, maxy)
        if minx > maxx or miny > maxy:
            raise InvalidInput(f"bbox {self.bbox!r}: min must not exceed max", field="bbox")
        return minx, miny, maxx, maxy


@dataclass
class PageParams:
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Features per page")] = 100
    offset: Annotated[int, Query(ge=0, description="Features to skip")] = 0

    def answer(self, request: Request, fc: dict[str, Any]) -> JSONResponse:
        """A page of features (``numberMatched`` set) as ``application/geo+json`` with its
        self/next/prev links (OGC API Features), keeping the request's other filters."""
        fc["links"] = page_links(
            str(request.url).split("?")[0],
            dict(request.query_params),
            self.limit,
            self.offset,
            fc["numberMatched"],
        )
        return JSONResponse(fc, media_type="application/geo+json")


@dataclass
class PointParams:
    lon: Annotated[float, Query(description="Longitude in coord_sys")]
    lat: Annotated[float, Query(description="Latitude in coord_sys")]
    coord_sys: Annotated[
        CoordSys, Query(description="wgs84 (GPS), gcj02 (Amap/Tencent) or bd09 (Baidu)")
    ] = CoordSys.wgs84

    def wgs84(self) -> tuple[float, float]:
        check_lon_lat(self.lon, self.lat)
        return point_to_wgs84(self.lon, self.lat, self.coord_sys)
