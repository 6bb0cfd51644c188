"""Sessions that end (issue 14, OWASP API2, ASVS V3): sign-in sessions, rotating refresh
tokens, and the sign-in throttle kept in PostgreSQL.

``auth_session`` is one sign-in: a phone's (``bearer``: a refresh-token family, RFC 9700
§4.14.2) or a page's (``cookie``). Every access token names its session (claim ``sid``) and
is checked against it and the account on every request (gis_service/auth/sessions.py).
``refresh_token`` holds the SHA-256 of each opaque refresh token ever issued in a family;
``used_at`` marks a rotated one, and presenting it again revokes the family. Sessions
that ended more than a day ago are deleted at each sign-in (auth/sessions.py ``prune``).
``sign_in_failure`` is the throttle's memory (gis_service/auth/throttle.py), shared by all
worker processes; rows older than the longest window are pruned as new ones arrive.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE auth_session (
            id             bigserial PRIMARY KEY,
            user_id        integer NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
            kind           text NOT NULL CHECK (kind IN ('bearer', 'cookie')),
            -- app_user.token_version when it opened: a deactivation or password change
            -- since (which bumps it) ends the session
            token_version  integer NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now(),
            expires_at     timestamptz NOT NULL,
            revoked_at     timestamptz,
            revoked_why    text CHECK (revoked_why IN ('sign_out', 'reuse'))
        )
        """
    )
    op.execute("CREATE INDEX auth_session_user ON auth_session (user_id) WHERE revoked_at IS NULL")
    op.execute("CREATE INDEX auth_session_expires ON auth_session (expires_at)")
    op.execute("CREATE INDEX auth_session_revoked ON auth_session (revoked_at)")
    op.execute(
        """
        CREATE TABLE refresh_token (
            token_hash  bytea PRIMARY KEY,
            session_id  bigint NOT NULL REFERENCES auth_session (id) ON DELETE CASCADE,
            issued_at   timestamptz NOT NULL DEFAULT now(),
            used_at     timestamptz
        )
        """
    )
    op.execute("CREATE INDEX refresh_token_session ON refresh_token (session_id)")
    op.execute(
        """
        CREATE TABLE sign_in_failure (
            id        bigserial PRIMARY KEY,
            username  text NOT NULL,
            address   text NOT NULL,
            at        timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
    )
    op.execute("CREATE INDEX sign_in_failure_pair ON sign_in_failure (username, address, at)")
    op.execute("CREATE INDEX sign_in_failure_address ON sign_in_failure (address, at)")
    op.execute("CREATE INDEX sign_in_failure_at ON sign_in_failure (at)")


def downgrade() -> None:
    op.execute("DROP TABLE sign_in_failure")
    op.execute("DROP TABLE refresh_token")
    op.execute("DROP TABLE auth_session")
