"""The console script as a person runs it: clear messages and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DISTRICT, frame

BIN = Path(sys.executable).parent / "gis-service"


def run(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIS_DB_NAME": settings.db_name}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_db_status_and_url(settings):
    done = run(settings, "db", "url")
    assert done.returncode == 0
    assert done.stdout.strip().endswith(f":{settings.db_port}/{settings.db_name}")
    assert run(settings, "db", "status").returncode == 0


def test_import_prints_report_and_summary(db, tmp_path):
    path = tmp_path / "d.geojson"
    frame({"410199": DISTRICT}).to_file(path)
    done = run(db, "import", "boundaries", str(path), "--level", "district")
    assert done.returncode == 0, done.stderr
    assert "imported 1 district units from d.geojson: 1 new" in done.stderr


def test_rejected_import_exits_non_zero_and_names_the_feature(db, tmp_path):
    path = tmp_path / "bad.geojson"
    frame({"4101": DISTRICT}).to_file(path)
    done = run(db, "import", "boundaries", str(path), "--level", "district")
    assert done.returncode == 2
    assert "feature 1: malformed code" in done.stderr and "nothing was imported" in done.stderr


def test_missing_file_is_a_clear_error(db):
    done = run(db, "import", "points", "/nonexistent.csv", "--kind", "red_home")
    assert done.returncode == 2 and "file not found" in done.stderr
