"""Answer models of the tile routes' JSON answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gis_service.api.schemas import Public


class Picked(BaseModel):
    """The case drawn nearest a click, or ``{"id": null}`` when none is near."""

    id: int | None


class MapStyle(Public):
    """The basemap's style (tiles/style.json): background, zoom range, and per layer of
    the basemap tile its colours and zooms."""

    name: str
    description: str | None = None
    background: str
    minzoom: int
    maxzoom: int
    layers: dict[str, Any]
