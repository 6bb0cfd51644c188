"""The database's routine upkeep, run by every API process as time passes (the statistics
cube's periodic check, stats/cube.py, at most once a minute) so that no timer outside the
service has to be remembered:

* the case history's partitions for the current month and the next ones
  (cases/partitions.py ``months_around``): a report in a month without its partition would
  be refused, so they are made ahead of time here as well as by ``gis-service db migrate``
  and ``gis-service partitions ensure``;
* the daily roll-up's fold of the days that left the recent window (stats/rollup.py).

Both are idempotent and cheap when there is nothing to do (a few catalogue lookups); both
write, so on a read-only standby they fail and the primary's processes do them.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gis_service.settings import Settings


def run(conn: Connection, settings: Settings) -> int:
    """Ensure the coming months' partitions and fold the roll-up, in the caller's
    transaction; returns the roll-up rows written (0 when nothing was due). Raises what
    the database raises (read-only transaction on a standby, a lock timeout)."""
    from gis_service.cases import partitions
    from gis_service.stats import rollup

    partitions.ensure(conn, partitions.months_around(conn))
    return rollup.fold(conn, settings)
