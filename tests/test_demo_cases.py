"""The demo's people, teams and year of generated cases: counts, a coherent closed loop,
the seed's resolution rate, and work spread like the real thing. Every test runs in a
transaction that it rolls back, so the shared demo database stays as it was."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, text

from gis_service.db.engine import get_engine
from gis_service.demo.cases import CaseHistory, People, generate_case_history, seed_people

N = 3000
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def loaded(demo_settings) -> Iterator[tuple[Connection, People, CaseHistory]]:
    with get_engine(demo_settings).connect() as conn:
        tx = conn.begin()
        try:
            # A clean slate inside the transaction, whatever the demo already holds.
            conn.execute(
                text(
                    "TRUNCATE case_event, case_photo, cases, app_user, team, open311_client CASCADE"
                )
            )
            people = seed_people(conn)
            history = generate_case_history(conn, n=N)
            yield conn, people, history
        finally:
            tx.rollback()


def rows(conn: Connection, sql: str, **params) -> list:
    return conn.execute(text(sql), params).all()


def scalar(conn: Connection, sql: str, **params):
    return conn.execute(text(sql), params).scalar()


def test_people_and_teams(loaded):
    conn, people, _ = loaded
    # 160 community committees + 17 x 4 subdistrict teams + 1 district work team.
    assert people.teams == 229
    # admin, planner, district + 17 + 160 supervisors, 571 grid workers, 229 team members.
    assert people.users == 980
    roles = dict(rows(conn, "SELECT role, count(*) FROM app_user GROUP BY role"))
    assert roles == {
        "admin": 1,
        "planner": 1,
        "supervisor": 178,
        "grid_worker": 571,
        "team_member": 229,
    }
    # One hash for everyone: the demo password was hashed once.
    assert scalar(conn, "SELECT count(DISTINCT password_hash) FROM app_user") == 1
    for name in people.usernames.values():
        assert scalar(conn, "SELECT count(*) FROM app_user WHERE username = :u", u=name) == 1
    assert scalar(
        conn, "SELECT scopes FROM app_user WHERE username = :u", u=people.usernames["grid_worker"]
    ) == [people.usernames["grid_worker"][2:]]
    # Idempotent: a second run changes nothing and reports the same.
    again = seed_people(conn)
    assert (again.teams, again.users) == (229, 980)
    assert scalar(conn, "SELECT count(*) FROM app_user") == 980


def test_counts_and_case_numbers(loaded):
    conn, _, history = loaded
    assert history.cases == N
    assert scalar(conn, "SELECT count(*) FROM cases") == N
    assert scalar(conn, "SELECT count(*) FROM case_event") == history.events
    assert history.events > 6 * N  # report, accept, dispatch, start, handle, verify, rate
    numbers = [r[0] for r in rows(conn, "SELECT case_no FROM cases")]
    assert len(set(numbers)) == N
    assert all(re.fullmatch(r"410105\d{8}\d{6}", no) for no in numbers)
    # The date in the number is the local report date; each day counts from 000001.
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM cases
         WHERE substr(case_no, 7, 8) <> to_char(reported_at AT TIME ZONE 'Asia/Shanghai',
                                                'YYYYMMDD')""",
        )
        == 0
    )
    per_day = rows(
        conn,
        """
        SELECT substr(case_no, 7, 8), min(right(case_no, 6)::int), max(right(case_no, 6)::int),
               count(*)
          FROM cases GROUP BY 1""",
    )
    assert all(lo == 1 and hi == cnt for _, lo, hi, cnt in per_day)
    start_of_today = datetime.combine(datetime.now(TZ).date(), datetime.min.time(), TZ)
    first, last = rows(conn, "SELECT min(reported_at), max(reported_at) FROM cases")[0]
    assert last < start_of_today
    assert first >= start_of_today - timedelta(days=365)


def test_resolution_rate_is_the_seeds(loaded):
    conn, _, history = loaded
    closed, accepted = rows(
        conn,
        """
        SELECT count(*) FILTER (WHERE status = 'closed'), count(accepted_at) FROM cases""",
    )[0]
    rate = closed / accepted
    assert 0.96 <= rate <= 0.995
    assert rate == pytest.approx(history.resolution_rate)
    rejected = scalar(conn, "SELECT count(*) FROM cases WHERE status = 'rejected'")
    assert 0.005 * N < rejected < 0.04 * N
    on_time = scalar(
        conn,
        """
        SELECT avg((closed_at <= deadline_at)::int) FROM cases WHERE status = 'closed'""",
    )
    assert 0.8 < on_time < 0.99
    assert float(on_time) == pytest.approx(history.on_time_rate)
    overdue = scalar(
        conn,
        """
        SELECT count(*) FROM cases
         WHERE status IN ('accepted', 'dispatched', 'in_progress', 'handled')
           AND deadline_at < now()""",
    )
    assert overdue == history.overdue_open > 0
    rated, satisfied = rows(
        conn,
        """
        SELECT count(rating), count(*) FILTER (WHERE rating >= 4) FROM cases
         WHERE status = 'closed'""",
    )[0]
    assert 0.7 < rated / closed < 0.9
    assert 0.9 < satisfied / rated < 0.99
    assert (
        scalar(conn, "SELECT count(*) FROM cases WHERE rating IS NOT NULL AND status <> 'closed'")
        == 0
    )


def test_timestamps_and_fields_are_coherent(loaded):
    conn, _, _ = loaded
    bad = scalar(
        conn,
        """
        SELECT count(*) FROM cases c JOIN case_category k ON k.code = c.category_code
         WHERE NOT (
            accepted_at >= reported_at
            AND deadline_at = accepted_at + make_interval(hours => k.deadline_hours)
            AND (dispatched_at IS NULL OR dispatched_at >= accepted_at)
            AND (status NOT IN ('handled', 'closed') OR handled_at >= dispatched_at)
            AND (closed_at IS NULL OR closed_at >= handled_at)
            AND (rated_at IS NULL OR rated_at >= closed_at)
            AND updated_at >= reported_at)
           AND status <> 'rejected' AND status <> 'reported'""",
    )
    assert bad == 0
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM cases
         WHERE (status = 'closed') <> (closed_at IS NOT NULL)
            OR (status = 'rejected') <> (rejected_at IS NOT NULL)
            OR (status = 'rejected' AND (accepted_at IS NOT NULL OR rejected_at < reported_at))
            OR (status IN ('dispatched', 'in_progress', 'handled', 'closed')
                AND (team_id IS NULL OR team_id <> team_history[cardinality(team_history)]))
            OR (status = 'handled' AND handled_at IS NULL)""",
        )
        == 0
    )
    # The team serves the place; the reporter walks its grid.
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM cases c JOIN team t ON t.id = c.team_id
         WHERE NOT starts_with(c.unit_code, t.unit_code)""",
        )
        == 0
    )
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM cases c JOIN app_user u ON u.id = c.reporter_id
         WHERE u.role <> 'grid_worker' OR u.scopes <> ARRAY[left(c.unit_code, 14)]""",
        )
        == 0
    )
    # Escalated cases are handled one level above their category's usual level.
    levels = ["grid", "community", "subdistrict", "district"]
    for cat_level, level, escalations in rows(
        conn,
        """
            SELECT k.handling_level, c.handling_level, c.escalation_count
              FROM cases c JOIN case_category k ON k.code = c.category_code""",
    ):
        assert levels.index(level) == levels.index(cat_level) + escalations
    assert scalar(conn, "SELECT count(*) FROM cases WHERE escalation_count > 0") > 0


def test_timeline_tells_the_same_story(loaded):
    conn, _, history = loaded
    # Each case's events go forward in time and chain from status to status.
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM (
            SELECT at <= lag(at) OVER w AS back,
                   from_status IS DISTINCT FROM lag(to_status) OVER w AS broken
              FROM case_event WINDOW w AS (PARTITION BY case_id ORDER BY id)) e
         WHERE back OR broken""",
        )
        == 0
    )
    # The last event leaves the case in its status, at its updated_at.
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM cases c
          JOIN LATERAL (SELECT to_status, at FROM case_event e WHERE e.case_id = c.id
                         ORDER BY id DESC LIMIT 1) last ON true
         WHERE last.to_status <> c.status OR last.at <> c.updated_at""",
        )
        == 0
    )
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM cases c WHERE status = 'closed' AND NOT EXISTS (
            SELECT 1 FROM case_event e WHERE e.case_id = c.id AND e.action = 'verify'
               AND (e.data ->> 'passed')::boolean AND e.to_status = 'closed'
               AND e.at = c.closed_at)""",
        )
        == 0
    )
    rework = scalar(conn, "SELECT count(*) FROM cases WHERE rework_count > 0")
    assert rework == history.rework > 0
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM cases c WHERE rework_count > 0 AND NOT EXISTS (
            SELECT 1 FROM case_event e WHERE e.case_id = c.id AND e.action = 'verify'
               AND NOT (e.data ->> 'passed')::boolean AND e.note IS NOT NULL)""",
        )
        == 0
    )
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM cases c WHERE status = 'rejected' AND NOT EXISTS (
            SELECT 1 FROM case_event e WHERE e.case_id = c.id AND e.action = 'reject'
               AND e.note IS NOT NULL AND e.at = c.rejected_at)""",
        )
        == 0
    )
    # Dispatch events name the teams in team_history, in order; a failed check dispatches
    # again (to the same team) at that moment.
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM cases c
         WHERE team_history <> coalesce((
            SELECT array_agg(t ORDER BY first) FROM (
                SELECT (e.data ->> 'team_id')::int AS t, min(e.id) AS first FROM case_event e
                 WHERE e.case_id = c.id AND e.action = 'dispatch' GROUP BY 1) d), '{}')
            OR dispatched_at IS DISTINCT FROM (
                SELECT max(at) FROM case_event e WHERE e.case_id = c.id
                   AND (e.action = 'dispatch' OR (e.action = 'verify'
                                                  AND NOT (e.data ->> 'passed')::boolean)))
        """,
        )
        == 0
    )
    # Ratings in the timeline are the cases' ratings; actors exist and fit the step.
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM cases c JOIN case_event e ON e.case_id = c.id
         WHERE e.action = 'rate' AND ((e.data ->> 'score')::int <> c.rating
                                      OR e.at <> c.rated_at)""",
        )
        == 0
    )
    actors = dict(
        rows(
            conn,
            """
        SELECT e.action, array_agg(DISTINCT u.role) FROM case_event e
          JOIN app_user u ON u.id = e.actor_id GROUP BY e.action""",
        )
    )
    assert actors["report"] == ["grid_worker"]
    assert actors["verify"] == ["grid_worker"]
    assert actors["dispatch"] == ["supervisor"]
    assert actors["handle"] == ["team_member"]
    assert actors["rate"] == ["grid_worker"]
    # Only residents rating through the public link act without an account.
    assert (
        scalar(
            conn,
            """
        SELECT count(*) FROM case_event WHERE actor_id IS NULL
           AND (action <> 'rate' OR data ->> 'via' IS DISTINCT FROM 'public_link')""",
        )
        == 0
    )


def test_located_where_they_are(loaded):
    conn, _, _ = loaded
    sample = rows(
        conn,
        """
        SELECT c.unit_code, (SELECT u.code FROM admin_unit u
                              WHERE u.geom && c.geom AND ST_Intersects(u.geom, c.geom)
                              ORDER BY length(u.code) DESC, u.code LIMIT 1)
          FROM cases c ORDER BY c.id LIMIT 300""",
    )
    assert len(sample) == 300
    assert all(unit == deepest for unit, deepest in sample)
    assert all(len(unit) == 17 for unit, _ in sample)


def test_more_cases_in_the_old_town(loaded):
    conn, _, _ = loaded
    old_town, old_area, total, district_area = rows(
        conn,
        """
        WITH centre AS (SELECT ST_SetSRID(ST_MakePoint(113.672, 34.775), 4326) AS g),
             d AS (SELECT geom, area_m2 FROM admin_unit WHERE code = '410105')
        SELECT (SELECT count(*) FROM cases, centre
                 WHERE ST_DWithin(cases.geom::geography, centre.g::geography, 2000)),
               (SELECT ST_Area(ST_Intersection(
                           ST_Buffer(centre.g::geography, 2000)::geometry, d.geom)::geography)
                  FROM centre, d),
               (SELECT count(*) FROM cases), (SELECT area_m2 FROM d)""",
    )[0]
    old_density = old_town / old_area
    average = total / district_area
    assert old_town > 0.1 * total
    assert old_density > 2 * average
    # Old estates also produce more cases per resident, not only more residents.
    old_cases, old_people, people = rows(
        conn,
        """
        WITH b AS (SELECT code, population, ST_DWithin(
                       ST_Centroid(geom)::geography,
                       ST_SetSRID(ST_MakePoint(113.672, 34.775), 4326)::geography, 2000) AS old
                     FROM admin_unit WHERE level = 'building' AND code LIKE '410105%')
        SELECT (SELECT count(*) FROM cases c JOIN b ON b.code = c.unit_code WHERE b.old),
               (SELECT sum(population) FROM b WHERE old), (SELECT sum(population) FROM b)
        """,
    )[0]
    assert old_cases / old_people > 1.15 * total / people


def test_seasons_weekdays_and_hours(loaded):
    conn, _, _ = loaded
    local = rows(
        conn,
        """
        SELECT split_part(category_code, '.', 1), reported_at AT TIME ZONE 'Asia/Shanghai'
          FROM cases""",
    )
    first = min(t for _, t in local).date()
    days_in_range: Counter[int] = Counter((first + timedelta(days=i)).month for i in range(365))

    def per_day(domain: str, months: tuple[int, ...]) -> float:
        count = sum(1 for d, t in local if d == domain and t.month in months)
        return count / sum(days_in_range[m] for m in months)

    summer, winter = (6, 7, 8), (12, 1, 2)
    assert per_day("environment", summer) > 1.5 * per_day("environment", winter)
    assert per_day("safety", winter) > 1.2 * per_day("safety", summer)
    weekday = Counter(t.weekday() < 5 for _, t in local)
    assert weekday[True] / 5 > 1.3 * weekday[False] / 2
    working = sum(1 for _, t in local if 8 <= t.hour < 20)
    assert working / len(local) > 0.85
    domains = Counter(d for d, _ in local)
    assert [d for d, _ in domains.most_common(2)] == ["environment", "facilities"]
    today = datetime.now(TZ).date()
    assert sum(1 for d, t in local if t.date() >= today - timedelta(days=2)) < 0.02 * N


def test_descriptions_read_like_reports(loaded):
    conn, _, _ = loaded
    texts = [
        r[0]
        for r in rows(
            conn,
            """
        SELECT c.description FROM cases c ORDER BY id LIMIT 500""",
        )
    ]
    assert len(set(texts)) > 400
    assert all(re.search(r"[\u4e00-\u9fff]{4}", t) and "号院" in t for t in texts)


def test_bulk_mode_restores_the_foreign_keys(loaded):
    # In a savepoint of the same transaction: the bulk load's DDL would wait for it.
    conn, _, first = loaded
    fk_sql = """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE contype = 'f' AND conrelid IN ('cases'::regclass, 'case_event'::regclass)
                   AND conparentid = 0  -- not their month partitions' copies
                 ORDER BY conname"""
    savepoint = conn.begin_nested()
    try:
        before = rows(conn, fk_sql)
        # A second batch over days that already have cases numbers on after them.
        more = generate_case_history(
            conn, n=400, seed=7, bulk=True, end=datetime.now(TZ) - timedelta(days=200)
        )
        assert rows(conn, fk_sql) == before
        assert (
            "case_event_case_id_fkey",
            "FOREIGN KEY (case_id, district_code) REFERENCES cases(id, district_code)",
        ) in before
        assert scalar(conn, "SELECT count(*) FROM case_event") == first.events + more.events
        assert scalar(conn, "SELECT count(DISTINCT case_no) FROM cases") == N + 400
        with pytest.raises(Exception, match="foreign key"), conn.begin_nested():
            # no such case, in an existing month's partition
            conn.execute(
                text(
                    "INSERT INTO case_event (district_code, case_id, action) "
                    "SELECT min(district_code), max(id) + 1, 'x' FROM cases"
                )
            )
    finally:
        savepoint.rollback()
