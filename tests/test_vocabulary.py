"""One vocabulary: every word list is typed once, in its home, and everything else — SQL,
the statistics cube, exports, Open311, the phone app — reads it from there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import text

from gis_service.auth.principal import Role
from gis_service.cases.teams import TEAM_KINDS
from gis_service.cases.workflow import (
    ACTIONS,
    DEADLINE_STATUSES,
    OPEN_STATUSES,
    PRIORITIES,
    STATUSES,
    STEPS,
)
from gis_service.db import sqlfiles
from gis_service.db.engine import get_engine
from gis_service.mobile import shell
from gis_service.notify.kinds import KINDS, PERSONAL_CHANNELS
from gis_service.units.codes import CODE_LENGTH, HANDLING_LEVELS, LEVELS
from gis_service.vocabulary import ACCOUNT_ROLES, STAFF_ROLES, vocabulary

PACKAGE = Path(__file__).resolve().parents[1] / "gis_service"
# The homes, where the lists are typed (gis_service/vocabulary.py names them).
HOMES = {
    PACKAGE / "cases" / "workflow.py",
    PACKAGE / "units" / "codes.py",
    PACKAGE / "auth" / "principal.py",
    PACKAGE / "cases" / "teams.py",
    PACKAGE / "vocabulary.py",
    PACKAGE / "notify" / "kinds.py",
}
WORD_LISTS: dict[str, set[str]] = {
    "statuses": {s.value for s in STATUSES},
    "actions": {a.value for a in ACTIONS},
    "levels": {lvl.value for lvl in LEVELS},
    "roles": {r.value for r in Role},
    "priorities": {p.value for p in PRIORITIES},
    "team kinds": set(TEAM_KINDS),
    "staff roles": set(STAFF_ROLES),
    # the notification pages read these from GET /api/v1/notifications/preferences
    "notification kinds": {k.value for k in KINDS},
    "personal channels": set(PERSONAL_CHANNELS),
}
# Named parts of the lists that the vocabulary also exports: a literal equal to one of
# them is a copy as much as the whole list is.
NAMED_PARTS = [
    {s.value for s in OPEN_STATUSES},
    {s.value for s in DEADLINE_STATUSES},
    {lvl.value for lvl in HANDLING_LEVELS},
    {r.value for r in ACCOUNT_ROLES},
    {a.value for a, step in STEPS.items() if step.note_required},
]
BRACKETED = re.compile(r"(\bIN\s*)?[\[\(\{]([^\[\]\(\)\{\}]*)[\]\)\}]", re.I)
QUOTED = re.compile(r"""^(['"])([a-z_]+)\1$""")
ALTERNATION = re.compile(r"\^\(([a-z_|]+)\)\$")
LENGTHS = "|".join(map(str, CODE_LENGTH.values()))
CODE_CUT = re.compile(
    rf"left\([\w.]+,\s*(?:{LENGTHS})\)|\b\w+\[:\s*(?:{LENGTHS})\]|\.slice\(0,\s*(?:{LENGTHS})\)"
)


def source_files() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*")
        if p.suffix in (".py", ".sql", ".js") and "node_modules" not in p.parts
    )


def copies_in(path: Path, source: str) -> list[str]:
    """Literal lists of vocabulary words in ``source``: in JavaScript any list of two or
    more words of one list (the app reads window.gisVocabulary), in SQL's IN (…) any such
    list, elsewhere a list equal to a whole word list or a named part of one; regular
    expressions alternating level or status names; code cuts at a level's length."""
    found = []
    for m in BRACKETED.finditer(source):
        items = [i.strip() for i in m.group(2).split(",") if i.strip()]
        words = [QUOTED.match(i) for i in items]
        if len(items) < 2 or not all(words):
            continue
        used = {w.group(2) for w in words if w}
        for name, words_of_list in WORD_LISTS.items():
            if not used <= words_of_list:
                continue
            if (
                path.suffix == ".js"
                or m.group(1)
                or used == words_of_list
                or any(used == part for part in NAMED_PARTS)
            ):
                found.append(f"{name}: {m.group(0)[:80]!r}")
    for m in ALTERNATION.finditer(source):
        used = set(m.group(1).split("|"))
        if len(used) >= 2 and any(used <= w for w in WORD_LISTS.values()):
            found.append(f"pattern {m.group(0)!r}")
    found += [f"code length {m.group(0)!r}" for m in CODE_CUT.finditer(source)]
    return found


def test_no_file_retypes_a_word_list():
    copies = {
        str(p.relative_to(PACKAGE)): found
        for p in source_files()
        if p not in HOMES and (found := copies_in(p, p.read_text(encoding="utf-8")))
    }
    assert copies == {}


@pytest.mark.parametrize(
    ("snippet", "suffix"),
    [
        ("WHERE status IN ('handled', 'closed')", ".sql"),
        ('const OPEN = ["reported", "accepted"];', ".js"),
        ('LEVELS = ("district", "subdistrict", "community", "grid", "building")', ".py"),
        ('Query(pattern="^(grid|community)$")', ".py"),
        ("left(p_code, 12)", ".sql"),
        ("parent = code[:12]", ".py"),
        ('const KINDS = ["new_case", "overdue"];', ".js"),
        ('channels: ["email", "sms"]', ".js"),
    ],
)
def test_the_scan_finds_a_copy(snippet, suffix):
    """The scan above is only as good as what it catches: each of these is a copy."""
    assert copies_in(Path("x" + suffix), snippet)


def test_the_served_vocabulary_is_the_python_one(client):
    served = client.get("/api/v1/vocabulary")
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(vocabulary()))
    body = served.json()
    assert [s["code"] for s in body["statuses"]] == [s.value for s in STATUSES]
    assert body["open_statuses"] == [s.value for s in OPEN_STATUSES]
    assert {lvl["code"]: lvl["code_length"] for lvl in body["levels"]} == {
        lvl.value: n for lvl, n in CODE_LENGTH.items()
    }
    assert body["actions"] == [a.value for a in ACTIONS]

    # the phone's page loads the same lists, versioned with the build
    page = client.get("/m/").text
    url = shell.asset_urls()["vocabulary.js"]
    assert f'<script src="{url}"' in page
    script = client.get(url)
    assert script.status_code == 200
    prefix = "window.gisVocabulary = "
    assert script.text.startswith(prefix)
    assert json.loads(script.text[len(prefix) :].rstrip().rstrip(";")) == body
    assert url in json.loads(
        re.search(r"const PRECACHE = (\[.*?\]);", client.get("/m/sw.js").text).group(1)
    )


def test_the_database_checks_and_functions_come_from_python(settings):
    """CHECK constraints list the Python words, and the functions the report path calls
    are exactly those of the .sql files (no migration defines them)."""
    with get_engine(settings).connect() as conn:
        checks: dict[tuple[str, str], list[set[str]]] = {}
        for r in conn.execute(
            text(
                """
            SELECT c.conrelid::regclass::text AS table, a.attname AS column,
                   pg_get_constraintdef(c.oid) AS definition
              FROM pg_constraint c JOIN pg_attribute a
                ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
             WHERE c.contype = 'c' AND cardinality(c.conkey) = 1
               AND pg_get_constraintdef(c.oid) LIKE '%ANY%'
            """
            )
        ):
            words = set(re.findall(r"'([a-z_]+)'::text", r.definition))
            checks.setdefault((r.table, r.column), []).append(words)
        # (name, body) of every definition, overloads included (walk_snap has two)
        functions = conn.execute(
            text("SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(:n)"),
            {"n": sqlfiles.function_names()},
        ).all()
    assert WORD_LISTS["statuses"] in checks[("cases", "status")]
    assert WORD_LISTS["priorities"] in checks[("cases", "priority")]
    assert {lvl.value for lvl in HANDLING_LEVELS} in checks[("cases", "handling_level")]
    assert WORD_LISTS["levels"] in checks[("admin_unit", "level")]
    assert {r.value for r in ACCOUNT_ROLES} in checks[("app_user", "role")]
    assert WORD_LISTS["team kinds"] in checks[("team", "kind")]
    assert WORD_LISTS["staff roles"] in checks[("unit_staff", "role")]

    bodies = [
        body
        for path in sqlfiles.SQL_FILES
        for body in re.findall(r"\$\$(.*?)\$\$", sqlfiles.rendered(path), re.S)
    ]
    assert sorted(name for name, _ in functions) == sorted(sqlfiles.function_names())
    for name, source in functions:
        assert source in bodies, f"{name} in the database is not the one in its .sql file"
    migrations = "".join(
        p.read_text() for p in (PACKAGE / "db" / "migrations" / "versions").glob("*.py")
    )
    for name in sqlfiles.function_names():
        assert f"FUNCTION {name}(" not in migrations


def test_label_tables_cover_exactly_the_statuses():
    from gis_service.maps.i18n import TEXT
    from gis_service.open311.service import STATUS_TEXT

    statuses = WORD_LISTS["statuses"]
    for lang, words in STATUS_TEXT.items():
        assert set(words) == statuses, lang
    assert {k.removeprefix("status.") for k in TEXT if k.startswith("status.")} == statuses
    words_js = (PACKAGE / "web" / "mobile" / "words.js").read_text(encoding="utf-8")
    assert '"status.' not in words_js  # the app takes status names from the vocabulary


def test_priority_labels_are_published_for_exactly_the_priorities():
    """Each priority has its zh and en name in one home (workflow.PRIORITY_LABELS),
    published as the vocabulary's ``priority_labels``; no page script types them again."""
    from gis_service.cases.workflow import PRIORITY_LABELS

    assert list(PRIORITY_LABELS) == list(PRIORITIES)
    published = vocabulary()["priority_labels"]
    assert [p["code"] for p in published] == vocabulary()["priorities"]
    for p in published:
        zh, en = PRIORITY_LABELS[p["code"]]
        assert p["label"] == {"zh": zh, "en": en} and zh and en
    scripts = [p for p in source_files() if p.suffix == ".js"]
    for zh, en in PRIORITY_LABELS.values():
        for path in scripts:
            text = path.read_text(encoding="utf-8")
            assert f'"{zh}"' not in text and f'"{en}"' not in text, (path.name, zh, en)


def test_every_status_of_the_vocabulary_filters_the_case_list(case_city):
    from fastapi.testclient import TestClient

    from gis_service.app import create_app

    with TestClient(create_app(case_city["settings"])) as api:
        for status in STATUSES:
            r = api.get("/api/v1/cases", headers=case_city["admin"], params={"status": status})
            assert r.status_code == 200, (status, r.text)
        r = api.get("/api/v1/cases", headers=case_city["admin"], params={"status": "lost"})
        assert r.status_code == 422
        assert r.json()["detail"].endswith(", ".join(s.value for s in STATUSES))


def test_migrate_brings_an_old_database_to_the_python_vocabulary(db):
    """A database made with another word list (here: a status and a level missing, an
    index predicate stale) is brought to the Python lists by migrate, no new migration."""
    from gis_service.db import migrate, vocabulary_checks

    with get_engine(db).begin() as conn:
        conn.execute(
            text(
                "ALTER TABLE cases DROP CONSTRAINT cases_status_check, ADD CONSTRAINT "
                "cases_status_check CHECK (status IN ('reported', 'closed'))"
            )
        )
        conn.execute(
            text(
                "ALTER TABLE admin_unit DROP CONSTRAINT admin_unit_level_check, ADD CONSTRAINT "
                "admin_unit_level_check CHECK (level IN ('district', 'grid'))"
            )
        )
        conn.execute(text("DROP INDEX cases_open_idx"))
        conn.execute(
            text("CREATE INDEX cases_open_idx ON cases (deadline_at) WHERE status IN ('accepted')")
        )
    migrate.upgrade(db)
    with get_engine(db).begin() as conn:
        definition = conn.execute(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                # the partitioned table's (its month partitions inherit it)
                "WHERE conname = 'cases_status_check' AND conrelid = 'cases'::regclass"
            )
        ).scalar_one()
        predicate = conn.execute(
            text(
                "SELECT pg_get_expr(indpred, indrelid) FROM pg_index "
                "WHERE indexrelid = 'cases_open_idx'::regclass"
            )
        ).scalar_one()
        assert set(re.findall(r"'([a-z_]+)'::text", definition)) == WORD_LISTS["statuses"]
        assert set(re.findall(r"'([a-z_]+)'::text", predicate)) == {
            s.value for s in DEADLINE_STATUSES
        }
        assert vocabulary_checks.sync(conn) == []  # in step now: nothing to remake


def test_the_phone_names_every_timeline_event_in_both_languages():
    """The case timeline on the phone labels each event ``ev.<event>`` (words.js); every
    event the loop writes (cases/workflow.py EVENTS) has a zh and an en label, so a new
    action cannot show up as a raw key."""
    from gis_service.cases.workflow import EVENTS

    words_js = (PACKAGE / "web" / "mobile" / "words.js").read_text(encoding="utf-8")
    missing = [e for e in EVENTS if words_js.count(f'"ev.{e}":') != 2]
    assert not missing, missing
