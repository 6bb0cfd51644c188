"""Daily roll-ups (stats/rollup.py): the cube holds the recent window and the open cases,
older settled cases are counted from the roll-up; counts equal the cases' own, medians lie
within the stated bound, and the roll-up stays exact as old cases change."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.auth.principal import Principal, Role
from gis_service.db import migrate
from gis_service.db.engine import get_engine, transaction
from gis_service.stats import rollup
from gis_service.stats.cube import EPOCH, CaseCube
from gis_service.stats.resolution import RATE_PARTS, StatsQuery, resolution
from gis_service.stats.schemas import Figures
from gis_service.timezone import local_date, zone_name
from tests import history
from tests.conftest import IN_GRID_1, IN_GRID_2
from tests.test_cases import act, report
from tests.test_stats import close, stats

ADMIN = Principal(role=Role.admin, username="root")
#: every integer figure of the answer (the schema's), compared exactly
COUNTS = [n for n, f in Figures.model_fields.items() if f.annotation is int]
RATES = [*RATE_PARTS, "on_time_rate_extended"]


def within_bound(estimate: float | None, exact: float | None) -> bool:
    """The module's stated bound for a histogram median."""
    if estimate is None or exact is None:
        return estimate is exact
    bound = max(rollup.MEDIAN_ABSOLUTE_ERROR_HOURS, rollup.MEDIAN_RELATIVE_ERROR * estimate)
    return abs(estimate - exact) <= bound + 1e-6


def assert_same_figures(rolled: dict, exact: dict, where: str) -> None:
    for name in COUNTS:
        assert rolled[name] == exact[name], f"{where}: {name}"
    for name in RATES:
        assert rolled[name] == exact[name], f"{where}: {name}"
    assert within_bound(rolled["median_hours_to_close"], exact["median_hours_to_close"]), (
        f"{where}: median {rolled['median_hours_to_close']} vs {exact['median_hours_to_close']}"
    )


def compare(conn, cube, principal, q: StatsQuery) -> dict:
    """The roll-up answer against the exact one (case_ids: every case read), figure by
    figure, for the totals, every unit and every week; returns the roll-up answer."""
    rolled = resolution(conn, cube, principal, q)
    exact = resolution(conn, cube, principal, q, case_ids=True)
    assert_same_figures(rolled["totals"], exact["totals"], "totals")
    for a, b in zip(rolled["units"], exact["units"], strict=True):
        assert_same_figures(a, b, a["code"])
    for a, b in zip(rolled["weekly"], exact["weekly"], strict=True):
        assert_same_figures(a, b, str(a["week_start"]))
    return rolled


def test_bins_and_medians_agree_with_sql(settings):
    rng = np.random.default_rng(7)
    hours = np.concatenate(
        [[0.0, 0.1, 0.25, 0.5, 1, 2, 4096, 9999], rollup.CLOSE_BINS, 10 ** rng.uniform(-2, 4, 500)]
    )
    with get_engine(settings).connect() as conn:
        # the edges are one list of numbers, in SQL and in numpy alike
        edges = conn.execute(text("SELECT case_close_edges()")).scalar_one()
        assert edges == rollup.CLOSE_BINS[1:].tolist()
        in_sql = conn.execute(
            text(
                "SELECT array_agg(case_close_bin(h) ORDER BY i) FROM unnest(CAST(:h AS float8[]))"
                " WITH ORDINALITY u(h, i)"
            ),
            {"h": hours.tolist()},
        ).scalar_one()
        assert in_sql == rollup.close_bin(hours).tolist()
        exact = conn.execute(
            text(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY h) "
                "FROM unnest(CAST(:h AS float8[])) h"
            ),
            {"h": hours[8:].tolist()},
        ).scalar_one()
    hist = rollup.histogram(hours[8:], np.zeros(len(hours) - 8, np.int64), 1)[0]
    assert hist.sum() == len(hours) - 8
    assert within_bound(rollup.hist_median(hist), exact)
    assert rollup.hist_median(np.zeros(rollup.N_BINS)) is None


def test_old_days_come_from_the_rollup_and_equal_the_cases(demo_settings):
    """The demo's year of history: the cube holds the recent window and the open cases
    only; over old and mixed periods every figure equals the exact one read from the
    cases, medians within the bound, for every level, a category and a scoped viewer."""
    s = demo_settings
    cube = CaseCube(s)
    f = cube.facts()
    boundary = rollup.boundary(s)
    assert f.folded_day == (boundary - EPOCH).days
    with get_engine(s).connect() as conn:
        kept = conn.execute(
            text(
                "SELECT count(*) FROM cases WHERE reported_at >= "
                "(CAST(:b AS date)::timestamp AT TIME ZONE :tz) OR status IN "
                "('reported','accepted','dispatched','in_progress','handled','parked')"
            ),
            {"b": boundary, "tz": zone_name(s)},
        ).scalar_one()
        total = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        assert len(f.ids) == kept < total / 2  # most of the year is rolled up
        subdistrict = (
            conn.execute(
                text("SELECT code FROM admin_unit WHERE level = 'subdistrict' ORDER BY code")
            )
            .scalars()
            .first()
        )
        today = local_date(s)
        old = StatsQuery("community", today - timedelta(days=300), today - timedelta(days=120))
        body = compare(conn, cube, ADMIN, old)
        assert body["totals"]["reported"] > 1000
        # the same totals straight from SQL over the cases
        sql_total = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE status <> 'duplicate'), "
                "count(*) FILTER (WHERE status = 'closed'), "
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - "
                "reported_at) / 3600) FILTER (WHERE status = 'closed') FROM cases "
                "WHERE (reported_at AT TIME ZONE :tz)::date BETWEEN :d0 AND :d1"
            ),
            {"tz": zone_name(s), "d0": old.date_from, "d1": old.date_to},
        ).one()
        assert body["totals"]["reported"] == sql_total[0]
        assert body["totals"]["closed"] == sql_total[1]
        assert within_bound(body["totals"]["median_hours_to_close"], sql_total[2])
        mixed = StatsQuery.default_period(s, "grid")  # 52 weeks across the boundary
        compare(conn, cube, ADMIN, mixed)
        compare(conn, cube, ADMIN, StatsQuery("subdistrict", old.date_from, today, "environment"))
        scoped = Principal(role=Role.supervisor, username="s", scopes=(subdistrict,))
        compare(conn, cube, scoped, StatsQuery("grid", old.date_from, old.date_to))
        recent = StatsQuery("community", boundary, today)
        r = resolution(conn, cube, ADMIN, recent)
        e = resolution(conn, cube, ADMIN, recent, case_ids=True)
        assert r["totals"] == {k: v for k, v in e["totals"].items() if k != "case_ids"}


def test_the_plan_covers_every_day_once_from_the_coarsest_tier(settings):
    """Any period, any depth, with or without a category: the parts cover each day once,
    each part whole periods of its tier (weeks from a Monday, four weeks from the anchor
    Monday), the longest periods that fit in the middle, each tier deep enough, the
    shallowest that fits, and keeping categories when one is asked for."""
    with get_engine(settings).connect() as conn:
        tiers = rollup.tiers(conn)
        sql_period = conn.execute(
            text(
                "SELECT array_agg(case_rollup_period(n, d) ORDER BY n, d) "
                "FROM unnest(ARRAY[1, 7, 28]) n, "
                "generate_series(DATE '1999-11-20', DATE '2000-03-01', '1 day') g, "
                "LATERAL (SELECT g::date AS d) x"
            )
        ).scalar_one()
    days = [date(1999, 11, 20) + timedelta(days=i) for i in range(103)]
    assert sql_period == [
        d - timedelta(days=(d - rollup.ANCHOR).days % n) for n in (1, 7, 28) for d in days
    ]
    assert {(t.days, t.depth, t.by_category) for t in tiers} >= {(1, 14, True)}
    rng = np.random.default_rng(19)
    for _ in range(400):
        first = date(2024, 1, 1) + timedelta(days=int(rng.integers(0, 400)))
        last = first + timedelta(days=int(rng.integers(0, 200)))
        depth = int(rng.choice([0, 6, 9, 12, 14]))
        category = bool(rng.integers(0, 2))
        longest = int(rng.choice([7, 28]))
        parts = rollup.plan(tiers, first, last, depth, category, longest=longest)
        covered: list[date] = []
        fitting = [
            t
            for t in tiers
            if t.depth >= depth and (t.by_category or not category) and t.days <= longest
        ]
        for tier, p0, p1 in parts:
            assert tier in fitting
            assert tier.depth == min(t.depth for t in fitting if t.days == tier.days)
            assert (p0 - rollup.ANCHOR).days % tier.days == 0
            assert (p1 - rollup.ANCHOR).days % tier.days == 0
            p1 += timedelta(days=tier.days - 1)
            covered += [p0 + timedelta(days=i) for i in range((p1 - p0).days + 1)]
        assert covered == [first + timedelta(days=i) for i in range((last - first).days + 1)]
        # the longest fitting periods are used whenever one lies whole inside
        n = max(t.days for t in fitting)
        whole = any(
            (first - rollup.ANCHOR).days % n == -i % n and i + n - 1 <= (last - first).days
            for i in range(n)
        )
        assert any(t.days == n for t, *_ in parts) == whole


def test_coarse_tiers_answer_periods_that_cut_weeks_and_months(demo_settings):
    """Periods starting and ending mid-week and mid-month, old and across the boundary,
    at every level, with a category, a unit and a scoped viewer: every count equals the
    cases' own, medians within the bound; and a request reads a few rows per unit and
    period (weeks, and days only at the ends), not a row per case."""
    s = demo_settings
    cube = CaseCube(s)
    cube.facts()
    today = local_date(s)
    with get_engine(s).connect() as conn:
        codes = {
            level: conn.execute(
                text("SELECT code FROM admin_unit WHERE level = :l ORDER BY code"), {"l": level}
            )
            .scalars()
            .all()
            for level in ("district", "subdistrict", "community")
        }
        # a Wednesday the 10th-ish to a Thursday mid-month: weeks and months cut
        first = today - timedelta(days=290)
        first += timedelta(days=(2 - first.weekday()) % 7)
        last = today - timedelta(days=130)
        last += timedelta(days=(3 - last.weekday()) % 7)
        periods = [
            (first, last),
            (first + timedelta(days=40), today - timedelta(days=20)),  # across the boundary
            (last - timedelta(days=4), last),  # inside one week: days only
        ]
        sub, com = codes["subdistrict"][0], codes["community"][0]
        scoped = Principal(role=Role.supervisor, username="s", scopes=(com,))
        for d0, d1 in periods:
            for level in ("district", "subdistrict", "community", "grid"):
                compare(conn, cube, ADMIN, StatsQuery(level, d0, d1))
            compare(conn, cube, ADMIN, StatsQuery("community", d0, d1, category="environment"))
            compare(conn, cube, ADMIN, StatsQuery("grid", d0, d1, unit=sub))
            compare(conn, cube, scoped, StatsQuery("grid", d0, d1))

        # rows read: per unit of the level, a row per whole week and per day at the ends
        monday = first - timedelta(days=first.weekday())
        weeks = (last - monday).days // 7 + 1
        settled = conn.execute(
            text(
                "SELECT count(*) FROM cases c, case_rollup_state s, "
                "LATERAL case_rollup_measures(c, s.tz) m WHERE m.settled "
                "AND m.day BETWEEN :d0 AND :d1"
            ),
            {"d0": first, "d1": last},
        ).scalar_one()
        for level, units in (
            ("district", codes["district"]),
            ("subdistrict", codes["subdistrict"]),
        ):
            got = rollup.read(
                conn,
                ADMIN,
                level=level,
                unit_codes=units,
                first_day=first,
                last_day=last,
                first_monday=monday,
                weeks=weeks,
                category=None,
                unit=None,
            )
            assert got.total.counts["reported"][0] == settled
            assert got.units.counts["reported"].sum() == settled
            # the weeks: district rows; the units: the level's rows; ≤ 12 end days
            bound = len(codes["district"]) * (weeks + 12) + len(units) * (weeks + 12)
            assert 0 < got.rows <= bound < settled


@pytest.fixture
def api(case_city):
    with TestClient(create_app(case_city["settings"])) as c:
        yield c


def _age(settings, ids: list[int], days: int) -> list[int]:
    """Move cases ``days`` into the past, every moment of them alike, as if reported then;
    returns their new ids. A case id carries its reporting month, so tests/history.py moves
    each to its month's id (a test-only move, triggers off); the roll-up then receives them
    as its trigger receives cases written on an already-folded day (case_rollup_add)."""
    with get_engine(settings).connect() as conn:
        when = dict(
            conn.execute(
                text("SELECT id, reported_at FROM cases WHERE id = ANY(:ids)"), {"ids": ids}
            ).all()
        )
    moved = [history.reported_at(settings, i, when[i] - timedelta(days=days)) for i in ids]
    with transaction(settings) as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text(
                "UPDATE cases SET accepted_at = accepted_at - make_interval(days => :d), "
                "closed_at = closed_at - make_interval(days => :d), "
                "deadline_at = deadline_at - make_interval(days => :d), "
                "original_deadline_at = original_deadline_at - make_interval(days => :d), "
                "changed_xid = pg_current_xact_id() WHERE id = ANY(:ids)"
            ),
            {"d": days, "ids": moved},
        )
        conn.execute(text("SET LOCAL session_replication_role = origin"))
        conn.execute(
            text(
                "SELECT case_rollup_add(array_agg(c), array_agg(1), s.tz) "
                "FROM cases c, case_rollup_state s WHERE c.id = ANY(:ids) "
                "AND c.reported_at < s.folded_before::timestamp AT TIME ZONE s.tz GROUP BY s.tz"
            ),
            {"ids": moved},
        )
    return moved


def _rollup_matches_cases(settings) -> None:
    """The roll-up table, kept by the trigger and the fold, equals the same sums made
    afresh from the cases, in every tier; and every tier sums to the same totals as the
    base (tier 1) over each of its periods."""
    cols = ", ".join(f"sum(m.{m})" if m != "reported" else "count(*)" for m in rollup.MEASURES)
    with get_engine(settings).connect() as conn:
        fresh = conn.execute(
            text(
                "SELECT t.tier, case_rollup_period(t.days, m.day), left(c.unit_code, t.depth), "
                "CASE WHEN t.by_category THEN c.category_code ELSE '' END, "
                f"{cols}, case_hist(array_agg(m.close_bin), array_agg(1)) FROM cases c, "
                "case_rollup_state s, LATERAL case_rollup_measures(c, s.tz) m, "
                "case_rollup_tier t WHERE m.settled AND m.day < s.folded_before "
                "GROUP BY 1, 2, 3, 4"
            )
        ).all()
        kept = conn.execute(
            text(
                "SELECT tier, period, unit_code, category_code, "
                f"{', '.join(rollup.MEASURES)}, close_hist FROM case_rollup WHERE reported <> 0"
            )
        ).all()
        per_tier = conn.execute(
            text(
                "SELECT tier, sum(reported), sum(closed), sum(urges), "
                "sum(close_hist[20]) FROM case_rollup GROUP BY 1"
            )
        ).all()
    assert sorted(tuple(r) for r in kept) == sorted(tuple(r) for r in fresh)
    assert len({tuple(r)[1:] for r in per_tier}) <= 1  # every tier counts every case once


def test_old_cases_that_change_keep_the_rollup_exact(api, case_city):
    c, s = case_city, case_city["settings"]
    stats(api, c["admin"], level="district")  # the first sync folds (nothing yet)
    ids = [
        report(
            api, c["worker1"], point=(IN_GRID_1[0] + i * 1e-4, IN_GRID_1[1]), category=cat
        ).json()["id"]
        for i, cat in enumerate(
            ["environment.garbage", "environment.sewage", "safety.gas", "facilities.road"]
        )
    ]
    other = report(api, c["worker2"], point=IN_GRID_2).json()["id"]
    close(api, c, ids[0], score=5)
    close(api, c, ids[1], rework=True)
    act(api, c["sub1_sup"], ids[3], "reject", note="不属于受理范围")
    *ids, other = _age(s, [*ids, other], 200)  # older than the window: settled ones roll up
    _rollup_matches_cases(s)
    day = local_date(s) - timedelta(days=200)
    q = {"level": "grid", "from": str(day - timedelta(days=3)), "to": str(day + timedelta(days=3))}
    body = stats(api, c["district_sup"], **q)
    assert body["cases_in_cube"] == 2  # the two still open: ids[2] and other
    t = body["totals"]
    assert (t["reported"], t["closed"], t["rejected"], t["rework"], t["rated"]) == (5, 2, 1, 1, 1)

    # Months later: rated, a reclassification, voided, an open one closed.
    act(api, c["sub1_sup"], ids[1], "rate", score=4)
    with transaction(s) as conn:
        conn.execute(
            text("UPDATE cases SET category_code = 'environment.garbage' WHERE id = :id"),
            {"id": ids[0]},
        )
        conn.execute(text("UPDATE cases SET status = 'voided' WHERE id = :id"), {"id": ids[3]})
    close(api, c, ids[2])
    _rollup_matches_cases(s)
    body = stats(api, c["district_sup"], **q)
    t = body["totals"]
    assert (t["reported"], t["closed"], t["rejected"], t["voided"], t["rated"]) == (5, 3, 0, 1, 2)
    assert body["cases_in_cube"] == 1  # `other` only; ids[2] moved into the roll-up
    with get_engine(s).connect() as conn:
        cube = CaseCube(s)
        sup = Principal(role=Role.supervisor, username="sup-d", scopes=("410199",))
        start, end = date.fromisoformat(q["from"]), date.fromisoformat(q["to"])
        for level in ("district", "community", "grid"):
            compare(conn, cube, sup, StatsQuery(level, start, end))
        compare(conn, cube, sup, StatsQuery("grid", start, end, category="environment"))
        # whole weeks around the day: the week tiers, changed by the same trigger
        wide = StatsQuery("grid", start - timedelta(days=20), end + timedelta(days=9))
        compare(conn, cube, sup, wide)
        compare(conn, cube, ADMIN, StatsQuery("district", wide.date_from, wide.date_to))
    # A team member's view is not a unit scope: answered from the cases, same counts.
    team = stats(api, c["team_b"], **q)["totals"]
    assert team["closed"] == 3 and team["reported"] == 3  # the three dispatched to it


@pytest.fixture
def unfold(case_city):
    """Put the fold boundary back afterwards (it only ever moves forward)."""
    yield
    with transaction(case_city["settings"]) as conn:
        conn.execute(text("UPDATE case_rollup_state SET folded_before = NULL, tz = NULL"))
        conn.execute(text("DELETE FROM case_rollup"))


def test_a_later_boundary_folds_the_days_between(api, case_city, unfold):
    """Days leave the window as time passes: a later boundary folds them, the cube lets
    their settled cases go, and the figures stay the same."""
    c, s = case_city, case_city["settings"]
    ids = [report(api, c["worker1"]).json()["id"] for _ in range(3)]
    close(api, c, ids[0])
    act(api, c["sub1_sup"], ids[1], "reject", note="不属于受理范围")
    ids = _age(s, ids, 30)
    q = {"level": "grid", "from": str(local_date(s) - timedelta(days=40)), "to": str(local_date(s))}
    before = stats(api, c["admin"], **q)
    assert before["cases_in_cube"] == 3
    wide = s.model_copy(update={"stats_recent_days": 10})
    with transaction(wide) as conn:
        assert rollup.fold(conn, wide) > 0
    _rollup_matches_cases(s)
    after = stats(api, c["admin"], **q)  # the running process: same cube, new boundary
    assert after["cases_in_cube"] == 1
    for name in COUNTS:
        assert after["totals"][name] == before["totals"][name], name
    assert within_bound(
        after["totals"]["median_hours_to_close"], before["totals"]["median_hours_to_close"]
    )


def test_a_fold_waits_for_a_write_in_flight(api, case_city, unfold):
    """A case written while a fold passes its day: the fold waits for the write's commit
    (the advisory lock) and then reads it, so the roll-up holds the written version."""
    import threading

    c, s = case_city, case_city["settings"]
    cid = report(api, c["worker1"]).json()["id"]
    close(api, c, cid)
    (cid,) = _age(s, [cid], 30)
    stats(api, c["admin"], level="district")  # folded up to 90 days ago: not this case
    engine = get_engine(s)
    writer = engine.connect()
    tx = writer.begin()
    writer.execute(text("UPDATE cases SET rating = 5 WHERE id = :id"), {"id": cid})
    wide = s.model_copy(update={"stats_recent_days": 10})
    done: list[int] = []

    def fold() -> None:
        with transaction(wide) as conn:
            done.append(rollup.fold(conn, wide))

    folding = threading.Thread(target=fold)
    folding.start()
    folding.join(1.0)
    assert folding.is_alive() and not done  # waits for the write
    tx.commit()
    writer.close()
    folding.join(30)
    with engine.connect() as conn:
        assert done == [len(rollup.tiers(conn))]  # the one case, a row in every tier
    _rollup_matches_cases(s)
    with engine.connect() as conn:
        rated = conn.execute(
            text("SELECT sum(satisfied) FROM case_rollup WHERE tier = 1")
        ).scalar_one()
    assert rated == 1


def test_the_upgrade_fills_every_tier_from_the_daily_rollup(api, case_city, unfold):
    """A database at 0020 (before the tiers) whose history is folded per building and day: migration
    0021_rollup_tiers fills every tier from those rows, equal to the sums made afresh from
    the cases, and the figures stay the same."""
    c, s = case_city, case_city["settings"]
    stats(api, c["admin"], level="district")  # the first sync folds (nothing yet)
    ids = []
    for i, cat in enumerate(
        ["environment.garbage", "environment.sewage", "safety.gas", "facilities.road"] * 2
    ):
        point = (IN_GRID_1[0] + i * 1e-4, IN_GRID_1[1] + (i % 3) * 1e-4)
        ids.append(report(api, c["worker1"], point=point, category=cat).json()["id"])
    ids.append(report(api, c["worker2"], point=IN_GRID_2).json()["id"])  # another grid, open
    for i in ids[:4]:
        close(api, c, i, score=4)
    act(api, c["sub1_sup"], ids[4], "reject", note="不属于受理范围")
    ids = _age(s, ids, 200)
    ids[5:] = _age(s, ids[5:], 9)  # other days and weeks
    q = {
        "level": "grid",
        "from": str(local_date(s) - timedelta(days=260)),
        "to": str(local_date(s)),
    }
    before = stats(api, c["admin"], **q)
    migrate.downgrade(s, "0020_district_keys")
    try:
        with transaction(s) as conn:
            assert conn.execute(text("SELECT count(*) FROM case_daily_rollup")).scalar_one() == 0
            sums = ", ".join(
                f"sum(m.{m})" if m != "reported" else "count(*)" for m in rollup.MEASURES
            )
            conn.execute(
                text(
                    f"INSERT INTO case_daily_rollup SELECT c.unit_code, c.category_code, m.day, "
                    f"{sums}, case_hist(array_agg(m.close_bin), array_agg(1)) FROM cases c, "
                    "LATERAL case_rollup_measures(c, :tz) m WHERE m.settled AND m.day < :b "
                    "GROUP BY 1, 2, 3"
                ),
                {"tz": zone_name(s), "b": rollup.boundary(s)},
            )
            conn.execute(
                text("UPDATE case_rollup_state SET folded_before = :b, tz = :tz"),
                {"tz": zone_name(s), "b": rollup.boundary(s)},
            )
    finally:
        migrate.upgrade(s)
    _rollup_matches_cases(s)
    with get_engine(s).connect() as conn:
        assert conn.execute(text("SELECT count(DISTINCT tier) FROM case_rollup")).scalar_one() == (
            len(rollup.tiers(conn))
        )
    after = stats(api, c["admin"], **q)
    assert after["cases_in_cube"] == before["cases_in_cube"] == 4  # the open ones
    assert after["totals"]["reported"] == len(ids)
    with get_engine(s).connect() as conn:
        rolled = conn.execute(text("SELECT sum(reported) FROM case_rollup WHERE tier = 1"))
        assert rolled.scalar_one() == 5  # four closed, one rejected
    for name in COUNTS:
        assert after["totals"][name] == before["totals"][name], name
    assert after["totals"]["median_hours_to_close"] == before["totals"]["median_hours_to_close"]
    assert after["units"] == before["units"] and after["weekly"] == before["weekly"]
