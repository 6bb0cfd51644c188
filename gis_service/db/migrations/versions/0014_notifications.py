"""Notifications (issue 16 item 1-2): the transactional outbox, the in-app inbox, the
deliveries through the outside channels, preferences and quiet hours, webhook
subscriptions, deadline reminders and the sender's heartbeat (gis_service/notify/).

* ``app_user.email``: where e-mail notifications go (nullable; a plain format check).
* ``notify_outbox``: one row per case event, written by a statement trigger on
  ``case_event`` in the transaction that writes the event, so every path that writes the
  timeline (cases/report.sql, cases/actions.py, cases/attachments.py, the rating link)
  is covered by one rule; the scheduler adds a row per deadline reminder. The sender
  claims rows with ``FOR UPDATE SKIP LOCKED`` and marks them done in the transaction
  that writes their notifications. A transaction may set ``gis.outbox = 'off'`` (a
  history load: the demo's year of past events notifies nobody).
* ``notification``: the inbox; unique per (user, kind, source) so a retried fan-out never
  doubles. ``source`` is ``event:<case_event.id>`` or ``reminder:<notify_reminder.id>``.
* ``notify_delivery``: one try-until-done send of a notification (or of an event to a
  webhook subscription) through one channel; its UUID ``id`` is the idempotency id every
  retry carries.
* ``notify_preference`` (kind × channel on/off; absent: notify/kinds.py DEFAULT_ON) and
  ``notify_quiet_hours`` (absent: the settings' default, 22:00–07:00 service time).
* ``webhook_subscription``: other systems' URLs, secrets (HMAC-SHA256 keys) and kinds.
* ``notify_reminder``: one row per (case, kind, threshold, deadline): a reminder never
  fires twice, across restarts; a moved deadline (an extension) gets its own.
* ``notify_heartbeat``: one row per running sender, updated every loop (/healthz).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from alembic import op

from gis_service.auth.users import EMAIL_MAX, EMAIL_PATTERN
from gis_service.notify.channels import CHANNELS
from gis_service.notify.kinds import DELIVERY_STATUSES, KINDS, PERSONAL_CHANNELS
from gis_service.vocabulary import sql_list

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

KIND_LIST = sql_list(KINDS)
# the shape check of auth/users.py check_email (the API names the field before this)
EMAIL_CHECK = f"email ~ '{EMAIL_PATTERN}' AND length(email) <= {EMAIL_MAX}"


def upgrade() -> None:
    op.execute(f"ALTER TABLE app_user ADD COLUMN email text CHECK ({EMAIL_CHECK})")
    op.execute(
        f"""
        CREATE TABLE notify_reminder (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            case_id      bigint NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            kind         text NOT NULL CHECK (kind IN {KIND_LIST}),
            -- the share of the deadline's span elapsed (1 for overdue)
            threshold    numeric(4, 3) NOT NULL CHECK (threshold > 0 AND threshold <= 1),
            deadline_at  timestamptz NOT NULL,
            due_at       timestamptz NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            UNIQUE (case_id, kind, threshold, deadline_at)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notify_outbox (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id     bigint,
            reminder_id  bigint REFERENCES notify_reminder (id) ON DELETE CASCADE,
            created_at   timestamptz NOT NULL DEFAULT now(),
            done_at      timestamptz,
            -- the fan-out raised (a bug, logged): the row is done, not retried forever
            error        text,
            CHECK ((event_id IS NULL) <> (reminder_id IS NULL))
        )
        """
    )
    op.execute("CREATE INDEX notify_outbox_pending_idx ON notify_outbox (id) WHERE done_at IS NULL")
    op.execute(
        """
        CREATE FUNCTION notify_outbox_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF coalesce(current_setting('gis.outbox', true), '') = 'off' THEN
                RETURN NULL;
            END IF;
            INSERT INTO notify_outbox (event_id, created_at)
            SELECT n.id, n.at FROM new_events n ORDER BY n.id;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER case_event_outbox AFTER INSERT ON case_event
        REFERENCING NEW TABLE AS new_events
        FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox_enqueue()
        """
    )
    op.execute(
        f"""
        CREATE TABLE notification (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            user_id     integer NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
            kind        text NOT NULL CHECK (kind IN {KIND_LIST}),
            source      text NOT NULL CHECK (source ~ '^(event|reminder):[0-9]+$'),
            case_id     bigint,
            event_id    bigint,
            title       text NOT NULL,
            body        text NOT NULL,
            urgent      boolean NOT NULL DEFAULT false,
            created_at  timestamptz NOT NULL DEFAULT now(),
            read_at     timestamptz,
            UNIQUE (user_id, kind, source)
        )
        """
    )
    op.execute("CREATE INDEX notification_user_idx ON notification (user_id, id DESC)")
    op.execute(
        "CREATE INDEX notification_unread_idx ON notification (user_id) WHERE read_at IS NULL"
    )
    op.execute(
        f"""
        CREATE TABLE webhook_subscription (
            id          serial PRIMARY KEY,
            name        text NOT NULL UNIQUE CHECK (length(btrim(name)) BETWEEN 1 AND 100),
            url         text NOT NULL CHECK (url ~ '^https?://[^\\s]+$' AND length(url) <= 2000),
            secret      text NOT NULL CHECK (length(secret) BETWEEN 16 AND 200),
            -- the kinds sent; empty: all
            kinds       text[] NOT NULL DEFAULT '{{}}'
                            CHECK (kinds <@ CAST(ARRAY{list(map(str, KINDS))} AS text[])),
            active      boolean NOT NULL DEFAULT true,
            created_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE notify_delivery (
            id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            notification_id  bigint REFERENCES notification (id) ON DELETE CASCADE,
            subscription_id  integer REFERENCES webhook_subscription (id) ON DELETE CASCADE,
            kind             text NOT NULL CHECK (kind IN {KIND_LIST}),
            source           text NOT NULL,
            channel          text NOT NULL CHECK (channel IN {sql_list(CHANNELS)}),
            recipient        text NOT NULL,
            subject          text NOT NULL,
            body             text NOT NULL,
            payload          jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            urgent           boolean NOT NULL DEFAULT false,
            status           text NOT NULL DEFAULT 'pending'
                                 CHECK (status IN {sql_list(DELIVERY_STATUSES)}),
            attempts         integer NOT NULL DEFAULT 0,
            next_attempt_at  timestamptz NOT NULL DEFAULT now(),
            last_error       text,
            created_at       timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            sent_at          timestamptz,
            CHECK ((notification_id IS NULL) <> (subscription_id IS NULL)),
            CHECK ((channel = 'webhook') = (subscription_id IS NOT NULL)),
            UNIQUE (notification_id, channel, recipient),
            UNIQUE (subscription_id, kind, source)
        )
        """
    )
    op.execute(
        "CREATE INDEX notify_delivery_due_idx ON notify_delivery (next_attempt_at) "
        "WHERE status IN ('pending', 'sending')"
    )
    op.execute(
        "CREATE INDEX notify_delivery_dead_idx ON notify_delivery (updated_at) "
        "WHERE status = 'dead'"
    )
    op.execute(
        f"""
        CREATE TABLE notify_preference (
            user_id  integer NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
            kind     text NOT NULL CHECK (kind IN {KIND_LIST}),
            channel  text NOT NULL CHECK (channel IN {sql_list(PERSONAL_CHANNELS)}),
            enabled  boolean NOT NULL,
            PRIMARY KEY (user_id, kind, channel)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notify_quiet_hours (
            user_id  integer PRIMARY KEY REFERENCES app_user (id) ON DELETE CASCADE,
            -- service-time clock times; starts = ends: no quiet hours
            starts   time NOT NULL,
            ends     time NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notify_heartbeat (
            sender      text PRIMARY KEY,
            pid         integer NOT NULL,
            started_at  timestamptz NOT NULL DEFAULT now(),
            beat_at     timestamptz NOT NULL DEFAULT now(),
            events      bigint NOT NULL DEFAULT 0,
            sent        bigint NOT NULL DEFAULT 0,
            failed      bigint NOT NULL DEFAULT 0
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_event_outbox ON case_event")
    op.execute("DROP FUNCTION IF EXISTS notify_outbox_enqueue()")
    for table in (
        "notify_heartbeat",
        "notify_quiet_hours",
        "notify_preference",
        "notify_delivery",
        "webhook_subscription",
        "notification",
        "notify_outbox",
        "notify_reminder",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("ALTER TABLE app_user DROP COLUMN IF EXISTS email")
