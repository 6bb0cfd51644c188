"""The district code in the keys of the inbox and the deliveries, so they distribute on
Citus by district co-located with the cases (issue 19 item 7; docs/scale.md "What in our
schema would stop Citus", item 4; the placement of every table is
gis_service/db/distribution.py).

* ``district_code char(6) NOT NULL`` on ``notification`` and ``notify_delivery``: the
  district of the case the notification is about (every notification comes from a case's
  event or reminder). So the fan-out, which reads the outbox row, the event or reminder
  and the case and writes the inbox rows and deliveries, is one single-shard transaction;
  reading an inbox asks the shards of the reader's districts. Filled from the case, or
  where the case has been archived from the outbox row the notification came from (the
  outbox keeps every source's district); a row with neither is refused (RuntimeError
  naming how many: it cannot be placed).
* Every unique key gets ``district_code`` appended (``notification (id, district_code)``,
  ``(user_id, kind, source, district_code)``; the deliveries' keys likewise), and the
  delivery's key to its notification becomes composite. ``webhook_subscription``, which
  deliveries reference, becomes a reference table (distribution.py): no change here.

Revision ID: 0023_notify_keys
Revises: 0022_walk_keys
Create Date: 2026-12-02
"""

from alembic import op
from sqlalchemy import text

from gis_service.db.district_keys import (
    COLUMN,
    composite_keys,
    drop_keys,
    from_parents,
    rekey,
    single_keys,
)
from gis_service.db.district_keys import family as family_of

revision = "0023_notify_keys"
down_revision = "0022_walk_keys"
branch_labels = None
depends_on = None

ROOT = "notification"

#: the district of a row naming its source ``event:N`` / ``reminder:N``, from the outbox
#: row that source came through (the outbox is keyed by district since 0020)
FROM_OUTBOX = f"""
(SELECT o.{COLUMN} FROM notify_outbox o
  WHERE (t.source LIKE 'event:%' AND o.event_id = CAST(split_part(t.source, ':', 2) AS bigint))
     OR (t.source LIKE 'reminder:%'
         AND o.reminder_id = CAST(split_part(t.source, ':', 2) AS bigint))
  LIMIT 1)
"""


def _fill(conn, table: str, source: tuple[str, str, str]) -> None:
    """The column from ``source`` (the case, the notification), else from the outbox row;
    a row with neither is refused."""
    from_parents(
        conn,
        table,
        [source],
        execute=op.execute,
        also=[f"UPDATE {table} t SET {COLUMN} = {FROM_OUTBOX} WHERE t.{COLUMN} IS NULL"],
    )
    left = conn.execute(text(f"SELECT count(*) FROM {table} WHERE {COLUMN} IS NULL")).scalar()
    if left:
        raise RuntimeError(
            f"{left} {table} rows name no case and no outbox row: their district is unknown"
        )
    op.execute(f"ALTER TABLE {table} ALTER COLUMN {COLUMN} SET NOT NULL")


def upgrade() -> None:
    conn = op.get_bind()
    members = family_of(conn, ROOT)
    drop_keys(members, execute=op.execute)
    _fill(conn, "notification", ("cases", "id", "case_id"))
    _fill(conn, "notify_delivery", ("notification", "id", "notification_id"))
    rekey(conn, members, with_district=True, execute=op.execute)
    composite_keys(members, execute=op.execute)


def downgrade() -> None:
    """The keys of 0014: one-column keys, unique keys without the district."""
    conn = op.get_bind()
    members = family_of(conn, ROOT, keyed=True)
    drop_keys(members, execute=op.execute)
    rekey(conn, members, with_district=False, execute=op.execute)
    for table in members:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {COLUMN}")
    single_keys(members, execute=op.execute)
