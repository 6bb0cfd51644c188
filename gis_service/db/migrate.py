"""Alembic driven from code: the schema changes only through these migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from gis_service.settings import Settings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings | None = None) -> Config:
    s = settings or get_settings()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", s.sqlalchemy_url.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings | None = None, revision: str = "head") -> None:
    """Migrate; at head, (re)create the domains' SQL functions from their ``.sql`` files
    (db/sqlfiles.py), bring word-list constraints and indexes to the Python vocabulary
    (db/vocabulary_checks.py), remake the audit triggers from their list (audit/triggers.py)
    and seed the reference data an empty database needs (the taxonomy); make the
    coming months' partitions of the case history (cases/partitions.py)."""
    command.upgrade(alembic_config(settings), revision)
    if revision == "head":
        from gis_service.audit import triggers
        from gis_service.cases import partitions
        from gis_service.cases.categories import seed_default
        from gis_service.db import sqlfiles, vocabulary_checks
        from gis_service.db.engine import transaction

        with transaction(settings) as conn:
            sqlfiles.apply(conn)
            vocabulary_checks.sync(conn)
            triggers.sync(conn)
            seed_default(conn)
            # the current month's partitions of the case history and the next ones
            partitions.ensure(conn, partitions.months_around(conn))


def downgrade(settings: Settings | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(settings), revision)


def current_revision(settings: Settings | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from gis_service.db.engine import get_engine

    with get_engine(settings).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
