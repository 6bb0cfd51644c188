"""The answers of ``/ogc/`` (OGC 17-069r4 §7.2–7.16 and its OpenAPI schemas:
landingPage.yaml, confClasses.yaml, collections.yaml, collection.yaml,
featureCollectionGeoJSON.yaml, featureGeoJSON.yaml), and TileJSON 3.0.0."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gis_service.api.schemas import Geometry


class OGCLink(BaseModel):
    """A link (link.yaml; RFC 8288 relation types)."""

    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class LandingPage(BaseModel):
    """§7.2 API landing page: links to the API definition, conformance and the data."""

    title: str
    description: str
    links: list[OGCLink]


class Conformance(BaseModel):
    """§7.4 declaration of conformance classes."""

    conformsTo: list[str]


class SpatialExtent(BaseModel):
    bbox: list[list[float]] = Field(min_length=1)
    crs: str


class TemporalExtent(BaseModel):
    interval: list[list[str | None]] = Field(min_length=1)
    trs: str


class Extent(BaseModel):
    spatial: SpatialExtent | None = None
    temporal: TemporalExtent | None = None


class CollectionInfo(BaseModel):
    """§7.14 one feature collection."""

    id: str
    title: str
    description: str
    links: list[OGCLink]
    extent: Extent
    itemType: Literal["feature"]
    crs: list[str]
    storageCrs: str
    geometryType: str = Field(description="the kind of geometry of its features (ours)")


class Collections(BaseModel):
    """§7.13 the feature collections."""

    links: list[OGCLink]
    collections: list[CollectionInfo]


class OGCFeature(BaseModel):
    """featureGeoJSON.yaml: a GeoJSON feature (RFC 7946), with its links when alone."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    id: int | str
    geometry: Geometry | None
    properties: dict[str, Any] | None
    links: list[OGCLink] | None = None


class OGCFeatureCollection(BaseModel):
    """featureCollectionGeoJSON.yaml: a page of features with the paging links."""

    type: Literal["FeatureCollection"]
    features: list[OGCFeature]
    links: list[OGCLink]
    timeStamp: str
    numberMatched: int
    numberReturned: int


class VectorLayer(BaseModel):
    """TileJSON 3.0.0 §3.3.26 vector_layers item: a layer of the tiles and its fields."""

    id: str
    description: str
    fields: dict[str, str]
    minzoom: int
    maxzoom: int


class TileJSON(BaseModel):
    """TileJSON 3.0.0 (mapbox/tilejson-spec) for one of our vector tile layers."""

    tilejson: Literal["3.0.0"]
    name: str
    description: str
    version: str
    scheme: Literal["xyz"]
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[float] = Field(min_length=4, max_length=4)
    center: list[float] = Field(min_length=3, max_length=3)
    attribution: str | None = None
    vector_layers: list[VectorLayer]
