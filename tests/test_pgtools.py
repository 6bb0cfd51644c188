"""The backup tools reach the database through libpq's own URL parser, so a cluster's
multi-host URL (docs/scale.md) works for pg_dump, pg_restore and their checks too."""

from __future__ import annotations

import socket

from gis_service.backup import pgtools


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_multi_host_url_reaches_the_client_programs_as_libpq_lists(settings):
    url = (
        f"postgresql://gis@127.0.0.1:{_closed_port()},127.0.0.1:{settings.db_port}/"
        f"{settings.db_name}?target_session_attrs=read-write"
    )
    multi = settings.model_copy(update={"database_url": url})
    env = pgtools.libpq_env(multi)
    assert env["PGHOST"] == "127.0.0.1,127.0.0.1"
    assert env["PGPORT"].split(",")[1] == str(settings.db_port)
    assert env["PGTARGETSESSIONATTRS"] == "read-write"
    assert env["PGDATABASE"] == settings.db_name
    assert pgtools.libpq_env(multi, "postgres")["PGDATABASE"] == "postgres"
    # the first host refuses: libpq goes on to the second, which is writable
    conn = pgtools.connect(multi)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_database(), pg_is_in_recovery(), inet_server_port()")
            assert cur.fetchone() == (settings.db_name, False, settings.db_port)
    finally:
        conn.close()


def test_the_single_local_url_is_read_as_before(settings):
    env = pgtools.libpq_env(settings)
    assert (env["PGHOST"], env["PGPORT"]) == ("127.0.0.1", str(settings.db_port))
    assert "PGTARGETSESSIONATTRS" not in env
