"""Access: versions that say when cached walking results are stale, the cached quarter-hour
circles of service points, and the walking distances of every building.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WATCHED = {
    "walk_edge": "network_version",
    "service_point": "points_version",
    "service_kind": "points_version",
    "admin_unit": "units_version",
}


def upgrade() -> None:
    op.execute("ALTER TABLE walk_edge ADD COLUMN osm_id bigint")
    # where a building's residents are taken to stand: inside the polygon even when it is
    # concave; computed once at import, not at every reach computation
    op.execute(
        "ALTER TABLE admin_unit ADD COLUMN label_point geometry(Point, 4326) "
        "GENERATED ALWAYS AS (ST_PointOnSurface(geom)) STORED"
    )
    op.execute(
        """
        CREATE TABLE access_state (
            id               boolean PRIMARY KEY DEFAULT true CHECK (id),
            network_version  bigint NOT NULL DEFAULT 1,
            points_version   bigint NOT NULL DEFAULT 1,
            units_version    bigint NOT NULL DEFAULT 1
        )
        """
    )
    op.execute("INSERT INTO access_state DEFAULT VALUES")
    # One bump per statement, not per row: an import of 100,000 rows is one new version.
    for table, column in WATCHED.items():
        op.execute(
            f"""
            CREATE FUNCTION bump_{table}_version() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE access_state SET {column} = {column} + 1;
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            f"""
            CREATE TRIGGER {table}_bumps_access AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
            ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_{table}_version()
            """
        )
    op.execute(
        """
        CREATE TABLE service_circle (
            point_id         bigint PRIMARY KEY REFERENCES service_point (id) ON DELETE CASCADE,
            distance_m       double precision NOT NULL,
            walk_off_m       double precision NOT NULL,
            method           text NOT NULL CHECK (method IN ('network', 'euclidean')),
            point_geom       geometry(Point, 4326) NOT NULL,
            network_version  bigint NOT NULL,
            geom             geometry(MultiPolygon, 4326) NOT NULL,
            computed_at      timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX service_circle_geom_idx ON service_circle USING gist (geom)")
    op.execute(
        """
        CREATE TABLE circle_union (
            key              text PRIMARY KEY,  -- 'category:health' or 'kind:red_home'
            versions         bigint[] NOT NULL,
            point_count      integer NOT NULL,
            area_m2          double precision NOT NULL,
            geom             geometry(MultiPolygon, 4326) NOT NULL,
            computed_at      timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # A cache, recomputed whenever the versions it was made from move: UNLOGGED, no foreign
    # key and no spatial index, so that writing 100,000 buildings costs a COPY, not seconds
    # of per-row checks (queries join admin_unit on the code).
    op.execute(
        """
        CREATE UNLOGGED TABLE building_access (
            unit_code        text PRIMARY KEY,
            geom             geometry(Point, 4326) NOT NULL,
            population       integer NOT NULL,
            leg_m            double precision NOT NULL,
            method           text NOT NULL CHECK (method IN ('network', 'euclidean')),
            party_m          double precision,
            party_point_id   bigint,
            category_m       jsonb NOT NULL,
            categories_within text[] NOT NULL,
            versions         bigint[] NOT NULL,
            computed_at      timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    for table in ("building_access", "circle_union", "service_circle", "access_state"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    for table in WATCHED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_bumps_access ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS bump_{table}_version()")
    op.execute("ALTER TABLE walk_edge DROP COLUMN osm_id")
    op.execute("ALTER TABLE admin_unit DROP COLUMN label_point")
