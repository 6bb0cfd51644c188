"""Times shown to people are the district's (GIS_TIMEZONE, default Asia/Shanghai): an
export, an import's status and the console's key list, each checked at a moment that is
still the previous day in UTC."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, date, datetime

from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine, transaction
from gis_service.maps.export import export
from gis_service.stats.cube import CaseCube
from gis_service.timezone import local_date, local_text, to_local
from tests import history
from tests.conftest import ADMIN_AUTH, IN_GRID_1, frame
from tests.test_cli import BIN, run

# 18:30 UTC on 30 November is 02:30 on 1 December in Shanghai (UTC+8, no summer time).
EXPORTED_AT = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
REPORTED_AT = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 01:00 on 1 December in Shanghai


def test_the_helper_gives_the_districts_date_and_clock(settings):
    assert local_date(settings, EXPORTED_AT) == date(2026, 12, 1)
    assert local_text(EXPORTED_AT, settings) == "2026-12-01 02:30"
    assert (
        to_local(datetime(2026, 11, 30, 18, 30), settings).utcoffset().total_seconds() == 8 * 3600
    )
    utc = settings.model_copy(update={"timezone": "UTC"})
    assert local_date(utc, EXPORTED_AT) == date(2026, 11, 30)


def _reported_case(case_city) -> int:
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        r = api.post(
            "/api/v1/cases",
            headers=case_city["worker1"],
            json={
                "category": "environment.garbage",
                "lon": IN_GRID_1[0],
                "lat": IN_GRID_1[1],
                "description": "楼下垃圾堆放",
            },
        )
        assert r.status_code == 201, r.json()
    return history.reported_at(s, r.json()["id"], REPORTED_AT)


def _export(settings, out, date_from=None, date_to=None) -> dict[str, str]:
    with get_engine(settings).connect() as conn:
        export(
            conn,
            CaseCube(settings),
            out,
            unit=None,
            date_from=date_from,
            date_to=date_to,
            lang="zh",
            now=EXPORTED_AT,
        )
    return {p.stem: p.read_text(encoding="utf-8") for p in out.glob("*.html")}


def _data_date(html: str) -> str:
    return re.search(r'data-testid="data-date">[^<]*?(\d{4}-\d{2}-\d{2})</p>', html).group(1)


def _reported(html: str) -> list[str]:
    return re.findall(r'"reported":\s*"(\d{4}-\d{2}-\d{2})"', html)


def test_an_export_shows_the_districts_date(case_city, tmp_path):
    s = case_city["settings"]
    _reported_case(case_city)
    pages = _export(s, tmp_path / "shanghai")
    assert {_data_date(html) for html in pages.values()} == {"2026-12-01"}
    assert "2026-12-01" in pages["resolution"] and "2025-12-03 – 2026-12-01" in pages["resolution"]
    assert _reported(pages["cases"]) == ["2026-12-01"]
    # the local day 1 December holds the case; in UTC it was reported on 30 November
    one_day = _export(s, tmp_path / "day", date_from=date(2026, 12, 1), date_to=date(2026, 12, 1))
    assert _reported(one_day["cases"]) == ["2026-12-01"]
    day_before = _export(
        s, tmp_path / "before", date_from=date(2026, 11, 30), date_to=date(2026, 11, 30)
    )
    assert _reported(day_before["cases"]) == []
    # the setting decides: the same moment exported for a district on UTC
    utc = s.model_copy(update={"timezone": "UTC"})
    pages = _export(utc, tmp_path / "utc")
    assert {_data_date(html) for html in pages.values()} == {"2026-11-30"}
    assert _reported(pages["cases"]) == ["2026-11-30"]


def test_an_imports_status_is_in_the_districts_time(client, db, tmp_path):
    from shapely.geometry import box

    path = tmp_path / "d.geojson"
    frame({"410199": box(113.0, 34.0, 113.1, 34.1)}).to_file(path)
    r = client.post(
        "/api/v1/imports",
        headers=ADMIN_AUTH,
        files={"file": ("d.geojson", path.read_bytes())},
        data={"kind": "boundaries", "level": "district"},
    )
    assert r.status_code == 201, r.json()
    with transaction(db) as conn:
        conn.execute(text("UPDATE import_run SET created_at = :t"), {"t": EXPORTED_AT})
    status = client.get(r.json()["status_url"], headers=ADMIN_AUTH).json()
    assert status["created_at"] == "2026-12-01T02:30:00+08:00"
    assert status["finished_at"].endswith("+08:00")


def test_the_console_lists_keys_in_the_districts_time(db):
    done = run(db, "open311", "keys", "create", "--name", "12345-hotline")
    assert done.returncode == 0, done.stderr
    with transaction(db) as conn:
        conn.execute(
            text("UPDATE open311_client SET created_at = :t, revoked_at = :t"), {"t": EXPORTED_AT}
        )
    env = {**os.environ, "GIS_DB_NAME": db.db_name, "COLUMNS": "200"}  # no wrapped cells
    done = subprocess.run(
        [str(BIN), "open311", "keys", "list"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("2026-12-01 02:30") == 2 and "2026-11-30" not in done.stdout
