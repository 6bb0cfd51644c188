-- The location rule, in one place: which unit a point belongs to. Every path that
-- places a point calls locate_unit(): GET /api/v1/locate (units/service.py), reporting
-- (report_case in cases/report.sql: the API's JSON and multipart with EXIF GPS, and
-- Open311), and through the case's unit_code the nearby check's scope and statistics.
--
-- Rule: among the units whose closed polygon covers the point (ST_Covers: the boundary
-- belongs to the polygon, so a point on an edge or vertex is never outside both
-- neighbours), the deepest one (the longest code); among equally deep ones — a point on
-- the edge or vertex two or more units share — the smallest code. The chain of parents
-- is then read off that unit's code, so the chain is consistent with it.
--
-- Rendered by gis_service/db/sqlfiles.py: the double-braced placeholders come from
-- gis_service/vocabulary.py. `gis-service db migrate` (re)creates these functions.

-- The unit holding a WGS-84 point, or no row. A set-returning SQL function so that a
-- caller's statement inlines it (a scalar SQL function called from PL/pgSQL would be
-- planned again in every transaction). OFFSET 0 keeps ST_Covers out of the sorted
-- bounding-box candidates: the exact test runs only until one unit holds the point, so
-- the district's long outline is rarely tested at all.
CREATE OR REPLACE FUNCTION locate_unit(pt geometry) RETURNS SETOF text
LANGUAGE sql STABLE PARALLEL SAFE ROWS 1 AS $$
    SELECT candidate.code
      FROM (SELECT u.code, u.geom FROM admin_unit u WHERE u.geom && pt
             ORDER BY length(u.code) DESC, u.code OFFSET 0) candidate
     WHERE ST_Covers(candidate.geom, pt)
     LIMIT 1
$$;

-- The codes of a unit and of all its ancestors, district first, read off the code
-- (the code lengths of units/codes.py).
CREATE OR REPLACE FUNCTION unit_prefixes(p_code text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT {{code_prefixes}}
$$;

-- The unit chain of a code as JSON, district first: [{"code", "level", "name"}, ...].
CREATE OR REPLACE FUNCTION unit_chain(p_code text) RETURNS SETOF json
LANGUAGE sql STABLE PARALLEL SAFE ROWS 1 AS $$
    SELECT coalesce(json_agg(json_build_object(
               'code', u.code, 'level', u.level, 'name', u.name) ORDER BY length(u.code)),
           '[]'::json)
      FROM admin_unit u
     WHERE u.code = ANY (unit_prefixes(p_code))
$$;

-- The code of the unit at a level above (or at) a unit: its code cut to that level's
-- length (e.g. the unit that handles a case, from the case's unit and handling level).
CREATE OR REPLACE FUNCTION unit_at_level(p_code text, p_level text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(p_code, {{level_length_case}})
$$;
