"""The audit log (issue 14 item 5): every privileged change recorded once, with who, when,
from where, before and after; secrets redacted; append-only; admins only; exportable.

The tables come from the app's one list (gis_service/audit/tables.py) and the schema
itself; the routes from the app's own route table.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gis_service.app import create_app
from gis_service.audit import triggers
from gis_service.audit.actor import Actor, acting_as
from gis_service.audit.log import COLUMNS
from gis_service.audit.tables import AUDITED, BY_TABLE, KINDS, NOT_AUDITED, REDACTED
from gis_service.db.engine import get_engine, transaction
from tests.conftest import ADMIN_AUTH, GRIDS, IN_GRID_1, frame, write

BIN = Path(sys.executable).parent / "gis-service"
CLI_ACTOR = f"cli:{getpass.getuser()}"
CLI_ADDRESS = f"cli@{socket.gethostname()}"
#: the actor the direct-service tests act as
TESTER = Actor("user:tester", 4242, "192.0.2.7", "req-tester-1")


def cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIS_DB_NAME": settings.db_name}
    done = subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def last_id(settings) -> int:
    with get_engine(settings).connect() as conn:
        return conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()


def entries_since(settings, after: int, **where: str) -> list[dict]:
    """Audit rows written after id ``after``, oldest first, optionally filtered by column."""
    conds = " ".join(f"AND {col} = :{col}" for col in where)
    with get_engine(settings).connect() as conn:
        rows = conn.execute(
            text(f"SELECT * FROM audit_log WHERE id > :after {conds} ORDER BY id"),
            {"after": after, **where},
        ).mappings()
        return [dict(r) for r in rows]


# ------------------------------------------------------------------ the list is complete


def test_every_table_is_listed_and_every_audited_table_has_its_triggers(settings):
    """A table added to the schema fails here until it is audited or said why not."""
    with get_engine(settings).connect() as conn:
        tables = set(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c "
                    "WHERE c.relnamespace = current_schema()::regnamespace "
                    "AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
                    # detached month tables of the case history (cases/partitions.py)
                    "AND c.relname !~ '^(cases|case_event)_(y[0-9]{4}m[0-9]{2}|legacy)$'"
                )
            ).scalars()
        )
        present = triggers.triggers_present(conn)
    audited = set(BY_TABLE)
    assert not audited & set(NOT_AUDITED), "a table cannot be both audited and not"
    assert not tables - audited - set(NOT_AUDITED), (
        f"tables neither audited nor excused: {sorted(tables - audited - set(NOT_AUDITED))}"
    )
    assert not (audited | set(NOT_AUDITED)) - tables, "the list names tables that are gone"
    for a in AUDITED:
        want = (
            {"audit_insert", "audit_update", "audit_delete", "audit_truncate"}
            if a.bulk
            else {"audit_row"}
        )
        assert present.get(a.table) == want, f"{a.table}: triggers {present.get(a.table)}"
    assert set(present) == audited, f"audit triggers on unlisted tables: {set(present) - audited}"


def test_migrate_remakes_only_the_triggers_that_differ_from_the_list(settings):
    with get_engine(settings).connect() as conn, conn.begin() as tx:
        assert triggers.sync(conn) == []  # as migrated: nothing to do, no table locked
        conn.execute(text("DROP TRIGGER audit_row ON team"))
        conn.execute(
            text(
                "CREATE TRIGGER audit_row AFTER INSERT ON service_circle FOR EACH ROW "
                "EXECUTE FUNCTION audit_row('point_id', '{}', '{}', '{}')"
            )
        )
        assert triggers.sync(conn) == ["team.audit_row"]
        assert set(triggers.triggers_present(conn)) == set(BY_TABLE)
        tx.rollback()


# ------------------------------------------------------------------ one row per change


@pytest.fixture
def world(case_city, tmp_path):
    """The case test city with a row in every audited table: a case, an import run, a
    service point, an Open311 client and a roster entry (reply templates: migration 0009
    seeds them)."""
    from gis_service.open311.keys import create_key

    s = case_city["settings"]
    since = datetime.now(UTC).isoformat()  # the log is kept across tests: this one's part
    with TestClient(create_app(s)) as api:
        r = api.post(
            "/api/v1/cases",
            headers=case_city["admin"],
            json={
                "category": "environment.garbage",
                "lon": IN_GRID_1[0],
                "lat": IN_GRID_1[1],
                "description": "楼下垃圾堆放",
            },
        )
        assert r.status_code == 201, r.text
        case = r.json()
        points = gpd.GeoDataFrame(
            {"name": ["红色家园"]}, geometry=gpd.points_from_xy([113.012], [34.072]), crs=4326
        )
        r = api.post(
            "/api/v1/imports",
            headers=ADMIN_AUTH,
            files={"file": ("p.geojson", write(points, tmp_path / "p.geojson").read_bytes())},
            data={"kind": "points", "point_kind": "red_home"},
        )
        assert r.status_code == 201, r.text
    with transaction(s) as conn:
        create_key(conn, "app-hotline", "410199001")
        conn.execute(
            text(
                "INSERT INTO unit_staff (unit_code, role, name, sort) "
                "VALUES ('410199001001', 'grid_leader', '王芳', 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO approval_delegation (delegator_id, delegate_id, starts_at, ends_at) "
                "SELECT a.id, b.id, now(), now() + interval '7 days' FROM app_user a, app_user b "
                "WHERE a.id < b.id ORDER BY a.id, b.id LIMIT 1"
            )
        )
        conn.execute(
            text(
                "INSERT INTO webhook_subscription (name, url, secret) "
                "VALUES ('hotline', 'http://127.0.0.1:9/hook', 'a-secret-of-sixteen+')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO walk_node VALUES (1, 'SRID=4326;POINT(113.0 34.0)'), "
                "(2, 'SRID=4326;POINT(113.01 34.0)')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO walk_edge (source, target, length_m, cost, reverse_cost, kind, geom) "
                "VALUES (1, 2, 920, 920, 920, 'footway', "
                "'SRID=4326;LINESTRING(113.0 34.0, 113.01 34.0)')"
            )
        )
    return {**case_city, "case": case, "since": since}


# For each row-audited table: the column a test changes and its new value. A table added
# to AUDITED without an entry here fails the test below (KeyError), on purpose.
CHANGES: dict[str, tuple[str, object]] = {
    "app_user": ("display_name", "张伟（改）"),
    "team": ("phone", "0371-12345678"),
    "case_category": ("deadline_hours", 48),
    "case_template": ("text_en", "Reply template (changed)"),
    "open311_client": ("scope_code", "410199002"),
    "import_run": ("filename", "renamed.geojson"),
    "service_point": ("opening_hours", "08:00-20:00"),
    "service_kind": ("name_en", "Red home (renamed)"),
    "living_category": ("name_en", "Government (renamed)"),
    "cases": ("category_code", "environment.litter"),
    "unit_staff": ("phone", "13900000000"),
    "approval_delegation": ("note", "休假期间代为审批"),
    "webhook_subscription": ("url", "http://127.0.0.1:9/changed"),
}


@pytest.mark.parametrize("audited", [a for a in AUDITED if not a.bulk], ids=lambda a: a.table)
def test_a_change_to_each_row_table_is_one_row_with_who_where_before_and_after(
    world, audited
) -> None:
    s = world["settings"]
    column, value = CHANGES[audited.table]
    with get_engine(s).connect() as conn:
        key = conn.execute(
            text(f"SELECT {audited.key}::text FROM {audited.table} ORDER BY 1 LIMIT 1")
        ).scalar_one()
        before = conn.execute(
            text(
                f"SELECT to_jsonb(t) -> '{column}' FROM {audited.table} t "
                f"WHERE {audited.key}::text = :k"
            ),
            {"k": key},
        ).scalar_one()
    start = last_id(s)
    with acting_as(TESTER), transaction(s) as conn:
        conn.execute(
            text(f"UPDATE {audited.table} SET {column} = :v WHERE {audited.key}::text = :k"),
            {"v": value, "k": key},
        )
    rows = entries_since(s, start)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["actor"], row["actor_id"], row["address"], row["request_id"]) == (
        TESTER.name,
        TESTER.actor_id,
        TESTER.address,
        TESTER.request_id,
    )
    assert (row["table_name"], row["operation"], row["target"]) == (audited.table, "UPDATE", key)
    assert row["changed"] == [column]
    assert row["old"][column] == before and row["new"][column] == value
    if audited.columns:  # only the watched columns (and the key) are copied
        assert set(row["new"]) == {*audited.columns, audited.key}
    # writing the same value again changes nothing, and records nothing
    start = last_id(s)
    with acting_as(TESTER), transaction(s) as conn:
        conn.execute(
            text(f"UPDATE {audited.table} SET {column} = :v WHERE {audited.key}::text = :k"),
            {"v": value, "k": key},
        )
    assert entries_since(s, start) == []


def test_a_transaction_that_sets_its_isolation_first_is_stamped_after_it(world):
    """``SET TRANSACTION`` must be a transaction's first statement (the statistics cube's
    snapshot does it): the stamp waits for the statement after it."""
    s = world["settings"]
    start = last_id(s)
    with acting_as(TESTER), transaction(s) as conn:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(text("UPDATE team SET phone = '120' WHERE id = :id"), {"id": 1})
    (row,) = entries_since(s, start)
    assert (row["actor"], row["address"], row["target"]) == (TESTER.name, TESTER.address, "1")


def test_a_bulk_statement_is_one_summary_row(world):
    s = world["settings"]
    start = last_id(s)
    with acting_as(TESTER), transaction(s) as conn:
        conn.execute(text("UPDATE walk_edge SET kind = 'path'"))
        conn.execute(text("UPDATE admin_unit SET population = 1000 WHERE level = 'grid'"))
        conn.execute(text("DELETE FROM walk_node WHERE false"))  # touches nothing: no row
    rows = entries_since(s, start)
    assert [(r["table_name"], r["operation"], r["rows"]) for r in rows] == [
        ("walk_edge", "UPDATE", 1),
        ("admin_unit", "UPDATE", 8),
    ]
    assert rows[1]["new"]["keys"] == sorted(GRIDS)
    assert all(r["actor"] == TESTER.name and r["address"] == TESTER.address for r in rows)
    with get_engine(s).connect() as conn:
        edge_id = conn.execute(text("SELECT id::text FROM walk_edge")).scalar_one()
    assert rows[0]["new"] == {"keys": [edge_id]}


def test_a_change_made_outside_the_service_is_recorded_as_the_database_role(world):
    s = world["settings"]
    start = last_id(s)
    with transaction(s) as conn:
        conn.execute(text("UPDATE team SET phone = '110' WHERE id = :id"), {"id": 1})
        role = conn.execute(text("SELECT session_user")).scalar_one()
    (row,) = entries_since(s, start)
    assert row["actor"] == f"db:{role}" and row["actor_id"] is None
    assert row["address"] == "127.0.0.1"  # the cluster is reached over loopback TCP


# ------------------------------------------------------------------ through the API


def test_an_import_through_the_api_is_recorded_with_the_admin_and_address(test_city, tmp_path):
    s = test_city
    start = last_id(s)
    points = gpd.GeoDataFrame(
        {"name": ["党群服务中心", "爱心超市"]},
        geometry=gpd.points_from_xy([113.012, 113.062], [34.072, 34.072]),
        crs=4326,
    )
    with TestClient(create_app(s)) as api:
        r = api.post(
            "/api/v1/imports",
            headers={**ADMIN_AUTH, "X-Request-ID": "import-42"},
            files={"file": ("p.geojson", write(points, tmp_path / "p.geojson").read_bytes())},
            data={"kind": "points", "point_kind": "party_org"},
        )
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        # reads are not stamped and change nothing audited
        assert api.get(f"/api/v1/imports/{run_id}", headers=ADMIN_AUTH).status_code == 200
    rows = entries_since(s, start)
    assert {(r["actor"], r["actor_id"], r["address"], r["request_id"]) for r in rows} == {
        ("user:root", 0, "testclient", "import-42")
    }
    runs = [r for r in rows if r["table_name"] == "import_run"]
    assert [r["operation"] for r in runs] == ["INSERT", "UPDATE", "UPDATE"]
    assert {r["target"] for r in runs} == {run_id}
    assert runs[0]["old"] is None and runs[0]["new"]["status"] == "queued"
    assert runs[-1]["old"]["status"] == "running" and runs[-1]["new"]["status"] == "succeeded"
    assert runs[-1]["new"]["report"]["inserted"] == 2
    created = [r for r in rows if r["table_name"] == "service_point"]
    assert sorted(r["new"]["name"] for r in created) == ["党群服务中心", "爱心超市"]
    assert all(r["operation"] == "INSERT" and r["old"] is None for r in created)
    assert created[0]["new"]["geom"]["type"] == "Point"  # geometry as GeoJSON


def test_accepting_a_case_is_the_timelines_but_changing_its_deadline_is_audited(world):
    s = world["settings"]
    case = world["case"]
    start = last_id(s)
    with TestClient(create_app(s)) as api:
        r = api.post(
            f"/api/v1/cases/{case['id']}/actions",
            headers=world["admin"],
            json={"action": "accept"},
        )
        assert r.status_code == 200, r.text
    assert entries_since(s, start, table_name="cases") == []
    with acting_as(TESTER), transaction(s) as conn:
        conn.execute(
            text("UPDATE cases SET deadline_at = deadline_at + interval '2 days' WHERE id = :id"),
            {"id": case["id"]},
        )
    (row,) = entries_since(s, start)
    assert row["target"] == case["case_no"] and row["changed"] == ["deadline_at"]
    assert row["old"]["deadline_at"] != row["new"]["deadline_at"]


# ------------------------------------------------------------------ through the CLI


def test_cli_changes_are_recorded_as_the_os_user_and_secrets_never_enter(test_city, tmp_path):
    s = test_city
    password = "s3cret-pass-Audit"
    start = last_id(s)
    team = cli(
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
    team_id = team.stdout.split()[1].rstrip(":")
    cli(
        s,
        "users",
        "create",
        "--username",
        "zhang.wei",
        "--password",
        password,
        "--role",
        "supervisor",
        "--scope",
        "410199001",
        "--name",
        "张伟",
    )
    cli(s, "users", "password", "zhang.wei", "--password", password + "-2")
    cli(s, "users", "deactivate", "zhang.wei")
    key = cli(s, "open311", "keys", "create", "--name", "hotline-12345").stdout
    api_key = next(line for line in key.splitlines() if line.startswith("api_key: "))[9:]
    cli(s, "open311", "keys", "revoke", "hotline-12345")
    rows = entries_since(s, start)
    assert {(r["actor"], r["address"], r["actor_id"]) for r in rows} == {
        (CLI_ACTOR, CLI_ADDRESS, None)
    }
    assert [(r["table_name"], r["operation"], r["target"]) for r in rows] == [
        ("team", "INSERT", team_id),
        ("app_user", "INSERT", "zhang.wei"),
        ("app_user", "UPDATE", "zhang.wei"),
        ("app_user", "UPDATE", "zhang.wei"),
        ("open311_client", "INSERT", "hotline-12345"),
        ("open311_client", "UPDATE", "hotline-12345"),
    ]
    created, new_password, deactivated = rows[1:4]
    assert created["new"]["scopes"] == ["410199001"] and created["new"]["role"] == "supervisor"
    assert created["new"]["password_hash"] == REDACTED
    assert new_password["changed"] == ["password_hash", "token_version"]
    assert new_password["old"]["password_hash"] == new_password["new"]["password_hash"] == REDACTED
    assert deactivated["changed"] == ["active", "token_version"]
    assert deactivated["old"]["active"] is True and deactivated["new"]["active"] is False
    assert rows[4]["new"]["key_hash"] == REDACTED and rows[5]["changed"] == ["revoked_at"]
    # neither a password, its hash, the key nor its hash is anywhere in the log
    from gis_service.open311.keys import hash_key

    with get_engine(s).connect() as conn:
        everything = conn.execute(text("SELECT string_agg(a::text, '') FROM audit_log a")).scalar()
        hashes = conn.execute(
            text("SELECT password_hash FROM app_user WHERE username = 'zhang.wei'")
        ).scalar_one()
    for secret in (password, password + "-2", hashes, api_key, hash_key(api_key)):
        assert secret not in everything


def test_cli_imports_are_recorded_as_the_os_user(test_city, tmp_path):
    s = test_city
    start = last_id(s)
    grids = write(frame({"41019900100101": GRIDS["41019900100101"]}), tmp_path / "g.geojson")
    cli(s, "import", "boundaries", str(grids), "--level", "grid")
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "unit_code,role,name,phone,sort\n41019900100101,grid_leader,王芳,13800000000,1\n",
        encoding="utf-8",
    )
    cli(s, "import", "roster", str(roster))
    rows = entries_since(s, start)
    assert {(r["actor"], r["address"]) for r in rows} == {(CLI_ACTOR, CLI_ADDRESS)}
    units = [r for r in rows if r["table_name"] == "admin_unit"]
    assert [(r["operation"], r["rows"], r["new"]) for r in units] == [
        ("INSERT", 1, {"keys": ["41019900100101"]})
    ]
    (staff,) = [r for r in rows if r["table_name"] == "unit_staff"]
    assert staff["operation"] == "INSERT" and staff["new"]["name"] == "王芳"
    assert staff["new"]["phone"] == "13800000000"


def test_loading_a_taxonomy_records_only_what_it_changes(db, tmp_path):
    from gis_service.cases.categories import DEFAULT_TAXONOMY

    cli(db, "categories", "load", str(DEFAULT_TAXONOMY))  # undo what other tests changed
    start = last_id(db)
    cli(db, "categories", "load", str(DEFAULT_TAXONOMY))
    assert entries_since(db, start) == []  # the same taxonomy again: nothing changed
    data = json.loads(DEFAULT_TAXONOMY.read_text())
    category = data["domains"][0]["children"][0]
    category["name_en"] += " (renamed)"
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps(data, ensure_ascii=False))
    cli(db, "categories", "load", str(path))
    (row,) = entries_since(db, start)
    assert (row["actor"], row["table_name"], row["target"]) == (
        CLI_ACTOR,
        "case_category",
        category["code"],
    )
    assert row["changed"] == ["name_en"] and row["new"]["name_en"] == category["name_en"]
    assert row["old"]["name_en"] + " (renamed)" == category["name_en"]
    cli(db, "categories", "load", str(DEFAULT_TAXONOMY))  # the categories as other tests know them


# ------------------------------------------------------------------ append-only


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"])
def test_the_log_refuses_update_and_delete(world, statement):
    s = world["settings"]
    assert last_id(s) > 0
    with pytest.raises(DBAPIError, match="audit_log is append-only"), transaction(s) as conn:
        conn.execute(text(statement))


# ------------------------------------------------------------------ reading and exporting


def _audit_routes(app) -> list[str]:
    """The app's routes under /api/v1/audit (included routers' effective routes too)."""
    found = set()
    for route in app.routes:
        contexts = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        found |= {r.path for r in contexts if (r.path or "").startswith("/api/v1/audit")}
    return sorted(found)


def test_only_admins_read_the_log(world):
    s = world["settings"]
    app = create_app(s)
    routes = _audit_routes(app)
    assert routes == ["/api/v1/audit", "/api/v1/audit/export"]
    others = {k: v for k, v in world.items() if isinstance(v, dict) and "Authorization" in v}
    others.pop("admin")
    assert {"worker1", "district_sup", "team_a", "planner"} <= set(others)
    with TestClient(app) as api:
        for path in routes:
            anonymous = api.get(path)
            assert anonymous.status_code == 401, path
            for who, headers in others.items():
                r = api.get(path, headers=headers)
                assert r.status_code == 403, (path, who, r.status_code)
                assert r.json()["error"] == "forbidden"
            assert api.get(path, headers=world["admin"]).status_code == 200, path


def test_the_page_filters_pages_and_goes_newest_first(world):
    s = world["settings"]
    cli(s, "users", "create", "--username", "li.na", "--password", "password-123",
        "--role", "admin")  # fmt: skip
    with TestClient(create_app(s)) as api:
        admin = world["admin"]
        everything = api.get("/api/v1/audit", params={"limit": 1000}, headers=admin).json()
        ids = [e["id"] for e in everything["entries"]]
        assert ids == sorted(ids, reverse=True) and everything["numberMatched"] == last_id(s)
        users = api.get("/api/v1/audit", params={"kind": "users"}, headers=admin).json()
        assert users["numberMatched"] > 0
        assert {e["table_name"] for e in users["entries"]} == {"app_user"}
        assert {e["kind"] for e in users["entries"]} == {"users"}
        mine = api.get(
            "/api/v1/audit", params={"actor": CLI_ACTOR, "target": "li.na"}, headers=admin
        ).json()
        assert [(e["operation"], e["address"]) for e in mine["entries"]] == [
            ("INSERT", CLI_ADDRESS)
        ]
        newest = everything["entries"][0]
        at = newest["at"]
        since = api.get("/api/v1/audit", params={"since": at}, headers=admin).json()
        assert newest["id"] in [e["id"] for e in since["entries"]]
        until = api.get("/api/v1/audit", params={"until": at, "limit": 1000}, headers=admin)
        assert newest["id"] not in [e["id"] for e in until.json()["entries"]]
        page = api.get("/api/v1/audit", params={"limit": 2, "offset": 2}, headers=admin).json()
        assert [e["id"] for e in page["entries"]] == ids[2:4]
        rels = {link["rel"]: link["href"] for link in page["links"]}
        assert set(rels) == {"self", "next", "prev"} and "offset=4" in rels["next"]
        for bad in ({"kind": "nothing"}, {"table": "pg_authid"}, {"since": at, "until": at}):
            r = api.get("/api/v1/audit", params=bad, headers=admin)
            assert r.status_code == 422, bad
            assert r.json()["error"] in ("invalid_input", "validation_error"), r.json()
    assert set(KINDS) >= {"users", "teams", "categories", "keys", "imports", "service_points"}


def test_exports_through_the_api_and_the_cli(world, tmp_path):
    s = world["settings"]
    since = world["since"]
    with TestClient(create_app(s)) as api:
        r = api.get(
            "/api/v1/audit/export",
            params={"kind": "keys", "since": since},
            headers=world["admin"],
        )
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
        table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert tuple(table[0]) == COLUMNS
        assert [(t["table_name"], t["operation"], t["target"]) for t in table] == [
            ("open311_client", "INSERT", "app-hotline")
        ]
        assert json.loads(table[0]["new"])["key_hash"] == REDACTED
        r = api.get(
            "/api/v1/audit/export",
            params={"format": "jsonl", "table": "service_point", "since": since},
            headers=world["admin"],
        )
        assert r.headers["content-type"].startswith("application/jsonl")
        lines = [json.loads(line) for line in r.text.splitlines()]
        assert [x["new"]["name"] for x in lines] == ["红色家园"]
        assert [x["actor"] for x in lines] == ["user:root"]
        page = api.get(
            "/api/v1/audit", params={"limit": 1000, "since": since}, headers=world["admin"]
        ).json()
    assert 0 < page["numberMatched"] < 1000
    out = tmp_path / "audit.csv"
    done = cli(s, "audit", "export", "--out", str(out), "--since", since)
    assert f"{page['numberMatched']} audit entries" in done.stderr.replace("\n", " ")
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == [e["id"] for e in page["entries"]]
    out = tmp_path / "users.jsonl"
    cli(s, "audit", "export", "--out", str(out), "--kind", "users", "--operation", "INSERT")
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines and {x["table_name"] for x in lines} == {"app_user"}
    assert all(x["new"]["password_hash"] == REDACTED for x in lines)
