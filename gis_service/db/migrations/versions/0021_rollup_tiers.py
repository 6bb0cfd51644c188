"""Roll-up tiers (issue 19 item 5): the settled history summed at coarser grains, so a
statistics request over old days reads a few rows per unit and week instead of about one
row per case (stats/rollup.py explains the design and the measurements):

* ``case_rollup_tier`` — the grains kept: a period of ``days`` days (1; 7, a week from
  Monday as the statistics' weeks; 28, four such weeks — counted from Monday 2000-01-03,
  so the periods nest), a depth (the length of unit code kept: district 6, subdistrict 9,
  community 12, grid 14 — units/codes.py) and whether the category is kept
  (``by_category``; else the row sums every category, ``category_code`` = '').
  Tier 1 (a day, grid, by category) is the base every request can be answered from.
* ``case_rollup`` — per tier, period (its first day), unit code prefix and category: the
  same sums and close-hour histogram as ``case_daily_rollup`` (migration
  0019_daily_rollups) held per building and day; it replaces that table, from which it
  is filled here (the fold boundary is kept).
  ``case_rollup_add()`` (stats/rollup.sql) writes a case into every tier at once. The
  unit code sorts bytewise (COLLATE "C"), so a unit's prefix (``LIKE '410105%'``) is a
  range of the primary key: a request for one district reads only that district's rows.
* ``case_rollup_truncated()`` — TRUNCATE of the cases now empties ``case_rollup``.

Revision ID: 0021_rollup_tiers
Revises: 0019_daily_rollups
Create Date: 2026-12-01
"""

from alembic import op

revision = "0021_rollup_tiers"
down_revision = "0020_district_keys"
branch_labels = None
depends_on = None

MEASURES = (
    "reported, accepted, rejected, closed, voided, voided_accepted, closed_on_time, "
    "closed_on_time_extended, extended, rework, rated, satisfied, urges, urges_replied"
)
#: (tier, days, depth, by_category): the base, then the coarser tiers a request reads
#: instead where they fit. No day tier of grids over all categories: at ten million cases
#: a grid's day has about as many category rows as cases (measured: stats/rollup.py).
TIERS = (
    (1, 1, 14, True),
    (2, 1, 12, False),
    (3, 1, 9, False),
    (4, 1, 6, True),
    (5, 1, 6, False),
    (6, 7, 14, False),
    (7, 7, 12, False),
    (8, 7, 9, True),
    (9, 7, 9, False),
    (10, 7, 6, True),
    (11, 7, 6, False),
    (12, 28, 14, False),
    (13, 28, 12, False),
    (14, 28, 9, True),
    (15, 28, 9, False),
    (16, 28, 6, True),
    (17, 28, 6, False),
)


def upgrade() -> None:
    columns = ",\n".join(f"{m.strip()} integer NOT NULL" for m in MEASURES.split(","))
    tiers = ", ".join(f"({t}, '{g}', {d}, {str(c).lower()})" for t, g, d, c in TIERS)
    op.execute(
        f"""
        CREATE TABLE case_rollup_tier (
            tier         smallint PRIMARY KEY,
            days         smallint NOT NULL CHECK (days IN (1, 7, 28)),
            depth        smallint NOT NULL CHECK (depth IN (6, 9, 12, 14)),
            by_category  boolean NOT NULL,
            UNIQUE (days, depth, by_category)
        );
        INSERT INTO case_rollup_tier VALUES {tiers};
        CREATE TABLE case_rollup (
            tier           smallint NOT NULL REFERENCES case_rollup_tier,
            period         date NOT NULL,
            unit_code      text COLLATE "C" NOT NULL,
            category_code  text NOT NULL,
            {columns},
            close_hist     integer[] NOT NULL CHECK (cardinality(close_hist) = 58),
            PRIMARY KEY (tier, period, unit_code, category_code)
        );
        """
    )
    # the days folded so far, summed into every tier (one pass; bins summed one by one)
    sums = ", ".join(f"sum({m.strip()})" for m in MEASURES.split(","))
    hist = ", ".join(f"sum(d.close_hist[{k}])" for k in range(1, 59))
    op.execute(
        f"""
        INSERT INTO case_rollup (tier, period, unit_code, category_code, {MEASURES},
                                 close_hist)
        SELECT t.tier,
               d.day - ((d.day - DATE '2000-01-03') % t.days + t.days) % t.days,
               left(d.unit_code, t.depth),
               CASE WHEN t.by_category THEN d.category_code ELSE '' END,
               {sums}, ARRAY[{hist}]::integer[]
          FROM case_daily_rollup d CROSS JOIN case_rollup_tier t
         GROUP BY 1, 2, 3, 4;
        DROP TABLE case_daily_rollup;
        ANALYZE case_rollup;
        CREATE OR REPLACE FUNCTION case_rollup_truncated() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('case_daily_rollup'));
            DELETE FROM case_rollup;
            RETURN NULL;
        END
        $$;
        """
    )


def downgrade() -> None:
    # 0019's table per building and day cannot be made from the tiers: it is left empty
    # and the fold boundary cleared, so the next fold counts the history again
    columns = ",\n".join(f"{m.strip()} integer NOT NULL" for m in MEASURES.split(","))
    op.execute(
        f"""
        CREATE TABLE case_daily_rollup (
            unit_code      text NOT NULL,
            category_code  text NOT NULL,
            day            date NOT NULL,
            {columns},
            close_hist     integer[] NOT NULL CHECK (cardinality(close_hist) = 58),
            PRIMARY KEY (day, unit_code, category_code)
        );
        UPDATE case_rollup_state SET folded_before = NULL, tz = NULL, folded_at = NULL;
        CREATE OR REPLACE FUNCTION case_rollup_truncated() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('case_daily_rollup'));
            DELETE FROM case_daily_rollup;
            RETURN NULL;
        END
        $$;
        DROP TABLE case_rollup;
        DROP TABLE case_rollup_tier;
        """
    )
