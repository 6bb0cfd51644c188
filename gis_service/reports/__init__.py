"""The monthly report a unit sends to the level above (issue 16 item 4): its figures
(figures.py), the printable page and its PDF (page.py, pdf.py), the frozen versions with
their drill-down and diffs (versions.py), the API (routes.py) and the desk page
(desk_page.py)."""
