"""The schema keeps the shape Citus needs to distribute it by district (issue 19 item 7;
gis_service/db/distribution.py places every table; migration 0020_district_keys).

Citus is not installable here, so its rules are checked against PostgreSQL's own catalog
of the migrated schema: every table placed; every unique key of a distributed table (its
month partitions' own included) holding the district code; every foreign key between
distributed tables joining on it; none from a reference or local table into a distributed
one; and, on real data, every row's district equal to its unit's or its case's."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import Connection, text

from gis_service.app import create_app
from gis_service.db import distribution
from gis_service.db.distribution import (
    DISTRIBUTED,
    DISTRICT_OF,
    LOCAL,
    REFERENCE,
    TO_DISTRIBUTE,
)
from gis_service.db.engine import get_engine, transaction
from gis_service.notify import scheduler
from gis_service.notify.fanout import fan_out_batch
from gis_service.units.codes import CODE_LENGTH, Level, district_of
from tests import walk_city
from tests.conftest import IN_GRID_1, IN_GRID_2, frame, write
from tests.images import image_bytes

PLACED = {"distributed": DISTRIBUTED, "to_distribute": TO_DISTRIBUTE}


def _tables(conn: Connection) -> set[str]:
    """The tables of the schema (a month partition is its parent's)."""
    return set(
        conn.execute(
            text(
                "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
                "AND relkind IN ('r', 'p') AND NOT relispartition"
            )
        ).scalars()
    )


def _foreign_keys(conn: Connection) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """(table, name, referenced table, [(column, referenced column)]) of every key."""
    rows = conn.execute(
        text(
            """
            SELECT c.conrelid::regclass::text, c.conname, c.confrelid::regclass::text,
                   array_agg(a.attname ORDER BY k.n), array_agg(fa.attname ORDER BY k.n)
              FROM pg_constraint c
             CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY k (col, ref, n)
              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col
              JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.ref
             WHERE c.contype = 'f' AND c.conparentid = 0
               AND c.connamespace = current_schema()::regnamespace
             GROUP BY 1, 2, 3
             ORDER BY 1, 2
            """
        )
    ).all()
    return [(t, n, r, list(zip(cols, refs, strict=True))) for t, n, r, cols, refs in rows]


def test_every_table_is_placed_exactly_once(settings):
    with get_engine(settings).connect() as conn:
        tables = _tables(conn)
    sets = {
        "DISTRIBUTED": set(DISTRIBUTED),
        "TO_DISTRIBUTE": set(TO_DISTRIBUTE),
        "REFERENCE": set(REFERENCE),
        "LOCAL": set(LOCAL),
    }
    unplaced = sorted(tables - set().union(*sets.values()))
    assert not unplaced, f"place these tables in gis_service/db/distribution.py: {unplaced}"
    gone = sorted(set().union(*sets.values()) - tables)
    assert not gone, f"distribution.py places tables the schema does not have: {gone}"
    for a, sa in sets.items():
        for b, sb in sets.items():
            assert a >= b or not (sa & sb), f"{sorted(sa & sb)} are in both {a} and {b}"
    for table in tables:
        assert distribution.placement(table)
    with pytest.raises(KeyError, match="not placed"):
        distribution.placement("no_such_table")


def test_the_distribution_column_is_the_district_code_on_every_row(settings):
    with get_engine(settings).connect() as conn:
        for table, column in DISTRIBUTED.items():
            row = conn.execute(
                text(
                    "SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
                    "WHERE attrelid = CAST(:t AS regclass) AND attname = :c AND NOT attisdropped"
                ),
                {"t": table, "c": column},
            ).one_or_none()
            assert row is not None, f"{table} has no {column}"
            length = CODE_LENGTH[Level.district]
            assert tuple(row) == (f"character({length})", True), (table, tuple(row))


def test_every_unique_key_of_a_distributed_table_holds_its_column(settings):
    """Primary keys, unique constraints and unique indexes (a partial one too), on the
    table and on each of its partitions."""
    with get_engine(settings).connect() as conn:
        checked = 0
        for table, column in DISTRIBUTED.items():
            rows = conn.execute(
                text(
                    """
                    SELECT i.indexrelid::regclass::text, r.relname,
                           array_agg(a.attname) FILTER (WHERE a.attname IS NOT NULL)
                      FROM (SELECT CAST(:t AS regclass) AS relid
                            UNION SELECT relid FROM pg_partition_tree(CAST(:t AS regclass))) t
                      JOIN pg_index i ON i.indrelid = t.relid AND i.indisunique
                      JOIN pg_class r ON r.oid = i.indrelid
                      LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid
                           AND a.attnum = ANY(i.indkey::int2[])
                     GROUP BY 1, 2
                    """
                ),
                {"t": table},
            ).all()
            assert rows, f"{table} has no unique key"
            for index, relation, columns in rows:
                assert column in (columns or []), (
                    f"unique index {index} on {relation} ({columns}) lacks {column}: Citus "
                    "refuses a unique key without the distribution column"
                )
                checked += 1
        assert checked >= len(DISTRIBUTED)


def test_foreign_keys_respect_the_placement(settings):
    with get_engine(settings).connect() as conn:
        fks = _foreign_keys(conn)
    keyed: set[str] = set()
    for table, name, ref, pairs in fks:
        source, target = _placement(table), _placement(ref)
        if source == "distributed" and target == "distributed":
            # co-located: the district codes meet
            assert (DISTRIBUTED[table], DISTRIBUTED[ref]) in pairs, (
                f"{table}.{name} {pairs} -> {ref} does not join on the district code"
            )
            keyed.add(table)
        if source == "distributed":
            assert target != "local", (
                f"{table}.{name} references the coordinator-only table {ref}: Citus refuses "
                "a key from a distributed table to a local one (make it a reference table)"
            )
        if source in ("reference", "local"):
            assert target not in PLACED, (
                f"{source} table {table}.{name} references the distributed table {ref}"
            )
    # every distributed table reaches its district through a key, but for those whose
    # district is a unit's in the same row and the inbox, whose is its case's (no key: a
    # notification outlives its case's archiving; checked on rows below)
    assert keyed >= set(DISTRIBUTED) - set(DISTRICT_OF) - {"notification"}, sorted(
        set(DISTRIBUTED) - set(DISTRICT_OF) - {"notification"} - keyed
    )


def test_every_table_referencing_a_case_is_distributed(settings):
    """The family is found from the catalog: a table whose key reaches ``cases``, however
    indirectly, must be distributed with it."""
    with get_engine(settings).connect() as conn:
        fks = _foreign_keys(conn)
    family = {"cases"}
    grew = True
    while grew:
        grew = False
        for table, _name, ref, _pairs in fks:
            if ref in family and table not in family:
                family.add(table)
                grew = True
    assert family <= set(DISTRIBUTED), sorted(family - set(DISTRIBUTED))


def _placement(table: str) -> str:
    return distribution.placement(table)


def test_district_of_is_the_code_rule_in_sql_and_python(settings):
    codes = ["410105", "410105001", "410105001003", "41010500100302", "41010500100302015"]
    with get_engine(settings).connect() as conn:
        sql = conn.execute(
            text("SELECT district_of(c) FROM unnest(CAST(:c AS text[])) c"), {"c": codes}
        ).scalars()
        assert list(sql) == [district_of(c) for c in codes]
        assert conn.execute(text("SELECT district_of(NULL)")).scalar() is None
    assert {district_of(c) for c in codes} == {"410105"}


# -- the keys at work, on the test city plus a second district -----------------------------

OTHER_DISTRICT = "410198"
IN_OTHER = (113.15, 34.05)


@pytest.fixture
def two_districts(case_city, tmp_path):
    from gis_service.imports.boundaries import BoundaryOptions, import_boundaries

    s = case_city["settings"]
    path = write(
        frame({OTHER_DISTRICT: box(113.1, 34.0, 113.2, 34.1)}, "区"), tmp_path / "d2.geojson"
    )
    import_boundaries(path, BoundaryOptions(level=Level.district), settings=s)
    with TestClient(create_app(s)) as api:
        yield api, case_city


def _report(api, who, point, key=None, **extra):
    body = {"category": "environment.garbage", "lon": point[0], "lat": point[1]}
    r = api.post(
        "/api/v1/cases",
        headers={**who, **({"Idempotency-Key": key} if key else {})},
        json={**body, "description": "楼下垃圾堆放", **extra},
    )
    assert r.status_code == 201, r.text
    return r.json()


def _act(api, who, case_id, action, **body):
    return api.post(
        f"/api/v1/cases/{case_id}/actions", headers=who, json={"action": action, **body}
    )


def _mismatches(conn: Connection) -> dict[str, int]:
    """Per table: rows whose district is not their unit's (cases, walks: DISTRICT_OF,
    checked here with the Python rule) or their parent's (the composite keys)."""
    out = {}
    for table, column in DISTRICT_OF.items():
        rows = conn.execute(text(f"SELECT {column}, {DISTRIBUTED[table]} FROM {table}")).all()
        out[table] = sum(1 for code, d in rows if district_of(code) != d)
    # an inbox row and a webhook delivery are in the district of the case they are about
    # (no key to it: a notification outlives its case's archiving)
    for table, case_id in (
        ("notification", "t.case_id"),
        ("notify_delivery", "CAST(t.payload->>'case_id' AS bigint)"),
    ):
        out[f"{table} by case"] = conn.execute(
            text(
                f"SELECT count(*) FROM {table} t JOIN cases c ON c.id = {case_id} "
                f"WHERE c.district_code <> t.district_code"
            )
        ).scalar()
    for table, _name, ref, pairs in _foreign_keys(conn):
        if table not in DISTRIBUTED or ref not in DISTRIBUTED or table == ref:
            continue
        col, refcol = next((c, r) for c, r in pairs if c != DISTRIBUTED[table])
        out[table] = conn.execute(
            text(
                f"SELECT count(*) FROM {table} t JOIN {ref} p ON p.{refcol} = t.{col} "
                f"WHERE p.{DISTRIBUTED[ref]} <> t.{DISTRIBUTED[table]}"
            )
        ).scalar()
    return out


def test_every_path_writes_the_case_district(two_districts, tmp_path):
    api, c = two_districts
    s = c["settings"]
    admin = c["admin"]
    here = _report(api, c["worker1"], IN_GRID_1, key="walk-1")
    there = _report(api, admin, IN_OTHER, key="walk-1")
    assert there["unit_code"] == OTHER_DISTRICT
    # a retry finds its case by the key alone (200: replayed)
    body = {"category": "environment.garbage", "lon": IN_GRID_1[0], "lat": IN_GRID_1[1]}
    r = api.post(
        "/api/v1/cases",
        headers={**c["worker1"], "Idempotency-Key": "walk-1"},
        json={**body, "description": "楼下垃圾堆放"},
    )
    assert (r.status_code, r.json()["id"]) == (200, here["id"])
    dup = _report(api, c["district_sup"], IN_GRID_2, link_to=here["id"])
    # accepted, dispatched, a photo, an extension request, a lock, a note; then the
    # reminders of the deadline, made overdue
    cid = here["id"]
    assert _act(api, c["sub1_sup"], cid, "accept", note="立案").status_code == 200
    r = api.post(
        f"/api/v1/cases/{cid}/photos",
        headers=c["worker1"],
        files={"file": ("p.jpg", image_bytes(seed=3), "image/jpeg")},
        data={"stage": "before"},
    )
    assert r.status_code == 201, r.text
    assert _act(api, admin, there["id"], "accept", note="立案").status_code == 200
    r = _act(api, c["sub1_sup"], cid, "dispatch", team_id=c["teams"]["a"], note="派遣")
    assert r.status_code == 200, r.text
    r = _act(api, c["team_a"], cid, "extend", extension_hours=24, note="需要更多时间")
    assert r.status_code == 200, r.text
    r = api.put(f"/api/v1/cases/{there['id']}/lock", headers=admin)
    assert r.status_code == 200, r.text
    with transaction(s) as conn:
        conn.execute(
            text("UPDATE cases SET deadline_at = now() - interval '1 minute' WHERE id = :i"),
            {"i": there["id"]},
        )
        assert scheduler.schedule(conn, s) >= 1
        conn.execute(
            text(
                "INSERT INTO webhook_subscription (name, url, secret) "
                "VALUES ('hotline', 'http://127.0.0.1:9/hook', 'a-secret-of-sixteen+')"
            )
        )
    # the inbox and the deliveries of every event and reminder so far, both districts'
    with transaction(s) as conn:
        assert fan_out_batch(conn, s, 1000).notifications >= 2
    # a grid walk: its fixes and chunk, a problem reported on it, its visits and the day
    walked = _walk(api, c["worker1"], s, tmp_path / "walk")
    assert walked["problems"] == 1 and walked["visited"], walked
    # the walk's buildings and streets: every building's walking access (access/reach.py)
    r = api.get("/api/v1/access/reach", params={"level": "grid"}, headers=admin)
    assert r.status_code == 200, r.text
    # a settled case in each district folded into the roll-up (case_rollup_add, the one
    # writer of the fold and of the trigger on cases), today included
    assert _act(api, admin, there["id"], "void", note="重复上报").status_code == 200
    assert _act(api, c["sub1_sup"], cid, "void", note="重复上报").status_code == 200
    with transaction(s) as conn:
        conn.execute(text("SELECT case_rollup_fold('Asia/Shanghai', current_date + 1)"))
    with get_engine(s).connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in DISTRIBUTED}
        mismatches = _mismatches(conn)
        by_case = {
            r.id: r.district_code for r in conn.execute(text("SELECT id, district_code FROM cases"))
        }
    # every family table got rows here, and none is in another district than its case
    assert all(counts.values()), counts
    assert not any(mismatches.values()), mismatches
    assert by_case[dup["id"]] == by_case[cid] == district_of(here["unit_code"])
    assert by_case[there["id"]] == OTHER_DISTRICT


def _walk(api, worker, s, folder) -> dict:
    """A walk along walk_city's street with a problem reported on it; its figures."""
    from datetime import UTC, datetime, timedelta

    folder.mkdir()
    walk_city.build(s, folder)
    start = datetime.now(UTC) - timedelta(hours=1)
    r = api.post(
        "/api/v1/walks",
        headers=worker,
        json={"grid_code": walk_city.GRID, "client_started_at": start.isoformat()},
    )
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    points = walk_city.walk_east(start)
    r = api.post(
        f"/api/v1/walks/{wid}/points", headers=worker, json={"chunk_id": "c1", "points": points}
    )
    assert r.status_code == 200, r.text
    _report(api, worker, walk_city.ll(50, 0), walk_id=wid)
    r = api.post(f"/api/v1/walks/{wid}/end", headers=worker)
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    return {"id": wid, "problems": props["problems"], "visited": props["visited"]}


def test_a_walk_and_its_reports_stay_in_one_district(two_districts):
    """A problem reported during a walk lies in the walk's district (the key cases
    (walk_id, district_code), migration 0022): one across the border is a 422 naming
    walk_id and both districts, and nothing is written. A walk's district is its grid's."""
    api, c = two_districts
    s = c["settings"]
    both = c["admin"]  # walks, and reports on both sides of the border
    r = api.post("/api/v1/walks", headers=both, json={"grid_code": walk_city.GRID})
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    with get_engine(s).connect() as conn:
        cases = conn.execute(text("SELECT count(*) FROM cases")).scalar()
        walk_district = conn.execute(
            text("SELECT district_code FROM walk WHERE id = :w"), {"w": wid}
        ).scalar()
    assert walk_district == district_of(walk_city.GRID)
    body = {"category": "environment.garbage", "lon": IN_OTHER[0], "lat": IN_OTHER[1]}
    r = api.post(
        "/api/v1/cases", headers=both, json={**body, "description": "对面", "walk_id": wid}
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "walk_id"
    assert OTHER_DISTRICT in r.json()["detail"] and walk_district in r.json()["detail"]
    # the same report without the walk is taken; one in the walk's district with it too
    assert _report(api, both, IN_OTHER)["unit_code"] == OTHER_DISTRICT
    linked = _report(api, both, IN_GRID_1, walk_id=wid)
    with get_engine(s).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar() == cases + 2
        assert (
            conn.execute(
                text("SELECT walk_id FROM cases WHERE id = :i"), {"i": linked["id"]}
            ).scalar()
            == wid
        )
        # the database holds it too: a walk's case cannot move to another district's walk
        with pytest.raises(Exception, match="violates"):
            conn.execute(
                text("UPDATE walk SET district_code = :d WHERE id = :w"),
                {"d": OTHER_DISTRICT, "w": wid},
            )


def test_a_case_never_leaves_its_district(two_districts):
    api, c = two_districts
    s = c["settings"]
    admin = c["admin"]
    here = _report(api, admin, IN_GRID_1)
    there = _report(api, admin, IN_OTHER)
    # a report filed as a duplicate of a case across the border: 422 naming both
    body = {"category": "environment.garbage", "lon": IN_OTHER[0], "lat": IN_OTHER[1]}
    r = api.post(
        "/api/v1/cases",
        headers=admin,
        json={**body, "description": "同一堆垃圾", "link_to": here["id"]},
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "link_to" and OTHER_DISTRICT in r.json()["detail"]
    # a merge across it: 409, nothing written
    assert _act(api, admin, there["id"], "accept", note="立案").status_code == 200
    assert _act(api, admin, here["id"], "accept", note="立案").status_code == 200
    with get_engine(s).connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM case_event")).scalar()
    r = _act(api, admin, there["id"], "merge", into_case_id=here["id"], note="重复")
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "conflict" and "within their district" in r.json()["detail"]
    with get_engine(s).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_event")).scalar() == events
    # in the database: neither the unit nor the district of a case moves across the border
    grid = next(u["code"] for u in here["units"] if u["level"] == "grid")
    for change in (
        {"unit_code": OTHER_DISTRICT},
        {"district_code": OTHER_DISTRICT},
        {"unit_code": OTHER_DISTRICT, "district_code": OTHER_DISTRICT},
    ):
        sets = ", ".join(f"{k} = :{k}" for k in change)
        with pytest.raises(Exception, match="violates"), transaction(s) as conn:
            conn.execute(
                text(f"UPDATE cases SET {sets} WHERE id = :i"), {**change, "i": here["id"]}
            )
    # within the district it may (a corrected point in a neighbouring grid)
    with transaction(s) as conn:
        conn.execute(
            text("UPDATE cases SET unit_code = :u WHERE id = :i"),
            {"u": grid[:-2] + "02", "i": here["id"]},
        )


def test_demo_rows_carry_their_district(demo_settings):
    """The demo's generated history (COPY, demo/cases.py) and its workflow."""
    with get_engine(demo_settings).connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM cases")).scalar()
        assert n > 0
        mismatches = _mismatches(conn)
        assert not any(mismatches.values()), mismatches
