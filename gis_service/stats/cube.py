"""A columnar, in-memory copy of the case facts that statistics need, kept in step with
PostgreSQL by transaction snapshots.

What it holds (issue 19 item 5, memory bounded by design): the cases reported on or after
the fold boundary (``case_rollup_state.folded_before``: today − ``stats_recent_days``) and
every older case still open. Settled cases of older days live only as daily roll-ups in
PostgreSQL (stats/rollup.py: counts and a histogram of close durations per unit, category
and day, kept exact by a trigger), which statistics read per request; so a process's memory
and start-up follow the recent window, not the years of history. The first sync of a day
folds the day that left the window (``rollup.fold``).

Why the recent facts stay per case: at a district's 1 M cases a year the natural rollup key
(day × grid × category) has about as many rows as there are cases, so it saves nothing
for the recent days that most questions ask about, and exact medians cannot be
pre-aggregated at all — over the roll-up's days medians come from the histogram, with
the error bound stated in stats/rollup.py. Aggregating 1 M rows in SQL took 0.5 s (3.5 s
with the medians); numpy does the same from this cube in tens of milliseconds.

Staying exact: every write stamps ``cases.changed_xid`` with its transaction id. A sync
opens a REPEATABLE READ transaction, reads its snapshot, and fetches the rows written by
transactions the previous sync's snapshot could not see (``pg_visible_in_snapshot``) —
including those that were still running then and committed later, which a timestamp
watermark would miss. The index on changed_xid keeps that an index range scan. The same
snapshot reads the fold boundary: a case that is settled and older than it leaves the cube
(the roll-up counts it, in the same snapshot), one that reopens comes back.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gis_service.cases.partitions import period_sql
from gis_service.cases.workflow import DEADLINE_STATUSES, OPEN_STATUSES, Status
from gis_service.cases.workflow import STATUSES as WORKFLOW_STATUSES
from gis_service.db.engine import own_engine
from gis_service.settings import Settings
from gis_service.units.codes import CODE_LENGTH, HANDLING_LEVELS, LEVELS

EPOCH = date(2000, 1, 1)
# Levels statistics count by, top first, with their code lengths (units/codes.py).
LEVEL_LENGTHS: dict[str, int] = {
    lvl.value: CODE_LENGTH[lvl] for lvl in LEVELS if lvl in HANDLING_LEVELS
}

FACTS_SQL = """
    SELECT c.id, c.unit_code, c.category_code, c.status,
           (c.reported_at AT TIME ZONE {tz})::date - DATE '2000-01-01' AS day,
           (c.accepted_at IS NOT NULL)::int AS accepted,
           coalesce(extract(epoch FROM c.deadline_at), 'NaN') AS deadline,
           coalesce(extract(epoch FROM c.closed_at - c.reported_at) / 3600.0, 'NaN')
               AS close_hours,
           case_on_time(c)::int AS on_time,  -- the rules: cases/report.sql
           case_on_time_extended(c)::int AS on_time_extended,
           (c.extension_count > 0)::int AS extended,
           coalesce(extract(epoch FROM c.parked_until), 'NaN') AS parked_until,
           coalesce(c.parked_from, '') AS parked_from,
           c.urge_count AS urges, c.urge_replied AS urges_replied,
           case_rework(c)::int AS rework,
           coalesce(c.rating, 0) AS rating,
           ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat
      FROM cases c
"""
DTYPES = {
    "id": "int64",
    "unit_code": "str",
    "category_code": "str",
    "status": "str",
    "day": "int32",
    "accepted": "bool",
    "deadline": "float64",
    "close_hours": "float64",
    "on_time": "bool",
    "on_time_extended": "bool",
    "extended": "bool",
    "parked_until": "float64",
    "parked_from": "str",
    "urges": "int32",
    "urges_replied": "int32",
    "rework": "bool",
    "rating": "int8",
    "lon": "float64",
    "lat": "float64",
}


@dataclass
class Facts:
    """One array per column, row i = one case; ``ids`` sorted ascending."""

    ids: np.ndarray
    levels: dict[str, np.ndarray]  # level -> index into codes[level], -1 if above it
    codes: dict[str, dict[str, int]]  # level -> code -> index (append-only)
    category: np.ndarray  # index into categories
    categories: list[str]
    status: np.ndarray  # index into STATUSES
    day: np.ndarray
    accepted: np.ndarray
    deadline: np.ndarray
    close_hours: np.ndarray
    on_time: np.ndarray  # closed by the original deadline (before any extension)
    on_time_extended: np.ndarray  # closed after the original deadline, by the extended one
    extended: np.ndarray  # an extension (延期) was approved
    parked_until: np.ndarray  # epoch seconds of a parked case's review, NaN if not parked
    parked_from: np.ndarray  # status code a parked case returns to, -1 if not parked
    urges: np.ndarray  # 督办 sent
    urges_replied: np.ndarray
    rework: np.ndarray
    rating: np.ndarray
    lon: np.ndarray  # where it was reported (for map tiles; never changes)
    lat: np.ndarray
    #: which load of the cube this is: a new number whenever a sync brings changes (tile
    #: caches key on it; an object's id() can be reused once the old facts are freed)
    version: int = 0
    #: the fold boundary (days since EPOCH): settled cases reported before it are not in
    #: these facts but in the roll-up (stats/rollup.py); NO_FOLD when nothing is folded
    folded_day: int = -(10**9)
    #: CaseCube.rollup_generation at this sync (roll-up answers are kept per generation)
    rollup_generation: int = 0

    def status_now(self, now: float, rows: np.ndarray | None = None) -> np.ndarray:
        """Status codes as of ``now`` (epoch seconds): a parked case whose review moment
        has passed counts in the status it left — ``case_status()`` (cases/report.sql),
        evaluated here because time passing writes no row the sync could fetch."""
        sel = slice(None) if rows is None else rows
        status = self.status[sel]
        back = (status == STATUS_CODE[Status.parked]) & (self.parked_until[sel] <= now)
        return np.where(back, self.parked_from[sel], status).astype(np.int8)

    def overdue_now(
        self, now: float, rows: np.ndarray | None = None, status: np.ndarray | None = None
    ) -> np.ndarray:
        """Overdue as of ``now``: the deadline runs (a status in ``DEADLINE_STATUSES``, so
        not parked until its review) and has passed — ``case_overdue()`` (cases/report.sql)
        over the facts. ``status``: :meth:`status_now` of the same rows, if already made."""
        sel = slice(None) if rows is None else rows
        if status is None:
            status = self.status_now(now, rows)
        return np.isin(status, DEADLINE_CODES) & (self.deadline[sel] < now)

    def prefix_mask(self, code: str, rows: np.ndarray | None = None) -> np.ndarray | None:
        """True for the cases (all, or those at ``rows``) located inside unit ``code``;
        None when the cube does not index the code's level (a building: ask SQL)."""
        level = next((lvl for lvl, n in LEVEL_LENGTHS.items() if n == len(code)), None)
        if level is None:
            return None
        col = self.levels[level] if rows is None else self.levels[level][rows]
        j = self.codes[level].get(code)
        return col == j if j is not None else np.zeros(len(col), bool)


# The cube stores a status as its index in the vocabulary's order (cases/workflow.py).
STATUSES: list[str] = [s.value for s in WORKFLOW_STATUSES]
STATUS_CODE: dict[str, int] = {s: i for i, s in enumerate(STATUSES)}
DEADLINE_CODES: tuple[int, ...] = tuple(STATUS_CODE[s] for s in DEADLINE_STATUSES)
OPEN_CODES: tuple[int, ...] = tuple(STATUS_CODE[s] for s in OPEN_STATUSES)
#: Facts.folded_day before any fold: every case is in the facts
NO_FOLD = -(10**9)


#: the per-case columns of Facts besides the level indexes
COLUMNS: tuple[str, ...] = (
    "ids",
    "category",
    "status",
    "day",
    "accepted",
    "deadline",
    "close_hours",
    "on_time",
    "on_time_extended",
    "extended",
    "parked_until",
    "parked_from",
    "urges",
    "urges_replied",
    "rework",
    "rating",
    "lon",
    "lat",
)
#: roll-up answers a process keeps (each a few arrays of units × 72 numbers)
ROLLUP_ANSWERS = 64
T = TypeVar("T")

#: how often a sync checks whether a day left the recent window (a one-row read)
FOLD_CHECK_SECONDS = 60.0


def _rows(f: Facts, keep: np.ndarray) -> Facts:
    """The facts of the rows ``keep`` selects (order kept)."""
    return Facts(
        levels={k: v[keep] for k, v in f.levels.items()},
        codes=f.codes,
        categories=f.categories,
        version=f.version,
        folded_day=f.folded_day,
        **{name: getattr(f, name)[keep] for name in COLUMNS},
    )


def _kept_sql(folded: date | None, tz: str) -> str:
    """The cases the cube holds, as a query: those reported on or after the fold boundary
    (their months only: partitions.period_sql prunes the rest), and the older ones still
    open (the open-cases index, whatever their month)."""
    facts = FACTS_SQL.format(tz=tz)
    if folded is None:
        return facts
    since = f"(DATE '{folded}'::timestamp AT TIME ZONE {tz})"
    open_ = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
    return f"""{facts}
     WHERE {period_sql("c.id", since, None)} AND c.reported_at >= {since}
    UNION ALL
    {facts}
     WHERE c.reported_at < {since} AND c.status IN ({open_})"""


class CaseCube:
    """One per process (``Services.cube``, api/services.py); ``facts()`` syncs and
    returns a consistent copy."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._facts: Facts | None = None
        self._snapshot: str | None = None
        self._code_index: dict[str, dict[str, int]] = {lvl: {} for lvl in LEVEL_LENGTHS}
        self._cat_index: dict[str, int] = {}
        self.synced_at = 0.0
        self.last_delta = 0
        self._version = 0
        #: why the last sync failed (the database was down…), None after one succeeds;
        #: a failed sync changes nothing else, so the next one simply tries again
        self.last_error: str | None = None
        self._fold_checked = 0.0
        self._folded_day = NO_FOLD
        #: a new number whenever the roll-up may have changed (seen by a sync): a fold
        #: moved the boundary, or a case of a folded day was written
        self.rollup_generation = 0
        self._rollup_answers: dict[object, object] = {}
        self._rollup_lock = threading.Lock()
        #: roll-up rows the last fold wrote; why the last fold failed (None: it did not)
        self.last_fold_rows = 0
        self.fold_error: str | None = None

    def facts(self, max_age: float = 0.0) -> Facts:
        """The facts, synced now — or, with ``max_age``, as of a sync at most that many
        seconds ago (map tiles accept a second's lag rather than a 15 ms sync each)."""
        if max_age > 0 and self._facts is not None and time.time() - self.synced_at < max_age:
            return self._facts
        with self._lock:
            try:
                self._sync()
            except Exception as exc:
                self.last_error = type(getattr(exc, "orig", None) or exc).__name__
                raise
            self.last_error = None
            assert self._facts is not None
            return self._facts

    def _sync(self) -> None:
        """On a connection of its own: REPEATABLE READ must be the transaction's first
        statement, whatever the caller's connection has done already; and from a pool of
        its own (db/engine.py ``own_engine``), never waiting for the requests' pool while
        requests wait for this sync. Folds the days that left the recent window first (in
        a transaction of its own, committed before the snapshot is taken)."""
        from gis_service.db import maintenance

        tz = "'" + self.settings.timezone.replace("'", "") + "'"
        with own_engine(self.settings).connect() as conn:
            if time.time() - self._fold_checked > FOLD_CHECK_SECONDS:
                try:
                    with conn.begin():  # the coming partitions and the fold
                        self.last_fold_rows = maintenance.run(conn, self.settings)
                    self.fold_error = None
                except Exception as exc:  # a read-only standby: the primary folds
                    self.fold_error = type(getattr(exc, "orig", None) or exc).__name__
                self._fold_checked = time.time()
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                snapshot = conn.execute(text("SELECT pg_current_snapshot()::text")).scalar_one()
                folded = conn.execute(
                    text("SELECT folded_before FROM case_rollup_state")
                ).scalar_one_or_none()
                folded_day = NO_FOLD if folded is None else (folded - EPOCH).days
                sql = FACTS_SQL.format(tz=tz)
                if self._snapshot is None:
                    frame = _copy(conn, _kept_sql(folded, tz))
                else:
                    frame = _copy(
                        conn,
                        sql
                        + f"""
                     WHERE c.changed_xid >= pg_snapshot_xmin('{self._snapshot}'::pg_snapshot)
                       AND NOT pg_visible_in_snapshot(c.changed_xid,
                                                      '{self._snapshot}'::pg_snapshot)""",
                    )
        before = self._facts
        if folded_day != self._folded_day or (frame["day"].to_numpy() < folded_day).any():
            # the roll-up changed: a fold, or a write to a case of a folded day
            self.rollup_generation += 1
            self._folded_day = folded_day
            with self._rollup_lock:
                self._rollup_answers.clear()
        self._merge(frame)
        self._evict(folded_day)
        if self._facts is not before:
            self._version += 1
            self._facts.version = self._version
        self._facts.folded_day = folded_day
        self._facts.rollup_generation = self.rollup_generation
        self._snapshot = snapshot
        self.synced_at = time.time()
        self.last_delta = len(frame)

    def rollup_answer(self, generation: int, key: object, compute: Callable[[], T]) -> T:
        """The roll-up's answer to ``key`` (a request's parameters and scope) for the
        facts of ``generation``, computed once per generation: old days change only when
        the sync sees a fold or a write to an old case, which clears these. At most
        ROLLUP_ANSWERS are kept."""
        with self._rollup_lock:
            if (generation, key) in self._rollup_answers:
                return self._rollup_answers[(generation, key)]  # type: ignore[return-value]
        value = compute()
        with self._rollup_lock:
            if generation == self.rollup_generation:
                if len(self._rollup_answers) >= ROLLUP_ANSWERS:
                    self._rollup_answers.pop(next(iter(self._rollup_answers)))
                self._rollup_answers[(generation, key)] = value
        return value

    def _evict(self, folded_day: int) -> None:
        """Drop the settled cases reported before the fold boundary (the roll-up counts
        them): those a fold just passed, and old ones a change settled again."""
        f = self._facts
        assert f is not None
        if folded_day == NO_FOLD or len(f.ids) == 0:
            return
        keep = (f.day >= folded_day) | np.isin(f.status, OPEN_CODES)
        if keep.all():
            return
        self._facts = _rows(f, keep)

    def with_history(self, f: Facts, first_day: int, last_day: int) -> Facts:
        """``f`` and the settled cases reported on days ``first_day``..``last_day`` (days
        since EPOCH, before ``f.folded_day``) read from the cases themselves: for answers
        the roll-up cannot give (case ids, viewers it cannot scope). A new Facts for one
        request; the cube keeps its own."""
        tz = "'" + self.settings.timezone.replace("'", "") + "'"
        first, last = EPOCH + timedelta(days=first_day), EPOCH + timedelta(days=last_day + 1)
        start = f"(DATE '{first}'::timestamp AT TIME ZONE {tz})"
        end = f"(DATE '{last}'::timestamp AT TIME ZONE {tz})"
        where = f"""
             WHERE {period_sql("c.id", start, end)}
               AND c.reported_at >= {start} AND c.reported_at < {end}
               AND c.status NOT IN ({", ".join(f"'{s}'" for s in OPEN_STATUSES)})"""
        with own_engine(self.settings).connect() as conn, conn.begin():
            frame = _copy(conn, FACTS_SQL.format(tz=tz) + where)
        with self._lock:  # the code indexes grow (append-only) under the cube's lock
            old = self._arrays(frame)
            recent = self._facts if self._facts is not None else f
            codes, categories = recent.codes, list(self._cat_index)
        merged = {name: np.concatenate([getattr(f, name), getattr(old, name)]) for name in COLUMNS}
        levels = {lvl: np.concatenate([f.levels[lvl], old.levels[lvl]]) for lvl in LEVEL_LENGTHS}
        order = np.argsort(merged["ids"], kind="stable")
        # a case settled since the sync is in both: keep the fresher, the one read last
        ids = merged["ids"][order]
        order = order[np.append(ids[1:] != ids[:-1], True)]
        return Facts(
            levels={k: v[order] for k, v in levels.items()},
            codes=codes,
            categories=categories,
            version=f.version,
            folded_day=NO_FOLD,
            **{k: v[order] for k, v in merged.items()},
        )

    def _merge(self, frame: pd.DataFrame) -> None:
        new = self._arrays(frame)
        old = self._facts
        if old is None or len(old.ids) == 0:
            self._facts = new
            return
        if len(new.ids) == 0:
            return
        pos = np.searchsorted(old.ids, new.ids)
        pos_clipped = np.minimum(pos, len(old.ids) - 1)
        known = old.ids[pos_clipped] == new.ids
        merged = {}
        for name in COLUMNS:
            a, b = getattr(old, name).copy(), getattr(new, name)
            a[pos_clipped[known]] = b[known]
            merged[name] = np.concatenate([a, b[~known]])
        levels = {}
        for lvl in LEVEL_LENGTHS:
            a = old.levels[lvl].copy()
            a[pos_clipped[known]] = new.levels[lvl][known]
            levels[lvl] = np.concatenate([a, new.levels[lvl][~known]])
        order = None
        if (~known).any() and new.ids[~known].min() < old.ids[-1]:
            order = np.argsort(merged["ids"], kind="stable")
        if order is not None:
            merged = {k: v[order] for k, v in merged.items()}
            levels = {k: v[order] for k, v in levels.items()}
        self._facts = Facts(levels=levels, codes=new.codes, categories=new.categories, **merged)

    def _arrays(self, frame: pd.DataFrame) -> Facts:
        frame = frame.sort_values("id", kind="stable")
        levels = {}
        for lvl, n in LEVEL_LENGTHS.items():
            index = self._code_index[lvl]
            prefix = frame["unit_code"].str.slice(0, n)
            prefix = prefix.where(frame["unit_code"].str.len() >= n, None)
            for code in prefix.dropna().unique():
                index.setdefault(code, len(index))
            levels[lvl] = prefix.map(index).fillna(-1).to_numpy(dtype=np.int32)
        for code in frame["category_code"].unique():
            self._cat_index.setdefault(code, len(self._cat_index))
        return Facts(
            ids=frame["id"].to_numpy(np.int64),
            levels=levels,
            codes=self._code_index,
            category=frame["category_code"].map(self._cat_index).to_numpy(np.int16),
            categories=list(self._cat_index),
            status=frame["status"].map(STATUS_CODE).to_numpy(np.int8),
            day=frame["day"].to_numpy(np.int32),
            accepted=frame["accepted"].to_numpy(bool),
            deadline=frame["deadline"].to_numpy(np.float64),
            close_hours=frame["close_hours"].to_numpy(np.float64),
            on_time=frame["on_time"].to_numpy(bool),
            on_time_extended=frame["on_time_extended"].to_numpy(bool),
            extended=frame["extended"].to_numpy(bool),
            parked_until=frame["parked_until"].to_numpy(np.float64),
            parked_from=frame["parked_from"].map(STATUS_CODE).fillna(-1).to_numpy(np.int8),
            urges=frame["urges"].to_numpy(np.int32),
            urges_replied=frame["urges_replied"].to_numpy(np.int32),
            rework=frame["rework"].to_numpy(bool),
            rating=frame["rating"].to_numpy(np.int8),
            lon=frame["lon"].to_numpy(np.float64),
            lat=frame["lat"].to_numpy(np.float64),
        )


def _copy(conn: Connection, sql: str) -> pd.DataFrame:
    """COPY … TO STDOUT into pandas: 1 M rows in about a second, against ~5 s row by row."""
    buf = io.BytesIO()
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", buf)
    finally:
        cursor.close()
    buf.seek(0)
    frame = pd.read_csv(
        buf,
        dtype={k: v for k, v in DTYPES.items() if v not in ("bool",)},
        keep_default_na=False,
        na_values={"deadline": ["NaN"], "close_hours": ["NaN"], "parked_until": ["NaN"]},
    )
    for col in ("accepted", "on_time", "on_time_extended", "extended", "rework"):
        frame[col] = frame[col].astype(bool)
    return frame
