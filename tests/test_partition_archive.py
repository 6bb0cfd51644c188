"""Detaching an old month takes the rows that reference its cases along into the
``archive`` schema, and attaching it brings everything back (gis_service/cases/archive.py,
cases/partitions.py ``detach_before`` / ``attach``, docs/scale.md "History that grows"):
a round trip through the CLI, the API's lists and counts in between, and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.cases import archive, partitions, photos
from gis_service.db.engine import get_engine, transaction
from gis_service.notify import scheduler
from gis_service.settings import Settings
from tests import history
from tests.conftest import ADMIN_AUTH
from tests.test_cases import act, photo, report
from tests.test_cli import run

BACK_DAYS = 200
"""How far back the archived cases are moved: well before the statistics' recent window."""


def _snapshot(settings: Settings) -> dict[str, list[str]]:
    """Every row, as text, of cases, case_event and every table that references them
    (from the foreign keys), sorted: the state a round trip must give back."""
    with get_engine(settings).connect() as conn:
        refs = archive.references(conn, partitions.TABLES)
        names = [*partitions.TABLES, *archive.tables(refs)]
        return {
            t: sorted(conn.execute(text(f"SELECT x::text FROM {t} x")).scalars()) for t in names
        }


def _month(settings: Settings, case_id: int) -> str:
    with get_engine(settings).connect() as conn:
        return conn.execute(
            text("SELECT case_month_label(case_id_month(:i))"), {"i": case_id}
        ).scalar_one()


def _next_month(label: str) -> str:
    year, month = (int(x) for x in label.split("-"))
    return f"{year + month // 12}-{month % 12 + 1:02d}"


@pytest.fixture
def old_cases(case_city):
    """Three settled cases reported ``BACK_DAYS`` ago, with photos, a pending extension
    approval, a case lock, notification reminders and a retry key; returns their ids."""
    c = case_city
    s = c["settings"]
    with transaction(s) as conn:
        now = partitions.months_around(conn).start
        partitions.ensure(conn, range(now - 9, now + 4))
    ids = []
    with TestClient(create_app(s)) as api:
        for n in range(3):
            r = report(api, c["worker1"], key=f"archive-test-{n}")
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            assert photo(api, c["worker1"], cid, stage="before").status_code == 201
            ids.append(cid)
        first = ids[0]
        assert act(api, c["sub1_sup"], first, "accept", note="立案").status_code == 200
        r = act(api, c["sub1_sup"], first, "dispatch", team_id=c["teams"]["a"])
        assert r.status_code == 200, r.text
        r = act(api, c["team_a"], first, "extend", note="缺少配件", extension_hours=24)
        assert r.status_code == 200, r.text
        assert api.put(f"/api/v1/cases/{first}/lock", headers=c["sub1_sup"]).status_code == 200
        # its deadline nearly over: the reminders' pass queues a reminder and its outbox row
        with transaction(s) as conn:
            conn.execute(
                text(
                    "UPDATE cases SET reported_at = now() - interval '4 hours', "
                    "accepted_at = now() - interval '3 hours', "
                    "deadline_at = now() + interval '1 minute' WHERE id = :i"
                ),
                {"i": first},
            )
            assert scheduler.schedule(conn, s) > 0
        for cid in ids:
            r = act(api, c["sub1_sup"], cid, "void", note="测试作废")
            assert r.status_code == 200, r.text
    moved = [
        history.reported_at(s, cid, datetime.now(UTC) - timedelta(days=BACK_DAYS, hours=n))
        for n, cid in enumerate(ids)
    ]
    return moved


def _listed(api, ids: list[int]) -> tuple[set[int], int]:
    """Which of ``ids`` the case list shows (as GeoJSON features), and its numberMatched."""
    r = api.get("/api/v1/cases", params={"limit": 100}, headers=ADMIN_AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    return {f["id"] for f in body["features"]} & set(ids), body["numberMatched"]


def test_a_month_leaves_with_its_rows_and_comes_back_whole(case_city, old_cases):
    s = case_city["settings"]
    ids = old_cases
    months = sorted({_month(s, i) for i in ids})
    before = _next_month(months[-1])
    with get_engine(s).connect() as conn:
        refs = archive.references(conn, partitions.TABLES)
        held = {
            t: conn.execute(
                text(f"SELECT count(*) FROM {t} WHERE case_id = ANY(:i)"), {"i": ids}
            ).scalar_one()
            for t in archive.tables(refs)
            if any(r.table == t and r.parent == "cases" for r in refs)
        }
        files = conn.execute(
            text("SELECT sha256, mime FROM case_photo WHERE case_id = ANY(:i)"), {"i": ids}
        ).all()
    # the rows the workflow made are there to be archived
    for table in ("case_photo", "approval", "case_lock", "notify_reminder", "case_idempotency"):
        assert held.get(table), (table, held)
    state = _snapshot(s)
    with TestClient(create_app(s)) as api:
        seen, total = _listed(api, ids)
        assert seen == set(ids)

    done = run(s, "partitions", "detach", "--before", before)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    archived: dict[str, int] = {}
    for m in months:
        suffix = "y" + m.replace("-", "m")
        assert f"cases_{suffix}" in lines and f"case_event_{suffix}" in lines
        for table in held:
            prefix = archive.archive_name(table, suffix) + " ("
            for line in lines:
                if line.startswith(prefix):
                    archived[table] = archived.get(table, 0) + int(line[len(prefix) : -1])
    assert archived == held

    with get_engine(s).connect() as conn:
        for table in held:  # nothing of those cases left in the live tables
            left = conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE case_id = ANY(:i)"), {"i": ids}
            ).scalar_one()
            assert left == 0, table
        # the month's reminders' outbox rows went with them (found through the keys)
        kept = conn.execute(
            text(
                "SELECT count(*) FROM notify_outbox o WHERE o.reminder_id IS NOT NULL "
                "AND NOT EXISTS (SELECT 1 FROM notify_reminder r WHERE r.id = o.reminder_id)"
            )
        ).scalar_one()
        assert kept == 0
        outbox = sum(
            conn.execute(
                text(f"SELECT count(*) FROM {archive.archive_name('notify_outbox', sx)}")
            ).scalar_one()
            for sx in ("y" + m.replace("-", "m") for m in months)
            if conn.execute(
                text("SELECT to_regclass(:n)"), {"n": archive.archive_name("notify_outbox", sx)}
            ).scalar()
        )
        assert outbox == held["notify_reminder"]
    with TestClient(create_app(s)) as api:
        seen, total_after = _listed(api, ids)
        assert seen == set() and total_after == total - len(ids)
        assert api.get(f"/api/v1/cases/{ids[0]}", headers=ADMIN_AUTH).status_code == 404
    # photo files stay where they are
    for sha, mime in files:
        ext = photos.EXTENSIONS[mime]
        assert photos.path_for(s.photos_path, sha, ext).is_file()

    again = run(s, "partitions", "attach", months[0])
    assert again.returncode == 0, again.stderr
    # every month the detach took (the empty ones before them too) comes back, so the
    # database is as it was for the tests after this one
    taken = [
        "legacy" if sx == "legacy" else f"{sx[1:5]}-{sx[6:8]}"
        for line in lines
        if (sx := line.removeprefix("cases_")) != line and "(" not in line
    ]
    assert set(months) <= set(taken)
    for m in taken:
        if m != months[0]:
            assert run(s, "partitions", "attach", m).returncode == 0, m
    assert _snapshot(s) == state
    with get_engine(s).connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = :s"), {"s": archive.SCHEMA}
        ).scalar_one()
        assert left == 0
    with TestClient(create_app(s)) as api:
        seen, total_back = _listed(api, ids)
        assert seen == set(ids) and total_back == total
        assert api.get(f"/api/v1/cases/{ids[0]}", headers=ADMIN_AUTH).status_code == 200

    twice = run(s, "partitions", "attach", months[0])
    assert twice.returncode != 0 and "attached already" in twice.stderr


def test_detach_and_attach_refuse_what_they_cannot_do(case_city, old_cases):
    s = case_city["settings"]
    ids = old_cases
    month = _month(s, ids[0])
    with get_engine(s).connect() as conn:
        this_month = conn.execute(text("SELECT case_month_label(case_month(now()))")).scalar()
    # inside the statistics' recent window
    r = run(s, "partitions", "detach", "--before", this_month)
    assert r.returncode != 0 and "recent window" in r.stderr, r.stderr
    # a month with an open case
    with TestClient(create_app(s)) as api:
        open_id = report(api, case_city["worker1"]).json()["id"]
        later = report(api, case_city["worker1"]).json()["id"]
    open_id = history.reported_at(s, open_id, datetime.now(UTC) - timedelta(days=BACK_DAYS))
    r = run(s, "partitions", "detach", "--before", _next_month(_month(s, open_id)))
    assert r.returncode != 0 and "1 cases still open" in r.stderr, r.stderr
    # a later case marked as the duplicate of one of the month's
    with transaction(s) as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("UPDATE cases SET status = 'voided' WHERE id = :i"), {"i": open_id})
        conn.execute(
            text("UPDATE cases SET duplicate_of = :o, status = 'duplicate' WHERE id = :n"),
            {"o": ids[0], "n": later},
        )
    r = run(s, "partitions", "detach", "--before", _next_month(month))
    assert r.returncode != 0 and "cases.duplicate_of" in r.stderr, r.stderr
    with get_engine(s).connect() as conn:  # nothing changed
        assert conn.execute(
            text("SELECT count(*) FROM cases WHERE id = ANY(:i)"), {"i": ids}
        ).scalar_one() == len(ids)
    # attach: not a month, a month with no tables, a month that is attached
    r = run(s, "partitions", "attach", "2026-13")
    assert r.returncode != 0 and "2026-13" in r.stderr
    r = run(s, "partitions", "attach", "2001-01")
    assert r.returncode != 0 and "cases_y2001m01" in r.stderr
    r = run(s, "partitions", "attach", month)
    assert r.returncode != 0 and "attached already" in r.stderr
