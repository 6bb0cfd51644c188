"""The benchmarks' HTTP load generator, one home for report_load.py and walks.py.

Runs as its own process (``launch`` starts it), so the load it makes does not share an
interpreter with the server or the benchmark. Raw HTTP/1.1 keep-alive over asyncio
streams on uvloop: one core generates several thousand requests a second.

What to send comes from a *plan*: a function ``module:function`` of the benchmarks folder
that takes a JSON-able dict of parameters and yields ``(offset_s, request_bytes,
weight)`` in time order. ``weight`` is what a request carries (1 for a case report, the
number of fixes for a chunk of a walk), so the result counts accepted work, not only
requests.

- Open loop (the default): each request is sent at its offset from the start and its
  latency is measured from that *scheduled* time, so a stalled server cannot hide its
  queue (no coordinated omission). The run ends when the plan ends or its next offset
  lies beyond ``--seconds``.
- Closed loop (``--closed``): every connection sends the plan's requests back to back
  until ``--seconds`` have passed (or the plan ends), offsets ignored: the ceiling of
  the machine.

Usage: ``loadgen.py PORT MODULE:FUNCTION PARAMS.json --seconds 60 --connections 32
[--closed]``. Prints one JSON object: counts and weights by status, latencies (ms),
achieved request and weight rates.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: (offset from the start in seconds, the raw HTTP request, its weight)
Planned = tuple[float, bytes, int]


def http_post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A raw HTTP/1.1 POST of a JSON body to the loopback server."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{head}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def run(port: int, plan: Iterator[Planned], seconds: float, connections: int, closed: bool):
    queue: asyncio.Queue[tuple[float, bytes, int] | None] = asyncio.Queue()
    latencies: list[float] = []
    sent_at: list[float] = []
    statuses: dict[int, int] = {}
    weights: dict[int, int] = {}
    errors: list[str] = []
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            if closed:
                if time.perf_counter() >= deadline:
                    break
                item = next(plan, None)
                if item is None:
                    break
                _, data, weight = item
                scheduled = time.perf_counter()
            else:
                item = await queue.get()
                if item is None:
                    break
                scheduled, data, weight = item
            try:
                status = await send(reader, writer, data)
            except (OSError, asyncio.IncompleteReadError) as exc:
                errors.append(repr(exc))
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append((time.perf_counter() - scheduled) * 1000)
            sent_at.append(scheduled - started)
            statuses[status] = statuses.get(status, 0) + 1
            weights[status] = weights.get(status, 0) + weight
        writer.close()

    started = time.perf_counter()
    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    if not closed:
        for offset, data, weight in plan:
            if offset > seconds:
                break
            scheduled = started + offset
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((scheduled, data, weight))
        for _ in workers:
            queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - started
    lat = np.array(latencies) if latencies else np.array([np.nan])
    # The seconds with the worst latencies: when a stall happened, to line up with the
    # server's and database's logs.
    second = np.array(sent_at, dtype=int) if sent_at else np.array([0])
    worst = sorted(
        ((float(lat[second == s].max()), int(s)) for s in np.unique(second)), reverse=True
    )[:3]
    return {
        "mode": "closed" if closed else "open",
        "connections": connections,
        "seconds": round(elapsed, 2),
        "sent": len(latencies) + len(errors),
        "statuses": statuses,
        "weights": weights,
        "errors": len(errors),
        "error_samples": errors[:3],
        "rate": round(len(latencies) / elapsed, 1),
        "weight_rate": round(sum(weights.values()) / elapsed, 1),
        "p50": round(float(np.percentile(lat, 50)), 2),
        "p90": round(float(np.percentile(lat, 90)), 2),
        "p99": round(float(np.percentile(lat, 99)), 2),
        "max": round(float(lat.max()), 2),
        "started_unix": round(time.time() - elapsed, 1),
        "worst_seconds": [{"second": s, "max_ms": round(m, 1)} for m, s in worst],
    }


def launch(
    port: int,
    planner: str,
    params: dict[str, Any],
    *,
    seconds: float,
    connections: int,
    closed: bool = False,
) -> dict:
    """Run the plan ``module:function`` (with ``params``) against the loopback server on
    ``port`` in a separate process; its JSON result (see the module doc)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(params, fh)
    cmd = [
        sys.executable,
        str(Path(__file__)),
        str(port),
        planner,
        fh.name,
        "--seconds",
        str(seconds),
        "--connections",
        str(connections),
        *(["--closed"] if closed else []),
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 3 + 180)
    finally:
        Path(fh.name).unlink(missing_ok=True)
    if done.returncode != 0:
        raise SystemExit(f"loadgen failed: {done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("planner", help="module:function of the benchmarks folder")
    p.add_argument("params", help="a JSON file of the plan's parameters")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--closed", action="store_true")
    args = p.parse_args()
    module, function = args.planner.split(":")
    with open(args.params) as fh:
        params = json.load(fh)
    plan = getattr(importlib.import_module(module), function)(params)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args.port, iter(plan), args.seconds, args.connections, args.closed))
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
