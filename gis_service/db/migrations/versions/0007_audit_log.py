"""The audit log: one append-only table recording every privileged change.

The rows are written by triggers on the audited tables (gis_service/audit/triggers.py,
(re)created by ``gis-service db migrate`` from the list in gis_service/audit/tables.py),
so every path that changes them — API, CLI, imports, the demo loader, psql — is recorded
without anyone remembering to call anything. Append-only like the case timeline
(migration 0002: a BEFORE UPDATE OR DELETE trigger that refuses).

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit_log (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            -- the moment of the change (clock time: several changes of one transaction
            -- keep their order), and the transaction that made it
            at          timestamptz NOT NULL DEFAULT clock_timestamp(),
            txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
            -- who: 'user:<username>', 'client:<name>', 'cli:<os user>', or
            -- 'db:<database role>' for a change made outside the service
            actor       text NOT NULL,
            actor_id    integer,
            -- from where: the client address of the request (or 'cli@<host>')
            address     text,
            request_id  text,
            table_name  text NOT NULL,
            operation   text NOT NULL
                            CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
            -- the changed row's key (id, code, username...) as text; NULL for a summary
            target      text,
            -- UPDATE: the columns whose values changed (redacted ones included)
            changed     text[],
            old         jsonb,
            new         jsonb,
            -- a summary row of a bulk table: how many rows the statement touched
            rows        bigint
        )
        """
    )
    op.execute("CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC)")
    op.execute("CREATE INDEX audit_log_table_idx ON audit_log (table_name, at DESC)")
    op.execute("CREATE INDEX audit_log_target_idx ON audit_log (target, at DESC)")
    op.execute("CREATE INDEX audit_log_actor_idx ON audit_log (actor, at DESC)")
    # The log is evidence: no row of it may change or disappear (as case_event, 0002).
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
        """
    )
    # the triggers on the audited tables: gis_service/audit/triggers.py (db migrate)


def downgrade() -> None:
    from gis_service.audit import triggers

    triggers.drop_all(op.get_bind())
    op.execute("DROP TABLE IF EXISTS audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
