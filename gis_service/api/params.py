"""Query parameters as small dataclasses, so each route says what it accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

from gis_service.errors import InvalidInput
from gis_service.geo.checks import check_lon_lat
from gis_service.geo.coords import CoordSys, point_to_wgs84

MAX_LIMIT = 1000


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
        check_lon_lat(minx, miny)
        check_lon_lat(maxx, maxy)
        if minx > maxx or miny > maxy:
            raise InvalidInput(f"bbox {self.bbox!r}: min must not exceed max", field="bbox")
        return minx, miny, maxx, maxy


@dataclass
class PageParams:
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Features per page")] = 100
    offset: Annotated[int, Query(ge=0, description="Features to skip")] = 0


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
