"""``import network``: an OSM extract or a line layer into walk_node / walk_edge, in one
transaction (a failed import leaves the previous network in place)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gis_service.db.engine import transaction
from gis_service.errors import ImportRejected
from gis_service.geo.bounds import GeometryLimits
from gis_service.geo.coords import CoordSys
from gis_service.imports.readers import VECTOR_SUFFIXES
from gis_service.imports.report import Progress, no_progress
from gis_service.network.layer import read_layer
from gis_service.network.osm import read_osm
from gis_service.network.store import Network, write_network
from gis_service.settings import Settings, get_settings

OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz", ".o5m")


@dataclass
class NetworkImport:
    source: str
    edges: int
    nodes: int
    length_km: float
    oneway_edges: int

    def summary(self) -> str:
        return (
            f"{self.source}: {self.edges:,} edges, {self.nodes:,} nodes, "
            f"{self.length_km:,.1f} km walkable, {self.oneway_edges:,} one-way"
        )


def read_network(
    path: Path,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    keep_all: bool = False,
    crs: str | None = None,
    coord_sys: CoordSys | str = CoordSys.wgs84,
    layer: str | None = None,
    progress: Progress = no_progress,
    limits: GeometryLimits | None = None,
) -> Network:
    """The network of an OSM extract or a line layer, held to ``limits`` (default: the
    settings' network limits, ``geo/bounds.py``)."""
    limits = limits or GeometryLimits.of(get_settings(), network=True)
    name = path.name.lower()
    if not name.endswith(OSM_SUFFIXES + tuple(VECTOR_SUFFIXES)):
        raise ImportRejected(
            f"{path.name}: not a network file; use an OpenStreetMap extract "
            "(.osm.pbf, .osm) or lines in GeoJSON, GeoPackage or Shapefile"
        )
    if name.endswith(OSM_SUFFIXES):
        return read_osm(path, bbox=bbox, keep_all=keep_all, progress=progress, limits=limits)
    return read_layer(path, crs=crs, coord_sys=coord_sys, layer=layer, limits=limits)


def import_network(
    path: Path, *, settings: Settings | None = None, progress: Progress = no_progress, **options
) -> NetworkImport:
    settings = settings or get_settings()
    progress("reading")
    limits = GeometryLimits.of(settings, network=True)
    net = read_network(Path(path), progress=progress, limits=limits, **options)
    progress(f"writing {net.edge_count:,} edges")
    with transaction(settings) as conn:
        write_network(conn, net)
        length = conn.exec_driver_sql("SELECT sum(length_m) FROM walk_edge").scalar() or 0.0
    return NetworkImport(
        source=Path(path).name,
        edges=net.edge_count,
        nodes=len(net.node_id),
        length_km=length / 1000,
        oneway_edges=int(net.oneway.sum()),
    )
