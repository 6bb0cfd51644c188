"""How long and how large one request's analysis may be (OWASP API4:2023), decided per
analysis (docs/http.md, "Limits"):

- siting (``access/siting.py``): refused up front (422 ``analysis_too_large``) when the
  building–candidate pairs within walking reach exceed ``Settings.siting_max_pairs`` — the
  size of the integer programme, known before it is solved (measured on the demo city:
  175,000 pairs solve in about 15 s, 785,000 do not finish in 60 s); the walk from each
  building and HiGHS run under a ``Deadline`` of ``analysis_max_seconds``, past which the
  request is refused the same way rather than answered with a non-optimal "exact" result.
- an isochrone (``access/engine.py``): its raster may hold at most ``MAX_GRID_CELLS``
  cells, decided from the distance and the asked resolution before anything is drawn.
- the reach, gaps and living-circle figures (``access/coverage.py``) are SQL over stored
  distances: they run under ``SET LOCAL statement_timeout`` (``statement_timeout``); a
  cancelled statement (SQLSTATE 57014) answers 422 ``analysis_too_large``
  (``api/handlers.py``), never 500.
- the building distances and the service circles and their unions are caches of stored
  data, recomputed in the background worker (``access/jobs.py``): past
  ``import_wait_seconds`` the request answers 202 with a status URL, and the job goes on.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import Connection, text

from gis_service.errors import AnalysisTooLarge

#: the largest isochrone raster: 4096 × 4096 cells (16 M booleans and 128 MB of float64
#: distances in scipy's transform); the default resolution draws 256 × 256
MAX_GRID_CELLS = 4096 * 4096


class Deadline:
    """A run-time bound of ``seconds`` from now; ``check`` raises AnalysisTooLarge past it."""

    def __init__(self, seconds: float, setting: str = "GIS_ANALYSIS_MAX_SECONDS") -> None:
        self.seconds = seconds
        self.setting = setting
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left (never below 0)."""
        return max(0.0, self.end - time.monotonic())

    def check(self, what: str) -> None:
        if time.monotonic() > self.end:
            raise self.exceeded(what)

    def exceeded(self, what: str) -> AnalysisTooLarge:
        return AnalysisTooLarge(
            f"analysis too large: {what} ran longer than {self.seconds:g} s ({self.setting}) "
            "and was stopped; narrow the question and ask again",
            limit=self.seconds,
        )


def statement_timeout(conn: Connection, seconds: float) -> None:
    """Bound every later statement of ``conn``'s current transaction to ``seconds``
    (``SET LOCAL statement_timeout``, PostgreSQL §20.11: it ends with the transaction, so
    the pooled connection keeps no setting). A statement past it is cancelled with SQLSTATE
    57014, which answers 422 ``analysis_too_large`` (api/handlers.py)."""
    conn.execute(
        text("SELECT set_config('statement_timeout', :ms, true)"),
        {"ms": f"{max(1, round(seconds * 1000))}ms"},
    )


def check_siting_pairs(buildings: int, candidates: int, pairs: int, limit: int, max_m: float):
    """Refuse a siting problem past ``limit`` building–candidate pairs within reach (the
    integer programme's size), before it is solved: 422 ``analysis_too_large``."""
    if pairs > limit:
        raise AnalysisTooLarge(
            f"analysis too large: {buildings:,} buildings × {candidates:,} candidates have "
            f"{pairs:,} pairs within {max_m:,.0f} m walk; at most {limit:,} are solved in one "
            "request (GIS_SITING_MAX_PAIRS): lower max_m, site for a narrower kind or "
            "category, or supply fewer candidates",
            field="max_m",
            count=pairs,
            limit=limit,
        )


def check_grid(distance_m: float, walk_off_m: float, resolution_m: float) -> None:
    """Refuse an isochrone whose raster would exceed ``MAX_GRID_CELLS`` (decided from the
    distance, the walk-off and the asked resolution): 422 naming ``resolution_m``."""
    side = (2 * distance_m + 2 * walk_off_m) / resolution_m + 5
    cells = side * side
    if cells > MAX_GRID_CELLS:
        # rounded up to a decimetre, so the resolution offered is itself accepted
        finest = math.ceil((2 * distance_m + 2 * walk_off_m) / (MAX_GRID_CELLS**0.5 - 5) * 10) / 10
        raise AnalysisTooLarge(
            f"analysis too large: a {distance_m:,.0f} m isochrone traced every "
            f"{resolution_m:g} m needs {cells:,.0f} grid cells; at most {MAX_GRID_CELLS:,} "
            f"are drawn: ask for resolution_m of at least {finest:.1f}",
            field="resolution_m",
            count=round(cells),
            limit=MAX_GRID_CELLS,
        )
