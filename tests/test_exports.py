"""Exports (issue 16 item 3) on the real PostGIS: every format reads back with the tool
people use (openpyxl, the csv module, pyogrio/GDAL), and each export holds what the app's
own routes answer for the same viewer and filters — the case list's count, the
statistics' rates, the access figures — never numbers written here.

The city is the jurisdiction matrix's (tests/test_scope_matrix.py): a case in every grid
and one in a building, every third of a private category, one rejected, one dispatched to
a team; buildings with residents, a walking network and one party organisation.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import openpyxl
import pyogrio
import pytest
from fastapi.testclient import TestClient

from gis_service.app import create_app
from gis_service.auth.scope import PUBLIC_HIDDEN_FIELDS
from gis_service.cases.workflow import STATUS_LABELS, Status
from gis_service.exports.cases import COLUMNS as CASE_COLUMNS
from gis_service.exports.figures import RESOLUTION_COLUMNS
from gis_service.exports.formats import MEDIA_TYPES, Format
from gis_service.exports.tabular import BOM, XLSX_PERCENT
from gis_service.timezone import local_text, to_local
from tests.test_scope_matrix import city as matrix_city
from tests.test_scope_matrix import visible

EXPORTS = "/api/v1/exports"
BIN = Path(sys.executable).parent / "gis-service"
LABELS_ZH = [c.zh for c in CASE_COLUMNS]


@pytest.fixture
def world(tmp_path: Path, case_city: dict) -> dict:
    """The jurisdiction matrix's city (its fixture, called as a plain function)."""
    return matrix_city.__wrapped__(case_city, tmp_path)


@pytest.fixture
def api(world: dict):
    with TestClient(create_app(world["settings"])) as client:
        yield client


def _get(api, path: str, auth: dict, **params) -> bytes:
    r = api.get(path, headers=auth, params=params)
    assert r.status_code == 200, r.text
    return r.content


def _listed(api, auth: dict, **params) -> dict:
    """The case list's answer for the same viewer and filters (the app's own count)."""
    r = api.get("/api/v1/cases", headers=auth, params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _csv_rows(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(BOM.encode("utf-8")), "the CSV starts with a byte-order mark"
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_csv_round_trips_chinese_text_and_holds_the_case_lists_cases(api, world):
    admin = world["viewers"]["admin"]
    r = api.get(f"{EXPORTS}/cases.csv", headers=admin)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MEDIA_TYPES[Format.csv]
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert unquote(disposition.split("filename*=UTF-8''")[1]).startswith("案件-")
    rows = _csv_rows(r.content)
    assert list(rows[0]) == LABELS_ZH
    listed = _listed(api, admin)
    assert len(rows) == listed["numberMatched"]
    by_no = {f["properties"]["case_no"]: f["properties"] for f in listed["features"]}
    assert {row["案件编号"] for row in rows} == set(by_no)
    for row in rows:
        case = by_no[row["案件编号"]]
        assert row["问题描述"] == case["description"]  # Chinese text unchanged
        assert row["状态"] == STATUS_LABELS[Status(case["status"])][0]
        assert row["所在单元代码"] == case["unit_code"]
        assert row["社区代码"] == case["unit_code"][:12]
        assert row["社区"]  # the community's name, from admin_unit
        # the district's time as people read it everywhere (timezone.py LOCAL_FORMAT)
        reported = datetime.fromisoformat(case["reported_at"])
        assert row["上报时间"] == local_text(reported, world["settings"])


def test_xlsx_has_real_types_a_bold_frozen_header_and_widths(api, world, tmp_path: Path):
    admin = world["viewers"]["admin"]
    path = tmp_path / "cases.xlsx"
    path.write_bytes(_get(api, f"{EXPORTS}/cases.xlsx", admin))
    ws = openpyxl.load_workbook(path).active
    header = [c.value for c in ws[1]]
    assert header == LABELS_ZH
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["A"].width == CASE_COLUMNS[0].width
    listed = {f["properties"]["case_no"]: f["properties"] for f in _listed(api, admin)["features"]}
    col = {name: i for i, name in enumerate(c.name for c in CASE_COLUMNS)}
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(listed)
    for row in rows:
        case = listed[row[col["case_no"]]]
        reported = row[col["reported_at"]]
        assert isinstance(reported, datetime)  # a real Excel date, not text
        want = to_local(datetime.fromisoformat(case["reported_at"]), world["settings"])
        assert abs(reported - want.replace(tzinfo=None)).total_seconds() < 1
        assert isinstance(row[col["lon"]], float) and isinstance(row[col["rework_count"]], int)
    # the settings' timezone, not UTC: Asia/Shanghai is 8 hours ahead
    first = datetime.fromisoformat(listed[rows[0][col["case_no"]]]["reported_at"])
    assert rows[0][col["reported_at"]].hour == (first.astimezone(UTC).hour + 8) % 24


def test_geopackage_reads_back_in_wgs84_with_every_case(api, world, tmp_path: Path):
    admin = world["viewers"]["admin"]
    path = tmp_path / "cases.gpkg"
    path.write_bytes(_get(api, f"{EXPORTS}/cases.gpkg", admin))
    info = pyogrio.read_info(path)
    listed = _listed(api, admin)
    assert info["crs"] == "EPSG:4326"
    assert info["features"] == listed["numberMatched"]
    assert info["geometry_type"] == "Point"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # GDAL warns of date-times GeoPackage does not allow
        frame = pyogrio.read_dataframe(path)
    by_no = {f["properties"]["case_no"]: f["geometry"]["coordinates"] for f in listed["features"]}
    for case_no, geom in zip(frame["case_no"], frame.geometry, strict=True):
        lon, lat = by_no[case_no]
        assert abs(geom.x - lon) < 1e-6 and abs(geom.y - lat) < 1e-6


def test_geojson_is_rfc7946_with_every_case(api, world):
    admin = world["viewers"]["admin"]
    r = api.get(f"{EXPORTS}/cases.geojson", headers=admin, params={"lang": "en"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MEDIA_TYPES[Format.geojson]
    fc = json.loads(r.content)
    assert fc["type"] == "FeatureCollection" and "crs" not in fc  # RFC 7946: WGS 84 only
    listed = _listed(api, admin)
    assert len(fc["features"]) == listed["numberMatched"]
    for f in fc["features"]:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
        lon, lat = f["geometry"]["coordinates"]
        assert (lon, lat) == (f["properties"]["lon"], f["properties"]["lat"])
        assert f["properties"]["reported_at"].endswith("+08:00")  # the district's offset
    # the same file read by GDAL
    assert pyogrio.read_info(io.BytesIO(r.content))["features"] == listed["numberMatched"]


def test_a_community_supervisor_exports_only_that_community(api, world):
    auth = world["viewers"]["community_sup_a"]
    rows = _csv_rows(_get(api, f"{EXPORTS}/cases.csv", auth))
    want = {c["case_no"] for c in world["cases"] if c["id"] in visible(world, "community_sup_a")}
    assert {row["案件编号"] for row in rows} == want and want
    assert all(row["所在单元代码"].startswith("410199001001") for row in rows)
    assert len(rows) == _listed(api, auth)["numberMatched"]


def test_filters_are_the_case_lists(api, world):
    """Status, category, unit, overdue and bbox filters: the export holds exactly what
    the case list answers for them."""
    admin = world["viewers"]["admin"]
    for params in (
        {"status": "rejected"},
        {"status": ["reported", "dispatched"]},
        {"category": "disputes"},
        {"unit": "410199002"},
        {"overdue": "false"},
        {"bbox": "113.0,34.05,113.05,34.1"},
        {"from": "2000-01-01", "to": "2000-01-02"},
    ):
        rows = _csv_rows(_get(api, f"{EXPORTS}/cases.csv", admin, **params))
        listed = _listed(api, admin, **params)
        got = {row["案件编号"] for row in rows}
        assert got == {f["properties"]["case_no"] for f in listed["features"]}, params


def test_the_desk_tab_holds_the_desk_queues_cases(api, world):
    admin = world["viewers"]["admin"]
    for tab in ("to_accept", "in_progress"):
        rows = _csv_rows(_get(api, f"{EXPORTS}/cases.csv", admin, tab=tab))
        r = api.get("/api/v1/desk/queue", headers=admin, params={"tab": tab, "limit": 1000})
        assert {row["案件编号"] for row in rows} == {
            f["properties"]["case_no"] for f in r.json()["features"]
        }


def test_the_public_view_hides_private_categories_and_fields(api, world):
    rows = _csv_rows(_get(api, f"{EXPORTS}/cases.csv", {}))
    want = {c["case_no"] for c in world["cases"] if c["id"] in visible(world, "anonymous")}
    assert {row["案件编号"] for row in rows} == want and want
    hidden = [c for c in CASE_COLUMNS if c.name in PUBLIC_HIDDEN_FIELDS]
    assert hidden  # the description and the address are columns, and empty here
    assert all(row[c.zh] == "" for row in rows for c in hidden)
    # the same cases as Open311's public view
    r = api.get("/open311/v2/requests.json", params={"status": "open,closed"})
    assert r.status_code == 200
    assert {row["案件编号"] for row in rows} >= {s["service_request_id"] for s in r.json()}
    # the text search would search the hidden text
    r = api.get(f"{EXPORTS}/cases.csv", params={"q": "marker"})
    assert r.status_code == 422 and r.json()["field"] == "q"
    # planners read figures, not cases
    r = api.get(f"{EXPORTS}/cases.csv", headers=world["viewers"]["planner"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


def test_bad_format_and_filters_are_named(api, world):
    admin = world["viewers"]["admin"]
    for path, params, field in (
        ("cases.pdf", {}, "fmt"),
        ("cases.csv", {"status": "lost"}, "status"),
        ("cases.csv", {"bbox": "1,2,3"}, "bbox"),
        ("cases.csv", {"tab": "nowhere"}, "tab"),
        ("cases.csv", {"lang": "fr"}, "lang"),
        ("cases.xlsx", {"from": "2026-13-01"}, "from"),
        ("resolution.csv", {"level": "building"}, "level"),
    ):
        r = api.get(f"{EXPORTS}/{path}", headers=admin, params=params)
        assert r.status_code == 422, (path, params, r.text)
        body = r.json()
        assert body["error"] in ("invalid_input", "validation_error"), body
        assert field in json.dumps(body), (field, body)


def test_a_large_export_runs_as_a_job_with_progress_and_a_download(world, tmp_path: Path):
    settings = world["settings"].model_copy(update={"export_job_rows": 1})
    admin = world["viewers"]["admin"]
    with TestClient(create_app(settings)) as api:
        r = api.get(f"{EXPORTS}/cases.xlsx", headers=admin, params={"lang": "en"})
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == job["status_url"]
        listed = _listed(api, admin)
        assert job["rows_total"] == listed["numberMatched"]
        for _ in range(200):
            job = api.get(job["status_url"], headers=admin).json()
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        assert job["status"] == "succeeded", job
        assert job["progress"] == 1.0 and job["rows_written"] == listed["numberMatched"]
        # another viewer cannot see it, nor fetch its file
        other = world["viewers"]["community_sup_b"]
        assert api.get(job["status_url"], headers=other).status_code == 404
        assert api.get(job["download_url"], headers=other).status_code == 404
        r = api.get(job["download_url"], headers=admin)
        assert r.status_code == 200
        assert r.headers["content-type"] == MEDIA_TYPES[Format.xlsx]
        assert job["filename"] in unquote(r.headers["content-disposition"])
        path = tmp_path / "job.xlsx"
        path.write_bytes(r.content)
        ws = openpyxl.load_workbook(path).active
        assert ws.max_row - 1 == listed["numberMatched"]
        assert [c.value for c in ws[1]] == [c.en for c in CASE_COLUMNS]
        assert api.get(f"{EXPORTS}/jobs/not-a-job", headers=admin).status_code == 404


def test_resolution_rates_are_percentages(api, world, tmp_path: Path):
    auth = world["viewers"]["subdistrict_sup"]
    stats = api.get("/api/v1/stats/resolution", headers=auth, params={"level": "community"})
    assert stats.status_code == 200, stats.text
    stats = stats.json()
    path = tmp_path / "stats.xlsx"
    path.write_bytes(_get(api, f"{EXPORTS}/resolution.xlsx", auth, level="community"))
    ws = openpyxl.load_workbook(path).active
    names = [c.name for c in RESOLUTION_COLUMNS]
    assert [c.value for c in ws[1]] == [c.zh for c in RESOLUTION_COLUMNS]
    rows = list(ws.iter_rows(min_row=2))
    assert len(rows) == len(stats["units"]) + 1  # and the totals
    by_code = {u["code"]: u for u in stats["units"]}
    i = names.index("resolution_rate")
    checked = 0
    for row in rows[:-1]:
        unit = by_code[row[0].value]
        assert row[names.index("reported")].value == unit["reported"]
        cell = row[i]
        if unit["resolution_rate"] is None:
            assert cell.value is None
        else:
            assert cell.number_format == XLSX_PERCENT and cell.value == unit["resolution_rate"]
            checked += 1
    assert rows[-1][names.index("reported")].value == stats["totals"]["reported"]
    gpkg = tmp_path / "stats.gpkg"
    gpkg.write_bytes(_get(api, f"{EXPORTS}/resolution.gpkg", auth, level="community"))
    info = pyogrio.read_info(gpkg)
    assert info["crs"] == "EPSG:4326" and info["features"] == len(stats["units"])


def test_gaps_and_living_circle_are_the_access_figures(api, world, tmp_path: Path):
    auth = world["viewers"]["subdistrict_sup"]
    gaps = api.get("/api/v1/access/gaps", headers=auth, params={"max_m": 1000})
    assert gaps.status_code == 200, gaps.text
    fc = json.loads(_get(api, f"{EXPORTS}/gaps.geojson", auth, max_m=1000))
    assert [f["properties"]["unit_code"] for f in fc["features"]] == [
        f["id"] for f in gaps.json()["features"]
    ]
    circle = api.get("/api/v1/access/living-circle", headers=auth, params={"level": "grid"})
    assert circle.status_code == 200, circle.text
    units = circle.json()["units"]
    path = tmp_path / "circle.xlsx"
    path.write_bytes(_get(api, f"{EXPORTS}/living-circle.xlsx", auth, level="grid"))
    ws = openpyxl.load_workbook(path).active
    rows = list(ws.iter_rows(min_row=2))
    assert [r[0].value for r in rows] == [u["code"] for u in units] and units
    header = [c.value for c in ws[1]]
    share = header.index("生活圈完整率")
    for row, unit in zip(rows, units, strict=True):
        if unit["complete_share"] is not None:
            assert row[share].number_format == XLSX_PERCENT
            assert row[share].value == unit["complete_share"]
    gpkg = tmp_path / "circle.gpkg"
    gpkg.write_bytes(_get(api, f"{EXPORTS}/living-circle.gpkg", auth, level="grid"))
    assert pyogrio.read_info(gpkg)["features"] == len(units)
    # a grid worker sees no figures about residents, as on the access routes
    r = api.get(f"{EXPORTS}/gaps.csv", headers=world["viewers"]["worker_a1"])
    assert r.status_code == 403


def _cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIS_DB_NAME": settings.db_name, "COLUMNS": "200"}
    return subprocess.run(
        [str(BIN), "export", *args], capture_output=True, text=True, env=env, timeout=180
    )


def test_the_cli_writes_the_apis_export_and_names_bad_input(api, world, tmp_path: Path):
    s = world["settings"]
    out = tmp_path / "案件.xlsx"
    done = _cli(s, "cases", "--out", str(out), "--as", "cs-a", "--status", "reported")
    assert done.returncode == 0, done.stderr
    listed = _listed(api, world["viewers"]["community_sup_a"], status="reported")
    summary = done.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"{listed['numberMatched']} rows of cases written to"), summary
    ws = openpyxl.load_workbook(out).active
    got = {row[0] for row in ws.iter_rows(min_row=2, values_only=True)}
    assert got == {f["properties"]["case_no"] for f in listed["features"]} and got
    gpkg = tmp_path / "stats.gpkg"
    done = _cli(s, "stats", "--out", str(gpkg), "--level", "grid", "--unit", "410199001")
    assert done.returncode == 0, done.stderr
    assert pyogrio.read_info(gpkg)["features"] == 4  # the subdistrict's four grids
    for args, words in (
        (["cases", "--out", str(tmp_path / "x.pdf")], "x.pdf"),
        (["cases", "--out", str(tmp_path / "x.csv"), "--status", "lost"], "lost"),
        (["cases", "--out", str(tmp_path / "x.csv"), "--from", "yesterday"], "--from"),
        (["cases", "--out", str(tmp_path / "x.csv"), "--as", "nobody"], "nobody"),
        (["gaps", "--out", str(tmp_path / "x.csv"), "--as", "gw1"], "figures about residents"),
        (["stats", "--out", str(tmp_path / "x.csv"), "--level", "building"], "level"),
    ):
        done = _cli(s, *args)
        assert done.returncode != 0, args
        assert words in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert not (tmp_path / "x.csv").exists()  # nothing half-written


def test_prefer_respond_async_asks_for_a_job_whatever_the_size(api, world):
    """RFC 7240: the desk asks for a job to show progress; without the header a small
    export is the file itself."""
    auth = world["viewers"]["community_sup_b"]
    r = api.get(f"{EXPORTS}/cases.geojson", headers={**auth, "Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    assert r.headers["preference-applied"] == "respond-async"
    job = r.json()
    for _ in range(200):
        job = api.get(job["status_url"], headers=auth).json()
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    fc = json.loads(api.get(job["download_url"], headers=auth).content)
    direct = json.loads(_get(api, f"{EXPORTS}/cases.geojson", auth))
    assert fc["features"] == direct["features"] and fc["features"]


def test_jobs_still_queued_when_the_service_stops_are_recorded_as_failed(world):
    """None waits for ever: the app's lifespan cancels the queued exports and records why
    (the one being written finishes)."""
    from sqlalchemy import text

    from gis_service.db.engine import get_engine

    auth = world["viewers"]["admin"]
    with TestClient(create_app(world["settings"])) as api:
        ids = [
            api.get(f"{EXPORTS}/cases.xlsx", headers={**auth, "Prefer": "respond-async"}).json()[
                "id"
            ]
            for _ in range(6)
        ]
    with get_engine(world["settings"]).connect() as conn:
        for _ in range(200):
            rows = conn.execute(
                text("SELECT status, error FROM export_job WHERE id::text = ANY(:ids)"),
                {"ids": ids},
            ).all()
            if all(status in ("succeeded", "failed") for status, _ in rows):
                break
            time.sleep(0.05)
    assert len(rows) == len(ids)
    assert all(
        status == "succeeded" or (status == "failed" and error["error"] == "service_not_ready")
        for status, error in rows
    ), rows
