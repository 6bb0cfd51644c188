"""The audit log of privileged changes (issue 14 item 5): which tables are audited and how
(tables.py), the triggers that record them (triggers.py), who is acting (actor.py), and
reading and exporting the log (log.py, export.py). See docs/audit.md."""
