"""Valhalla's side of the isochrone benchmark, run with the Valhalla virtualenv's Python 3.12
(.venv-valhalla, benchmarks/valhalla_env.sh); standard library and pyvalhalla only.

    valhalla_worker.py build NETWORK.osm.pbf DIR   tiles and DIR/config.json, all local
    valhalla_worker.py serve DIR/config.json       JSON lines on stdin → JSON lines on stdout

Requests of ``serve`` (one JSON object a line, one answer line each):
    {"op": "version"}
    {"op": "isochrones", "origins": [[lon, lat], ...], "warm": 5, "contours": [5, 10, 15],
     "walking_speed": 4.0, "polygons": true}
answers {"ms": [...], "cpu_ms": [...], "bytes": [...], "answers": [GeoJSON text, ...],
"errors": [...]}: the time (wall clock, and CPU time of the process) of each
``Actor.isochrone`` call in-process (request JSON text in, answer JSON text out), the size
of its answer, and the answer itself (for the area comparison).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import valhalla
from valhalla import Actor, get_config
from valhalla._scripts import PYVALHALLA_BIN_DIR


def build(pbf: Path, out: Path) -> None:
    """Tiles for ``pbf`` under out/tiles, with out/config.json (no admin or time-zone
    databases: nothing is fetched; country-specific access rules fall back to defaults)."""
    tiles = out / "tiles"
    tiles.mkdir(parents=True, exist_ok=True)
    config = get_config(tile_extract="", tile_dir=tiles)
    config["mjolnir"]["admin"] = ""
    config["mjolnir"]["timezone"] = ""
    config["mjolnir"]["logging"] = {"type": "std_out", "color": False}
    (out / "config.json").write_text(json.dumps(config, indent=1))
    tool = PYVALHALLA_BIN_DIR / "valhalla_build_tiles"
    subprocess.run(
        [str(tool), "-c", str(out / "config.json"), str(pbf)],
        check=True,
        stdout=sys.stderr,
    )


def isochrones(actor: Actor, req: dict) -> dict:
    body = {
        "costing": "pedestrian",
        "costing_options": {"pedestrian": {"walking_speed": req["walking_speed"]}},
        "contours": [{"time": m} for m in req["contours"]],
        "polygons": req.get("polygons", True),
    }
    ms, cpu, sizes, answers, errors = [], [], [], [], []
    origins = req["origins"]
    warm = req.get("warm", 0)
    for i, (lon, lat) in enumerate(origins):
        query = json.dumps({**body, "locations": [{"lon": lon, "lat": lat}]})
        t, c = time.perf_counter(), time.process_time()
        try:
            answer = actor.isochrone(query)
        except RuntimeError as e:  # e.g. no street near the origin
            if i >= warm:
                errors.append(str(e))
                answers.append(None)
            continue
        elapsed, used = time.perf_counter() - t, time.process_time() - c
        if i >= warm:
            ms.append(elapsed * 1000)
            cpu.append(used * 1000)
            sizes.append(len(answer.encode()))
            answers.append(answer)
    return {"ms": ms, "cpu_ms": cpu, "bytes": sizes, "answers": answers, "errors": errors}


def serve(config: Path) -> None:
    actor = Actor(str(config))
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "version":
            out = {"version": valhalla.__version__}
        elif req["op"] == "isochrones":
            out = isochrones(actor, req)
        else:
            out = {"error": f"unknown op {req['op']!r}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1] == "serve":
        serve(Path(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
