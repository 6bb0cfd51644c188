-- Whether a signed-in request still holds: the one rule (auth/sessions.py explains it).
--
-- Rendered and (re)created by `gis-service db migrate` (gis_service/db/sqlfiles.py). The
-- session is neither revoked (sign-out, refresh-token reuse) nor past its end, and its
-- account is active with the token's token_version (deactivation and a password change
-- bump it). Every request's check calls it (sessions.ALIVE: one primary-key lookup), and
-- report_case() calls it inside its own round trip, so a report needs no second one.
--
-- One row (true) when the sign-in holds, none when it does not: a set-returning SQL
-- function of one SELECT, which the planner inlines into the statement that reads it
-- (`SELECT true FROM sign_in_holds(…)`, `EXISTS (SELECT 1 FROM sign_in_holds(…))`). Until
-- 2026-12-02 it returned EXISTS (…) as a boolean: a scalar SQL function holding a
-- sub-select is never inlined, so its body was planned again at every call (perf of
-- report_case() on the 1 M city: 4 % of the database's time a report).
CREATE OR REPLACE FUNCTION sign_in_holds(p_session bigint, p_user integer, p_ver integer)
RETURNS SETOF boolean LANGUAGE sql STABLE ROWS 1 AS $$
    SELECT true FROM auth_session s JOIN app_user u ON u.id = s.user_id
     WHERE s.id = p_session AND s.user_id = p_user AND u.token_version = p_ver
       AND u.active AND s.revoked_at IS NULL AND s.expires_at > now()
$$;
