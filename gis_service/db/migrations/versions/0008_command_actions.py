"""The command-centre actions (issue 15 item 3; GB/T 30428 dispatch-seat vocabulary):
deadline extensions (延期) waiting in an approval inbox with delegation, parking (挂账)
with a review date, voiding (作废), urging (督办) with replies, and the reason of a team's
return (回退) kept on the case. The rules live in cases/workflow.py (the loop) and
cases/approvals.py (decisions); every word list here is rendered from workflow.py through
gis_service/vocabulary.py, as migrations 0002 and 0004 do.

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op

from gis_service.vocabulary import sql_constants

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

V = sql_constants()


def upgrade() -> None:
    # The status list grew (parked, voided): the CHECK and the open-cases index follow it.
    op.execute(
        "ALTER TABLE cases DROP CONSTRAINT IF EXISTS cases_status_check, "
        f"ADD CONSTRAINT cases_status_check CHECK (status IN {V['statuses']})"
    )
    op.execute("DROP INDEX IF EXISTS cases_open_geom_idx")
    op.execute(
        "CREATE INDEX cases_open_geom_idx ON cases USING gist (geom) "
        f"WHERE status IN {V['open_statuses']}"
    )
    op.execute(
        f"""
        ALTER TABLE cases
            -- 延期: the deadline as acceptance set it, kept at the first approved extension
            -- (NULL: never extended; the deadline is then the original one)
            ADD COLUMN original_deadline_at timestamptz,
            ADD COLUMN extension_count integer NOT NULL DEFAULT 0,
            -- 挂账: the status it left and the moment of its review (the review date's
            -- local midnight); read-time return: case_status() in cases/report.sql
            ADD COLUMN parked_from text CHECK (parked_from IN {V["parkable_statuses"]}),
            ADD COLUMN parked_until timestamptz,
            -- 作废
            ADD COLUMN voided_at timestamptz,
            -- 督办: urges sent to the team and how many of them the team has answered
            ADD COLUMN urge_count integer NOT NULL DEFAULT 0,
            ADD COLUMN urge_replied integer NOT NULL DEFAULT 0,
            -- 回退: the last return by a team, kept after the case is dispatched again
            ADD COLUMN returned_at timestamptz,
            ADD COLUMN returned_by_team integer,
            ADD COLUMN return_note text,
            ADD CONSTRAINT cases_parked_check CHECK (
                (status = {V["status.parked"]})
                = (parked_until IS NOT NULL AND parked_from IS NOT NULL)),
            ADD CONSTRAINT cases_urge_check CHECK (urge_replied BETWEEN 0 AND urge_count)
        """
    )
    op.execute(
        f"CREATE INDEX cases_parked_idx ON cases (parked_until) WHERE status = {V['status.parked']}"
    )
    op.execute(
        f"""
        CREATE TABLE approval (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            case_id        bigint NOT NULL REFERENCES cases (id),
            kind           text NOT NULL CHECK (kind IN {V["approval_kinds"]}),
            state          text NOT NULL DEFAULT {V["approval_state.pending"]}
                               CHECK (state IN {V["approval_states"]}),
            -- The case's unit at the level above its handling level, when requested:
            -- supervisors whose scope holds it decide (auth/scope.py approval_filter);
            -- NULL for district-level cases, which only admins decide.
            approver_unit  text,
            requested_by   integer REFERENCES app_user (id),
            requested_at   timestamptz NOT NULL DEFAULT now(),
            -- the clock on the approval itself (Settings.approval_due_hours)
            due_by         timestamptz NOT NULL,
            reason         text NOT NULL CHECK (btrim(reason) <> ''),
            photo_ids      bigint[] NOT NULL DEFAULT '{{}}',
            hours          integer CHECK (hours > 0),
            decided_by     integer REFERENCES app_user (id),
            decided_at     timestamptz,
            decision_note  text,
            -- the approver whose inbox the decider worked through a delegation
            on_behalf_of   integer REFERENCES app_user (id),
            CHECK ((state = {V["approval_state.pending"]}) = (decided_at IS NULL)),
            CHECK (due_by > requested_at)
        )
        """
    )
    # One open request of a kind per case; the inbox reads pending ones by unit and clock.
    op.execute(
        "CREATE UNIQUE INDEX approval_one_pending_idx ON approval (case_id, kind) "
        f"WHERE state = {V['approval_state.pending']}"
    )
    op.execute(
        "CREATE INDEX approval_inbox_idx ON approval (approver_unit text_pattern_ops, due_by) "
        f"WHERE state = {V['approval_state.pending']}"
    )
    op.execute(
        """
        CREATE TABLE approval_delegation (
            id            serial PRIMARY KEY,
            delegator_id  integer NOT NULL REFERENCES app_user (id),
            delegate_id   integer NOT NULL REFERENCES app_user (id),
            starts_at     timestamptz NOT NULL,
            ends_at       timestamptz NOT NULL,
            note          text,
            created_at    timestamptz NOT NULL DEFAULT now(),
            revoked_at    timestamptz,
            CHECK (delegator_id <> delegate_id),
            CHECK (ends_at > starts_at)
        )
        """
    )
    op.execute(
        "CREATE INDEX approval_delegation_delegate_idx ON approval_delegation "
        "(delegate_id, ends_at) WHERE revoked_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS approval_delegation")
    op.execute("DROP TABLE IF EXISTS approval")
    op.execute("DROP INDEX IF EXISTS cases_parked_idx")
    op.execute(
        """
        ALTER TABLE cases
            DROP CONSTRAINT IF EXISTS cases_parked_check,
            DROP CONSTRAINT IF EXISTS cases_urge_check,
            DROP COLUMN IF EXISTS original_deadline_at,
            DROP COLUMN IF EXISTS extension_count,
            DROP COLUMN IF EXISTS parked_from,
            DROP COLUMN IF EXISTS parked_until,
            DROP COLUMN IF EXISTS voided_at,
            DROP COLUMN IF EXISTS urge_count,
            DROP COLUMN IF EXISTS urge_replied,
            DROP COLUMN IF EXISTS returned_at,
            DROP COLUMN IF EXISTS returned_by_team,
            DROP COLUMN IF EXISTS return_note
        """
    )
