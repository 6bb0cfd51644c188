"""Daily roll-ups of settled cases, so the cube holds only recent facts (issue 19 item 5).

What is where:
  * The cube (stats/cube.py) holds every case reported on or after the fold boundary
    (``case_rollup_state.folded_before``, moved to *today − stats_recent_days* in the
    district's time by the first sync of each day), plus every case before it that is
    still open (reported … parked): those change with time (overdue, parked) and are few.
  * ``case_daily_rollup`` (migration 0019_daily_rollups) holds, per unit code, category
    and local day of report before the boundary, the sums of the figures over the
    settled cases (closed, rejected, voided; duplicates count nowhere) and a histogram of
    their report → closure hours. Memory and start-up of an API process so depend on the
    recent window and the open cases, not on the years of history; the roll-up is read
    with SQL per request, over the days a request asks for.

Exact as cases change: a statement-level trigger on ``cases`` (with transition tables)
takes a changed case's old measures out of its day's row and puts the new ones in,
whenever the case was reported before the boundary — a case closed, rated, reopened or
voided years later moves between the roll-up and the cube in the same transaction. The
fold and the trigger share an advisory lock (exclusive / shared), so a write either
committed before a fold read the cases or sees the new boundary. ``case_rollup_add()``
(stats/rollup.sql) is the one place a case's measures become roll-up rows.

Medians over roll-ups: the close durations of rolled-up days are kept as counts in
``N_BINS`` = 58 bins (``CLOSE_BINS``): [0, 0.25 h), then four bins per doubling from
0.25 h to 4096 h (edge k = 0.25·2^((k−1)/4) h), then [4096 h, ∞). A median over a period
that reaches before the boundary is computed from those counts plus the recent cases'
hours binned the same way: the middle rank (or the two middle ranks, averaged, as the
exact median does) placed inside its bin by linear interpolation (:func:`hist_median`).
Error bound: each middle value's estimate lies in the same bin as the value, so it is off
by less than the bin's width, which is (2^(1/4) − 1) × its lower edge (0.25 h in bin 0);
hence |estimate − exact| ≤ max(0.25 h, (2^(1/4) − 1) × estimate) ≈ 19 % of it. A middle
value past 4096 h (≈ 171 days) is taken as 4096 h, outside the bound. Periods entirely
on or after the boundary are computed from the cube's facts exactly as before; counts
and rates are exact everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import UNIT_SCOPED, unrestricted
from gis_service.cases.categories import within_sql
from gis_service.settings import Settings
from gis_service.stats.cube import LEVEL_LENGTHS
from gis_service.timezone import local_date, zone_name

#: histogram bins of report → closure hours; the same edges as case_close_bin() in SQL
N_BINS = 58
BIN_BASE_HOURS = 0.25
BINS_PER_DOUBLING = 4
#: lower edge of each bin, hours (bin 0 starts at 0)
CLOSE_BINS: np.ndarray = np.concatenate(
    [[0.0], BIN_BASE_HOURS * 2.0 ** (np.arange(N_BINS - 1) / BINS_PER_DOUBLING)]
)
#: the relative error bound of a histogram median (see the module's docstring)
MEDIAN_RELATIVE_ERROR = 2.0 ** (1 / BINS_PER_DOUBLING) - 1
MEDIAN_ABSOLUTE_ERROR_HOURS = BIN_BASE_HOURS

#: the roll-up's count columns: each is the figure of the same name summed over the
#: day's settled cases (``voided_accepted``: voided after acceptance, for resolution_rate)
MEASURES: tuple[str, ...] = (
    "reported",
    "accepted",
    "rejected",
    "closed",
    "voided",
    "voided_accepted",
    "closed_on_time",
    "closed_on_time_extended",
    "extended",
    "rework",
    "rated",
    "satisfied",
    "urges",
    "urges_replied",
)


def close_bin(hours: np.ndarray) -> np.ndarray:
    """The histogram bin of each duration (hours) — ``case_close_bin()`` in numpy."""
    h = np.asarray(hours, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 1 + np.floor(BINS_PER_DOUBLING * np.log2(np.maximum(h, 1e-12) / BIN_BASE_HOURS))
    k = np.where(h < BIN_BASE_HOURS, 0, np.minimum(k, N_BINS - 1))
    return k.astype(np.int64)


def histogram(hours: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """Per group (0..n-1), the counts of ``hours`` in the bins: shape (n, N_BINS)."""
    flat = np.bincount(group * N_BINS + close_bin(hours), minlength=n * N_BINS)
    return flat[: n * N_BINS].reshape(n, N_BINS)


def hist_median(hist: np.ndarray) -> float | None:
    """The median of the durations a histogram counts, as the exact median is defined
    (the middle one, or the mean of the two middle ones): each middle rank r is placed in
    the bin holding it, at lo + width × (r − below − ½) / count; None for an empty
    histogram. A middle rank in the last bin counts as its lower edge (4096 h)."""
    total = int(hist.sum())
    if total == 0:
        return None
    cum = np.cumsum(hist)

    def at(rank: int) -> float:
        k = int(np.searchsorted(cum, rank, side="left"))
        if k >= N_BINS - 1:
            return float(CLOSE_BINS[-1])
        below = cum[k] - hist[k]
        lo, hi = CLOSE_BINS[k], CLOSE_BINS[k + 1]
        return float(lo + (hi - lo) * (rank - below - 0.5) / hist[k])

    middle = [(total + 1) // 2] if total % 2 else [total // 2, total // 2 + 1]
    return round(sum(at(r) for r in middle) / len(middle), 4)


# ----------------------------------------------------------------------------- the fold


def boundary(settings: Settings) -> date:
    """The first day the cube keeps settled cases for: ``stats_recent_days`` before today
    (the district's local date)."""
    return local_date(settings) - timedelta(days=settings.stats_recent_days)


def fold(conn: Connection, settings: Settings) -> int:
    """Fold the days before :func:`boundary` into the roll-up if they are not yet (in the
    caller's transaction; commit it before reading). Returns the roll-up rows written,
    0 when there was nothing to do."""
    tz = zone_name(settings)
    state = conn.execute(text("SELECT folded_before, tz FROM case_rollup_state")).first()
    before = boundary(settings)
    if state and state.tz == tz and state.folded_before and state.folded_before >= before:
        return 0
    return int(
        conn.execute(
            text("SELECT case_rollup_fold(:tz, :before)"), {"tz": tz, "before": before}
        ).scalar_one()
    )


@dataclass(frozen=True)
class FoldPlan:
    """What a fold has to do: the local days ``[first, before)`` in zone ``tz`` (``first``
    is None when nothing is due), in ``steps`` — the exclusive end of each month's chunk."""

    tz: str
    first: date | None
    before: date
    steps: tuple[date, ...]


def fold_plan(conn: Connection, settings: Settings) -> FoldPlan:
    """The days a fold would add, cut at month ends: from the first day not folded yet
    (the first case's day when nothing is, or when the zone changed) up to
    :func:`boundary`."""
    tz = zone_name(settings)
    before = boundary(settings)
    state = conn.execute(text("SELECT folded_before, tz FROM case_rollup_state")).first()
    if state and state.tz == tz and state.folded_before:
        first = state.folded_before
    else:
        first = conn.execute(
            text("SELECT (min(reported_at) AT TIME ZONE :tz)::date FROM cases"), {"tz": tz}
        ).scalar()
        if first is None:  # no case at all: one step records the boundary
            return FoldPlan(tz, before, before, (before,))
    if first >= before:
        return FoldPlan(tz, None, before, ())
    steps = []
    d = first
    while d < before:
        d = min((d.replace(day=1) + timedelta(days=32)).replace(day=1), before)
        steps.append(d)
    return FoldPlan(tz, first, before, tuple(steps))


def fold_step(conn: Connection, plan: FoldPlan, until: date) -> int:
    """Fold the days of ``plan`` before ``until`` (one of its steps), in the caller's
    transaction: the same ``case_rollup_fold()`` as :func:`fold`, a month at a time so a
    long first fold (574 s at ten million cases) shows its progress and keeps what it did
    if stopped. Returns the roll-up rows written."""
    return int(
        conn.execute(
            text("SELECT case_rollup_fold(:tz, :before)"), {"tz": plan.tz, "before": until}
        ).scalar_one()
    )


# -------------------------------------------------------------------------- reading


def answerable(principal: Principal) -> bool:
    """Whether the roll-up can apply this viewer's jurisdiction (auth/scope.py
    ``case_mask``): all cases, or units at a level the cube indexes. Other viewers (a
    team, the public view, a building) are answered from the cases themselves."""
    if unrestricted(principal):
        return True
    return principal.role in UNIT_SCOPED and all(
        len(s) in LEVEL_LENGTHS.values() for s in principal.scopes
    )


@dataclass
class Sums:
    """Roll-up sums for ``n`` groups: each of :data:`MEASURES` (length n) and ``hist``
    (n × N_BINS)."""

    counts: dict[str, np.ndarray]
    hist: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> Sums:
        return cls({m: np.zeros(n, np.int64) for m in MEASURES}, np.zeros((n, N_BINS), np.int64))


@dataclass
class Grouped:
    units: Sums  # aligned with the unit codes asked for
    weeks: Sums  # week i starts on first_monday + 7 i
    total: Sums


def read(
    conn: Connection,
    principal: Principal,
    *,
    level: str,
    unit_codes: list[str],
    first_day: date,
    last_day: date,
    first_monday: date,
    weeks: int,
    category: str | None,
    unit: str | None,
) -> Grouped:
    """The roll-up's sums over the days ``first_day``..``last_day`` (all before the
    boundary), per unit of ``unit_codes`` (codes of ``level``), per week from
    ``first_monday`` and in total, for the cases ``principal`` may count (requires
    :func:`answerable`), of ``category`` (and its sub-categories) inside ``unit``."""
    n = LEVEL_LENGTHS[level]
    where = ["day BETWEEN :d0 AND :d1"]
    params: dict[str, Any] = {"d0": first_day, "d1": last_day, "monday": first_monday, "n": n}
    if category:
        cond, p = within_sql("category_code", category)
        where.append(cond)
        params.update(p)
    if unit:
        where.append("unit_code LIKE :unit_prefix")
        params["unit_prefix"] = unit + "%"
    if not unrestricted(principal):
        where.append("unit_code LIKE ANY(CAST(:scope_prefixes AS text[]))")
        params["scope_prefixes"] = [s + "%" for s in principal.scopes]
    inner = ", ".join(
        [f"sum({m})::bigint AS {m}" for m in MEASURES]
        + [f"sum(close_hist[{k + 1}])::bigint AS h{k}" for k in range(N_BINS)]
    )
    outer = ", ".join(
        f"coalesce(sum({c}), 0)::bigint AS {c}"
        for c in [*MEASURES, *(f"h{k}" for k in range(N_BINS))]
    )
    # one pass over the roll-up rows per (unit, week), then the three groupings over
    # those few rows (GROUPING SETS straight over the rows took three passes: 3.5x slower)
    sql = f"""
        SELECT GROUPING(u) AS no_unit, GROUPING(w) AS no_week, u, w, {outer}
          FROM (SELECT CASE WHEN length(unit_code) >= :n THEN left(unit_code, :n) END AS u,
                       (day - CAST(:monday AS date)) / 7 AS w, {inner}
                  FROM case_daily_rollup
                 WHERE {" AND ".join(where)}
                 GROUP BY 1, 2) x
         GROUP BY GROUPING SETS ((u), (w), ())"""
    slot = {code: i for i, code in enumerate(unit_codes)}
    out = Grouped(Sums.zeros(len(unit_codes)), Sums.zeros(weeks), Sums.zeros(1))
    for row in conn.execute(text(sql), params).mappings():
        if row["no_unit"] and row["no_week"]:
            target, i = out.total, 0
        elif not row["no_unit"]:
            target, i = out.units, slot.get(row["u"])
            if i is None:
                continue
        else:
            target, i = out.weeks, int(row["w"])
        for m in MEASURES:
            target.counts[m][i] = row[m]
        target.hist[i] = [row[f"h{k}"] for k in range(N_BINS)]
    return out
