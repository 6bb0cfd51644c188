"""Coordinate range checks shared by the API and the importers."""

from __future__ import annotations

from gis_service.errors import InvalidInput


def check_lon_lat(lon: float, lat: float) -> None:
    """Refuse what cannot be a longitude/latitude, naming the bad value."""
    if not -180.0 <= lon <= 180.0:
        raise InvalidInput(f"lon {lon} is out of range [-180, 180]", field="lon")
    if not -90.0 <= lat <= 90.0:
        raise InvalidInput(f"lat {lat} is out of range [-90, 90]", field="lat")
