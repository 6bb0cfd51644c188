-- Reporting a case in one round trip, and the case answers that reports and lists send.
--
-- Rendered by gis_service/db/sqlfiles.py (double-braced names: word lists from
-- gis_service/vocabulary.py) and (re)created by `gis-service db migrate` after the
-- migrations, so changing a rule here needs no migration. Tunable numbers — the duplicate
-- radius and window — are never written here: callers pass them from Settings
-- (cases/report.py, cases/service.py), the one place both the report and
-- GET /api/v1/cases/nearby read them from. Needs units/locate.sql (locate_unit,
-- unit_chain).

-- The status a case is in now: a parked case (挂账) is back in the status it left once its
-- review moment has passed — evaluated when read, so no scheduler is needed; the next
-- action on the case writes that return on its timeline (cases/actions.py wake_if_due).
-- Inlined by the planner (one SQL expression), so filters on it stay plain expressions.
CREATE OR REPLACE FUNCTION case_status(c cases) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN c.status = {{status.parked}} AND c.parked_until <= now()
                THEN c.parked_from ELSE c.status END
$$;

-- Overdue: the deadline runs (accepted, not closed, not parked until its review) and has
-- passed. The one SQL home of the rule (docs/cases.md); Facts.overdue_now is its numpy
-- twin for the statistics and tiles. Inlined by the planner like case_status().
CREATE OR REPLACE FUNCTION case_overdue(c cases) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(case_status(c) IN {{deadline_statuses}} AND c.deadline_at < now(), false)
$$;

-- Closed on time (按期结案): closed by the deadline acceptance set, before any extension
-- (original_deadline_at is kept at the first approved extension). The one SQL home of the
-- statistics' per-case on-time rule (stats/resolution.py; the cube loads it through
-- stats/cube.py FACTS_SQL); true only for a case that was closed.
CREATE OR REPLACE FUNCTION case_on_time(c cases) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(c.closed_at <= coalesce(c.original_deadline_at, c.deadline_at), false)
$$;

-- Closed on time only thanks to an extension (延期后按期): after the original deadline,
-- by the extended one.
CREATE OR REPLACE FUNCTION case_on_time_extended(c cases) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(c.closed_at > c.original_deadline_at AND c.closed_at <= c.deadline_at,
                    false)
$$;

-- Rework (返工): the case failed at least one check. The statistics' rework rate counts
-- closed cases with it.
CREATE OR REPLACE FUNCTION case_rework(c cases) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT c.rework_count > 0
$$;

-- The summary of a case that reports and lists return. json, not jsonb: it is built to
-- be sent, and json_build_object skips jsonb's parsing and key sorting (measured: a fifth
-- of report_case's time went into building jsonb).
CREATE OR REPLACE FUNCTION case_summary(c cases) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', c.id, 'case_no', c.case_no, 'status', case_status(c),
        'category', c.category_code, 'priority', c.priority,
        'description', c.description, 'address', c.address,
        'lon', round(ST_X(c.geom)::numeric, 7), 'lat', round(ST_Y(c.geom)::numeric, 7),
        'unit_code', c.unit_code, 'handling_level', c.handling_level,
        'source', c.source, 'reporter_id', c.reporter_id, 'team_id', c.team_id,
        'assignee_id', c.assignee_id, 'duplicate_of', c.duplicate_of,
        'reported_at', c.reported_at, 'accepted_at', c.accepted_at,
        'deadline_at', c.deadline_at, 'closed_at', c.closed_at,
        'overdue', case_overdue(c),
        'rework_count', c.rework_count, 'escalation_count', c.escalation_count,
        'rating', c.rating, 'updated_at', c.updated_at,
        -- the command-centre members (cases/workflow.py)
        'original_deadline_at', c.original_deadline_at, 'extension_count', c.extension_count,
        'parked_until', CASE WHEN case_status(c) = {{status.parked}} THEN c.parked_until END,
        'voided_at', c.voided_at, 'walk_id', c.walk_id,
        'urge_count', c.urge_count, 'urges_unreplied', c.urge_count - c.urge_replied,
        'returned', CASE WHEN c.returned_at IS NOT NULL THEN json_build_object(
            'at', c.returned_at, 'team_id', c.returned_by_team, 'note', c.return_note) END)
$$;

-- Possible duplicates of a report at a WGS-84 point: open cases within p_radius_m metres
-- (ST_DistanceSphere: at tens of metres it differs from the spheroid by centimetres and
-- needs no spatial_ref_sys lookup) reported in the last p_days days, of the category if
-- one is given, nearest first. The one duplicate rule: report_case() and
-- GET /api/v1/cases/nearby both call it. The bounding box uses 111,000 m per degree of
-- latitude (the sphere's is 111,195 m), so it never cuts a circle short. The months read
-- end with the statement's own (statement_timestamp(): every case this statement can see
-- was reported before it began), so the months made ahead (cases/partitions.py) are not
-- opened by every report.
CREATE OR REPLACE FUNCTION nearby_cases(
    pt geometry, p_category text, p_radius_m double precision, p_days integer)
RETURNS TABLE (id bigint, case_no text, status text, category text, description text,
               reported_at timestamptz, unit_code text, distance_m numeric)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT near.id, near.case_no, near.status, near.category_code, near.description,
           near.reported_at, near.unit_code, round(near.d::numeric, 1)
      FROM (SELECT c.*, ST_DistanceSphere(c.geom, pt) AS d
              FROM cases c
             WHERE c.geom && ST_Expand(pt, p_radius_m / 111000.0 / cos(radians(ST_Y(pt))),
                                       p_radius_m / 111000.0)
               AND (p_category IS NULL OR c.category_code = p_category)
               AND c.status IN {{open_statuses}}
               AND c.reported_at > now() - make_interval(days => p_days)
               AND case_in_period(c.id, now() - make_interval(days => p_days),
                                  statement_timestamp())) near
     WHERE near.d <= p_radius_m
     ORDER BY near.d, near.id
$$;

-- A case linked to the open case it repeats: the 'link' event on the target's timeline
-- ({"case_id", "case_no"} and p_data). The one duplicate-link path: a report filed as a
-- duplicate (report_case, link_to) and a dispatcher's merge (cases/actions.py) both call
-- it. Returns the event's id. The event takes the target's district (the key of every
-- table distributed by district, gis_service/db/distribution.py).
CREATE OR REPLACE FUNCTION link_duplicate(
    p_target bigint, p_case bigint, p_case_no text, p_user integer, p_client integer,
    p_data jsonb)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO case_event (district_code, case_id, actor_id, client_id, action, data)
    SELECT t.district_code, t.id, p_user, p_client, 'link',
           jsonb_build_object('case_id', p_case, 'case_no', p_case_no)
           || coalesce(p_data, '{}'::jsonb)
      FROM cases t WHERE t.id = p_target
    RETURNING id
$$;

-- The case an Idempotency-Key claimed (case_idempotency, migration 0018): its id, unit,
-- summary and request fingerprint, or no row. The key is read first and the case then by
-- its id and district: a join of the two made every report's plan start a scan of each
-- month's partition of cases (the join's id is known only at run time, so nothing was
-- pruned before the executor started: a fifth of the database's time a report, perf,
-- 2026-12-02); by the id the generic plan prunes to one partition at its start.
CREATE OR REPLACE FUNCTION case_of_key(
    p_key text, OUT case_id bigint, OUT unit_code text, OUT summary json,
    OUT fingerprint text)
RETURNS SETOF record LANGUAGE plpgsql STABLE AS $$
DECLARE
    k case_idempotency;
BEGIN
    SELECT * INTO k FROM case_idempotency WHERE idempotency_key = p_key LIMIT 1;
    IF FOUND THEN
        RETURN QUERY
        SELECT c.id, c.unit_code, case_summary(c), c.idempotency_fingerprint
          FROM cases c WHERE c.id = k.case_id AND c.district_code = k.district_code;
    END IF;
END $$;

-- Reporting in one round trip: replay by idempotency key, category, locate, scope,
-- insert, first timeline event, possible duplicates, and the answer's JSON. Errors carry
-- SQLSTATE GSxxx (see cases/report.py for the HTTP status of each).
--
-- Idempotency (IETF httpapi Idempotency-Key draft): p_key is the sender's key and
-- p_fingerprint a hash of the request's canonical payload (cases/report.py). The same key
-- with the same fingerprint replays the case; with another fingerprint it is refused
-- (GSKEY) and nothing is stored. Cases stored before fingerprints existed replay.
--
-- Measured choices (benchmarks/report_load.py):
-- - No SQL-language helper is called as a PL/pgSQL expression: such a call is planned
--   again in every transaction. Helpers are used inside cached statements (the INSERT's
--   RETURNING, FROM clauses), where the planner inlines them, and the answer is
--   assembled by text concatenation.
-- - plan_cache_mode = force_generic_plan: the duplicate search's cost estimate depends
--   on the point, so on a populated table PostgreSQL chose to plan it afresh on every
--   call (0.3 ms of planning for 0.07 ms of work); the generic plan is the same GiST
--   scan. 100 calls: 84 → 41 ms on 110,000 cases.
-- - enable_bitmapscan = off: in that generic plan the duplicate window's id bounds
--   (case_in_period, which prunes the months) are estimated at the default 0.5 % of a
--   month, so the planner ANDed a bitmap of the whole current month's primary key with the
--   GiST search — a cost that grew with every case of the month (34,000 cases: 1.5–9 ms a
--   report; reports/s halved on the city databases). Without bitmaps the search is the
--   open-case GiST index alone, whatever the month holds: pgbench, 4 clients, the 10 M
--   city 162 → 268 reports/s, the 1 M district 87 → 199 (2026-12-01, machine shared).
--   tests/test_partitions.py checks that a report reads no more of its month's key.
-- - max_parallel_workers_per_gather = 0: on the 10 M city the generic plan of the
--   duplicate search became a Gather over a parallel append of the months (its estimates
--   grow with the history); run on its own that plan launched two workers and took 40 ms
--   for a search of a few index entries. Inside this function no workers were launched and
--   turning it off changed no measured CPU a report (perf, 2026-12-02); it is off so a
--   report's plan stays the serial one these notes describe, whatever the history holds.
CREATE OR REPLACE FUNCTION report_case(
    p_user integer, p_ver integer, p_session bigint, p_client integer, p_scopes text[],
    p_key text,
    p_category text, p_lon double precision, p_lat double precision,
    p_description text, p_address text, p_priority text, p_source text,
    p_attrs jsonb, p_link_to bigint, p_tz text,
    p_fingerprint text, p_dup_radius_m double precision, p_dup_days integer,
    p_dup_max integer, p_walk bigint,
    OUT case_id bigint, OUT created boolean, OUT body text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_bitmapscan = off
    SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    pt         geometry := ST_SetSRID(ST_MakePoint(p_lon, p_lat), 4326);
    v_level    text;
    v_unit     text;
    v_case_no  text;
    v_status   text;
    v_summary  json;
    v_units    json;
    v_dups     json := '[]';
    v_dups_n   integer := 0;
    v_target   text;
    v_walk_in  text;
    v_print    text;
BEGIN
    -- the sign-in still holds (sign_in_holds(), auth/sessions.sql: the one rule), checked
    -- here so that a report is one round trip; a user without a session (none is issued
    -- today) still needs an active account at the token's version
    IF p_session IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM sign_in_holds(p_session, p_user, p_ver)) THEN
            RAISE EXCEPTION USING ERRCODE = 'GS401', MESSAGE = 'sign-in ended';
        END IF;
    ELSIF p_user IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM app_user
             WHERE id = p_user AND active AND token_version = p_ver) THEN
        RAISE EXCEPTION USING ERRCODE = 'GS401', MESSAGE = 'sign-in ended';
    END IF;
    created := false;
    IF p_key IS NOT NULL THEN
        SELECT k.* INTO case_id, v_unit, v_summary, v_print FROM case_of_key(p_key) k;
    END IF;

    IF case_id IS NULL THEN
        SELECT handling_level INTO v_level
          FROM case_category WHERE code = p_category AND active;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'GS422', COLUMN = 'category',
                MESSAGE = format('unknown category %s: see GET /api/v1/categories',
                                 quote_literal(p_category));
        END IF;

        SELECT located INTO v_unit FROM locate_unit(pt) located;
        IF v_unit IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'GSOUT', COLUMN = 'location',
                MESSAGE = format('the location lon=%s, lat=%s (WGS-84) is outside '
                                 'every district this service covers', p_lon, p_lat);
        END IF;
        IF p_scopes IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM unnest(p_scopes) s WHERE starts_with(v_unit, s)) THEN
            RAISE EXCEPTION USING ERRCODE = 'GS403', COLUMN = 'location',
                MESSAGE = format('the location is in unit %s, outside your '
                                 'jurisdiction (%s)', v_unit,
                                 array_to_string(p_scopes, ', '));
        END IF;

        IF p_link_to IS NOT NULL THEN
            SELECT t.unit_code INTO v_target FROM cases t
             WHERE t.id = p_link_to AND t.status IN {{open_statuses}};
            IF NOT FOUND OR (p_scopes IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM unnest(p_scopes) s
                     WHERE starts_with(v_target, s))) THEN
                RAISE EXCEPTION USING ERRCODE = 'GS422', COLUMN = 'link_to',
                    MESSAGE = format('case %s is not an open case you can link to',
                                     p_link_to);
            END IF;
            -- a duplicate and its case share a district (the key cases.duplicate_of,
            -- migration 0020): one across a border is linked by its number in the text
            IF district_of(v_target) <> district_of(v_unit) THEN
                RAISE EXCEPTION USING ERRCODE = 'GS422', COLUMN = 'link_to',
                    MESSAGE = format('case %s is in district %s and this report in %s: a '
                                     'duplicate is linked only within its district',
                                     p_link_to, district_of(v_target), district_of(v_unit));
            END IF;
        END IF;

        -- a report made during a walk (gis_service/walks/): the reporter's own, running,
        -- and in the walk's district (the key cases (walk_id, district_code), migration
        -- 0022): a problem across the border is reported without walk_id
        IF p_walk IS NOT NULL THEN
            SELECT w.district_code INTO v_walk_in FROM walk w
             WHERE w.id = p_walk AND w.worker_id = p_user
               AND w.status = {{walk_status.running}};
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'GS422', COLUMN = 'walk_id',
                    MESSAGE = format('walk %s is not a running walk of yours', p_walk);
            END IF;
            IF v_walk_in <> district_of(v_unit) THEN
                RAISE EXCEPTION USING ERRCODE = 'GS422', COLUMN = 'walk_id',
                    MESSAGE = format('walk %s is in district %s and this report in %s: a '
                                     'problem across the border is reported without walk_id',
                                     p_walk, v_walk_in, district_of(v_unit));
            END IF;
        END IF;

        -- The case is written first and its key claimed after, in case_idempotency
        -- (unique across every month's partition, migration 0018): a concurrent request
        -- with the same key waits at the claim for the first one's commit, then takes
        -- back the case it wrote and answers the first one's. The claim's reference to its
        -- case is checked as it is written (0024_key_checked_at_once), under this
        -- function's generic plans (a check deferred to the commit was planned afresh for
        -- every report: a tenth of the database's time, perf, 2026-12-02).
        INSERT INTO cases (id, district_code, case_no, category_code, status, priority,
                           description, address, geom, unit_code, handling_level, source,
                           reporter_id, client_id, idempotency_key,
                           idempotency_fingerprint, duplicate_of, attrs, walk_id)
        VALUES (case_new_id(now()), district_of(v_unit), district_of(v_unit)
                    || to_char(now() AT TIME ZONE p_tz, 'YYYYMMDD')
                    || lpad((nextval('case_no_seq') % 1000000)::text, 6, '0'),
                p_category,
                CASE WHEN p_link_to IS NULL THEN {{status.reported}}
                     ELSE {{status.duplicate}} END,
                coalesce(p_priority, {{priority.normal}}), p_description, p_address, pt,
                v_unit, v_level, p_source, p_user, p_client, p_key,
                CASE WHEN p_key IS NOT NULL THEN p_fingerprint END, p_link_to,
                coalesce(p_attrs, '{}'::jsonb), p_walk)
        RETURNING cases.id, cases.case_no, cases.status, case_summary(cases)
             INTO case_id, v_case_no, v_status, v_summary;
        created := true;
        IF p_key IS NOT NULL THEN
            INSERT INTO case_idempotency (idempotency_key, district_code, case_id)
            VALUES (p_key, district_of(v_unit), report_case.case_id)
            ON CONFLICT (idempotency_key, district_code) DO NOTHING;
            created := FOUND;
        END IF;

        IF NOT created THEN
            -- A concurrent request with the same key won; this statement sees it.
            DELETE FROM cases c
             WHERE c.id = report_case.case_id AND c.district_code = district_of(v_unit);
            SELECT k.* INTO case_id, v_unit, v_summary, v_print FROM case_of_key(p_key) k;
        ELSE
            INSERT INTO case_event (district_code, case_id, actor_id, client_id, action,
                                    to_status, data)
            VALUES (district_of(v_unit), case_id, p_user, p_client, 'report', v_status,
                    jsonb_build_object('source', p_source));
            IF p_link_to IS NOT NULL THEN
                PERFORM link_duplicate(p_link_to, case_id, v_case_no, p_user, p_client,
                                       NULL);
            ELSE
                -- the nearest p_dup_max and the count of all (a busy spot holds hundreds):
                -- one ordered aggregate cut to its first p_dup_max (a window and a filter
                -- over a sub-select cost a fifth more to start, perf 2026-12-02)
                SELECT coalesce(array_to_json((array_agg(json_build_object(
                           'id', near.id, 'case_no', near.case_no, 'status', near.status,
                           'distance_m', near.distance_m, 'reported_at', near.reported_at,
                           'description', left(near.description, 120))
                           ORDER BY near.distance_m, near.id))[1:p_dup_max]), '[]'::json),
                       count(*)
                  INTO v_dups, v_dups_n
                  FROM nearby_cases(pt, p_category, p_dup_radius_m, p_dup_days) near
                 WHERE near.id <> case_id
                   AND (p_scopes IS NULL OR EXISTS (
                        SELECT 1 FROM unnest(p_scopes) s
                         WHERE starts_with(near.unit_code, s)));
            END IF;
        END IF;
    END IF;

    IF NOT created AND v_print IS DISTINCT FROM p_fingerprint AND v_print IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'GSKEY', COLUMN = 'Idempotency-Key',
            MESSAGE = format('the Idempotency-Key %s was already used for case %s with a '
                             'different request: send a new key for a new report',
                             quote_literal(substr(p_key, strpos(p_key, ':') + 1)), case_id);
    END IF;

    SELECT chain INTO v_units FROM unit_chain(v_unit) chain;
    body := left(v_summary::text, -1) || ', "created" : ' || created::text
            || ', "units" : ' || v_units::text
            || ', "possible_duplicates" : ' || v_dups::text
            || ', "possible_duplicates_total" : ' || v_dups_n::text || '}';
END $$;
