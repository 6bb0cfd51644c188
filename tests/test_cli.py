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
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=120)


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


def test_users_and_teams_from_the_command_line(test_city, tmp_path):
    s = test_city
    done = run(
        s,
        "teams",
        "create",
        "--name",
        "东北社区两委",
        "--kind",
        "community_committee",
        "--unit",
        "410199001001",
    )
    assert done.returncode == 0, done.stderr
    team_id = done.stdout.split()[1].rstrip(":")
    done = run(
        s,
        "users",
        "create",
        "--username",
        "zhang.wei",
        "--password",
        "s3cret-pass",
        "--role",
        "supervisor",
        "--scope",
        "410199001",
        "--name",
        "张伟",
    )
    assert done.returncode == 0, done.stderr
    assert "created user zhang.wei" in done.stdout and "410199001" in done.stdout
    done = run(
        s,
        "users",
        "create",
        "--username",
        "li.na",
        "--password",
        "s3cret-pass",
        "--role",
        "team_member",
        "--team",
        team_id,
    )
    assert done.returncode == 0, done.stderr
    listing = run(s, "users", "list").stdout
    # and root, the account ADMIN_AUTH names (conftest.seed_root)
    assert "zhang.wei" in listing and "li.na" in listing and "3 users" in listing
    # Mistakes are named, and exit non-zero.
    done = run(
        s,
        "users",
        "create",
        "--username",
        "wang",
        "--password",
        "s3cret-pass",
        "--role",
        "grid_worker",
        "--scope",
        "410199001",
    )
    assert done.returncode == 2 and "scoped to grid units" in done.stderr
    done = run(
        s,
        "users",
        "create",
        "--username",
        "zhang.wei",
        "--password",
        "s3cret-pass",
        "--role",
        "admin",
    )
    assert done.returncode == 2 and "taken" in done.stderr
    done = run(s, "users", "create", "--username", "x1", "--password", "short", "--role", "admin")
    assert done.returncode == 2 and "at least 8" in done.stderr
    assert run(s, "users", "deactivate", "zhang.wei").returncode == 0
    assert "no" in run(s, "users", "list").stdout


def test_categories_load_replaces_the_taxonomy(db, tmp_path):
    import json

    from gis_service.cases.categories import DEFAULT_TAXONOMY

    data = json.loads(DEFAULT_TAXONOMY.read_text())
    data["domains"] = data["domains"][:2]
    data["domains"][0]["children"].append(
        {"code": "environment.dogs", "name_zh": "犬只扰民", "name_en": "Dog nuisance"}
    )
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps(data, ensure_ascii=False))
    try:
        done = run(db, "categories", "load", str(path))
        assert done.returncode == 0, done.stderr
        assert "deactivated" in done.stdout
        listing = run(db, "categories", "list").stdout
        assert "environment.dogs" in listing and "courtyard" not in listing
        bad = tmp_path / "bad.json"
        bad.write_text(
            json.dumps(
                {
                    "domains": [
                        {
                            "code": "x",
                            "name_zh": "甲",
                            "name_en": "X",
                            "deadline_hours": 0,
                            "handling_level": "grid",
                        }
                    ]
                }
            )
        )
        done = run(db, "categories", "load", str(bad))
        assert done.returncode == 2 and "deadline_hours" in done.stderr
    finally:
        assert run(db, "categories", "load", str(DEFAULT_TAXONOMY)).returncode == 0
