"""Memory returns to its level after large requests (issue 14 item 2, OWASP API4:2023).

The real server (``gis-service serve``, a subprocess on the demo city) answers each kind of
request once small, to load what it keeps on purpose (the walking network's engine, the
statistics cube, imported modules); its resident size (VmRSS) then is the baseline. Then
it gets large requests twice each: a dry-run import of 20,000 points, a near-limit upload
(60 MB of GeoJSON, read whole and refused for its 480,000 vertices), a siting with about
86,000 building-candidate pairs, the living circle of every building, and a one-hour
isochrone on a 4,000 × 4,000 raster. The resident size must rise while they run (they
are large) and fall back within ``MARGIN_MB`` of the baseline afterwards.

Without gis_service/memory.py (glibc keeps freed heap pages mapped) the same run left the
server about 100 MB above its baseline, 81 MB of it from the refused upload alone.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import httpx

from tests.browser import live_server
from tests.conftest import ADMIN_AUTH

MARGIN_MB = 50
NEAR_LIMIT_BYTES = 64 * 1024**2


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB, from /proc/PID/status (VmRSS, kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def server_pid(port: str) -> int:
    """The child of this process serving on ``port`` (live_server starts it)."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == me and b"serve" in cmd and port.encode() in cmd:
            return int(entry.name)
    raise AssertionError(f"no server of ours on port {port}")


def points(n: int) -> bytes:
    """A GeoJSON FeatureCollection of ``n`` named points about 11 m apart."""
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Point",
                "coordinates": [113.6 + (i % 1000) * 1e-4, 34.7 + (i // 1000) * 1e-4],
            },
            "properties": {"name": f"点{i}"},
        }
        for i in range(n)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


class Peak(threading.Thread):
    """Samples a process's resident size every 50 ms; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.05)


def test_resident_memory_returns_to_its_level_after_large_requests(demo_settings, monkeypatch):
    monkeypatch.setenv("GIS_IMPORT_MAX_BYTES", str(NEAR_LIMIT_BYTES))
    monkeypatch.setenv("GIS_IMPORT_MAX_VERTICES", "100000")
    monkeypatch.setenv("GIS_IMPORT_WAIT_SECONDS", "120")
    small_file, mid_file, near_limit = points(50), points(20_000), points(480_000)
    assert 0.9 * NEAR_LIMIT_BYTES < len(near_limit) < NEAR_LIMIT_BYTES

    with (
        live_server(demo_settings) as base,
        httpx.Client(base_url=base, timeout=300, headers=ADMIN_AUTH) as c,
    ):
        pid = server_pid(base.rsplit(":", 1)[1])

        def upload(blob: bytes) -> int:
            form = {"kind": "points", "point_kind": "party_org", "dry_run": "true"}
            files = {"file": ("points.geojson", blob, "application/geo+json")}
            return c.post("/api/v1/imports", data=form, files=files).status_code

        def ask(path: str, **params) -> int:
            return c.get(f"/api/v1/access/{path}", params=params).status_code

        def requests(large: bool) -> list[int]:
            point = {"lon": 113.66, "lat": 34.75}
            return [
                upload(mid_file if large else small_file),
                *([upload(near_limit)] if large else []),
                ask(
                    "siting", category="health", k=10 if large else 1, max_m=1000 if large else 300
                ),
                ask("living-circle", level="building" if large else "district"),
                ask(
                    "isochrone",
                    **point,
                    minutes=60 if large else 5,
                    speed_kmh=20 if large else 4,
                    resolution_m=10 if large else 5,
                ),
            ]

        for _ in range(2):
            assert requests(large=False) == [201, 200, 200, 200]
        time.sleep(1)
        baseline = rss_mb(pid)
        peak = Peak(pid)
        peak.start()
        for _ in range(2):
            assert requests(large=True) == [201, 422, 200, 200, 200]
        peak.stop.set()
        peak.join()
        time.sleep(1)
        after = rss_mb(pid)
    print(f"RSS baseline {baseline:.0f} MB, peak {peak.peak:.0f} MB, after {after:.0f} MB")
    assert peak.peak > baseline + 100, "the large requests were not large"
    assert after <= baseline + MARGIN_MB, (
        f"RSS {after:.0f} MB stayed above the baseline {baseline:.0f} MB + {MARGIN_MB} MB "
        f"(peak {peak.peak:.0f} MB)"
    )
