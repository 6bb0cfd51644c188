"""The admin pages and their API (issue 15 item 7): accounts, teams, rosters, categories,
Open311 keys and service points, managed on the same rules as the CLI and the imports —
every route calls the service function the CLI or the import calls."""
