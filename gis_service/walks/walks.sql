-- Grid walks: matching the cleaned fixes to the walking network and the visited rule.
--
-- Rendered by gis_service/db/sqlfiles.py and (re)created by `gis-service db migrate`, so
-- changing a rule here needs no migration. Every distance is a parameter passed from
-- gis_service/walks/rules.py (the one home of the numbers; docs/walks.md says why each).
-- Distances are measured on the sphere (ST_DistanceSphere / geography): at tens of metres
-- it differs from the spheroid by centimetres. Bounding boxes use 111,000 m per degree of
-- latitude (the sphere's is 111,195 m), so they never cut a circle short.

-- A box around g grown by m metres (for the && prefilter that the GiST indexes answer).
CREATE OR REPLACE FUNCTION walk_expand(g geometry, m double precision) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ST_Expand(g, m / 111000.0 / cos(radians(least(greatest(abs(ST_YMin(g)),
                                                                  abs(ST_YMax(g))), 89.0))),
                     m / 111000.0)
$$;

-- Matching (docs/walks.md "Matching"): each kept fix of the walk is moved to the nearest
-- point of the walking network when that lies within p_snap_m metres; farther away (a
-- courtyard without mapped paths) it keeps its measured position (snapped NULL).
-- Returns how many fixes were snapped. The array form matches many walks in one plan (the
-- bulk path for history, walks/service.py record_ended); the one-walk form calls it.
CREATE OR REPLACE FUNCTION walk_snap(p_walks bigint[], p_snap_m double precision)
RETURNS integer LANGUAGE sql AS $$
    -- materialised: inlined, the nearest-edge lookup would run once per use of pt (3)
    WITH near AS MATERIALIZED (
        SELECT p.walk_id, p.client_ts,
               (SELECT ST_ClosestPoint(e.geom, p.geom)
                  FROM walk_edge e
                 WHERE e.geom && walk_expand(p.geom, p_snap_m)
                 ORDER BY e.geom <-> p.geom
                 LIMIT 1) AS pt,
               p.geom
          FROM walk_point p
         WHERE p.walk_id = ANY(p_walks) AND p.dropped IS NULL),
    done AS (
        UPDATE walk_point w
           SET snapped = CASE WHEN near.pt IS NOT NULL
                               AND ST_DistanceSphere(near.pt, near.geom) <= p_snap_m
                              THEN near.pt END
          FROM near
         WHERE w.walk_id = near.walk_id AND w.client_ts = near.client_ts
        RETURNING w.snapped)
    SELECT count(snapped)::integer FROM done
$$;

CREATE OR REPLACE FUNCTION walk_snap(p_walk bigint, p_snap_m double precision)
RETURNS integer LANGUAGE sql AS $$
    SELECT walk_snap(ARRAY[p_walk], p_snap_m)
$$;

-- The entrance area of buildings (docs/walks.md "Visited"): the footprint, and its door
-- on the network — the point of walk_edge nearest the footprint when that lies within
-- p_entrance_m metres (NULL otherwise). For the buildings whose footprint meets `area`.
CREATE OR REPLACE FUNCTION building_doors(area geometry, p_entrance_m double precision)
RETURNS TABLE (code text, footprint geometry, door geometry)
LANGUAGE sql STABLE AS $$
    SELECT b.code, b.geom,
           (SELECT d.pt
              FROM (SELECT ST_ClosestPoint(e.geom, b.geom) AS pt
                      FROM walk_edge e
                     WHERE e.geom && walk_expand(b.geom, p_entrance_m)
                     ORDER BY e.geom <-> b.geom
                     LIMIT 1) d
             WHERE ST_DistanceSphere(d.pt, ST_ClosestPoint(b.geom, d.pt)) <= p_entrance_m)
      FROM admin_unit b
     WHERE b.level = {{level.building}} AND b.geom && area
$$;

-- The visited rule, its one home: a building counts as visited by a walk when the walk's
-- cleaned track — its kept fixes (snapped where matched) joined in time order within
-- each part — passes within p_radius_m metres of the building's entrance area
-- (building_doors). visited_at is when the track first came that near: the start time of
-- the first segment that does, plus the fraction of its duration at which its point
-- nearest the area lies. The distance is measured in the walk's own plane (metres east
-- and north around the middle latitude of its fixes, 111,195 m a degree of latitude — the
-- sphere's): across a walk's few kilometres that differs from the sphere by millimetres at
-- 15 m, and costs a planar distance instead of a geodesic one per segment.
-- The array form finds the visits of many walks in one plan (a district's day: the doors
-- of the buildings once, every walk's segments in one pass); the one-walk form calls it.
CREATE OR REPLACE FUNCTION walk_visits(
    p_walks bigint[], p_radius_m double precision, p_entrance_m double precision)
RETURNS TABLE (walk_id bigint, building_code text, visited_at timestamptz)
LANGUAGE sql STABLE AS $$
    -- the segments as plain numbers (their boxes are compared as numbers; lines are
    -- made only for the few near an entrance area)
    WITH seg AS MATERIALIZED (
        SELECT s.walk_id, s.t, coalesce(s.t1, s.t) AS t1, s.x, s.y,
               coalesce(s.x1, s.x) AS x1, coalesce(s.y1, s.y) AS y1, s.x1 IS NOT NULL AS line
          FROM (SELECT f.walk_id, f.t, f.x, f.y,
                       lead(f.x) OVER w AS x1, lead(f.y) OVER w AS y1, lead(f.t) OVER w AS t1
                  FROM (SELECT p.walk_id, p.client_ts AS t, p.part,
                               ST_X(coalesce(p.snapped, p.geom)) AS x,
                               ST_Y(coalesce(p.snapped, p.geom)) AS y
                          FROM walk_point p
                         WHERE p.walk_id = ANY(p_walks) AND p.dropped IS NULL) f
                WINDOW w AS (PARTITION BY f.walk_id, f.part ORDER BY f.t)) s),
    -- each walk's reach (the box of its fixes grown by radius + entrance: no building
    -- farther can be visited) and its plane's metres per degree of longitude
    reach AS MATERIALIZED (
        SELECT e.walk_id,
               walk_expand(ST_MakeEnvelope(e.x0, e.y0, e.x1, e.y1, 4326),
                           p_radius_m + p_entrance_m) AS box,
               111195.0 * cos(radians((e.y0 + e.y1) / 2.0)) AS kx
          FROM (SELECT s.walk_id, min(s.x) AS x0, min(s.y) AS y0, max(s.x) AS x1,
                       max(s.y) AS y1
                  FROM seg s GROUP BY s.walk_id) e),
    -- materialised: each building's door is looked up once, not once per walk or segment
    door AS MATERIALIZED (
        SELECT d.code, d.footprint, d.door
          FROM building_doors((SELECT ST_Collect(r.box) FROM reach r), p_entrance_m) d),
    target AS MATERIALIZED (
        SELECT r.walk_id, r.kx, d.code, a.g, ST_Scale(a.g, r.kx, 111195.0) AS m,
               ST_XMin(n.box) AS nx0, ST_YMin(n.box) AS ny0,
               ST_XMax(n.box) AS nx1, ST_YMax(n.box) AS ny1
          FROM reach r
          JOIN admin_unit b ON b.level = {{level.building}} AND b.geom && r.box
          JOIN door d ON d.code = b.code
         CROSS JOIN LATERAL (VALUES (d.footprint), (d.door)) AS a (g)
         CROSS JOIN LATERAL (SELECT walk_expand(a.g, p_radius_m) AS box) n
         WHERE a.g IS NOT NULL),
    near AS (
        SELECT x.walk_id, x.code, x.g, x.m, x.kx, s.t, s.t1,
               ST_SetSRID(CASE WHEN s.line
                               THEN ST_MakeLine(ST_MakePoint(s.x, s.y), ST_MakePoint(s.x1, s.y1))
                               ELSE ST_MakePoint(s.x, s.y) END, 4326) AS line
          FROM target x
          JOIN seg s ON s.walk_id = x.walk_id
                    AND greatest(s.x, s.x1) >= x.nx0 AND least(s.x, s.x1) <= x.nx1
                    AND greatest(s.y, s.y1) >= x.ny0 AND least(s.y, s.y1) <= x.ny1),
    hit AS (
        SELECT h.walk_id, h.code, h.t, h.t1, h.line, h.g AS target,
               rank() OVER (PARTITION BY h.walk_id, h.code ORDER BY h.t) AS n
          FROM near h
         WHERE ST_DWithin(ST_Scale(h.line, h.kx, 111195.0), h.m, p_radius_m))
    -- segments follow each other in time, so the first one near the area holds the
    -- earliest moment
    SELECT h.walk_id, h.code,
           min(h.t + (h.t1 - h.t) * CASE
                   WHEN GeometryType(h.line) = 'LINESTRING'
                   THEN ST_LineLocatePoint(h.line, ST_ClosestPoint(h.line, h.target))
                   ELSE 0 END)
      FROM hit h
     WHERE h.n = 1
     GROUP BY h.walk_id, h.code
$$;

CREATE OR REPLACE FUNCTION walk_visits(
    p_walk bigint, p_radius_m double precision, p_entrance_m double precision)
RETURNS TABLE (building_code text, visited_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT v.building_code, v.visited_at FROM walk_visits(ARRAY[p_walk], p_radius_m, p_entrance_m) v
$$;

-- How long a walk lasted, seconds: start to end, or to its last chunk while it runs.
CREATE OR REPLACE FUNCTION walk_duration_s(w walk) RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT extract(epoch FROM coalesce(w.ended_at, w.received_at, w.started_at) - w.started_at)
$$;
