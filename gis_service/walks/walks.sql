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
-- (building_doors). visited_at is when the track came nearest: the segment's start time
-- plus the fraction of its duration at which its point nearest the area lies.
CREATE OR REPLACE FUNCTION walk_visits(
    p_walk bigint, p_radius_m double precision, p_entrance_m double precision)
RETURNS TABLE (building_code text, visited_at timestamptz)
LANGUAGE sql STABLE AS $$
    WITH fix AS (
        SELECT coalesce(p.snapped, p.geom) AS g, p.client_ts AS t, p.part
          FROM walk_point p
         WHERE p.walk_id = p_walk AND p.dropped IS NULL),
    seg AS MATERIALIZED (
        SELECT CASE WHEN s.g1 IS NULL THEN s.g ELSE ST_MakeLine(s.g, s.g1) END AS line,
               s.t, coalesce(s.t1, s.t) AS t1
          FROM (SELECT g, t, lead(g) OVER w AS g1, lead(t) OVER w AS t1
                  FROM fix WINDOW w AS (PARTITION BY part ORDER BY t)) s),
    reach AS (
        SELECT walk_expand(ST_Collect(line), p_radius_m + p_entrance_m) AS box FROM seg),
    -- materialised: each building's door is looked up once, not once per segment
    target AS MATERIALIZED (
        SELECT d.code, t.g
          FROM reach, building_doors(reach.box, p_entrance_m) d
         CROSS JOIN LATERAL (VALUES (d.footprint), (d.door)) AS t (g)
         WHERE reach.box IS NOT NULL AND t.g IS NOT NULL),
    hit AS (
        SELECT target.code, seg.line, seg.t, seg.t1, target.g AS target
          FROM target
          JOIN seg ON seg.line && walk_expand(target.g, p_radius_m)
         WHERE ST_DWithin(seg.line::geography, target.g::geography, p_radius_m))
    SELECT hit.code,
           min(hit.t + (hit.t1 - hit.t) * CASE
                   WHEN GeometryType(hit.line) = 'LINESTRING'
                   THEN ST_LineLocatePoint(hit.line, ST_ClosestPoint(hit.line, hit.target))
                   ELSE 0 END)
      FROM hit
     GROUP BY hit.code
$$;

-- How long a walk lasted, seconds: start to end, or to its last chunk while it runs.
CREATE OR REPLACE FUNCTION walk_duration_s(w walk) RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT extract(epoch FROM coalesce(w.ended_at, w.received_at, w.started_at) - w.started_at)
$$;
