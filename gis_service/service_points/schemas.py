"""Answer models of service points (``XPublic``)."""

from __future__ import annotations

from gis_service.api.schemas import Feature, FeaturePage, Public


class ServiceKindPublic(Public):
    code: str
    name_zh: str
    name_en: str | None
    default_categories: list[str]
    counts_for_party_reach: bool


class ServiceCategoryPublic(Public):
    code: str
    name_zh: str
    name_en: str | None


class ServiceKinds(Public):
    kinds: list[ServiceKindPublic]
    categories: list[ServiceCategoryPublic]


class PointProperties(Public):
    id: int
    kind: str
    categories: list[str]
    name: str
    address: str | None
    opening_hours: str | None
    phone: str | None
    unit_code: str | None


class PointCollection(FeaturePage[PointProperties]):
    """Service points as a page of GeoJSON point features."""


class PointFeature(Feature[PointProperties]):
    """One service point as a GeoJSON point feature."""
