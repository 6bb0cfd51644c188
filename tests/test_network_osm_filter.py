"""Which OpenStreetMap ways the walking network keeps: OSMnx's "walk" filter, checked by
importing a small OpenStreetMap file written here (as .osm XML and as .osm.pbf) through
the real import and reading back which ways reached ``walk_edge``."""

from __future__ import annotations

import osmium
import pytest
from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.network.imports import import_network
from gis_service.network.osm import walkable
from tests.test_access_edges import _line, _osm_xml

# Every way starts on the base street (y=0), so all kept ways form one connected part.
BASE = (_line(0, 0, 2000, 0), {"highway": "residential", "name": "base"})


def _spur(x: float, tags: dict[str, str]):
    return (_line(x, 0, x, 300), tags)


def _square(x: float, tags: dict[str, str]):
    """A closed way: a square whose corner sits on the base street."""
    return ([(x, 0), (x + 80, 0), (x + 80, 80), (x, 80), (x, 0)], tags)


KEPT = {
    "trail": _spur(100, {"highway": "trail"}),
    "trunk": _spur(200, {"highway": "trunk"}),
    "track": _spur(300, {"highway": "track"}),
    "footway": _spur(400, {"highway": "footway"}),
    "service": _spur(500, {"highway": "service", "service": "driveway"}),
    # OSMnx's default access filter excludes only access=private
    "access no": _spur(600, {"highway": "residential", "access": "no"}),
}
DROPPED = {
    "pedestrian square": _square(700, {"highway": "pedestrian", "area": "yes"}),
    "footway area, foot=yes": _square(850, {"highway": "footway", "area": "yes", "foot": "yes"}),
    "cycleway, foot=designated": _spur(1000, {"highway": "cycleway", "foot": "designated"}),
    "motorway link": _spur(1100, {"highway": "motorway_link"}),
    "platform": _spur(1200, {"highway": "platform"}),
    "private footway": _spur(1300, {"highway": "footway", "access": "private"}),
    "foot=no": _spur(1400, {"highway": "residential", "foot": "no"}),
    "private service": _spur(1500, {"highway": "service", "service": "private"}),
    "proposed": _spur(1600, {"highway": "proposed"}),
    "bus guideway": _spur(1700, {"highway": "bus_guideway"}),
    "no highway": _spur(1800, {"railway": "rail"}),
}
WAYS = [BASE, *KEPT.values(), *DROPPED.values()]
WAY_ID = {name: i for i, name in enumerate(["base", *KEPT, *DROPPED], start=1)}


def _write(tmp_path, suffix: str):
    xml = tmp_path / "filter.osm"
    xml.write_text(_osm_xml(WAYS), encoding="utf-8")
    if suffix == ".osm":
        return xml
    pbf = tmp_path / "filter.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(xml)):
            writer.add(obj)
    return pbf


@pytest.mark.parametrize("suffix", [".osm", ".osm.pbf"])
def test_the_import_keeps_what_osmnx_walk_keeps(db, tmp_path, suffix):
    import_network(_write(tmp_path, suffix), settings=db, keep_all=True)
    with get_engine(db).connect() as conn:
        imported = {r[0] for r in conn.execute(text("SELECT DISTINCT osm_id FROM walk_edge"))}
    named = {way_id: name for name, way_id in WAY_ID.items()}
    assert {named[i] for i in imported} == {"base", *KEPT}


@pytest.mark.parametrize(
    ("tags", "kept"),
    [
        ({"highway": "trail"}, True),
        ({"highway": "unclassified", "area": "no"}, True),
        ({"highway": "motorway"}, False),
        ({"highway": "pedestrian", "area": "yes", "foot": "designated"}, False),
        ({"highway": "residential", "access": "private", "foot": "yes"}, False),
        ({"building": "yes"}, False),
    ],
)
def test_walkable_reads_tags_as_overpass_reads_the_osmnx_filter(tags, kept):
    assert walkable(tags) is kept


def test_street_names_with_line_breaks_and_backslashes_are_stored_on_one_line(db, tmp_path):
    ways = [
        (_line(0, 0, 500, 0), {"highway": "residential", "name": "人民路&#13;&#10;北段"}),
        (_line(500, 0, 1000, 0), {"highway": "residential", "name": "C:\\路&#9;二"}),
    ]
    path = tmp_path / "names.osm"
    path.write_text(_osm_xml(ways), encoding="utf-8")
    import_network(path, settings=db)
    with get_engine(db).connect() as conn:
        names = conn.execute(text("SELECT DISTINCT name FROM walk_edge ORDER BY name")).scalars()
        assert list(names) == ["C:\\路 二", "人民路  北段"]
