"""Roll-ups of settled cases, so the cube holds only recent facts (issue 19 item 5).

What is where:
  * The cube (stats/cube.py) holds every case reported on or after the fold boundary
    (``case_rollup_state.folded_before``, moved to *today − stats_recent_days* in the
    district's time by the first sync of each day), plus every case before it that is
    still open (reported … parked): those change with time (overdue, parked) and are few.
  * ``case_rollup`` (migration 0021_rollup_tiers) holds, for the days before the boundary,
    the sums of the figures over the settled cases (closed, rejected, voided; duplicates
    count nowhere) and a histogram of their report → closure hours, in *tiers*
    (``case_rollup_tier``, :class:`Tier`): periods of 1, 7 or 28 days (counted from
    Monday :data:`ANCHOR`, so weeks start on Mondays as the statistics' weeks do and four
    weeks nest in 28 days), unit codes cut to a level's length (district 6, subdistrict 9,
    community 12, grid 14) and categories kept or summed. Tier 1 — a day, a grid, a
    category — answers anything; the others answer most requests with far fewer rows.
    Memory and start-up of an API process so depend on the recent window and the open
    cases, not on the years of history; the roll-up is read with SQL per request.

Reading few rows (:func:`read`, :func:`plan`): the weeks and the total of an answer need
unit codes only as deep as its filters (the unit asked for, the viewer's scopes), the units
as deep as the level; categories only when one is asked for. Each is read from the
shallowest tier that fits, whole 28-day periods in the middle, then whole weeks, then days
at the ends. The unit code sorts bytewise (COLLATE "C"), so a unit's prefix is a range of
the primary key. Measured on the city of benchmarks/city_scale.py (twelve districts, five
years), the first request of a process for the last 52 weeks (39 of them rolled up):

  ====================  =====================  ========================  ================
  request               rows before → after    rows before → after       first request,
                        (1 M cases)            (10 M cases)              1 M, ms
  ====================  =====================  ========================  ================
  city by district      151,445 → 660          1,489,299 → 660           ~800 → ~70
  金水区 by grid        16,901 → 5,149         166,752 → 8,170           ~280 → ~90
  ====================  =====================  ========================  ================

(before: ``case_daily_rollup`` of 0019, a row per building, category and day; times
in-process on a shared, loaded machine, medians of three runs; the 10 M rows counted on
that city's roll-up.) A category asked for below the district level reads day rows of
grids by category, about a row per case of the category (city by community, one
category: 43 k rows at 1 M, ~350 ms): a 28-day tier of communities by category saves
little at 1 M. The price is storage: at 1 M cases 4.49 M rows in 17 tiers, 1.85 GB,
against 0.94 M rows, 0.41 GB per building and day (the dense 58-bin histogram is most of
a row); the base tier alone holds about a row per case. And writing: a case is a row in
every tier, so folding a day took 0.41 s at 1 M (0.11 s per building and day).

Exact as cases change: a statement-level trigger on ``cases`` (with transition tables)
takes a changed case's old measures out of its rows (one per tier) and puts the new ones in,
whenever the case was reported before the boundary — a case closed, rated, reopened or
voided years later moves between the roll-up and the cube in the same transaction. The
fold and the trigger share an advisory lock (exclusive / shared), so a write either
committed before a fold read the cases or sees the new boundary (the lock keeps its name
of 0019, ``hashtext('case_daily_rollup')``). ``case_rollup_add()`` (stats/rollup.sql) is
the one place a case's measures become roll-up rows, in every tier at once.

Medians over roll-ups: the close durations of rolled-up days are kept as counts in
``N_BINS`` = 58 bins (``CLOSE_BINS``): [0, 0.25 h), then four bins per doubling from
0.25 h to 4096 h (edge k = 0.25·2^((k−1)/4) h), then [4096 h, ∞). A median over a period
that reaches before the boundary is computed from those counts plus the recent cases'
hours binned the same way: the middle rank (or the two middle ranks, averaged, as the
exact median does) placed inside its bin by linear interpolation (:func:`hist_median`).
Error bound: each middle value's estimate lies in the same bin as the value, so it is off
by less than the bin's width, which is (2^(1/4) − 1) × its lower edge (0.25 h in bin 0);
hence |estimate − exact| ≤ max(0.25 h, (2^(1/4) − 1) × estimate) ≈ 19 % of it. A middle
value past 4096 h (≈ 171 days) is taken as 4096 h, outside the bound. Every tier sums the
same per-case bins, so which tiers a request reads changes no count and no median. Periods
entirely on or after the boundary are computed from the cube's facts exactly as before;
counts and rates are exact everywhere.
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
    """The histogram bin of each duration (hours) — ``case_close_bin()`` in numpy: the
    last edge of :data:`CLOSE_BINS` at or below it (a duration on an edge opens its bin),
    0 below the first."""
    h = np.asarray(hours, dtype=np.float64)
    k = np.searchsorted(CLOSE_BINS, h, side="right") - 1
    return np.maximum(k, 0).astype(np.int64)


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
    caller's transaction; commit it before reading). Returns the roll-up rows written (in
    every tier), 0 when there was nothing to do."""
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
    rows: int = 0  # roll-up rows read


#: periods of a tier are counted from this Monday (``case_rollup_period()``, rollup.sql):
#: a week starts on a Monday, as the statistics' weeks do, and 28 days are four weeks
ANCHOR = date(2000, 1, 3)


@dataclass(frozen=True)
class Tier:
    """A grain of ``case_rollup`` (a row of ``case_rollup_tier``, migration
    0021_rollup_tiers): periods of ``days`` days (1, 7 or 28, counted from
    :data:`ANCHOR`), unit codes cut to ``depth`` characters, categories kept or (``by_category``
    false) summed under ''."""

    tier: int
    days: int
    depth: int
    by_category: bool


def tiers(conn: Connection) -> list[Tier]:
    """The tiers the roll-up keeps (a handful of rows)."""
    rows = conn.execute(text("SELECT tier, days, depth, by_category FROM case_rollup_tier"))
    return [Tier(*r) for r in rows]


def pick(all_tiers: list[Tier], days: int, depth: int, category: bool) -> Tier | None:
    """The tier of periods of ``days`` with the fewest rows that can answer: unit codes at
    least ``depth`` long (the level counted by, the unit and the scopes asked for),
    categories kept when a ``category`` is asked for; the shallowest such, over all
    categories if it may be. None when no tier of that period fits."""
    fits = [
        t
        for t in all_tiers
        if t.days == days and t.depth >= depth and (t.by_category or not category)
    ]
    return min(fits, key=lambda t: (t.depth, t.by_category), default=None)


def plan(
    all_tiers: list[Tier],
    first_day: date,
    last_day: date,
    depth: int,
    category: bool,
    longest: int = 28,
) -> list[tuple[Tier, date, date]]:
    """Which rows cover the days ``first_day``..``last_day`` each once: (tier, first period,
    last period) parts, the whole periods of the longest fitting tier (at most ``longest``
    days) in the middle, the rest at each end from the next shorter one, down to days.
    Raises LookupError when no day tier fits (the base, tier 1, fits every request
    :func:`answerable` admits)."""
    ladder = [
        t
        for days in sorted({t.days for t in all_tiers if t.days <= longest}, reverse=True)
        if (t := pick(all_tiers, days, depth, category)) is not None
    ]
    if not ladder or ladder[-1].days != 1:
        raise LookupError(f"no roll-up tier of days with depth ≥ {depth}")
    return _ladder(ladder, first_day, last_day)


def _ladder(ladder: list[Tier], first: date, last: date) -> list[tuple[Tier, date, date]]:
    tier, rest = ladder[0], ladder[1:]
    if not rest:
        return [(tier, first, last)]
    n = tier.days
    start = first + timedelta(days=-(first - ANCHOR).days % n)
    end = last + timedelta(days=1)
    end -= timedelta(days=(end - ANCHOR).days % n + n)  # the last whole period's start
    if start > end:
        return _ladder(rest, first, last)
    parts = [(tier, start, end)]
    if first < start:
        parts = _ladder(rest, first, start - timedelta(days=1)) + parts
    if end + timedelta(days=n) <= last:
        parts += _ladder(rest, end + timedelta(days=n), last)
    return parts


def _sums(
    conn: Connection,
    parts: list[tuple[Tier, date, date]],
    key: str,
    where: list[str],
    params: dict[str, Any],
) -> tuple[dict[Any, tuple[dict[str, int], np.ndarray]], int]:
    """Per value of the SQL expression ``key``, the sums of the rows ``parts`` name that
    pass ``where``: {key: (measure sums, histogram)}, and the rows read."""
    params = dict(params)
    periods = []
    for i, (tier, p0, p1) in enumerate(parts):
        periods.append(f"(tier = :t{i} AND period BETWEEN :p{i}a AND :p{i}b)")
        params.update({f"t{i}": tier.tier, f"p{i}a": p0, f"p{i}b": p1})
    columns = ", ".join(
        ["count(*) AS n_rows"]
        + [f"sum({m})::bigint AS {m}" for m in MEASURES]
        + [f"sum(close_hist[{k + 1}])::bigint AS h{k}" for k in range(N_BINS)]
    )
    sql = f"""
        SELECT {key} AS key, {columns}
          FROM case_rollup
         WHERE ({" OR ".join(periods)}) {"".join(" AND " + w for w in where)}
         GROUP BY 1"""
    out, rows = {}, 0
    for row in conn.execute(text(sql), params).mappings():
        rows += row["n_rows"]
        hist = np.array([row[f"h{k}"] for k in range(N_BINS)], np.int64)
        out[row["key"]] = ({m: row[m] for m in MEASURES}, hist)
    return out, rows


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
    ``first_monday`` (a Monday) and in total, for the cases ``principal`` may count
    (requires :func:`answerable`), of ``category`` (and its sub-categories) inside
    ``unit``. Reads the coarsest tiers that answer (:func:`plan`): the weeks and the total
    from unit codes only as deep as the unit and the viewer's scopes need (whole weeks,
    days at the ends), the units from codes as deep as the level (whole four weeks, then
    weeks, then days)."""
    n = LEVEL_LENGTHS[level]
    scopes = [] if unrestricted(principal) else [len(s) for s in principal.scopes]
    depth = max([len(unit or ""), *scopes], default=0)
    all_tiers = tiers(conn)
    params: dict[str, Any] = {"monday": first_monday, "n": n}
    where = []
    if category:
        cond, p = within_sql("category_code", category)
        where.append(cond)
        params.update(p)
    if unit:
        where.append("unit_code LIKE :unit_prefix")
        params["unit_prefix"] = unit + "%"
    if scopes:
        where.append("unit_code LIKE ANY(CAST(:scope_prefixes AS text[]))")
        params["scope_prefixes"] = [s + "%" for s in principal.scopes]
    out = Grouped(Sums.zeros(len(unit_codes)), Sums.zeros(weeks), Sums.zeros(1))
    # the weeks (and so the total) need unit codes only as deep as the filters
    per_week, rows_w = _sums(
        conn,
        plan(all_tiers, first_day, last_day, depth, bool(category), longest=7),
        "(period - CAST(:monday AS date)) / 7",
        where,
        params,
    )
    for w, (counts, hist) in per_week.items():
        for m in MEASURES:
            out.weeks.counts[m][w] = counts[m]
        out.weeks.hist[w] = hist
    for m in MEASURES:
        out.total.counts[m][0] = out.weeks.counts[m].sum()
    out.total.hist[0] = out.weeks.hist.sum(axis=0)
    # the units: codes cut to the level (a case located above it counts in no unit)
    per_unit, rows_u = _sums(
        conn,
        plan(all_tiers, first_day, last_day, max(n, depth), bool(category)),
        "CASE WHEN length(unit_code) >= :n THEN left(unit_code, :n) END",
        where,
        params,
    )
    for i, code in enumerate(unit_codes):
        if code in per_unit:
            counts, hist = per_unit[code]
            for m in MEASURES:
                out.units.counts[m][i] = counts[m]
            out.units.hist[i] = hist
    out.rows = rows_w + rows_u
    return out
