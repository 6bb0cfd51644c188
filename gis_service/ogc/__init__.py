"""OGC API – Features – Part 1: Core (OGC 17-069r4) at ``/ogc/``, with GeoJSON, and
TileJSON 3.0.0 documents for the vector tiles. See docs/ogc.md."""
