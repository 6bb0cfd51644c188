"""Daily roll-ups of the statistics (issue 19 item 5), so an API process holds only the
recent cases in memory (stats/rollup.py explains the design):

* ``case_daily_rollup`` — per unit code (the case's located unit), category and local day
  of report: the sums of the statistics' measures over the *settled* cases (closed,
  rejected, voided) reported that day, and ``close_hist``, their report → closure hours in
  58 log-spaced bins (``case_close_bin()``, gis_service/stats/rollup.sql). Only days before
  ``case_rollup_state.folded_before`` are held; open cases stay in the cube however old.
* ``case_rollup_state`` — one row: the first day not folded yet and the zone the days
  were counted in (NULL until the first fold, ``case_rollup_fold()``).
* ``case_rollup_changed()`` — statement-level triggers (with transition tables) on
  ``cases``: a write touching a case of a folded day takes the case's old measures out of
  its roll-up row and puts the new ones in (``case_rollup_add()``), so a case closed,
  rated or reopened years later keeps its day exact. Writes to recent cases only read the
  one-row state. TRUNCATE of the cases empties the roll-up.
* ``cases_reported_at_idx`` — the fold reads the cases day by day.

Revision ID: 0019_daily_rollups
Revises: 0018_case_partitions
Create Date: 2026-12-01
"""

from alembic import op

revision = "0019_daily_rollups"
down_revision = "0018_case_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE case_daily_rollup (
            unit_code                text NOT NULL,
            category_code            text NOT NULL,
            day                      date NOT NULL,
            reported                 integer NOT NULL,
            accepted                 integer NOT NULL,
            rejected                 integer NOT NULL,
            closed                   integer NOT NULL,
            voided                   integer NOT NULL,
            voided_accepted          integer NOT NULL,
            closed_on_time           integer NOT NULL,
            closed_on_time_extended  integer NOT NULL,
            extended                 integer NOT NULL,
            rework                   integer NOT NULL,
            rated                    integer NOT NULL,
            satisfied                integer NOT NULL,
            urges                    integer NOT NULL,
            urges_replied            integer NOT NULL,
            close_hist               integer[] NOT NULL
                                     CHECK (cardinality(close_hist) = 58),
            PRIMARY KEY (day, unit_code, category_code)
        );
        CREATE TABLE case_rollup_state (
            one            boolean PRIMARY KEY DEFAULT true CHECK (one),
            folded_before  date,
            tz             text,
            folded_at      timestamptz
        );
        INSERT INTO case_rollup_state DEFAULT VALUES;
        CREATE INDEX cases_reported_at_idx ON cases (reported_at);

        CREATE FUNCTION case_rollup_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            st case_rollup_state;
            cut timestamptz;
            cs cases[];
            ws integer[];
        BEGIN
            -- shared: case writes never wait for each other here, only for a fold
            PERFORM pg_advisory_xact_lock_shared(hashtext('case_daily_rollup'));
            SELECT * INTO st FROM case_rollup_state;
            IF st.folded_before IS NULL THEN
                RETURN NULL;
            END IF;
            cut := st.folded_before::timestamp AT TIME ZONE st.tz;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                SELECT array_agg(o::cases), array_agg(-1) INTO cs, ws
                  FROM old_rows o WHERE o.reported_at < cut;
            END IF;
            IF TG_OP IN ('UPDATE', 'INSERT') THEN
                SELECT cs || array_agg(n::cases), ws || array_agg(1) INTO cs, ws
                  FROM new_rows n WHERE n.reported_at < cut;
            END IF;
            IF cs IS NOT NULL THEN
                PERFORM case_rollup_add(cs, ws, st.tz);
            END IF;
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER cases_rollup_insert AFTER INSERT ON cases
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION case_rollup_changed();
        CREATE TRIGGER cases_rollup_update AFTER UPDATE ON cases
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION case_rollup_changed();
        CREATE TRIGGER cases_rollup_delete AFTER DELETE ON cases
            REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION case_rollup_changed();
        -- TRUNCATE fires no DELETE trigger: empty the roll-up with the cases
        CREATE FUNCTION case_rollup_truncated() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('case_daily_rollup'));
            DELETE FROM case_daily_rollup;
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER cases_rollup_truncate AFTER TRUNCATE ON cases
            FOR EACH STATEMENT EXECUTE FUNCTION case_rollup_truncated();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS cases_rollup_insert ON cases;
        DROP TRIGGER IF EXISTS cases_rollup_update ON cases;
        DROP TRIGGER IF EXISTS cases_rollup_delete ON cases;
        DROP TRIGGER IF EXISTS cases_rollup_truncate ON cases;
        DROP FUNCTION IF EXISTS case_rollup_changed();
        DROP FUNCTION IF EXISTS case_rollup_truncated();
        DROP INDEX IF EXISTS cases_reported_at_idx;
        DROP TABLE IF EXISTS case_rollup_state;
        DROP TABLE IF EXISTS case_daily_rollup;
        """
    )
