"""Answer models of the unit hierarchy (``XPublic``)."""

from __future__ import annotations

from typing import Any

from gis_service.api.schemas import Feature, FeaturePage, LonLat, Public


class UnitPublic(Public):
    """A unit as ``locate`` lists it: code, level, name and counts."""

    code: str
    level: str
    name: str
    parent_code: str | None
    population: int | None = None
    households: int | None = None


class LocateQuery(Public):
    lon: float
    lat: float
    coord_sys: str


class Located(Public):
    """The point as sent, in WGS-84, the unit holding it at each level (null where none
    does) and the chain from the district down."""

    query: LocateQuery
    wgs84: LonLat
    district: UnitPublic | None
    subdistrict: UnitPublic | None
    community: UnitPublic | None
    grid: UnitPublic | None
    building: UnitPublic | None
    chain: list[UnitPublic]


class UnitProperties(UnitPublic):
    area_m2: float | None = None


class AncestorRef(Public):
    code: str
    level: str
    name: str


class UnitDetailProperties(UnitProperties):
    """One unit: its ancestors, how many children per level, and the roster the viewer
    may read (auth/scope.py ``roster_filter``)."""

    ancestors: list[AncestorRef]
    children: dict[str, int]
    roster: list[dict[str, Any]]


class UnitCollection(FeaturePage[UnitProperties]):
    """Units as a page of GeoJSON features (geometry null with geometry=false)."""


class UnitFeature(Feature[UnitDetailProperties]):
    """One unit as a GeoJSON feature."""
