"""``gis-service users create|change --email --phone`` as a person runs it: the addresses
notifications go to are stored, a malformed one is named with exit 2 and nothing is
written, and the account then gets its e-mail through the real sender."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gis_service.db.engine import get_engine
from tests.test_cli import run


def account(settings, username: str) -> dict | None:
    with get_engine(settings).connect() as conn:
        row = (
            conn.execute(
                text("SELECT email, phone, token_version FROM app_user WHERE username = :u"),
                {"u": username},
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


CREATE = ("users", "create", "--password", "s3cret-pass", "--role", "admin")


def test_create_and_change_with_email_and_phone(test_city, monkeypatch) -> None:
    s = test_city
    done = run(
        s,
        *CREATE,
        "--username",
        "mail.ok",
        "--email",
        " zhang@example.org ",
        "--phone",
        "138 0000 0001",
    )
    assert done.returncode == 0, done.stderr
    assert "email zhang@example.org" in done.stdout and "phone 138 0000 0001" in done.stdout
    got = account(s, "mail.ok")
    assert (got["email"], got["phone"]) == ("zhang@example.org", "138 0000 0001")
    version = got["token_version"]
    done = run(
        s, "users", "change", "mail.ok", "--email", "li@example.org", "--phone", "+8613900000002"
    )
    assert done.returncode == 0, done.stderr
    assert "email li@example.org" in done.stdout and "sessions have ended" not in done.stdout
    got = account(s, "mail.ok")
    assert (got["email"], got["phone"]) == ("li@example.org", "+8613900000002")
    assert got["token_version"] == version  # where mail goes is no change of what one sees
    done = run(s, "users", "change", "mail.ok", "--email", "")  # "" removes it
    assert done.returncode == 0, done.stderr
    assert account(s, "mail.ok")["email"] is None
    assert account(s, "mail.ok")["phone"] == "+8613900000002"
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: one line per account
    (line,) = [x for x in run(s, "users", "list").stdout.splitlines() if "mail.ok" in x]
    assert "+8613900000002" in line and "li@example.org" not in line


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--email", "zhang.example.org", "email"),
        ("--email", "zhang@example", "email"),
        ("--email", "a b@example.org", "email"),
        ("--phone", "call me", "phone"),
        ("--phone", "12", "phone"),
        ("--phone", "1380000000012345678", "phone"),
    ],
)
def test_a_malformed_address_is_named_and_nothing_written(test_city, option, value, field):
    s = test_city
    done = run(s, *CREATE, "--username", "mail.bad", option, value)
    assert done.returncode == 2
    assert f"{field} {value!r} is not" in done.stderr, done.stderr
    assert account(s, "mail.bad") is None
    done = run(s, *CREATE, "--username", "mail.bad", "--email", "ok@example.org")
    assert done.returncode == 0, done.stderr
    done = run(
        s, "users", "change", "mail.bad", option, value, "--role", "planner", "--scope", "410199"
    )
    assert done.returncode == 2 and f"{field} {value!r} is not" in done.stderr
    got = account(s, "mail.bad")  # nothing written: neither the address nor the role
    assert got["email"] == "ok@example.org" and got["phone"] is None
    with get_engine(s).connect() as conn:
        role = conn.execute(text("SELECT role FROM app_user WHERE username = 'mail.bad'"))
        assert role.scalar_one() == "admin"
