"""Backup and restore (issue 14, item 6): the database, the case photos and the token
signing key, together, with a manifest and checksums; WAL archiving for point-in-time
recovery.

- ``manifest.py``: the manifest (what a backup set holds) and its checksums, verified
  before a restore touches anything;
- ``pgtools.py``: the PostgreSQL client programs and how they connect;
- ``dump.py``: ``gis-service backup`` (pg_dump, photos, key; ``--base``: pg_basebackup);
- ``restore.py``: ``gis-service restore`` (pg_restore into an empty database; ``--pitr``:
  a base backup replayed from the WAL archive up to a moment);
- ``wal.py``: continuous archiving of the WAL (``db up --archive-wal DIR``).

docs/backup.md walks through every step.
"""
