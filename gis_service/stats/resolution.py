"""Resolution statistics per unit and per week, computed from the case cube.

Cohort definitions (cases reported in the period, duplicates excluded), so a period's
figures settle as its cases close:
  reported            cases reported in the period
  accepted            of those, accepted (立案)
  closed              of those, closed (结案)
  voided              of those, voided (作废); they leave resolution_rate's denominator
  resolution_rate     closed / (accepted − voided after acceptance) (办结率)
  closed_on_time      closed by the deadline acceptance set (按期结案), extended or not
  closed_on_time_extended  closed after that deadline but by the extended one (延期后按期)
  extended            cases whose deadline an approved extension moved (延期)
  on_time_rate        closed_on_time / closed
  on_time_rate_extended  (closed_on_time + closed_on_time_extended) / closed
  rework_rate         closed after at least one failed check (返工) / closed
  median_hours_to_close  report → closure, over closed cases
  satisfaction_rate   rated 4 or 5 / rated (满意率)
  overdue_now         accepted, not closed, not parked and past the deadline now
  parked_now          parked now (挂账), until its review date: out of overdue_now
  urges               urges sent to the teams (督办)
  urges_replied       of those, answered by the team (督办回复)
  urges_unreplied     urges − urges_replied

Rules: GB/T 30428 (数字化城市管理信息系统) counts extended and parked cases apart from
the on-time and overdue figures; the loop's statuses are cases/workflow.py's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import case_mask, scope_key, units_visible
from gis_service.cases.categories import within
from gis_service.cases.workflow import Status
from gis_service.errors import InvalidInput
from gis_service.settings import Settings
from gis_service.stats import rollup
from gis_service.stats.cube import EPOCH, LEVEL_LENGTHS, STATUS_CODE, CaseCube, Facts
from gis_service.timezone import local_date

DEFINITIONS = {
    line.split()[0]: " ".join(line.split()[1:])
    for line in __doc__.split("\n\n")[1].splitlines()[1:]
    if line.strip()
}
CLOSED = STATUS_CODE[Status.closed]
VOIDED = STATUS_CODE[Status.voided]
PARKED = STATUS_CODE[Status.parked]
REJECTED = STATUS_CODE[Status.rejected]
DUPLICATE = STATUS_CODE[Status.duplicate]


#: the default period of every figure: 52 whole weeks
DEFAULT_PERIOD_DAYS = 364


@dataclass
class StatsQuery:
    level: str
    date_from: date
    date_to: date
    category: str | None = None
    unit: str | None = None

    @classmethod
    def default_period(
        cls,
        settings: Settings,
        level: str,
        date_from: date | None = None,
        date_to: date | None = None,
        **filters: Any,
    ) -> StatsQuery:
        """The query with the default period filled in: the 52 weeks (364 days) that end
        today in the district's time (``GIS_TIMEZONE``), or that end on ``date_to``."""
        last = date_to or local_date(settings)
        first = date_from or last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        return cls(level=level, date_from=first, date_to=last, **filters)

    def check(self) -> None:
        if self.level not in LEVEL_LENGTHS:
            raise InvalidInput(f"level must be one of {', '.join(LEVEL_LENGTHS)}", field="level")
        if self.date_from > self.date_to:
            raise InvalidInput("from is after to", field="from")
        if self.unit and len(self.unit) > LEVEL_LENGTHS[self.level]:
            raise InvalidInput(f"unit {self.unit} lies below the {self.level} level", field="unit")


def _rate(num: np.ndarray, den: np.ndarray) -> list[float | None]:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 0, num / np.maximum(den, 1), np.nan)
    return [None if np.isnan(v) else round(float(v), 4) for v in r]


#: each figure that counts cases and the flag of ``_Flags`` it counts (None: every case
#: selected) — the one mapping the counts and the drill-down ids (``case_ids``) share
COUNTED: dict[str, str | None] = {
    "reported": None,
    "accepted": "accepted",
    "rejected": "rejected",
    "closed": "closed",
    "voided": "voided",
    "closed_on_time": "on_time",
    "closed_on_time_extended": "on_time_extended",
    "extended": "extended",
    "rework": "rework",
    "rated": "rated",
    "satisfied": "satisfied",
    "overdue_now": "overdue",
    "parked_now": "parked",
}


@dataclass
class _Flags:
    """Per-case booleans, hours and counts for the selected cases, computed once per
    request and shared by the three groupings (units, weeks, total)."""

    accepted: np.ndarray
    rejected: np.ndarray
    closed: np.ndarray
    voided: np.ndarray
    voided_accepted: np.ndarray
    on_time: np.ndarray
    on_time_extended: np.ndarray
    extended: np.ndarray
    rework: np.ndarray
    rated: np.ndarray
    satisfied: np.ndarray
    overdue: np.ndarray
    parked: np.ndarray
    urges: np.ndarray
    urges_replied: np.ndarray
    close_hours: np.ndarray

    @classmethod
    def of(cls, f: Facts, mask: np.ndarray, now: float) -> _Flags:
        status = f.status_now(now, mask)  # a parked case past its review is back
        closed = status == CLOSED
        voided = status == VOIDED
        rating = f.rating[mask]
        return cls(
            accepted=f.accepted[mask],
            rejected=status == REJECTED,
            closed=closed,
            voided=voided,
            voided_accepted=voided & f.accepted[mask],
            on_time=closed & f.on_time[mask],
            on_time_extended=closed & f.on_time_extended[mask],
            extended=f.extended[mask],
            rework=closed & f.rework[mask],
            rated=rating > 0,
            satisfied=rating >= 4,
            overdue=f.overdue_now(now, mask, status),
            parked=status == PARKED,
            urges=f.urges[mask],
            urges_replied=f.urges_replied[mask],
            close_hours=f.close_hours[mask],
        )

    def subset(self, keep: np.ndarray) -> _Flags:
        return _Flags(**{k: v[keep] for k, v in vars(self).items()})

    def counted(self) -> dict[str, np.ndarray | None]:
        """Each figure of :data:`COUNTED` and the cases it counts (None: all of them)."""
        return {
            figure: None if flag is None else getattr(self, flag)
            for figure, flag in COUNTED.items()
        }


def _figures(
    group: np.ndarray,
    n: int,
    fl: _Flags,
    medians: list[float | None] | None = None,
    extra: rollup.Sums | None = None,
) -> list[dict[str, Any]]:
    """All figures for ``n`` groups; ``group`` maps each selected case to 0..n-1.
    ``extra``: the roll-up's sums for the same groups (days before the fold boundary),
    added to the counts; a group's median then comes from the histograms
    (:func:`_mixed_medians`)."""

    def count(sel: np.ndarray) -> np.ndarray:
        return np.bincount(group[sel], minlength=n)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=n).astype(np.int64)

    c = {
        name: np.bincount(group, minlength=n) if sel is None else count(sel)
        for name, sel in fl.counted().items()
    }
    voided_accepted = count(fl.voided_accepted)
    urges, replied = total(fl.urges), total(fl.urges_replied)
    if extra is not None:
        c = {name: v + extra.counts[name] if name in extra.counts else v for name, v in c.items()}
        voided_accepted = voided_accepted + extra.counts["voided_accepted"]
        urges, replied = urges + extra.counts["urges"], replied + extra.counts["urges_replied"]
    accepted, closed, on_time = c["accepted"], c["closed"], c["closed_on_time"]
    rework, rated, satisfied = c["rework"], c["rated"], c["satisfied"]
    if medians is None:
        medians = _medians(group[fl.closed], fl.close_hours[fl.closed], n)
        if extra is not None:
            medians = _mixed_medians(
                medians, group[fl.closed], fl.close_hours[fl.closed], n, extra.hist
            )
    resolution = _rate(closed, accepted - voided_accepted)
    on_time_rate = _rate(on_time, closed)
    on_time_rate_ext = _rate(on_time + c["closed_on_time_extended"], closed)
    rework_rate, satisfaction = _rate(rework, closed), _rate(satisfied, rated)
    return [
        {
            **{name: int(counts[i]) for name, counts in c.items()},
            "urges": int(urges[i]),
            "urges_replied": int(replied[i]),
            "urges_unreplied": int(urges[i] - replied[i]),
            "resolution_rate": resolution[i],
            "on_time_rate": on_time_rate[i],
            "on_time_rate_extended": on_time_rate_ext[i],
            "rework_rate": rework_rate[i],
            "median_hours_to_close": medians[i],
            "satisfaction_rate": satisfaction[i],
        }
        for i in range(n)
    ]


def _mixed_medians(
    exact: list[float | None], group: np.ndarray, hours: np.ndarray, n: int, hist: np.ndarray
) -> list[float | None]:
    """Per group: the exact median when the roll-up closed none of its cases, else the
    histogram median of the roll-up's counts plus the recent hours binned alike (error
    bound: stats/rollup.py)."""
    if not hist.any():
        return exact
    combined = hist + rollup.histogram(hours, group, n)
    return [rollup.hist_median(combined[g]) if hist[g].any() else exact[g] for g in range(n)]


def _medians(group: np.ndarray, hours: np.ndarray, n: int) -> list[float | None]:
    """Exact medians per group with one sort: key = group * 1e6 + hours."""
    if len(group) == 0:
        return [None] * n
    hours = np.clip(hours, 0, 999_999.0)
    keys = np.sort(group.astype(np.float64) * 1e6 + hours)
    counts = np.bincount(group, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out: list[float | None] = []
    for g in range(n):
        c = counts[g]
        if c == 0:
            out.append(None)
            continue
        lo, hi = keys[starts[g] + (c - 1) // 2], keys[starts[g] + c // 2]
        out.append(round(float((lo + hi) / 2 - g * 1e6), 4))
    return out


#: the figures that count cases (not urges, not rates): each drills down to its cases
CASE_FIGURES: tuple[str, ...] = tuple(COUNTED)
#: each rate's numerator and denominator figures (the module's definitions); for
#: resolution_rate the denominator is accepted minus the cases voided after acceptance
RATE_PARTS: dict[str, tuple[str, str]] = {
    "resolution_rate": ("closed", "accepted"),
    "on_time_rate": ("closed_on_time", "closed"),
    "on_time_rate_extended": ("closed_on_time", "closed"),
    "rework_rate": ("rework", "closed"),
    "satisfaction_rate": ("satisfied", "rated"),
}


def _case_ids(ids: np.ndarray, group: np.ndarray, n: int, fl: _Flags) -> list[dict]:
    """Per group, the ids of the cases behind each of :data:`CASE_FIGURES` — the same
    flags :func:`_figures` counts, so a figure and its list never disagree."""
    out: list[dict] = [{} for _ in range(n)]
    for name, keep in fl.counted().items():
        g, i = (group, ids) if keep is None else (group[keep], ids[keep])
        order = np.lexsort((i, g))
        g, i = g[order], i[order]
        bounds = np.searchsorted(g, np.arange(n + 1))
        for k in range(n):
            out[k][name] = i[bounds[k] : bounds[k + 1]].tolist()
    return out


def resolution(
    conn: Connection,
    cube: CaseCube,
    principal: Principal,
    q: StatsQuery,
    case_ids: bool = False,
) -> dict[str, Any]:
    """The figures of the module's definitions per unit of ``q.level``, per week and in
    total. ``case_ids``: also the ids of the cases behind each of :data:`CASE_FIGURES`,
    under ``"case_ids"`` in every unit and in ``totals`` (reports drill down with them)."""
    q.check()
    started = time.perf_counter()
    f = cube.facts()
    units = _units(conn, principal, q)
    d0, d1 = (q.date_from - EPOCH).days, (q.date_to - EPOCH).days
    first_monday = d0 - (q.date_from.weekday())
    weeks = (d1 - first_monday) // 7 + 1
    f, history = _with_history(conn, cube, f, principal, q, exact=case_ids)
    mask = selected(conn, f, principal, q)
    now = time.time()
    extra = None
    if history is not None:
        codes = [u["code"] for u in units]
        extra = cube.rollup_answer(
            f.rollup_generation,
            (scope_key(principal), q.level, tuple(codes), history, weeks, q.category, q.unit),
            lambda: rollup.read(
                conn,
                principal,
                level=q.level,
                unit_codes=codes,
                first_day=history[0],
                last_day=history[1],
                first_monday=EPOCH + timedelta(days=first_monday),
                weeks=weeks,
                category=q.category,
                unit=q.unit,
            ),
        )

    # Per unit of the level: unit index in the level's code list -> row of `units`.
    n_codes = len(f.codes[q.level])
    slot = np.full(n_codes + 1, -1, dtype=np.int64)
    for i, u in enumerate(units):
        j = cube_index(f, q.level, u["code"])
        if j is not None:
            slot[j] = i
    flags = _Flags.of(f, mask, now)
    lvl = f.levels[q.level][mask]
    unit_of = slot[np.where((lvl >= 0) & (lvl < n_codes), lvl, n_codes)]
    in_units = unit_of >= 0
    per_unit = _figures(
        unit_of[in_units], len(units), flags.subset(in_units), extra=extra.units if extra else None
    )
    weekly = _figures(
        (f.day[mask] - first_monday) // 7, weeks, flags, extra=extra.weeks if extra else None
    )
    hours = flags.close_hours[flags.closed]
    total_median = round(float(np.median(hours)), 4) if len(hours) else None
    if extra is not None:
        [total_median] = _mixed_medians(
            [total_median], np.zeros(len(hours), np.int64), hours, 1, extra.total.hist
        )
    totals = _figures(
        np.zeros(len(flags.closed), dtype=np.int64),
        1,
        flags,
        medians=[total_median],
        extra=extra.total if extra else None,
    )[0]
    if case_ids:
        ids = f.ids[mask]
        for u, found in zip(
            per_unit,
            _case_ids(ids[in_units], unit_of[in_units], len(units), flags.subset(in_units)),
            strict=True,
        ):
            u["case_ids"] = found
        totals["case_ids"] = _case_ids(ids, np.zeros(len(ids), np.int64), 1, flags)[0]
    return {
        "level": q.level,
        "from": q.date_from,
        "to": q.date_to,
        "category": q.category,
        "unit": q.unit,
        "definitions": DEFINITIONS,
        "totals": totals,
        "units": [{**u, **fig} for u, fig in zip(units, per_unit, strict=True)],
        "weekly": [
            {"week_start": EPOCH + timedelta(days=int(first_monday + 7 * i)), **w}
            for i, w in enumerate(weekly)
        ],
        "cases_in_cube": len(f.ids),
        "computed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _with_history(
    conn: Connection,
    cube: CaseCube,
    f: Facts,
    principal: Principal,
    q: StatsQuery,
    exact: bool = False,
) -> tuple[Facts, tuple[date, date] | None]:
    """How to count the part of ``q``'s period before the fold boundary (stats/rollup.py):
    returns the facts to count from and, when the roll-up is to add its sums, the first
    and last day it covers (else None). ``exact`` (case ids wanted) or a viewer the
    roll-up cannot scope: that part's settled cases are read from the cases instead."""
    d0, d1 = (q.date_from - EPOCH).days, (q.date_to - EPOCH).days
    last_old = min(d1, f.folded_day - 1)
    if d0 > last_old:
        return f, None
    if q.unit:
        _prefix_mask(f, q.unit)  # a bad unit is refused before anything is read
    if exact or not rollup.answerable(principal):
        return cube.with_history(f, d0, last_old), None
    return f, (q.date_from, EPOCH + timedelta(days=last_old))


def reported_per_unit(
    conn: Connection,
    cube: CaseCube,
    principal: Principal,
    q: StatsQuery,
    level: str,
    codes: list[str],
) -> np.ndarray:
    """Cases reported in ``q``'s period per unit of ``codes`` (codes of ``level``, same
    order), counted as every statistic counts them (:func:`selected`) — the recent ones
    from the cube, older ones from the roll-up. For the hotspot statistics."""
    f = cube.facts()
    f, history = _with_history(conn, cube, f, principal, q)
    mask = selected(conn, f, principal, q)
    lvl = f.levels[level][mask]
    n_codes = len(f.codes[level])
    per_index = np.bincount(lvl[(lvl >= 0) & (lvl < n_codes)], minlength=n_codes)
    out = np.zeros(len(codes), dtype=np.int64)
    for i, code in enumerate(codes):
        j = cube_index(f, level, code)
        if j is not None and j < n_codes:
            out[i] = per_index[j]
    if history is not None:
        monday = q.date_from - timedelta(days=q.date_from.weekday())
        extra = rollup.read(
            conn,
            principal,
            level=level,
            unit_codes=codes,
            first_day=history[0],
            last_day=history[1],
            first_monday=monday,
            weeks=(q.date_to - monday).days // 7 + 1,
            category=q.category,
            unit=q.unit,
        )
        out += extra.units.counts["reported"]
    return out


def cube_index(f: Facts, level: str, code: str) -> int | None:
    return f.codes[level].get(code)


def _units(conn: Connection, principal: Principal, q: StatsQuery) -> list[dict[str, Any]]:
    """The units of the level that the principal may count, with names."""
    where = ["level = :level"]
    params: dict[str, Any] = {"level": q.level}
    if q.unit:
        where.append("code LIKE :unit")
        params["unit"] = q.unit + "%"
    cond, cond_params = units_visible(principal, "code")
    where.append(cond)
    params.update(cond_params)
    return [
        dict(r)
        for r in conn.execute(
            text(
                f"SELECT code, name, parent_code FROM admin_unit WHERE {' AND '.join(where)} "
                "ORDER BY code"
            ),
            params,
        ).mappings()
    ]


def selected(conn: Connection, f: Facts, principal: Principal, q: StatsQuery) -> np.ndarray:
    """Boolean mask over the cube's cases that every figure counts: reported in the period
    (local days, inclusive), not a duplicate, of the category (or its sub-categories,
    :func:`~gis_service.cases.categories.within`), visible to the viewer and inside
    ``q.unit``. Shared by :func:`resolution` and the hotspot statistics."""
    d0, d1 = (q.date_from - EPOCH).days, (q.date_to - EPOCH).days
    mask = (f.day >= d0) & (f.day <= d1) & (f.status != DUPLICATE)
    if q.category:
        cats = [i for i, c in enumerate(f.categories) if within(c, q.category)]
        mask &= np.isin(f.category, cats)
    return mask & _scope_mask(conn, f, principal, q)


def _scope_mask(conn: Connection, f: Facts, principal: Principal, q: StatsQuery) -> np.ndarray:
    """Only cases the principal may count (the jurisdiction rule, auth/scope.py), within
    the unit asked for."""
    mask = case_mask(conn, principal, f)
    if q.unit:
        mask &= _prefix_mask(f, q.unit)
    return mask


def _prefix_mask(f: Facts, code: str) -> np.ndarray:
    mask = f.prefix_mask(code)
    if mask is None:
        raise InvalidInput(
            f"{code} is not a district, subdistrict, community or grid code", field="unit"
        )
    return mask
