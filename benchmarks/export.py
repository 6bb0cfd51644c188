"""The case export over 1 M generated cases (issue 16): CSV and XLSX, time and peak memory,
beside the peer — PostgreSQL's own ``COPY (SELECT …) TO STDOUT`` of the same rows (the
export's query, exports/cases.py) written to a file by psycopg2, which is what a
straightforward dump would run.

Each export runs in a fresh process (multiprocessing, spawn), so its peak resident memory
(``VmHWM``) is its own; the process's resident memory before the export starts (the
imported modules) is printed beside it. The cases are made as benchmarks/stats.py makes
them (demo/cases.py ``generate_case_history``, events off) in a database of their own.
Environment: EXPORT_CASES (1000000), EXPORT_FORMATS (csv,xlsx,gpkg).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

from common import setup
from sqlalchemy import text

from gis_service.db.engine import get_engine, transaction
from gis_service.demo.cases import generate_case_history
from gis_service.settings import Settings

CASES = int(os.environ.get("EXPORT_CASES", "1000000"))
FORMATS = os.environ.get("EXPORT_FORMATS", "csv,xlsx,gpkg").split(",")
DB = "gis_service_bench_export"


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_mib() -> float:
    """Resident memory now."""
    return _status_mib("VmRSS")


def _peak_mib() -> float:
    """Peak resident memory of this process image (VmHWM). Not ``ru_maxrss``: Linux keeps
    that across exec, so a spawned child reports the parent's peak (the 1 M-case
    generator's 1.3 GiB) when it was larger than its own."""
    return _status_mib("VmHWM")


def _ours(fmt: str, out: str, queue) -> None:
    """Child: our export of every case as an admin, through exports/service.py."""
    from gis_service.auth.principal import Principal, Role
    from gis_service.cases.service import CaseFilters
    from gis_service.exports.columns import Lang
    from gis_service.exports.formats import Format
    from gis_service.exports.service import cases_request, run

    settings = Settings(db_name=DB)  # the parent made it (setup)
    before = _rss_mib()
    request = cases_request(
        Principal(role=Role.admin, user_id=0), CaseFilters(), settings, Format(fmt), Lang.zh
    )
    t = time.perf_counter()
    with get_engine(settings).connect() as conn:
        rows = run(settings, request, Path(out), conn=conn)
    seconds = time.perf_counter() - t
    peak = _peak_mib()
    queue.put((rows, seconds, before, peak, Path(out).stat().st_size))


def _peer(out: str, queue) -> None:
    """Child: COPY (the export's SELECT) TO STDOUT WITH CSV HEADER, into a file."""
    from gis_service.exports import cases

    settings = Settings(db_name=DB)
    before = _rss_mib()
    sql = cases.SELECT.format(geometry="", where="TRUE")
    t = time.perf_counter()
    raw = get_engine(settings).raw_connection()
    try:
        with raw.cursor() as cur, open(out, "wb") as f:
            cur.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)", f)
            rows = cur.rowcount
    finally:
        raw.close()
    seconds = time.perf_counter() - t
    peak = _peak_mib()
    queue.put((rows, seconds, before, peak, Path(out).stat().st_size))


def measure(target, *args) -> tuple[int, float, float, float, int]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=target, args=(*args, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    settings = setup(DB)
    engine = get_engine(settings)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    if have < CASES:
        print(f"generating {CASES - have:,} cases …", file=sys.stderr)
        with transaction(settings) as conn:
            h = generate_case_history(conn, n=CASES - have, seed=7, events=False)
        print(f"  {h.summary()}", file=sys.stderr)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE cases")
            )
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    print(f"case export of {total:,} cases (every column, as an admin)")
    print(
        f"{'':<44} {'rows':>10} {'time':>9} {'rows/s':>9} {'file':>10} "
        f"{'RSS before':>11} {'peak RSS':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("peer: COPY (SELECT …) TO STDOUT, CSV", _peer, ("copy.csv",))]
        runs += [(f"ours: {fmt.upper()}", _ours, (fmt, f"ours.{fmt}")) for fmt in FORMATS]
        for label, target, args in runs:
            args = (*args[:-1], str(Path(tmp) / args[-1]))
            rows, seconds, before, peak, size = measure(target, *args)
            print(
                f"{label:<44} {rows:>10,} {seconds:>8.2f}s {rows / seconds:>9,.0f} "
                f"{size / 1e6:>8.1f}MB {before:>9.0f}MiB {peak:>8.0f}MiB"
            )


if __name__ == "__main__":
    main()
