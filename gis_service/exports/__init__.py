"""Exports (issue 16 item 3): cases, the resolution statistics, the one-kilometre gaps and
the living circle as CSV, XLSX, GeoPackage and GeoJSON, from the API, the CLI and the
desk; large ones as jobs. columns.py declares what an export holds, tabular.py and geo.py
write it, cases.py and figures.py read it through the rules' own homes (auth/scope.py,
cases/report.sql, stats/resolution.py, access/coverage.py), service.py ties a request to
its writer, jobs.py runs the large ones. See docs/exports.md."""
