"""Bad text and numbers inside imported files — a NUL character, over-long text, NaN and
infinities, numbers too large for the table — are problems of their feature naming the
field, for boundaries, service points and rosters, through the console script and
``POST /api/v1/imports``: a 422 (exit code 2), never a 500, and nothing half-written."""

from __future__ import annotations

import json

import pandas as pd
from shapely.geometry import box
from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.imports.fields import MAX_NAME_CHARS, MAX_TEXT_CHARS
from tests.conftest import ADMIN_AUTH
from tests.test_cli import run

NUL = "\x00"


def _count(settings, table: str) -> int:
    with get_engine(settings).connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _upload(client, path, **form):
    return client.post(
        "/api/v1/imports",
        headers=ADMIN_AUTH,
        files={"file": (path.name, path.read_bytes())},
        data=form,
    )


def _where(body: dict) -> list[tuple[int | None, str | None]]:
    return [(p["feature"], p.get("field")) for p in body["problems"]]


def _district_csv(path, rows: list[dict]) -> None:
    """Districts as CSV with WKT, one 0.1° square each."""
    for i, row in enumerate(rows):
        row.setdefault("code", f"41019{i + 1}")
        row.setdefault("wkt", box(113 + i / 10, 34.0, 113.1 + i / 10, 34.1).wkt)
    pd.DataFrame(rows).to_csv(path, index=False)


BAD_DISTRICTS = [
    {"name": f"金水{NUL}区", "population": "1000", "note": "ok"},
    {"name": "二七区", "population": "inf", "note": "ok"},
    {"name": "管城区", "population": "NaN", "note": "ok"},
    {"name": "区" * (MAX_NAME_CHARS + 1), "population": "", "note": "ok"},
    {"name": "惠济区", "population": str(2**31), "note": f"备注{NUL}"},
    {"name": "中原区", "population": "12,000", "note": "ok"},  # the one good row
]
BAD_DISTRICT_WHERE = [
    (1, "name"),
    (2, "population"),
    (3, "population"),
    (4, "name"),
    (5, "population"),
    (5, "note"),
]


def test_the_api_lists_each_bad_boundary_cell_and_writes_nothing(client, db, tmp_path):
    path = tmp_path / "districts.csv"
    _district_csv(path, [dict(r) for r in BAD_DISTRICTS])
    r = _upload(client, path, kind="boundaries", level="district")
    assert r.status_code == 422, r.json()
    body = r.json()
    assert body["error"] == "import_rejected"
    assert _where(body) == BAD_DISTRICT_WHERE
    problems = {(p["feature"], p["field"]): p["problem"] for p in body["problems"]}
    assert "U+0000" in problems[(1, "name")]
    assert "not a finite number" in problems[(2, "population")]
    assert f"{MAX_NAME_CHARS + 1} characters long" in problems[(4, "name")]
    assert "2,147,483,647" in problems[(5, "population")]
    assert NUL not in json.dumps(body, ensure_ascii=False)
    assert body["detail"].startswith("districts.csv: feature 1: field 'name'")
    assert client.get(body["status_url"], headers=ADMIN_AUTH).json()["status"] == "failed"
    assert _count(db, "admin_unit") == 0


def test_the_cli_names_the_feature_and_field_and_writes_nothing(db, tmp_path):
    path = tmp_path / "districts.csv"
    _district_csv(path, [dict(r) for r in BAD_DISTRICTS[1:]])
    done = run(db, "import", "boundaries", str(path), "--level", "district")
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert "feature 1: field 'population': 'inf' is not a finite number" in said
    assert "(and 4 more)" in said and "Traceback" not in said
    assert _count(db, "admin_unit") == 0


def test_non_finite_numbers_read_by_gdal_are_problems_too(client, db, tmp_path):
    path = tmp_path / "districts.geojson"
    features = [
        {
            "type": "Feature",
            "properties": {"code": code, "name": name, "population": population},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[113, 34], [113.1, 34], [113.1, 34.1], [113, 34]]],
            },
        }
        for code, name, population in (
            ("410191", "甲", "Infinity"),
            ("410192", "乙", "1e20"),
            ("410193", "丙", "null"),
        )
    ]
    text_ = json.dumps({"type": "FeatureCollection", "features": features})
    for word in ("Infinity", "1e20", "null"):
        text_ = text_.replace(f'"{word}"', word)
    path.write_text(text_)
    r = _upload(client, path, kind="boundaries", level="district")
    assert r.status_code == 422, r.json()
    assert _where(r.json()) == [(1, "population"), (2, "population")]
    assert _count(db, "admin_unit") == 0


def test_bad_service_point_cells_are_listed_and_nothing_is_written(client, test_city, tmp_path):
    path = tmp_path / "stations.csv"
    pd.DataFrame(
        {
            "name": [f"站{NUL}一", "站二", "站三", "站四"],
            "address": ["", "路" * (MAX_TEXT_CHARS + 1), "", ""],
            "phone": ["", "", f"0371{NUL}", ""],
            "lon": ["113.01", "113.02", "113.03", "113.04"],
            "lat": ["34.07", "34.07", "34.07", "34.07"],
        }
    ).to_csv(path, index=False)
    r = _upload(client, path, kind="points", point_kind="red_home")
    assert r.status_code == 422, r.json()
    assert _where(r.json()) == [(1, "name"), (2, "address"), (3, "phone")]
    assert _count(test_city, "service_point") == 0
    done = run(test_city, "import", "points", str(path), "--kind", "red_home")
    assert done.returncode == 2 and "feature 1: field 'name'" in " ".join(done.stderr.split())
    assert _count(test_city, "service_point") == 0


def test_infinite_coordinates_are_a_problem_of_their_row(client, test_city, tmp_path):
    path = tmp_path / "stations.csv"
    pd.DataFrame(
        {
            "name": ["站一", "站二", "站三"],
            "lon": ["113.01", "inf", "113.03"],
            "lat": ["34.07", "34.07", "-Infinity"],
        }
    ).to_csv(path, index=False)
    r = _upload(client, path, kind="points", point_kind="red_home")
    assert r.status_code == 422, r.json()
    assert _where(r.json()) == [(2, "lon"), (3, "lat")]
    assert _count(test_city, "service_point") == 0


def _roster(path, rows: list[dict]) -> None:
    pd.DataFrame(rows).to_csv(path, index=False)


GOOD_ROW = {
    "unit_code": "410199001001",
    "role": "grid_leader",
    "name": "王芳",
    "phone": "13800000000",
    "sort": "1",
}


def test_bad_roster_cells_are_listed_and_the_old_roster_stays(client, test_city, tmp_path):
    path = tmp_path / "roster.csv"
    _roster(path, [GOOD_ROW])
    assert _upload(client, path, kind="roster").status_code == 201
    _roster(
        path,
        [
            {**GOOD_ROW, "name": f"李{NUL}雷"},
            {**GOOD_ROW, "sort": "first"},
            {**GOOD_ROW, "sort": "40000"},
            {**GOOD_ROW, "role": f"grid{NUL}"},
            {**GOOD_ROW, "name": "新人"},
        ],
    )
    r = _upload(client, path, kind="roster")
    assert r.status_code == 422, r.json()
    assert _where(r.json()) == [(1, "name"), (2, "sort"), (3, "sort"), (4, "role")]
    done = run(test_city, "import", "roster", str(path))
    assert done.returncode == 2 and "feature 1: field 'name'" in " ".join(done.stderr.split())
    with get_engine(test_city).connect() as conn:
        names = conn.execute(text("SELECT name FROM unit_staff")).scalars().all()
    assert names == ["王芳"]


def test_a_phone_the_table_refuses_is_a_problem_of_its_row(client, test_city, tmp_path):
    path = tmp_path / "roster.csv"
    _roster(path, [GOOD_ROW, {**GOOD_ROW, "name": "李雷", "phone": "call me"}])
    r = _upload(client, path, kind="roster")
    assert r.status_code == 422, r.json()
    assert _where(r.json()) == [(2, "phone")]
    assert "unit_staff_phone_check" in r.json()["problems"][0]["problem"]
    assert _count(test_city, "unit_staff") == 0


def test_a_nan_coordinate_read_by_gdal_is_a_problem_of_its_feature(client, test_city, tmp_path):
    path = tmp_path / "stations.geojson"
    points = [[113.01, 34.07], ["NaN", 34.07]]
    features = [
        {
            "type": "Feature",
            "properties": {"name": f"站{i}"},
            "geometry": {"type": "Point", "coordinates": xy},
        }
        for i, xy in enumerate(points, start=1)
    ]
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}).replace('"NaN"', "NaN")
    )
    r = _upload(client, path, kind="points", point_kind="red_home")
    assert r.status_code == 422, r.json()
    assert _where(r.json()) == [(2, "geometry")]
    assert _count(test_city, "service_point") == 0


def test_three_d_coordinates_are_imported_flat_with_a_note(db, tmp_path):
    path = tmp_path / "district.geojson"
    ring = [[113, 34, 5], [113.1, 34, 5], [113.1, 34.1, 5], [113, 34, 5]]
    feature = {
        "type": "Feature",
        "properties": {"code": "410199", "name": "金水区"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    done = run(db, "import", "boundaries", str(path), "--level", "district", "--json")
    assert done.returncode == 0, done.stderr
    assert any("(Z)" in note for note in json.loads(done.stdout)["notes"])
    assert _count(db, "admin_unit") == 1


def test_a_nul_in_a_column_name_is_a_problem_of_the_file(client, db, tmp_path):
    path = tmp_path / "districts.csv"
    _district_csv(path, [{"name": "金水区", f"备{NUL}注": "x"}])
    r = _upload(client, path, kind="boundaries", level="district")
    assert r.status_code == 422, r.json()
    [problem] = r.json()["problems"]
    assert problem["feature"] is None and "U+0000" in problem["problem"]
    assert client.get(r.json()["status_url"], headers=ADMIN_AUTH).json()["status"] == "failed"
    assert _count(db, "admin_unit") == 0
