"""The case history partitioned by month (gis_service/cases/partitions.py, migration
0018_case_partitions, docs/scale.md "History that grows"): the app's period queries touch
only the month partitions they need — shown by EXPLAIN of every statement the app's own
period routes run —, a timeline read touches one partition, the upgrade converts a
database with data in it, and the CLI lists, makes and detaches months."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from gis_service.app import create_app
from gis_service.cases import partitions
from gis_service.db import cluster, migrate
from gis_service.db.engine import get_engine, transaction
from gis_service.errors import InvalidInput
from gis_service.settings import Settings
from tests import history
from tests.conftest import ADMIN_AUTH, TEST_DB, TEST_SECRET
from tests.test_cases import IN_GRID_1, report
from tests.test_cli import run
from tests.test_open311 import V2, make_key

PACKAGE = Path(__file__).resolve().parents[1] / "gis_service"
PERIOD_PARAMS = {"from", "to", "start_date", "end_date", "datetime"}
PART = re.compile(r"^(cases|case_event)_(y\d{4}m\d{2}|legacy)$")


def _relations(plan) -> set[str]:
    """Every relation a JSON plan scans; in an EXPLAIN ANALYZE plan, those it ran (a
    partition pruned while running — a lookup by another row's case id — shows as never
    executed: zero loops)."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan and plan.get("Actual Loops", 1) > 0:
            found.add(plan["Relation Name"])
        for v in plan.values():
            found |= _relations(v)
    elif isinstance(plan, list):
        for v in plan:
            found |= _relations(v)
    return found


def _month_start(d: date) -> date:
    return d.replace(day=1)


@pytest.fixture
def months(case_city):
    """A month two months back (its first and last local days) in a database whose
    partitions run from six months back to three ahead, with cases reported in several."""
    s = case_city["settings"]
    today = datetime.now(UTC).date()
    first = _month_start(_month_start(today) - timedelta(days=40))
    last = _month_start(first + timedelta(days=40)) - timedelta(days=1)
    with transaction(s) as conn:
        now = partitions.months_around(conn).start
        partitions.ensure(conn, range(now - 6, now + 4))
    with TestClient(create_app(s)) as api:
        ids = [report(api, case_city["worker1"]).json()["id"] for _ in range(4)]
    for i, back in zip(ids, (0, 40, 70, 100), strict=True):
        history.reported_at(s, i, datetime.now(UTC) - timedelta(days=back))
    return first, last


def _period_routes(api) -> list[tuple[str, str, dict[str, str]]]:
    """(route, URL, query) of every GET route of the app's OpenAPI that takes a period,
    with its path parameters from their schemas' first enum value (the OGC collection:
    the cases)."""
    spec = api.app.openapi()
    out = []
    for path, ops in spec["paths"].items():
        op = ops.get("get")
        params = (op or {}).get("parameters", [])
        names = {p["name"] for p in params if p["in"] == "query"}
        if not op or not names & PERIOD_PARAMS:
            continue
        url = path
        for p in params:
            if p["in"] != "path":
                continue
            schema = p.get("schema", {})
            if "$ref" in schema:
                schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            enum = schema.get("enum")
            value = enum[0] if enum else {"collectionId": "cases"}.get(p["name"])
            url = url.replace("{" + p["name"] + "}", value)
        out.append((path, url, names & PERIOD_PARAMS))
    return out


def test_every_period_query_of_the_app_touches_only_its_months(case_city, months):
    """Every statement that a period route runs with the period's values in it, EXPLAINed
    with the same values, scans only the partitions of the period's month."""
    s = case_city["settings"]
    first, last = months
    tz = "+08:00" if s.timezone == "Asia/Shanghai" else "Z"
    values = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "start_date": f"{first.isoformat()}T00:00:00{tz}",
        "end_date": f"{last.isoformat()}T23:59:59{tz}",
        "datetime": f"{first.isoformat()}T00:00:00{tz}/{last.isoformat()}T23:59:59{tz}",
    }
    with get_engine(s).connect() as conn:
        m = partitions.month_index(conn, first.strftime("%Y-%m"))
        label = conn.execute(text("SELECT case_month_label(:m)"), {"m": m}).scalar()
    wanted = {partitions.partition_name(t, label) for t in partitions.TABLES}

    captured: list[tuple[str, str, object]] = []
    route = [""]

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "case_in_period(" in statement or re.search(r"\bcases\b", statement):
            captured.append((route[0], statement, parameters))

    key = make_key(s)
    event.listen(Engine, "before_cursor_execute", capture)
    try:
        with TestClient(create_app(s)) as api:
            calls = [(p, u, {n: values[n] for n in names}) for p, u, names in _period_routes(api)]
            calls.append(
                (
                    f"{V2}/requests.json",
                    f"{V2}/requests.json",
                    {"start_date": values["start_date"], "end_date": values["end_date"]},
                )
            )
            for path, url, query in calls:
                route[0] = path
                headers = {} if path.startswith(V2) else ADMIN_AUTH
                if path.startswith(V2):
                    query = {**query, "api_key": key}
                r = api.get(url, params=query, headers=headers)
                assert r.status_code < 400, f"{url}: {r.status_code} {r.text[:200]}"
    finally:
        event.remove(Engine, "before_cursor_execute", capture)

    pruned: dict[str, int] = {}
    with get_engine(s).connect() as conn:
        raw = conn.connection.dbapi_connection
        for path, statement, parameters in captured:
            if "case_in_period(" not in statement or not re.match(r"\s*(SELECT|WITH)\b", statement):
                continue
            if re.search(r"\b(INSERT|UPDATE|DELETE)\b", statement):
                continue
            with raw.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
                plan = cur.fetchone()[0]
            raw.rollback()
            scanned = {r for r in _relations(plan) if PART.match(r)}
            assert scanned <= wanted, f"{path} scans {sorted(scanned - wanted)}:\n{statement}"
            pruned[path] = pruned.get(path, 0) + 1
    # the routes that filter cases by their reporting period all went through it
    assert {
        "/api/v1/cases",
        "/api/v1/desk/queue",
        "/api/v1/exports/cases.{fmt}",
        "/api/v1/stats/recurring-spots",
        "/ogc/collections/{collectionId}/items",
        f"{V2}/requests.json",
    } <= set(pruned), pruned


def test_the_source_filters_no_reporting_period_without_its_months():
    """A reporting-period filter on cases in the source comes with case_in_period (through
    partitions.period_sql): a new one without it fails here."""
    period = re.compile(
        r"reported_at\s*(>=|<=|<|>)\s*[:(]|reported_at AT TIME ZONE :?\w+\)::date BETWEEN"
    )
    missing = []
    for path in [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.sql")]:
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(("db/migrations/", "demo/")):
            continue
        src = path.read_text(encoding="utf-8")
        if period.search(src) and "period_sql(" not in src and "case_in_period(" not in src:
            missing.append(rel)
    assert not missing, f"period filters without case_in_period: {missing}"


def test_a_lookup_by_case_number_reads_its_month(case_city, months):
    """Open311's lookups by case number (a request, a token; cases/numbers.py) touch only
    the partitions of the month the number's date names — at most that month and the one
    next to it, for a date within a day of a month's end — and find the case."""
    s = case_city["settings"]
    with get_engine(s).connect() as conn:
        cases = conn.execute(
            text("SELECT id, case_no, case_month_label(case_id_month(id)) FROM cases")
        ).all()
    assert len({c[2] for c in cases}) >= 3  # several months to prune away
    key = make_key(s)
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "case_no = ANY" in statement:
            captured.append((statement, parameters))

    checked = 0
    for case_id, case_no, label in cases:
        captured.clear()
        event.listen(Engine, "before_cursor_execute", capture)
        try:
            with TestClient(create_app(s)) as api:
                for url in (f"{V2}/requests/{case_no}.json", f"{V2}/tokens/{case_no}.json"):
                    r = api.get(url, params={"api_key": key})
                    assert r.status_code == 200, r.text
                    assert r.json()[0]["service_request_id"] == case_no
        finally:
            event.remove(Engine, "before_cursor_execute", capture)
        assert len(captured) == 2
        with get_engine(s).connect() as conn:
            near = conn.execute(
                text(
                    "SELECT case_month_label(case_id_month(:i) + d) FROM generate_series(-1, 1) d"
                ),
                {"i": case_id},
            ).scalars()
            allowed = {partitions.partition_name(t, m) for m in near for t in partitions.TABLES}
            raw = conn.connection.dbapi_connection
            for statement, parameters in captured:
                with raw.cursor() as cur:
                    cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
                    plan = cur.fetchone()[0]
                raw.rollback()
                scanned = {r for r in _relations(plan) if PART.match(r)}
                months_read = {PART.match(r).group(2) for r in scanned}
                own = partitions.partition_name("cases", label)
                assert own in scanned and len(months_read) <= 2, (case_no, scanned)
                assert scanned <= allowed, (case_no, scanned)
                checked += 1
    assert checked == 2 * len(cases)


def test_the_source_looks_up_case_numbers_through_their_month():
    """A lookup of cases by number in the source goes through cases/numbers.py
    ``lookup_sql`` (the one place a number is taken apart): a new ``case_no = :x`` fails
    here."""
    lookup = re.compile(r"case_no\s*(=|IN\b)\s*(:|ANY|\()", re.IGNORECASE)
    found = []
    for path in [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.sql")]:
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(("db/migrations/", "demo/")) or rel == "cases/numbers.py":
            continue
        if lookup.search(path.read_text(encoding="utf-8")):
            found.append(rel)
    assert not found, f"case-number lookups without their month: {found}"


def test_a_timeline_reads_one_partition(case_city, months):
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        case_id = report(api, case_city["worker1"]).json()["id"]
    with get_engine(s).connect() as conn:
        plan = conn.execute(
            text("EXPLAIN (FORMAT JSON) SELECT * FROM case_event WHERE case_id = :i"),
            {"i": case_id},
        ).scalar()
        name = conn.execute(
            text("SELECT tableoid::regclass::text FROM case_event WHERE case_id = :i"),
            {"i": case_id},
        ).scalar()
    assert {r for r in _relations(plan) if PART.match(r)} == {name}


def test_an_id_names_its_month_and_the_database_holds_it(case_city, months):
    """A new case's id is in its reporting month's range; a reporting time outside it is
    refused by the database (the rule the pruning relies on)."""
    s = case_city["settings"]
    with TestClient(create_app(s)) as api:
        body = report(api, case_city["worker1"]).json()
    with get_engine(s).connect() as conn:
        month = conn.execute(
            text("SELECT case_id_month(:i) = case_month(reported_at) FROM cases WHERE id = :i"),
            {"i": body["id"]},
        ).scalar()
    assert month is True
    with pytest.raises(Exception, match="cases_id_month_check"), transaction(s) as conn:
        conn.execute(
            text("UPDATE cases SET reported_at = reported_at - interval '62 days' WHERE id = :i"),
            {"i": body["id"]},
        )


def test_the_cli_lists_and_makes_months_and_keeps_recent_ones(case_city, months):
    s = case_city["settings"]
    first, _ = months
    month = first.strftime("%Y-%m")
    listed = run(s, "partitions", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert {r[2] for r in rows} >= {month}
    assert all(r[3] == "attached" for r in rows)

    bad = run(s, "partitions", "detach", "--before", "2026-13")
    assert bad.returncode != 0 and "2026-13" in bad.stderr

    # the months before `first` hold a case; a kept case marked as its duplicate holds it
    # back — refused, naming the rows
    with get_engine(s).connect() as conn:
        old = conn.execute(
            text("SELECT id FROM cases WHERE case_id_month(id) < :m ORDER BY id LIMIT 1"),
            {"m": partitions.month_index(conn, month)},
        ).scalar()
        new = conn.execute(text("SELECT max(id) FROM cases")).scalar()
    assert old is not None
    with transaction(s) as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text("UPDATE cases SET duplicate_of = :o, status = 'duplicate' WHERE id = :n"),
            {"o": old, "n": new},
        )
    refused = run(s, "partitions", "detach", "--before", month)
    assert refused.returncode != 0 and "cases.duplicate_of" in refused.stderr
    with transaction(s) as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text("UPDATE cases SET duplicate_of = NULL, status = 'reported' WHERE id = :n"),
            {"n": new},
        )
    # the month two months back is inside the statistics' recent window and its cases are
    # open: refused, naming both (tests/test_partition_archive.py detaches and attaches)
    kept = run(s, "partitions", "detach", "--before", month)
    assert kept.returncode != 0
    assert "recent window" in kept.stderr and "still open" in kept.stderr, kept.stderr
    again = run(s, "partitions", "list")
    assert all(r.split("\t")[3] == "attached" for r in again.stdout.splitlines())
    made = run(s, "partitions", "ensure", "--ahead", "5")
    assert made.returncode == 0, made.stderr
    with get_engine(s).connect() as conn:
        for month_no in partitions.months_around(conn, 5):
            label = conn.execute(text("SELECT case_month_label(:m)"), {"m": month_no}).scalar()
            for t in partitions.TABLES:
                name = partitions.partition_name(t, label)
                assert conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar()


def test_a_bad_month_is_named():
    with pytest.raises(InvalidInput, match="2026-00"):
        partitions.parse_month("2026-00")
    with pytest.raises(InvalidInput, match="'1999-12'"):
        partitions.parse_month("1999-12")


# ------------------------------------------------------------------ the upgrade with data


def test_the_upgrade_converts_a_database_with_cases():
    """At 0017 with cases of three months, their timelines, a photo, a lock and a retry
    key: after the upgrade every row is there with its id, in the legacy partitions, every
    foreign key points at the partitioned table and holds, new ids continue the sequence
    in their month, and a period outside the old rows' months skips them."""
    settings = Settings(db_name=f"{TEST_DB}_partitions", secret_key=TEST_SECRET)
    cluster.start(settings)
    cluster.drop_database(settings, settings.db_name)
    cluster.ensure_database(settings, settings.db_name)
    try:
        migrate.upgrade(settings, "0017_walks")
        times = [datetime(2026, 8, 15, 3, tzinfo=UTC), datetime(2026, 9, 20, 3, tzinfo=UTC)]
        times.append(datetime(2026, 10, 2, 3, tzinfo=UTC))
        with transaction(settings) as conn:
            conn.execute(
                text(
                    "INSERT INTO app_user (id, username, password_hash, display_name, role) "
                    "VALUES (1, 'root', 'x', 'Root', 'admin')"
                )
            )
            for i, t in enumerate(times):
                conn.execute(
                    text(
                        """
                        INSERT INTO cases (case_no, category_code, description, geom, unit_code,
                                           handling_level, reporter_id, reported_at,
                                           idempotency_key)
                        VALUES (:no, 'environment.garbage', 'old', 'SRID=4326;POINT(113 34)',
                                '410199', 'grid', 1, :t, :k)
                        """
                    ),
                    {"no": f"410199{i:014d}", "t": t, "k": f"key-{i}"},
                )
            ids = conn.execute(text("SELECT id FROM cases ORDER BY id")).scalars().all()
            for i in ids:
                conn.execute(
                    text("INSERT INTO case_event (case_id, action) VALUES (:i, 'report')"),
                    {"i": i},
                )
            conn.execute(
                text(
                    "INSERT INTO case_photo (case_id, stage, sha256, mime, width, height, bytes) "
                    "VALUES (:i, 'before', repeat('a', 64), 'image/jpeg', 1, 1, 1)"
                ),
                {"i": ids[0]},
            )
            conn.execute(
                text(
                    "INSERT INTO case_lock (case_id, user_id, expires_at) "
                    "VALUES (:i, 1, now() + interval '1 hour')"
                ),
                {"i": ids[1]},
            )
            before = {
                t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("cases", "case_event", "case_photo", "case_lock")
            }
        migrate.upgrade(settings)
        with transaction(settings) as conn:
            after = {
                t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("cases", "case_event", "case_photo", "case_lock")
            }
            assert after == before
            assert conn.execute(text("SELECT id FROM cases ORDER BY id")).scalars().all() == ids
            assert set(
                conn.execute(text("SELECT DISTINCT tableoid::regclass::text FROM cases")).scalars()
            ) == {"cases_legacy"}
            # every foreign key to cases names the partitioned table, and is valid
            fks = conn.execute(
                text(
                    "SELECT conrelid::regclass::text, convalidated FROM pg_constraint "
                    "WHERE contype = 'f' AND confrelid = 'cases'::regclass AND conparentid = 0"
                )
            ).all()
            assert {t for t, _ in fks} >= {
                "case_event",
                "case_photo",
                "approval",
                "case_lock",
                "notify_reminder",
                "cases",
                "case_idempotency",
            }
            assert all(ok for _, ok in fks)
            assert not conn.execute(
                text(
                    "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
                    "AND confrelid = 'cases_legacy'::regclass AND conparentid = 0"
                )
            ).scalar()
            keys = conn.execute(
                text("SELECT idempotency_key, case_id FROM case_idempotency ORDER BY case_id")
            ).all()
            assert keys == [(f"key-{i}", ids[i]) for i in range(3)]
            # the district code came from each row's case (migration 0020): the composite
            # keys above are valid, and every case's equals its unit's
            assert not conn.execute(
                text("SELECT count(*) FROM cases WHERE district_code <> left(unit_code, 6)")
            ).scalar()
            with pytest.raises(Exception, match="foreign key"), conn.begin_nested():
                conn.execute(
                    text(
                        "INSERT INTO case_event (district_code, case_id, action) "
                        "VALUES ('410199', :i, 'report')"
                    ),
                    {"i": max(ids) + 1},
                )
            # a new case: its month's id, the sequence continuing after the old ones
            new = conn.execute(
                text(
                    """
                    INSERT INTO cases (district_code, case_no, category_code, description,
                                       geom, unit_code, handling_level, reporter_id)
                    VALUES ('410199', 'NEW1', 'environment.garbage', 'new',
                            'SRID=4326;POINT(113 34)', '410199', 'grid', 1)
                    RETURNING id, case_id_month(id) = case_month(reported_at),
                              id - case_first_id(case_id_month(id))
                    """
                )
            ).one()
            assert new[1] is True and new[2] == max(ids) + 1
            event_id = conn.execute(
                text(
                    "INSERT INTO case_event (district_code, case_id, action) "
                    "VALUES ('410199', :i, 'report') RETURNING id"
                ),
                {"i": new[0]},
            ).scalar()
            assert event_id > len(ids)  # the sequence continues (the refused insert took one)
            # the old rows' months read the legacy partition; a later month skips it
            inside = conn.execute(
                text(
                    "SELECT count(*) FROM cases c WHERE c.reported_at >= :a "
                    "AND c.reported_at < :b AND case_in_period(c.id, :a, :b)"
                ),
                {"a": datetime(2026, 9, 1, tzinfo=UTC), "b": datetime(2026, 9, 30, tzinfo=UTC)},
            ).scalar()
            assert inside == 1
            plan = conn.execute(
                text(
                    "EXPLAIN (FORMAT JSON) SELECT * FROM cases c "
                    "WHERE case_in_period(c.id, '2030-01-01', '2030-02-01')"
                )
            ).scalar()
            assert "cases_legacy" not in _relations(plan)
            plan = conn.execute(
                text(
                    "EXPLAIN (FORMAT JSON) SELECT * FROM cases c "
                    "WHERE case_in_period(c.id, '2026-09-01', '2026-09-30')"
                )
            ).scalar()
            assert {r for r in _relations(plan) if PART.match(r)} == {"cases_legacy"}
        with pytest.raises(Exception, match="cannot be undone"):
            migrate.downgrade(settings, "0017_walks")
    finally:
        get_engine(settings).dispose()
        cluster.drop_database(settings, settings.db_name)


def test_the_service_makes_the_coming_months_itself(case_city):
    """With nobody running `partitions ensure`, the API's routine upkeep
    (db/maintenance.py, from the statistics' periodic check) makes the coming months'
    partitions again, and a report in such a month is stored."""
    s = case_city["settings"]
    with transaction(s) as conn:
        coming = list(partitions.months_around(conn))
        labels = [
            conn.execute(text("SELECT case_month_label(:m)"), {"m": m}).scalar_one() for m in coming
        ]
        for label in labels[1:]:  # the months ahead, still empty
            for table in ("case_event", "cases"):
                name = partitions.partition_name(table, label)
                conn.execute(text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
                conn.execute(text(f"DROP TABLE {name}"))
    with get_engine(s).connect() as conn:
        have = {p.name for p in partitions.listing(conn) if p.attached}
    assert not any(partitions.partition_name("cases", label) in have for label in labels[1:])
    with TestClient(create_app(s)) as api:
        r = api.get("/api/v1/stats/resolution?level=district", headers=ADMIN_AUTH)
        assert r.status_code == 200, r.text
        assert report(api, case_city["worker1"]).status_code == 201
    with get_engine(s).connect() as conn:
        have = {p.name for p in partitions.listing(conn) if p.attached}
    for label in labels:
        for table in ("cases", "case_event"):
            assert partitions.partition_name(table, label) in have


def _key_tuples_read(conn) -> int:
    """Index entries read so far from the cases partitions' primary keys (the server's
    statistics, this backend's counts flushed first)."""
    conn.execute(text("SELECT pg_stat_clear_snapshot()"))
    return conn.execute(
        text(
            "SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes "
            "WHERE relname ~ '^cases_(y\\d{4}m\\d{2}|legacy)$' AND indexrelname ~ '_pkey$'"
        )
    ).scalar()


def test_a_report_reads_no_more_of_its_month_as_the_month_fills(case_city):
    """The duplicate search of a report (report_case, a generic plan) reads the open-case
    GiST index near the point, not the month's primary key over the duplicate window's id
    range: its cost must not grow with the cases the month already holds (cases/report.sql,
    "Measured choices"). 40,000 cases this month 500 m away (copies of one report); one
    more report then reads a handful of key entries (its foreign-key checks), not the
    month's 40,000."""
    s = case_city["settings"]
    with get_engine(s).connect() as conn:
        uid, ver = conn.execute(
            text("SELECT id, token_version FROM app_user WHERE username = 'gw1'")
        ).one()
    args = (
        f"{uid}, {ver}, NULL, NULL, NULL, NULL, 'environment.garbage', :lon, :lat, 'x', NULL, "
        "'normal', 'app', NULL, NULL, :tz, NULL, :radius, :days, 5, NULL"
    )
    params = {
        "lon": IN_GRID_1[0],
        "lat": IN_GRID_1[1],
        "tz": s.timezone,
        "radius": s.duplicate_radius_m,
        "days": s.duplicate_window_days,
    }
    with transaction(s) as conn:
        first = conn.execute(text(f"SELECT case_id FROM report_case({args})"), params).scalar()
        conn.execute(
            text(
                "INSERT INTO cases (id, district_code, case_no, category_code, status, "
                "description, geom, unit_code, handling_level, source, reporter_id, reported_at) "
                "SELECT case_new_id(now()), district_code, 'F' || g, category_code, status, "
                "description, "
                "ST_Translate(geom, 0.006 + g * 1e-7, 0), unit_code, handling_level, source, "
                "reporter_id, reported_at FROM cases, generate_series(1, 40000) g "
                "WHERE id = :first"
            ),
            {"first": first},
        )
        conn.execute(text("ANALYZE cases"))
    with get_engine(s).connect() as conn:  # a fresh session: report_case planned anew
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
        conn.commit()
        before = _key_tuples_read(conn)
        conn.commit()
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
        created = conn.execute(text(f"SELECT created FROM report_case({args})"), params).scalar()
        conn.commit()
        read = _key_tuples_read(conn) - before
    assert created is True
    assert read < 50, f"one report read {read} primary-key entries of its month"
