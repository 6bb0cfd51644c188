"""gis_service: grid management and issue tracking for city communities, on PostGIS."""

__version__ = "0.1.0"
