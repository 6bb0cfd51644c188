"""Boundary import against the real PostGIS: formats, QA report, all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Polygon, box
from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.errors import ImportRejected
from gis_service.geo.coords import CoordSys
from gis_service.imports.boundaries import BoundaryOptions, import_boundaries
from gis_service.settings import Settings
from gis_service.units.codes import Level
from tests.conftest import COMMUNITIES, DISTRICT, frame, write

ROOT = Path(__file__).resolve().parent.parent
BOWTIE = Polygon([(113.0, 34.0), (113.05, 34.05), (113.05, 34.0), (113.0, 34.05)])


def units(settings: Settings, level: str | None = None) -> list[dict]:
    sql = "SELECT code, name, parent_code, area_m2 FROM admin_unit"
    sql += " WHERE level = :l ORDER BY code" if level else " ORDER BY code"
    with get_engine(settings).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), {"l": level})]


def test_geojson_districts_import_and_report(db, tmp_path):
    path = write(frame({"410199": DISTRICT}), tmp_path / "d.geojson")
    report = import_boundaries(path, BoundaryOptions(level=Level.district), settings=db)
    assert (report.inserted, report.updated, report.warnings) == (1, 0, 0)
    [unit] = units(db)
    assert unit["code"] == "410199"
    assert unit["area_m2"] == pytest.approx(9.22e3 * 1.109e4, rel=0.01)  # 0.1° × 0.1° at 34° N
    again = import_boundaries(path, BoundaryOptions(level=Level.district), settings=db)
    assert (again.inserted, again.updated) == (0, 1)


def test_geopackage_and_csv_wkt_are_read(test_city, tmp_path):
    grids = {
        "41019900100101": box(113.0, 34.05, 113.025, 34.1),
        "41019900100102": box(113.025, 34.05, 113.05, 34.1),
    }
    gpkg = write(frame(grids), tmp_path / "grids.gpkg", driver="GPKG")
    report = import_boundaries(gpkg, BoundaryOptions(level=Level.grid), settings=test_city)
    assert report.inserted == 2 and report.gaps == []
    csv = tmp_path / "grids.csv"
    pd.DataFrame(
        {"code": list(grids), "name": ["甲", "乙"], "wkt": [g.wkt for g in grids.values()]}
    ).to_csv(csv, index=False)
    report = import_boundaries(csv, BoundaryOptions(level=Level.grid), settings=test_city)
    assert report.updated == 2
    assert [u["name"] for u in units(test_city, "grid")] == ["甲", "乙"]


def test_gbk_shapefile_without_cpg_keeps_chinese_names(db, tmp_path):
    path = tmp_path / "districts.shp"
    frame({"410199": DISTRICT}, prefix="金水区测试").to_file(path, encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    raw = path.with_suffix(".dbf").read_bytes()
    assert "金水区测试".encode("gbk") in raw  # really GBK on disk
    report = import_boundaries(path, BoundaryOptions(level=Level.district), settings=db)
    assert report.encoding == "GB18030"
    assert units(db)[0]["name"] == "金水区测试199"


def test_invalid_ring_is_repaired_and_listed(db, tmp_path):
    path = write(frame({"410199": BOWTIE}), tmp_path / "bowtie.geojson")
    report = import_boundaries(path, BoundaryOptions(level=Level.district), settings=db)
    [fix] = report.repaired
    assert fix["feature"] == 1 and "Self-intersection" in fix["reason"]
    assert fix["parts_after"] == 2
    with get_engine(db).connect() as conn:
        assert conn.execute(text("SELECT bool_and(ST_IsValid(geom)) FROM admin_unit")).scalar()


def test_overlaps_gaps_and_outside_parent_are_reported(test_city, tmp_path):
    grids = {
        "41019900100101": box(113.0, 34.05, 113.03, 34.1),  # overlaps the next by 0.005°
        "41019900100102": box(113.025, 34.05, 113.045, 34.1),  # leaves 113.045–113.05 bare
        "41019900100103": box(113.045, 34.09, 113.06, 34.1),  # sticks out east
    }
    path = write(frame(grids), tmp_path / "grids.geojson")
    report = import_boundaries(path, BoundaryOptions(level=Level.grid), settings=test_city)
    [overlap] = report.overlaps
    assert {overlap["a_code"], overlap["b_code"]} == {"41019900100101", "41019900100102"}
    assert overlap["area_m2"] == pytest.approx(0.005 * 92_000 * 0.05 * 111_000, rel=0.05)
    [gap] = report.gaps
    assert gap["parent_code"] == "410199001001" and gap["area_m2"] > 100_000
    [outside] = report.outside_parent
    assert outside["code"] == "41019900100103"
    assert outside["share"] == pytest.approx(0.667, abs=0.01)
    assert report.inserted == 3  # warnings do not block


def test_unknown_parent_rejects_the_whole_file(test_city, tmp_path):
    rows = {
        "410199001001": COMMUNITIES["410199001001"],
        "410199009001": box(113.0, 34.0, 113.01, 34.01),
    }
    path = write(frame(rows), tmp_path / "orphans.geojson")
    before = units(test_city)
    with pytest.raises(ImportRejected) as err:
        import_boundaries(path, BoundaryOptions(level=Level.community), settings=test_city)
    assert (
        "feature 2" in err.value.message
        and "unknown parent subdistrict 410199009" in err.value.message
    )
    assert units(test_city) == before


def test_duplicate_and_malformed_codes_are_listed_and_nothing_is_written(db, tmp_path):
    gdf = gpd.GeoDataFrame(
        {"code": ["410199", "410199", "41019X"], "name": ["a", "b", "c"]},
        geometry=[DISTRICT, DISTRICT, DISTRICT],
        crs=4326,
    )
    path = write(gdf, tmp_path / "dups.geojson")
    with pytest.raises(ImportRejected) as err:
        import_boundaries(path, BoundaryOptions(level=Level.district), settings=db)
    problems = err.value.extra["problems"]
    assert [p["feature"] for p in problems] == [2, 3]
    assert "duplicate code 410199 (also feature 1)" in problems[0]["problem"]
    assert "only digits" in problems[1]["problem"]
    assert units(db) == []


def test_one_bad_feature_leaves_nothing_behind(test_city, tmp_path):
    rows = {
        "41019900100101": box(113.0, 34.05, 113.025, 34.1),
        "41019900100102": box(113.025, 34.05, 113.05, 34.1),
    }
    gdf = frame(rows)
    gdf.loc[len(gdf)] = ["41019900100103", "远处", box(120.0, 30.0, 120.01, 30.01)]
    path = write(gdf, tmp_path / "grids.geojson")
    with pytest.raises(ImportRejected, match="lies entirely outside its parent"):
        import_boundaries(path, BoundaryOptions(level=Level.grid), settings=test_city)
    assert units(test_city, "grid") == []


def test_projected_file_without_crs_is_refused_and_with_crs_lands_right(db, tmp_path):
    metric = frame({"410199": DISTRICT}).to_crs(32649)
    path = tmp_path / "utm.csv"
    pd.DataFrame({"code": ["410199"], "name": ["x"], "wkt": [metric.geometry[0].wkt]}).to_csv(
        path, index=False
    )
    with pytest.raises(ImportRejected, match="pass --crs"):
        import_boundaries(path, BoundaryOptions(level=Level.district), settings=db)
    report = import_boundaries(
        path, BoundaryOptions(level=Level.district, crs="EPSG:32649"), settings=db
    )
    assert report.source_crs == "EPSG:32649"
    with get_engine(db).connect() as conn:
        hd = conn.execute(
            text("SELECT ST_HausdorffDistance(geom, ST_GeomFromText(:w, 4326)) FROM admin_unit"),
            {"w": DISTRICT.wkt},
        ).scalar()
    assert hd < 1e-6


def test_shapefile_prj_is_honoured(db, tmp_path):
    path = write(frame({"410199": DISTRICT}).to_crs(32649), tmp_path / "utm.shp")
    report = import_boundaries(path, BoundaryOptions(level=Level.district), settings=db)
    assert "32649" in report.source_crs
    assert units(db)[0]["area_m2"] == pytest.approx(1.023e8, rel=0.01)


def test_gcj02_input_is_stored_as_wgs84(db, tmp_path):
    path = write(frame({"410199": DISTRICT}), tmp_path / "gcj.geojson")
    import_boundaries(
        path, BoundaryOptions(level=Level.district, coord_sys=CoordSys.gcj02), settings=db
    )
    with get_engine(db).connect() as conn:
        xmin = conn.execute(text("SELECT ST_XMin(geom) FROM admin_unit")).scalar()
    assert 113.0 - 0.01 < xmin < 113.0 - 0.001  # GCJ-02 is east of WGS-84 here


def test_parents_are_inferred_and_codes_assigned(test_city, tmp_path):
    gdf = gpd.GeoDataFrame(
        {"name": ["北网格", "南网格"]},
        geometry=[box(113.06, 34.06, 113.07, 34.07), box(113.06, 34.01, 113.07, 34.02)],
        crs=4326,
    )
    path = write(gdf, tmp_path / "grids.geojson")
    report = import_boundaries(path, BoundaryOptions(level=Level.grid), settings=test_city)
    assert (report.parents_inferred, report.codes_assigned) == (2, 2)
    assert [(u["code"], u["parent_code"]) for u in units(test_city, "grid")] == [
        ("41019900200101", "410199002001"),
        ("41019900200201", "410199002002"),
    ]
    again = import_boundaries(path, BoundaryOptions(level=Level.grid), settings=test_city)
    assert (again.inserted, again.updated) == (0, 2)  # same names, same codes


def test_dry_run_writes_nothing(db, tmp_path):
    path = write(frame({"410199": DISTRICT}), tmp_path / "d.geojson")
    report = import_boundaries(
        path, BoundaryOptions(level=Level.district, dry_run=True), settings=db
    )
    assert report.inserted == 1 and report.dry_run
    assert units(db) == []


def test_points_are_not_boundaries(db, tmp_path):
    gdf = gpd.GeoDataFrame(
        {"code": ["410199"], "name": ["p"]}, geometry=gpd.points_from_xy([113.0], [34.0]), crs=4326
    )
    with pytest.raises(ImportRejected, match="is a Point"):
        import_boundaries(
            write(gdf, tmp_path / "p.geojson"), BoundaryOptions(level=Level.district), settings=db
        )


def test_real_zhengzhou_outlines_are_all_repaired(db):
    path = ROOT / "boundaries" / "zhengzhou_districts.geojson"
    report = import_boundaries(
        path, BoundaryOptions(level=Level.district, coord_sys=CoordSys.gcj02), settings=db
    )
    assert report.inserted == 12 and len(report.repaired) == 12
    jinshui = next(u for u in units(db) if u["code"] == "410105")
    assert jinshui["name"] == "金水区"
    assert jinshui["area_m2"] / 1e6 == pytest.approx(240, rel=0.05)  # data/README: ~240 km²
