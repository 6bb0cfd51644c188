"""The SQL side of a boundary import: staging, parents, codes, QA checks, upsert.

All of it runs inside the caller's transaction on a temporary ``import_stage`` table, so
PostGIS does the heavy geometry (differences, unions, areas in m²).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gis_service.units import codes
from gis_service.units.codes import CODE_LENGTH, Level

CREATE_STAGE = """
CREATE TEMP TABLE import_stage (
    seq             integer PRIMARY KEY,
    code            text,
    name            text NOT NULL,
    parent_code     text,
    parent_inferred boolean NOT NULL DEFAULT false,
    geom            geometry(MultiPolygon, 4326) NOT NULL,
    population      integer,
    households      integer,
    attrs           jsonb NOT NULL
) ON COMMIT DROP
"""

INSERT_STAGE = text(
    """
    INSERT INTO import_stage (seq, code, name, parent_code, geom, population, households, attrs)
    VALUES (:seq, :code, :name, :parent_code, ST_GeomFromWKB(decode(:wkb, 'hex'), 4326),
            :population, :households, CAST(:attrs AS jsonb))
    """
)


def _rows(conn: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def resolve_parents(conn: Connection, level: Level, problems, report) -> None:
    """Fill missing parents from geometry, then refuse parents that do not exist."""
    up = codes.parent_level(level)
    if up is None:
        conn.execute(text("UPDATE import_stage SET parent_code = NULL"))
        return
    inferred = conn.execute(
        text(
            """
            UPDATE import_stage s
               SET parent_code = (
                       SELECT u.code FROM admin_unit u
                        WHERE u.level = :up AND u.geom && s.geom AND ST_Intersects(u.geom, s.geom)
                        ORDER BY ST_Area(ST_Intersection(u.geom, s.geom)) DESC
                        LIMIT 1),
                   parent_inferred = true
             WHERE s.parent_code IS NULL
            RETURNING s.seq, s.parent_code
            """
        ),
        {"up": up.value},
    ).all()
    report.parents_inferred = sum(1 for r in inferred if r.parent_code)
    for r in _rows(
        conn,
        """
        SELECT s.seq, s.code, s.name, s.parent_code, s.parent_inferred
          FROM import_stage s
         WHERE s.parent_code IS NULL
            OR NOT EXISTS (SELECT 1 FROM admin_unit u
                            WHERE u.code = s.parent_code AND u.level = :up)
         ORDER BY s.seq
        """,
        up=up.value,
    ):
        if r["parent_code"] is None:
            msg = f"no {up.value} contains it: import the {up.value} level first"
        else:
            msg = f"unknown parent {up.value} {r['parent_code']}"
        problems.add(r["seq"], msg, code=r["code"], name=r["name"])


def assign_codes(conn: Connection, level: Level, report) -> None:
    """Give features without a code one: the existing code of the same-named sibling if
    there is exactly one, else the next free number under the parent."""
    if level is Level.district:
        return
    conn.execute(
        text(
            """
            UPDATE import_stage s SET code = u.code
              FROM admin_unit u
             WHERE s.code IS NULL AND u.level = :level
               AND u.parent_code = s.parent_code AND u.name = s.name
               AND (SELECT count(*) FROM import_stage t
                     WHERE t.parent_code = s.parent_code AND t.name = s.name) = 1
               AND NOT EXISTS (SELECT 1 FROM import_stage t WHERE t.code = u.code)
            """
        ),
        {"level": level.value},
    )
    width = CODE_LENGTH[level] - CODE_LENGTH[codes.parent_level(level)]
    assigned = conn.execute(
        text(
            """
            WITH taken AS (
                SELECT parent_code, max(substr(code, length(parent_code) + 1)::int) AS top
                  FROM (SELECT code, parent_code FROM admin_unit WHERE level = :level
                        UNION ALL
                        SELECT code, parent_code FROM import_stage WHERE code IS NOT NULL) c
                 GROUP BY parent_code),
            numbered AS (
                SELECT s.seq, s.parent_code,
                       coalesce(t.top, 0)
                         + row_number() OVER (PARTITION BY s.parent_code ORDER BY s.seq) AS n
                  FROM import_stage s LEFT JOIN taken t USING (parent_code)
                 WHERE s.code IS NULL)
            UPDATE import_stage s
               SET code = n.parent_code || lpad(n.n::text, :width, '0')
              FROM numbered n
             WHERE s.seq = n.seq AND n.n < 10 ^ :width
            RETURNING s.seq
            """
        ),
        {"level": level.value, "width": width},
    ).all()
    report.codes_assigned = len(assigned)


def check_disjoint(conn: Connection, problems) -> None:
    """A feature nowhere near its parent is a wrong CRS or datum, not a sliver: refuse it."""
    for r in _rows(
        conn,
        """
        SELECT s.seq, s.code, s.name, s.parent_code, p.name AS parent_name
          FROM import_stage s JOIN admin_unit p ON p.code = s.parent_code
         WHERE NOT ST_Intersects(s.geom, p.geom)
         ORDER BY s.seq
        """,
    ):
        problems.add(
            r["seq"],
            f"lies entirely outside its parent {r['parent_code']} ({r['parent_name']}): "
            "wrong CRS, coordinate system (--coord-sys) or parent?",
            code=r["code"],
            name=r["name"],
        )
    for r in _rows(conn, "SELECT seq, name FROM import_stage WHERE code IS NULL ORDER BY seq"):
        problems.add(r["seq"], "no free code left under its parent", name=r["name"])


def outside_parent(conn: Connection, tol_m2: float) -> list[dict[str, Any]]:
    return _rows(
        conn,
        """
        SELECT * FROM (
            SELECT s.seq AS feature, s.code, s.name, s.parent_code,
                   round(planar_area_m2(d.g)::numeric, 1)::float AS outside_m2,
                   round((ST_Area(d.g) / nullif(ST_Area(s.geom), 0))::numeric, 4)::float
                       AS share
              FROM import_stage s JOIN admin_unit p ON p.code = s.parent_code
             CROSS JOIN LATERAL (SELECT ST_Difference(s.geom, p.geom) AS g) d
             WHERE NOT ST_CoveredBy(s.geom, p.geom)) x
         WHERE outside_m2 > :tol
         ORDER BY outside_m2 DESC
        """,
        tol=tol_m2,
    )


_SIBLINGS = """
    WITH sib AS (
        SELECT code, name, parent_code, geom, true AS staged FROM import_stage
        UNION ALL
        SELECT u.code, u.name, u.parent_code, u.geom, false
          FROM admin_unit u
         WHERE u.level = :level
           AND NOT EXISTS (SELECT 1 FROM import_stage s WHERE s.code = u.code)
           AND EXISTS (SELECT 1 FROM import_stage s
                        WHERE s.parent_code IS NOT DISTINCT FROM u.parent_code
                          AND s.geom && u.geom))
"""


def sibling_overlaps(conn: Connection, level: Level, tol_m2: float) -> list[dict[str, Any]]:
    return _rows(
        conn,
        _SIBLINGS
        + """
        SELECT * FROM (
            SELECT a.code AS a_code, a.name AS a_name, b.code AS b_code, b.name AS b_name,
                   round(planar_area_m2(i.g)::numeric, 1)::float AS area_m2,
                   ST_X(ST_PointOnSurface(i.g)) AS lon, ST_Y(ST_PointOnSurface(i.g)) AS lat
              FROM sib a JOIN sib b
                ON a.code < b.code AND a.parent_code IS NOT DISTINCT FROM b.parent_code
               AND a.geom && b.geom
             CROSS JOIN LATERAL (SELECT ST_Intersection(a.geom, b.geom) AS g) i
             WHERE (a.staged OR b.staged) AND ST_Relate(a.geom, b.geom, '2********')) x
         WHERE area_m2 > :tol
         ORDER BY area_m2 DESC
        """,
        level=level.value,
        tol=tol_m2,
    )


def parent_gaps(conn: Connection, level: Level, tol_m2: float) -> list[dict[str, Any]]:
    """Ground of each touched parent that none of its children covers."""
    return _rows(
        conn,
        _SIBLINGS
        + """
        , gap AS (
            SELECT p.code, p.name, p.geom AS pgeom,
                   ST_Difference(p.geom, ST_Union(c.geom)) AS g
              FROM admin_unit p JOIN sib c ON c.parent_code = p.code
             GROUP BY p.code, p.name, p.geom)
        SELECT * FROM (
            SELECT code AS parent_code, name AS parent_name,
                   round(planar_area_m2(g)::numeric, 1)::float AS area_m2,
                   round((ST_Area(g) / ST_Area(pgeom))::numeric, 4)::float
                       AS share,
                   CASE WHEN NOT ST_IsEmpty(g) THEN ST_X(ST_PointOnSurface(g)) END AS lon,
                   CASE WHEN NOT ST_IsEmpty(g) THEN ST_Y(ST_PointOnSurface(g)) END AS lat
              FROM gap) x
         WHERE area_m2 > :tol
         ORDER BY area_m2 DESC
        """,
        level=level.value,
        tol=tol_m2,
    )


def upsert_units(conn: Connection, level: Level, import_id: str | None) -> tuple[int, int]:
    result = conn.execute(
        text(
            """
            INSERT INTO admin_unit AS u (code, level, name, parent_code, geom, population,
                                         households, attrs, import_id, updated_at)
            SELECT code, :level, name, parent_code, geom, population, households, attrs,
                   CAST(:import_id AS uuid), now()
              FROM import_stage ORDER BY seq
            ON CONFLICT (code) DO UPDATE
               SET name = EXCLUDED.name, parent_code = EXCLUDED.parent_code,
                   geom = EXCLUDED.geom,
                   population = coalesce(EXCLUDED.population, u.population),
                   households = coalesce(EXCLUDED.households, u.households),
                   attrs = u.attrs || EXCLUDED.attrs, import_id = EXCLUDED.import_id,
                   updated_at = now()
            RETURNING (xmax = 0) AS inserted
            """
        ),
        {"level": level.value, "import_id": import_id},
    ).all()
    inserted = sum(1 for r in result if r.inserted)
    return inserted, len(result) - inserted


def relocate_service_points(conn: Connection) -> None:
    """Service points under changed ground get their deepest unit again."""
    conn.execute(
        text(
            """
            UPDATE service_point sp
               SET unit_code = (SELECT u.code FROM admin_unit u
                                 WHERE u.geom && sp.geom AND ST_Intersects(u.geom, sp.geom)
                                 ORDER BY length(u.code) DESC LIMIT 1)
             WHERE EXISTS (SELECT 1 FROM import_stage s WHERE s.geom && sp.geom)
            """
        )
    )
