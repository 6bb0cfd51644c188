"""``gis-service db migrate`` folds the statistics' roll-up after upgrading (cli/db.py,
stats/rollup.py ``fold_plan`` / ``fold_step``), so the first API start after an upgrade
finds nothing to fold; ``--no-fold`` leaves it to the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.cases import partitions
from gis_service.db.engine import get_engine, transaction
from gis_service.stats import rollup
from gis_service.timezone import zone_name
from tests import history
from tests.test_cases import act, report
from tests.test_cli import run


def _state(settings):
    with get_engine(settings).connect() as conn:
        return conn.execute(text("SELECT folded_before, tz FROM case_rollup_state")).one()


def test_migrate_folds_the_roll_up_up_to_its_boundary(case_city):
    c = case_city
    s = c["settings"]
    with transaction(s) as conn:
        now = partitions.months_around(conn).start
        partitions.ensure(conn, range(now - 9, now + 1))
    with TestClient(create_app(s)) as api:
        cid = report(api, c["worker1"]).json()["id"]
        assert act(api, c["sub1_sup"], cid, "void", note="测试作废").status_code == 200
    old = history.reported_at(s, cid, datetime.now(UTC) - timedelta(days=200))
    with transaction(s) as conn:  # as after an upgrade: nothing folded yet
        conn.execute(text("UPDATE case_rollup_state SET folded_before = NULL, tz = NULL"))
        conn.execute(text("DELETE FROM case_rollup"))
        day = conn.execute(
            text("SELECT (reported_at AT TIME ZONE :tz)::date FROM cases WHERE id = :i"),
            {"tz": zone_name(s), "i": old},
        ).scalar_one()

    skipped = run(s, "db", "migrate", "--no-fold")
    assert skipped.returncode == 0, skipped.stderr
    assert "roll-up" not in skipped.stderr
    assert _state(s).folded_before is None

    done = run(s, "db", "migrate")
    assert done.returncode == 0, done.stderr
    state = _state(s)
    assert state.folded_before == rollup.boundary(s) and state.tz == zone_name(s)
    first = day.isoformat()
    assert f"roll-up folded: {(state.folded_before - day).days} days from {first}" in " ".join(
        done.stderr.split()
    ), done.stderr
    with get_engine(s).connect() as conn:
        voided = conn.execute(
            text(
                "SELECT sum(voided) FROM case_rollup r JOIN case_rollup_tier t USING (tier) "
                "WHERE t.days = 1 AND t.depth = 14 AND t.by_category AND r.period = :d"
            ),
            {"d": day},
        ).scalar()
    assert voided == 1

    again = run(s, "db", "migrate")
    assert again.returncode == 0 and "already folded" in again.stderr, again.stderr
