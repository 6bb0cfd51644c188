"""Grid walks (issue 18): walks, their raw fixes and uploaded chunks, the cleaned track,
the buildings each walk passed and the figures per grid, worker and day; cases made
during a walk name it (``cases.walk_id``).

* ``walk`` — one per walk of one grid worker in one grid: ``status`` running → ended,
  ``idempotency_key`` (per sender, like cases') makes a retried start answer the same
  walk; ``track`` is the cleaned track matched to the walking network (MultiLineString:
  a gap the cleaning could not bridge splits it), ``distance_m`` its length. At most
  one running walk per worker.
* ``walk_chunk`` — the chunks uploaded, by the phone's ``chunk_id``: a retried chunk is
  recognised and stores nothing (``fingerprint`` tells a retry from a reused id).
* ``walk_point`` — the fixes, unique per (walk, client time) so a fix sent in two chunks
  is stored once; ``dropped`` names why the cleaning left one out, ``snapped`` is where
  the kept ones lie on the network. Removed by ``gis-service walks prune`` after the
  retention period; the track and the figures stay.
* ``walk_visit`` — the buildings a walk passed (first time), gis_service/walks/walks.sql.
* ``walk_day`` — per local day, grid and worker: walks, distance, time, buildings
  visited, problems reported during them.

Revision ID: 0017_walks
Revises: 0016_notify_retention
Create Date: 2026-11-30
"""

from alembic import op

from gis_service.vocabulary import sql_list
from gis_service.walks.rules import DROP_REASONS, WALK_STATUSES, WalkStatus

revision = "0017_walks"
down_revision = "0016_notify_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE walk (
            id               bigserial PRIMARY KEY,
            worker_id        integer NOT NULL REFERENCES app_user (id),
            grid_code        text NOT NULL CHECK (grid_code ~ '^[0-9]+$'),
            status           text NOT NULL DEFAULT '{WalkStatus.running}'
                                 CHECK (status IN {sql_list(WALK_STATUSES)}),
            started_at       timestamptz NOT NULL DEFAULT now(),
            ended_at         timestamptz,
            idempotency_key  text UNIQUE,
            idempotency_fingerprint text,
            client_started_at timestamptz,
            client_ended_at  timestamptz,
            points_received  integer NOT NULL DEFAULT 0,
            received_at      timestamptz,
            processed_at     timestamptz,
            points_processed integer,
            points_kept      integer,
            points_dropped   integer,
            track            geometry(MultiLineString, 4326),
            distance_m       double precision,
            raw_pruned_at    timestamptz,
            CHECK ((status = '{WalkStatus.ended}') = (ended_at IS NOT NULL)),
            CHECK (ended_at IS NULL OR ended_at >= started_at)
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX walk_one_running_idx ON walk (worker_id) "
        f"WHERE status = '{WalkStatus.running}'"
    )
    op.execute("CREATE INDEX walk_grid_idx ON walk (grid_code text_pattern_ops, started_at)")
    op.execute("CREATE INDEX walk_worker_idx ON walk (worker_id, started_at)")
    op.execute(
        """
        CREATE TABLE walk_chunk (
            walk_id      bigint NOT NULL REFERENCES walk (id) ON DELETE CASCADE,
            chunk_id     text NOT NULL CHECK (length(chunk_id) BETWEEN 1 AND 200),
            fingerprint  text NOT NULL,
            points       integer NOT NULL,
            stored       integer NOT NULL,
            received_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (walk_id, chunk_id)
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE walk_point (
            walk_id      bigint NOT NULL REFERENCES walk (id) ON DELETE CASCADE,
            client_ts    timestamptz NOT NULL,
            geom         geometry(Point, 4326) NOT NULL,
            accuracy_m   real NOT NULL CHECK (accuracy_m > 0),
            speed_mps    real CHECK (speed_mps >= 0),
            received_at  timestamptz NOT NULL DEFAULT now(),
            chunk_id     text NOT NULL,
            dropped      text CHECK (dropped IN {sql_list(DROP_REASONS)}),
            part         integer,
            snapped      geometry(Point, 4326),
            PRIMARY KEY (walk_id, client_ts)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE walk_visit (
            walk_id        bigint NOT NULL REFERENCES walk (id) ON DELETE CASCADE,
            building_code  text NOT NULL,
            visited_at     timestamptz NOT NULL,
            PRIMARY KEY (walk_id, building_code)
        )
        """
    )
    op.execute("CREATE INDEX walk_visit_building_idx ON walk_visit (building_code, visited_at)")
    op.execute(
        """
        CREATE TABLE walk_day (
            day                date NOT NULL,
            grid_code          text NOT NULL,
            worker_id          integer NOT NULL REFERENCES app_user (id),
            walks              integer NOT NULL,
            distance_m         double precision NOT NULL,
            duration_s         double precision NOT NULL,
            buildings_visited  integer NOT NULL,
            problems           integer NOT NULL,
            PRIMARY KEY (day, grid_code, worker_id)
        )
        """
    )
    op.execute("CREATE INDEX walk_day_grid_idx ON walk_day (grid_code text_pattern_ops, day)")
    op.execute("ALTER TABLE cases ADD COLUMN walk_id bigint REFERENCES walk (id)")
    op.execute("CREATE INDEX cases_walk_idx ON cases (walk_id) WHERE walk_id IS NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE cases DROP COLUMN walk_id")
    for table in ("walk_day", "walk_visit", "walk_point", "walk_chunk", "walk"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
