"""A soak (issue 14, item 7): minutes of a steady mixed load against the real server, with
its memory and latency recorded minute by minute.

The load, at a fixed rate (open loop: each request is due at its time whether or not the
ones before it have answered, and its latency counts from that time):
- ``report``: a grid worker reports in their own grid (POST /api/v1/cases, JSON with an
  Idempotency-Key; every fourth one multipart with a JPEG photo);
- ``sync``: a phone coming back online, as web/mobile does: its outbox sends a queued
  report (multipart, photo, Idempotency-Key), then it refreshes its lists (categories, my
  cases, cases to check) — timed as one;
- ``case_list``, ``case``: the desk's case list (50 newest) and one case's detail;
- ``stats``: the resolution statistics of a random unit;
- ``tile``: a case or unit vector tile at zoom 12-16 somewhere in the district.

Each minute: the resident memory (RSS) of the server's processes, summed (supervisor and
workers) and of the largest one, and per kind the count, errors and p50/p95/p99 latency. Written to
benchmarks/results/soak-<UTC time>.csv with a plot beside it (.png). Exits 1 when any
request failed (an exception or an answer other than 2xx) or the memory grew by more than
--max-growth-mib from the second minute (the first is warm-up) to the last.

    python benchmarks/soak.py --minutes 30            # starts `gis-service serve --workers 2`
    python benchmarks/soak.py --url http://127.0.0.1:8000 --pid 1234

Needs the demo city (`gis-service demo`; loaded here if missing).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import random
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import psutil
from common import server, setup
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from shapely.geometry import Point, shape

from gis_service.demo.cases import DEMO_PASSWORD

RESULTS = Path(__file__).resolve().parent / "results"
#: share of each kind in the load
MIX = {"report": 0.25, "sync": 0.10, "case_list": 0.15, "case": 0.15, "stats": 0.10, "tile": 0.25}
KINDS = list(MIX)
PERCENTILES = (50, 95, 99)
#: a client's idle connection is closed after this (seconds): under the server's 5 s
KEEPALIVE_SECONDS = 2.0
#: grid workers whose grids the reports fall in (each reports in their own)
REPORTERS = 8
console = Console(stderr=True)


def photo(rng: random.Random) -> bytes:
    """A 640×480 JPEG (a gradient, distinct per call), the size of a phone's compressed
    photo after the app's resizing."""
    img = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    img.putpixel((rng.randrange(640), rng.randrange(480)), (255, rng.randrange(256), 0))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


def point_in(geometry, rng: random.Random) -> tuple[float, float]:
    west, south, east, north = geometry.bounds
    while True:
        p = Point(rng.uniform(west, east), rng.uniform(south, north))
        if geometry.contains(p):
            return round(p.x, 6), round(p.y, 6)


@dataclass
class Reporter:
    credentials: Credentials
    grid: object  # shapely geometry


@dataclass
class World:
    """Who sends what where: tokens of the admin and of grid workers, their grids, the
    district's outline, the units the statistics are asked for, known case ids."""

    credentials: Credentials  # the admin's
    reporters: list[Reporter]
    district: object
    units: list[str]
    case_ids: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def admin(self) -> dict[str, str]:
        return self.credentials.headers

    def some_case(self, rng: random.Random) -> int:
        with self.lock:
            return rng.choice(self.case_ids)

    def add_case(self, case_id: int) -> None:
        with self.lock:
            self.case_ids.append(case_id)


class Credentials:
    """A signed-in account's bearer token, renewed with its refresh token (POST
    /api/v1/auth/refresh, single use: each renewal rotates it) a minute before the access
    token expires — as the phone app does — so a soak longer than the token's lifetime
    (GIS_ACCESS_TOKEN_SECONDS, 30 min) keeps its sessions."""

    #: renew this many seconds before the access token expires
    MARGIN = 60

    def __init__(self, base: str, answer: dict) -> None:
        self.base = base
        self.lock = threading.Lock()
        self._take(answer)

    def _take(self, answer: dict) -> None:
        self._headers = {"Authorization": "Bearer " + answer["access_token"]}
        self._refresh = answer["refresh_token"]
        self._renew_at = time.monotonic() + answer["expires_in"] - self.MARGIN

    @property
    def headers(self) -> dict[str, str]:
        """The current ``Authorization`` header, renewed first when due (one thread
        renews; the others wait and take the new token)."""
        with self.lock:
            if time.monotonic() >= self._renew_at:
                with httpx.Client(base_url=self.base, timeout=30) as client:
                    r = client.post(
                        "/api/v1/auth/refresh",
                        data={"grant_type": "refresh_token", "refresh_token": self._refresh},
                    )
                r.raise_for_status()
                self._take(r.json())
            return self._headers


def sign_in(client: httpx.Client, username: str) -> Credentials | None:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    if r.status_code != 200:
        return None
    return Credentials(str(client.base_url), r.json())


def prepare(base: str) -> World:
    with httpx.Client(base_url=base, timeout=30) as client:
        admin_credentials = sign_in(client, "admin")
        if admin_credentials is None:
            raise SystemExit("cannot sign in as admin/demo password: load the demo first")
        admin = admin_credentials.headers
        grids = client.get("/api/v1/units", params={"level": "grid"}, headers=admin)
        grids.raise_for_status()
        codes = sorted(f["properties"]["code"] for f in grids.json()["features"])
        reporters: list[Reporter] = []
        for code in codes:
            credentials = sign_in(client, f"gw{code}")
            if credentials is None:
                continue
            unit = client.get(f"/api/v1/units/{code}", headers=credentials.headers).json()
            reporters.append(Reporter(credentials, shape(unit["geometry"])))
            if len(reporters) == REPORTERS:
                break
        if not reporters:
            raise SystemExit("no grid worker of the demo could sign in")
        district_code = codes[0][:6]
        district = shape(
            client.get(f"/api/v1/units/{district_code}", headers=admin).json()["geometry"]
        )
        subs = client.get("/api/v1/units", params={"level": "subdistrict"}, headers=admin).json()
        units = [district_code, *(f["properties"]["code"] for f in subs["features"])]
        cases = client.get("/api/v1/cases", params={"limit": 200}, headers=admin).json()
        world = World(admin_credentials, reporters, district, units)
        for f in cases["features"]:
            world.add_case(int(f["id"]))
        return world


class Load:
    """The requests of each kind; each returns nothing and raises on a failed answer."""

    def __init__(self, base: str, world: World) -> None:
        self.base = base
        self.world = world
        self._local = threading.local()

    def client(self) -> httpx.Client:
        if not hasattr(self._local, "client"):
            # idle connections are dropped before the server's keep-alive timeout
            # (uvicorn: 5 s) ends them: with equal timeouts a request sent on a connection
            # the server is closing is reset (RFC 9112 §9.3.1), which the first soak
            # counted as an error
            limits = httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS)
            self._local.client = httpx.Client(base_url=self.base, timeout=60, limits=limits)
        return self._local.client

    @staticmethod
    def check(r: httpx.Response) -> httpx.Response:
        if not 200 <= r.status_code < 300:
            raise RuntimeError(
                f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}"
            )
        return r

    def _report(
        self, rng: random.Random, reporter: Reporter, with_photo: bool, source: str
    ) -> None:
        lon, lat = point_in(reporter.grid, rng)
        fields = {
            "category": "environment.garbage",
            "lon": lon,
            "lat": lat,
            "description": f"{source}: 楼道堆放杂物 {uuid.uuid4().hex[:6]}",
        }
        headers = {**reporter.credentials.headers, "Idempotency-Key": str(uuid.uuid4())}
        if with_photo:
            r = self.client().post(
                "/api/v1/cases",
                headers=headers,
                data={k: str(v) for k, v in fields.items()},
                files={"photo": ("photo-1.jpg", photo(rng), "image/jpeg")},
            )
        else:
            r = self.client().post("/api/v1/cases", headers=headers, json=fields)
        self.world.add_case(int(self.check(r).json()["id"]))

    def report(self, rng: random.Random, n: int) -> None:
        self._report(rng, rng.choice(self.world.reporters), n % 4 == 3, "soak report")

    def sync(self, rng: random.Random, n: int) -> None:
        reporter = rng.choice(self.world.reporters)
        self._report(rng, reporter, True, "soak phone")
        c = self.client()
        self.check(c.get("/api/v1/categories", headers=reporter.credentials.headers))
        for params in (
            {"mine": "true", "limit": 50, "order": "newest"},
            {"status": "handled", "order": "deadline", "limit": 50},
        ):
            self.check(c.get("/api/v1/cases", params=params, headers=reporter.credentials.headers))

    def case_list(self, rng: random.Random, n: int) -> None:
        params = {"limit": 50, "order": "newest"}
        self.check(self.client().get("/api/v1/cases", params=params, headers=self.world.admin))

    def case(self, rng: random.Random, n: int) -> None:
        case_id = self.world.some_case(rng)
        self.check(self.client().get(f"/api/v1/cases/{case_id}", headers=self.world.admin))

    def stats(self, rng: random.Random, n: int) -> None:
        params = {"unit": rng.choice(self.world.units)}
        self.check(
            self.client().get("/api/v1/stats/resolution", params=params, headers=self.world.admin)
        )

    def tile(self, rng: random.Random, n: int) -> None:
        z, x, y = tile_of(*point_in(self.world.district, rng), rng.randint(12, 16))
        layer = rng.choice(("cases", "units"))
        self.check(self.client().get(f"/tiles/{layer}/{z}/{x}/{y}.pbf", headers=self.world.admin))


@dataclass
class Minute:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rss: list[float] = field(default_factory=list)
    rss_largest: list[float] = field(default_factory=list)


class Recorder:
    def __init__(self, minutes: int) -> None:
        self.minutes = [Minute() for _ in range(minutes)]
        self.lock = threading.Lock()
        self.failures: list[str] = []

    def record(self, minute: int, kind: str, seconds: float | None, error: str | None) -> None:
        """One request's latency (None: it was never sent) and error, in the minute it
        was due."""
        with self.lock:
            m = self.minutes[min(minute, len(self.minutes) - 1)]
            if seconds is not None:
                m.latencies[kind].append(seconds)
            if error is not None:
                m.errors[kind] += 1
                if len(self.failures) < 20:
                    self.failures.append(f"{kind}: {error}")


def rss_mib(pid: int) -> tuple[float, float]:
    """Resident memory of a process and all its descendants, MiB: the sum, and the largest
    single process (a worker, when there are several)."""
    top = psutil.Process(pid)
    sizes = [0]
    for p in [top, *top.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            sizes.append(p.memory_info().rss)
    return sum(sizes) / 2**20, max(sizes) / 2**20


def run(base: str, pid: int | None, minutes: int, rate: float, seed: int) -> Recorder:
    world = prepare(base)
    load = Load(base, world)
    calls: dict[str, Callable[[random.Random, int], None]] = {k: getattr(load, k) for k in KINDS}
    recorder = Recorder(minutes)
    rng = random.Random(seed)
    start = time.monotonic()
    end = start + minutes * 60
    stop = threading.Event()

    def sample_memory() -> None:
        while not stop.wait(5):
            if pid is not None:
                minute = int((time.monotonic() - start) // 60)
                if minute < minutes:
                    total, largest = rss_mib(pid)
                    recorder.minutes[minute].rss.append(total)
                    recorder.minutes[minute].rss_largest.append(largest)

    def one(kind: str, due: float, n: int, task_seed: int) -> None:
        error = None
        try:
            calls[kind](random.Random(task_seed), n)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        recorder.record(int((due - start) // 60), kind, time.monotonic() - due, error)

    threading.Thread(target=sample_memory, daemon=True).start()
    interval = 1 / rate
    weights = [MIX[k] for k in KINDS]
    with (
        ThreadPoolExecutor(max_workers=48) as pool,
        Progress(
            TextColumn("[bold]soak"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("", total=minutes * 60)
        futures: list[tuple[Future, str, float]] = []
        n = 0
        while True:
            due = start + n * interval
            if due >= end:
                break
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            kind = rng.choices(KINDS, weights)[0]
            futures.append((pool.submit(one, kind, due, n, rng.randrange(1 << 30)), kind, due))
            n += 1
            if n % max(1, int(rate)) == 0:
                minute = min(int((time.monotonic() - start) // 60), minutes - 1)
                m = recorder.minutes[minute]
                errors = sum(sum(x.errors.values()) for x in recorder.minutes)
                rss = f"{m.rss[-1]:.0f} MiB" if m.rss else "…"
                progress.update(
                    task,
                    completed=time.monotonic() - start,
                    description=f"minute {minute + 1}/{minutes}  {n} sent  {errors} errors  "
                    f"RSS {rss}",
                )
        stop.set()
        # requests due before the end get their time (the client's 60 s timeout); what is
        # still queued after it was never sent — the server held every one of the
        # generator's connections: an error each
        wait([f for f, _, _ in futures], timeout=60)
        pool.shutdown(wait=True, cancel_futures=True)
        for future, kind, due in futures:
            if future.cancelled():
                recorder.record(int((due - start) // 60), kind, None, "never sent (queued)")
    return recorder


def rows(recorder: Recorder) -> Iterator[dict]:
    for i, m in enumerate(recorder.minutes, 1):
        rss = round(float(np.mean(m.rss)), 1) if m.rss else None
        largest = round(float(np.mean(m.rss_largest)), 1) if m.rss_largest else None
        for kind in KINDS:
            lat = np.array(m.latencies.get(kind, [])) * 1000
            row = {"minute": i, "kind": kind, "count": len(lat), "errors": m.errors.get(kind, 0)}
            for p in PERCENTILES:
                row[f"p{p}_ms"] = round(float(np.percentile(lat, p)), 1) if len(lat) else None
            row["rss_mib"] = rss
            row["rss_largest_process_mib"] = largest
            yield row


def plot(table: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, lat) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    minutes = sorted({r["minute"] for r in table})
    rss = [next(r["rss_mib"] for r in table if r["minute"] == m) for m in minutes]
    mem.plot(minutes, rss, marker="o", color="tab:purple")
    mem.set_ylabel("server RSS, all processes (MiB)")
    low = min(x for x in rss if x is not None) if any(rss) else 0
    mem.set_ylim(bottom=max(0, low * 0.9))
    mem.grid(alpha=0.3)
    mem.set_title(title)
    for kind in KINDS:
        series = [r for r in table if r["kind"] == kind]
        lat.plot([r["minute"] for r in series], [r["p95_ms"] for r in series], label=kind)
    lat.set_yscale("log")
    lat.set_ylabel("p95 latency (ms, log)")
    lat.set_xlabel("minute")
    lat.grid(alpha=0.3, which="both")
    lat.legend(ncol=3, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second, all kinds")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the server")
    parser.add_argument("--url", help="an already running server (then --pid for its memory)")
    parser.add_argument("--pid", type=int, help="the running server's top process")
    parser.add_argument("--max-growth-mib", type=float, default=64.0)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%MZ")
    with contextlib.ExitStack() as stack:
        if args.url:
            base, pid = args.url.rstrip("/"), args.pid
        else:
            from gis_service.settings import Settings

            settings = setup(Settings().db_name)
            served = stack.enter_context(server(settings, workers=args.workers))
            base, pid = served.base, served.pid
        recorder = run(base, pid, args.minutes, args.rate, args.seed)

    table = list(rows(recorder))
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / f"soak-{stamp}.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    title = f"soak {stamp}: {args.minutes} min at {args.rate:g} req/s, {args.workers} workers"
    plot(table, csv_path.with_suffix(".png"), title)

    rss = [r["rss_mib"] for r in table if r["kind"] == KINDS[0]]
    base_minute = 1 if len(rss) > 2 else 0  # the first minute warms up
    growth = (rss[-1] - rss[base_minute]) if rss[-1] is not None and rss[base_minute] else 0.0
    total = sum(r["count"] for r in table)
    errors = sum(r["errors"] for r in table)
    p99 = {k: max((r["p99_ms"] or 0) for r in table if r["kind"] == k) for k in KINDS}
    ok = errors == 0 and growth <= args.max_growth_mib
    for failure in recorder.failures:
        console.print(f"[red]{failure}")
    print(
        f"soak {args.minutes} min at {args.rate:g}/s: {total} requests, {errors} errors; "
        f"RSS {rss[base_minute]} → {rss[-1]} MiB ({growth:+.1f}, limit +{args.max_growth_mib:g}); "
        f"worst minute p99 ms "
        + ", ".join(f"{k} {v:.0f}" for k, v in p99.items())
        + f"; {csv_path}"
        + f" — {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
