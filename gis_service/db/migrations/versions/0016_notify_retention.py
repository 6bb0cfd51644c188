"""Notification retention (issue 16 item 2): indexes that let the sender's pruning
(gis_service/notify/sender.py ``Sender.prune``) find old rows without reading the tables.

* ``notify_outbox_done_idx``: done outbox rows by ``done_at`` (older than
  ``notify_retention_days`` are deleted);
* ``notify_delivery_sent_idx``: sent deliveries by ``sent_at`` (likewise). Dead letters
  already have ``notify_delivery_dead_idx`` on ``updated_at``
  (``notify_dead_retention_days``).

Revision ID: 0016_notify_retention
Revises: 0015
Create Date: 2026-11-30
"""

from alembic import op

revision = "0016_notify_retention"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX notify_outbox_done_idx ON notify_outbox (done_at) WHERE done_at IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX notify_delivery_sent_idx ON notify_delivery (sent_at) WHERE status = 'sent'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS notify_delivery_sent_idx")
    op.execute("DROP INDEX IF EXISTS notify_outbox_done_idx")
