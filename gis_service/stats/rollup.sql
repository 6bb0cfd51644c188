-- Roll-ups of the statistics' measures (stats/rollup.py explains the design): the table
-- case_rollup (migration 0021_rollup_tiers) holds, per tier (case_rollup_tier: periods of
-- 1, 7 or 28 days, a unit code depth, by category or over all), period, unit code prefix and
-- category, the sums of these measures over the cases reported in the period that are
-- settled (closed, rejected or voided), for the days before
-- case_rollup_state.folded_before. The trigger case_rollup_changed() (migration
-- 0019_daily_rollups) keeps those days exact when an old case changes;
-- case_rollup_fold() adds days as they leave the recent window.

-- The close-duration histogram's bin of ``hours`` (report → closure): bin 0 is
-- [0, 0.25 h), bin k (1..56) is [0.25·2^((k-1)/4), 0.25·2^(k/4)) h, bin 57 is 4096 h
-- (≈ 171 days) and more. Four bins per doubling: an interpolated median is within
-- 2^(1/4) − 1 ≈ 19 % of the exact one. The bins' edges are case_close_edges(), the same
-- numbers as stats/rollup.py CLOSE_BINS (tests/test_stats_rollup.py compares them), and
-- a duration is placed by comparing it with them (width_bucket, a binary search), as
-- rollup.close_bin() does with numpy: a logarithm would put a duration lying on an edge
-- into either bin by its rounding, and numeric's cost 40 µs a case, most of a fold's time.
CREATE OR REPLACE FUNCTION case_close_edges() RETURNS double precision[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_agg(0.25 * power(2.0::float8, k / 4.0::float8) ORDER BY k)
      FROM generate_series(0, 56) k
$$;

CREATE OR REPLACE FUNCTION case_close_bin(hours double precision) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT width_bucket(hours, case_close_edges())
$$;

-- One case's contribution to its roll-up row: ``settled`` false means none (still open,
-- or a duplicate, which no figure counts). The flags are the cube's (stats/cube.py
-- FACTS_SQL) and the rules cases/report.sql's. One row, declared SETOF so that the planner
-- inlines it into case_rollup_add's query (a plain function in FROM is called once per
-- case: 0.11 ms each, 18 min of a ten-million-case fold).
CREATE OR REPLACE FUNCTION case_rollup_measures(
    c cases, tz text,
    OUT day date, OUT settled boolean,
    OUT accepted integer, OUT rejected integer, OUT closed integer, OUT voided integer,
    OUT voided_accepted integer, OUT closed_on_time integer,
    OUT closed_on_time_extended integer, OUT extended integer, OUT rework integer,
    OUT rated integer, OUT satisfied integer, OUT urges integer, OUT urges_replied integer,
    OUT close_bin integer)
RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    SELECT (c.reported_at AT TIME ZONE tz)::date,
           c.status IN ({{status.closed}}, {{status.rejected}}, {{status.voided}}),
           (c.accepted_at IS NOT NULL)::integer,
           (c.status = {{status.rejected}})::integer,
           (c.status = {{status.closed}})::integer,
           (c.status = {{status.voided}})::integer,
           (c.status = {{status.voided}} AND c.accepted_at IS NOT NULL)::integer,
           (c.status = {{status.closed}} AND case_on_time(c))::integer,
           (c.status = {{status.closed}} AND case_on_time_extended(c))::integer,
           (c.extension_count > 0)::integer,
           (c.status = {{status.closed}} AND case_rework(c))::integer,
           (coalesce(c.rating, 0) > 0)::integer,
           (coalesce(c.rating, 0) >= 4)::integer,
           c.urge_count, c.urge_replied,
           CASE WHEN c.status = {{status.closed}}
                THEN case_close_bin(date_part('epoch', c.closed_at - c.reported_at) / 3600.0)
           END
$$;

-- The histogram (58 bins, case_close_bin) of ``bins`` weighted by ``weights`` (+1 a case
-- counted, −1 one taken back); NULL bins (not closed) count nowhere. PL/pgSQL, one pass
-- over the array: a fold calls it once per roll-up row, and the set-based SQL it replaced
-- (generate_series joined to the bins) cost 0.12 ms a call, most of a fold's time.
CREATE OR REPLACE FUNCTION case_hist(bins integer[], weights integer[]) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    h integer[] := array_fill(0, ARRAY[58]);
    b integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(bins, 1), 0) LOOP
        b := bins[i];
        IF b IS NOT NULL THEN
            h[b + 1] := h[b + 1] + weights[i];
        END IF;
    END LOOP;
    RETURN h;
END
$$;

-- Element-wise sum of two histograms.
CREATE OR REPLACE FUNCTION case_hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    h integer[] := a;
BEGIN
    FOR i IN 1 .. coalesce(array_length(b, 1), 0) LOOP
        h[i] := h[i] + b[i];
    END LOOP;
    RETURN h;
END
$$;

-- The first day of the period of ``days`` days (a tier's grain: 1, 7 or 28) holding
-- ``day``: periods are counted from Monday 2000-01-03, so a week starts on a Monday and
-- four-week periods are made of whole weeks (stats/rollup.py ANCHOR, the same count).
CREATE OR REPLACE FUNCTION case_rollup_period(days integer, day date) RETURNS date
LANGUAGE sql IMMUTABLE AS $$
    SELECT day - ((day - DATE '2000-01-03') % days + days) % days
$$;

-- Add cases to the roll-up (weight +1) or take them back (−1): the one place a case's
-- measures become roll-up rows, for the fold and for the trigger alike, in every tier at
-- once (the period holding the case's day, case_rollup_period(); a tier without
-- categories sums them under ''; each row in its unit's district, the key Citus
-- distributes it by, migration 0025). Settled cases only; rows are written in key order,
-- so two writers never wait on each other crosswise.
CREATE OR REPLACE FUNCTION case_rollup_add(cs cases[], ws integer[], tz text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    -- each case's measures once, not once per tier (a fence: inlined, they were computed
    -- after the join with the tiers, 17 times); unnest() walks the arrays once (cs[i] in a
    -- query copies the whole array at every access)
    WITH x AS MATERIALIZED (
        SELECT (y.c).unit_code, (y.c).category_code, coalesce(y.w, 1) AS w, m.*
          FROM (SELECT unnest(cs) AS c, unnest(ws) AS w) y
          CROSS JOIN LATERAL case_rollup_measures(y.c, tz) m
         WHERE m.settled
    )
    INSERT INTO case_rollup AS r (
        tier, period, unit_code, category_code, district_code, reported, accepted, rejected,
        closed, voided, voided_accepted, closed_on_time, closed_on_time_extended, extended,
        rework, rated, satisfied, urges, urges_replied, close_hist)
    SELECT t.tier, p.period, p.unit_code, p.category_code, district_of(p.unit_code),
           sum(x.w), sum(x.w * x.accepted),
           sum(x.w * x.rejected), sum(x.w * x.closed), sum(x.w * x.voided),
           sum(x.w * x.voided_accepted), sum(x.w * x.closed_on_time),
           sum(x.w * x.closed_on_time_extended), sum(x.w * x.extended), sum(x.w * x.rework),
           sum(x.w * x.rated), sum(x.w * x.satisfied), sum(x.w * x.urges),
           sum(x.w * x.urges_replied), case_hist(array_agg(x.close_bin), array_agg(x.w))
      FROM x
      CROSS JOIN case_rollup_tier t
      CROSS JOIN LATERAL (
          SELECT case_rollup_period(t.days, x.day) AS period,
                 left(x.unit_code, t.depth) AS unit_code,
                 CASE WHEN t.by_category THEN x.category_code ELSE '' END AS category_code
      ) p
     GROUP BY t.tier, p.period, p.unit_code, p.category_code
     ORDER BY t.tier, p.period, p.unit_code, p.category_code
    ON CONFLICT (tier, period, unit_code, category_code, district_code) DO UPDATE SET
        reported = r.reported + excluded.reported,
        accepted = r.accepted + excluded.accepted,
        rejected = r.rejected + excluded.rejected,
        closed = r.closed + excluded.closed,
        voided = r.voided + excluded.voided,
        voided_accepted = r.voided_accepted + excluded.voided_accepted,
        closed_on_time = r.closed_on_time + excluded.closed_on_time,
        closed_on_time_extended = r.closed_on_time_extended + excluded.closed_on_time_extended,
        extended = r.extended + excluded.extended,
        rework = r.rework + excluded.rework,
        rated = r.rated + excluded.rated,
        satisfied = r.satisfied + excluded.satisfied,
        urges = r.urges + excluded.urges,
        urges_replied = r.urges_replied + excluded.urges_replied,
        close_hist = case_hist_add(r.close_hist, excluded.close_hist);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Fold the days before ``before`` (local dates in zone ``tz``) into the roll-up, once:
-- days already folded are left alone (the trigger keeps them), a later ``before`` adds
-- the days in between, a local month at a time (months without a case skipped); another
-- zone than the one folded with starts over. Takes the roll-up's advisory lock
-- exclusively, so no case write (whose trigger takes it shared) is half-way: every write
-- either committed before the fold reads the cases, or reads the new boundary after it.
-- Returns the number of roll-up rows written.
CREATE OR REPLACE FUNCTION case_rollup_fold(tz text, before date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    st case_rollup_state;
    d date;
    e date;
    n bigint := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('case_daily_rollup'));
    INSERT INTO case_rollup_state DEFAULT VALUES ON CONFLICT DO NOTHING;
    SELECT * INTO st FROM case_rollup_state FOR UPDATE;
    IF st.tz IS DISTINCT FROM tz THEN
        DELETE FROM case_rollup;
        st.folded_before := NULL;
    END IF;
    IF st.folded_before IS NOT NULL AND before <= st.folded_before THEN
        RETURN 0;
    END IF;
    d := coalesce(st.folded_before, '-infinity'::date);
    LOOP
        -- the next day with a case (an index lookup; months without any are skipped)
        SELECT (min(c.reported_at) AT TIME ZONE tz)::date INTO d
          FROM cases c WHERE c.reported_at >= (d::timestamp AT TIME ZONE tz)
           AND case_in_period(c.id, nullif(d, '-infinity'::date)::timestamp AT TIME ZONE tz, NULL);
        EXIT WHEN d IS NULL OR d >= before;
        -- the rest of its local month at once, so each roll-up row of the tiers is written
        -- once a month, not once a day (a month's cases: ~170,000 at ten million in five
        -- years); the month's partitions only (case_in_period: 0018_case_partitions)
        e := least((date_trunc('month', d) + interval '1 month')::date, before);
        n := n + case_rollup_add(
            ARRAY(SELECT c FROM cases c
                   WHERE c.reported_at >= (d::timestamp AT TIME ZONE tz)
                     AND c.reported_at < (e::timestamp AT TIME ZONE tz)
                     AND case_in_period(c.id, d::timestamp AT TIME ZONE tz,
                                        e::timestamp AT TIME ZONE tz)),
            NULL, tz);
        d := e;
    END LOOP;
    UPDATE case_rollup_state SET folded_before = before, tz = case_rollup_fold.tz,
                                 folded_at = now();
    RETURN n;
END
$$;
