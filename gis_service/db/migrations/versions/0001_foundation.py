"""Foundation: extensions, the unit hierarchy, rosters, service points, imports, network.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

from gis_service.vocabulary import sql_constants

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Word lists come from their Python homes (gis_service/vocabulary.py), never retyped.
V = sql_constants()

# The six categories of the quarter-hour living circle (一刻钟便民生活圈, seed 002/004).
CATEGORIES = [
    ("government", "政务服务", "Government affairs", 1),
    ("daily_life", "生活服务", "Daily life", 2),
    ("culture_education", "文教服务", "Culture and education", 3),
    ("health", "卫生服务", "Health", 4),
    ("public_welfare", "公益服务", "Public welfare", 5),
    ("safety", "安全服务", "Safety", 6),
]

# Kinds of service point; counts_for_party_reach marks the kinds that fulfil the
# one-kilometre promise (不出千米就能找到党组织, seed 000). Both are editable data.
KINDS = [
    ("red_home", "红色家园", "Red Home", "{government,culture_education,public_welfare}", True),
    (
        "party_service_center",
        "党群服务中心",
        "Party-masses service centre",
        "{government,public_welfare}",
        True,
    ),
    ("party_org", "党组织", "Party organisation", "{government}", True),
    ("convenience_outlet", "便民网点", "Convenience outlet", "{daily_life}", False),
    ("volunteer_studio", "党员志愿服务工作室", "Volunteer studio", "{public_welfare}", False),
    ("love_supermarket", "爱心超市", "Love supermarket", "{public_welfare,daily_life}", False),
    (
        "community_center",
        "社区服务中心",
        "Community service centre",
        "{government,culture_education,daily_life}",
        False,
    ),
    ("health_station", "社区卫生服务站", "Community health station", "{health}", False),
    ("police_post", "社区警务室", "Community police post", "{safety}", False),
]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")

    # Area in m² of a lon/lat geometry, from its planar area and the length of a degree at
    # its latitude (WGS-84 series). The QA checks use it for differences and intersections:
    # PostGIS computes those on the lon/lat plane, where a leftover sliver along a shared
    # border has zero area, but measured as geography (geodesic edges) the same sliver
    # "has" hundreds of m² (measured: 1,037 m² for a 2e-16 deg² remainder).
    op.execute(
        """
        CREATE FUNCTION planar_area_m2(g geometry) RETURNS double precision
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
            SELECT CASE WHEN ST_IsEmpty(g) THEN 0.0 ELSE
                ST_Area(g)
                * (111412.84 * cos(phi) - 93.5 * cos(3 * phi))
                * (111132.954 - 559.822 * cos(2 * phi) + 1.175 * cos(4 * phi))
            END
            FROM (SELECT radians(ST_Y(ST_Centroid(g))) AS phi) latitude
        $$
        """
    )

    op.execute(
        f"""
        CREATE TABLE admin_unit (
            code         text PRIMARY KEY CHECK (code ~ '^[0-9]+$'),
            level        text NOT NULL CHECK (level IN {V["levels"]}),
            name         text NOT NULL CHECK (btrim(name) <> ''),
            parent_code  text REFERENCES admin_unit (code) ON DELETE CASCADE
                              DEFERRABLE INITIALLY DEFERRED,
            geom         geometry(MultiPolygon, 4326) NOT NULL,
            area_m2      double precision GENERATED ALWAYS AS (ST_Area(geom::geography)) STORED,
            population   integer CHECK (population >= 0),
            households   integer CHECK (households >= 0),
            attrs        jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            import_id    uuid,
            updated_at   timestamptz NOT NULL DEFAULT now(),
            CHECK ((level = {V["level.district"]}) = (parent_code IS NULL)),
            CHECK (parent_code IS NULL OR starts_with(code, parent_code)),
            CHECK (ST_IsValid(geom))
        )
        """
    )
    op.execute("CREATE INDEX admin_unit_geom_idx ON admin_unit USING gist (geom)")
    op.execute("CREATE INDEX admin_unit_parent_idx ON admin_unit (parent_code)")
    op.execute("CREATE INDEX admin_unit_level_idx ON admin_unit (level, code)")

    op.execute(
        f"""
        CREATE TABLE unit_staff (
            id          bigserial PRIMARY KEY,
            unit_code   text NOT NULL REFERENCES admin_unit (code) ON DELETE CASCADE,
            role        text NOT NULL CHECK (role IN {V["staff_roles"]}),
            name        text NOT NULL CHECK (btrim(name) <> ''),
            phone       text CHECK (phone ~ '^[0-9+() -]{{5,20}}$'),
            photo_url   text,
            sort        smallint NOT NULL DEFAULT 0
        )
        """
    )
    op.execute("CREATE INDEX unit_staff_unit_idx ON unit_staff (unit_code, sort)")

    op.execute(
        """
        CREATE TABLE living_category (
            code     text PRIMARY KEY,
            name_zh  text NOT NULL,
            name_en  text NOT NULL,
            sort     smallint NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE service_kind (
            code                    text PRIMARY KEY,
            name_zh                 text NOT NULL,
            name_en                 text NOT NULL,
            default_categories      text[] NOT NULL,
            counts_for_party_reach  boolean NOT NULL DEFAULT false
        )
        """
    )
    for code, zh, en, sort in CATEGORIES:
        op.execute(f"INSERT INTO living_category VALUES ('{code}', '{zh}', '{en}', {sort})")
    for code, zh, en, cats, reach in KINDS:
        op.execute(f"INSERT INTO service_kind VALUES ('{code}', '{zh}', '{en}', '{cats}', {reach})")
    category_list = ", ".join(f"'{c[0]}'" for c in CATEGORIES)
    op.execute(
        f"""
        CREATE TABLE service_point (
            id             bigserial PRIMARY KEY,
            external_id    text UNIQUE,
            kind           text NOT NULL REFERENCES service_kind (code),
            categories     text[] NOT NULL CHECK (
                               cardinality(categories) > 0
                               AND categories <@ ARRAY[{category_list}]::text[]),
            name           text NOT NULL CHECK (btrim(name) <> ''),
            address        text,
            opening_hours  text,
            phone          text,
            unit_code      text REFERENCES admin_unit (code) ON DELETE SET NULL,
            geom           geometry(Point, 4326) NOT NULL,
            attrs          jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            import_id      uuid,
            updated_at     timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX service_point_geom_idx ON service_point USING gist (geom)")
    op.execute("CREATE INDEX service_point_kind_idx ON service_point (kind)")
    op.execute("CREATE INDEX service_point_cat_idx ON service_point USING gin (categories)")
    op.execute("CREATE INDEX service_point_unit_idx ON service_point (unit_code)")

    op.execute(
        """
        CREATE TABLE import_run (
            id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            kind         text NOT NULL,
            filename     text NOT NULL,
            params       jsonb NOT NULL DEFAULT '{}'::jsonb,
            status       text NOT NULL DEFAULT 'queued'
                              CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
            report       jsonb,
            error        jsonb,
            created_at   timestamptz NOT NULL DEFAULT now(),
            started_at   timestamptz,
            finished_at  timestamptz
        )
        """
    )

    # The walking network, pgRouting-ready: noded at intersections, costs in metres.
    op.execute(
        """
        CREATE TABLE walk_node (
            id    bigint PRIMARY KEY,
            geom  geometry(Point, 4326) NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX walk_node_geom_idx ON walk_node USING gist (geom)")
    op.execute(
        """
        CREATE TABLE walk_edge (
            id            bigserial PRIMARY KEY,
            source        bigint NOT NULL REFERENCES walk_node (id),
            target        bigint NOT NULL REFERENCES walk_node (id),
            length_m      double precision NOT NULL CHECK (length_m >= 0),
            cost          double precision NOT NULL,
            reverse_cost  double precision NOT NULL,
            kind          text NOT NULL,
            name          text,
            geom          geometry(LineString, 4326) NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX walk_edge_geom_idx ON walk_edge USING gist (geom)")
    op.execute("CREATE INDEX walk_edge_source_idx ON walk_edge (source)")
    op.execute("CREATE INDEX walk_edge_target_idx ON walk_edge (target)")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS planar_area_m2(geometry)")
    for table in (
        "walk_edge",
        "walk_node",
        "import_run",
        "service_point",
        "service_kind",
        "living_category",
        "unit_staff",
        "admin_unit",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
