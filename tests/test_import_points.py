"""Service-point import: formats, categories, idempotent re-imports, QA warnings."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.errors import ImportRejected
from gis_service.imports.points import PointOptions, import_points


def points(settings) -> list[dict]:
    with get_engine(settings).connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT kind, name, categories, unit_code, ST_X(geom) AS lon "
                    "FROM service_point "
                    "ORDER BY id"
                )
            )
        ]


def test_csv_lon_lat_with_chinese_headers_and_categories(test_city, tmp_path):
    path = tmp_path / "stations.csv"
    pd.DataFrame(
        {
            "名称": ["站一", "站二"],
            "经度": ["113.01", "113.07"],
            "纬度": ["34.07", "34.02"],
            "类别": ["卫生,安全", ""],
        }
    ).to_csv(path, index=False, encoding="gbk")
    report = import_points(path, PointOptions(kind="health_station"), settings=test_city)
    assert report.inserted == 2 and report.encoding == "gb18030"
    rows = points(test_city)
    assert rows[0]["categories"] == ["health", "safety"]
    assert rows[1]["categories"] == ["health"]  # the kind's default
    assert [r["unit_code"] for r in rows] == ["410199001001", "410199002002"]


def test_geojson_reimport_updates_instead_of_duplicating(test_city, tmp_path):
    gdf = gpd.GeoDataFrame(
        {"name": ["红色家园甲"]}, geometry=gpd.points_from_xy([113.02], [34.02]), crs=4326
    )
    path = tmp_path / "homes.geojson"
    gdf.to_file(path)
    import_points(path, PointOptions(kind="red_home"), settings=test_city)
    again = import_points(path, PointOptions(kind="red_home"), settings=test_city)
    assert (again.inserted, again.updated) == (0, 1)
    assert len(points(test_city)) == 1


def test_outside_every_unit_and_near_duplicates_are_warned(test_city, tmp_path):
    gdf = gpd.GeoDataFrame(
        {"name": ["甲", "乙", "远"]},
        geometry=gpd.points_from_xy([113.02, 113.02002, 116.0], [34.02, 34.02, 39.0]),
        crs=4326,
    )
    path = tmp_path / "p.geojson"
    gdf.to_file(path)
    report = import_points(path, PointOptions(kind="party_org"), settings=test_city)
    assert [u["feature"] for u in report.unlocated] == [3]
    [dup] = report.duplicates
    assert dup["feature"] == 2 and dup["other_name"] == "甲" and dup["distance_m"] < 5


@pytest.mark.parametrize(
    ("kind", "categories", "message"),
    [("nonsense", "", "unknown kind 'nonsense'"), ("red_home", "fun", "unknown category 'fun'")],
)
def test_bad_vocabulary_is_refused_and_nothing_written(
    test_city, tmp_path, kind, categories, message
):
    path = tmp_path / "p.csv"
    pd.DataFrame(
        {"name": ["甲"], "lon": [113.02], "lat": [34.02], "categories": [categories]}
    ).to_csv(path, index=False)
    with pytest.raises(ImportRejected, match=message):
        import_points(path, PointOptions(kind=kind), settings=test_city)
    assert points(test_city) == []


def test_out_of_range_and_non_numeric_coordinates_are_refused(db, tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame({"name": ["甲"], "lon": ["113.0"], "lat": ["95"]}).to_csv(path, index=False)
    with pytest.raises(ImportRejected, match="not longitude/latitude"):
        import_points(path, PointOptions(kind="red_home"), settings=db)
    pd.DataFrame({"name": ["甲"], "lon": ["东经113"], "lat": ["34"]}).to_csv(path, index=False)
    with pytest.raises(ImportRejected, match="feature 1: lon/lat = '东经113'/'34' is not a finite"):
        import_points(path, PointOptions(kind="red_home"), settings=db)
