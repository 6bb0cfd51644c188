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
from collections import deque
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


class Client(asyncio.Protocol):
    """One keep-alive connection: sends a request, reads its answer (status line, headers,
    Content-Length body), then asks ``done`` for the next. A protocol, not asyncio's
    streams and a queue between scheduler and connections: with the requests made before
    the clock starts, 0.05 ms less CPU a request on the cores the server shares (0.35–0.40
    → 0.32–0.33 ms at 600/s, start-up included; benchmarks/RESULTS.md 2026-12-02)."""

    def __init__(self, done) -> None:
        self.done = done  # done(client, status or None on a broken connection)
        self.buf = b""
        self.need = -1  # bytes of the answer still to come once the head is read
        self.status = 0
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.ready.set_result(None)

    def send(self, data: bytes) -> None:
        self.buf, self.need = b"", -1
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            self.status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            self.need = end + 4 + length
        if len(self.buf) >= self.need:
            self.done(self, self.status)

    def connection_lost(self, exc) -> None:
        if self.need != -2:
            self.need = -2
            self.done(self, None)


async def run(port: int, plan: Iterator[Planned], seconds: float, connections: int, closed: bool):
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    sent_at: list[float] = []
    statuses: dict[int, int] = {}
    weights: dict[int, int] = {}
    errors: list[str] = []
    # the open loop's requests are made before the clock starts: making them is the plan's
    # work, not the load's
    schedule = []
    if not closed:
        for item in plan:
            if item[0] > seconds:
                break
            schedule.append(item)
    pending: deque[tuple[float, bytes, int]] = deque()  # due, waiting for a connection
    idle: list[Client] = []
    busy: dict[Client, tuple[float, bytes, int]] = {}
    finished = loop.create_future()
    deadline = 0.0
    started = 0.0
    planned_out = False
    reconnects: set[asyncio.Task] = set()

    def next_item() -> tuple[float, bytes, int] | None:
        nonlocal planned_out
        if pending:
            return pending.popleft()
        if closed and not planned_out and time.perf_counter() < deadline:
            item = next(plan, None)
            if item is not None:
                return (time.perf_counter(), item[1], item[2])
            planned_out = True
        return None

    def maybe_finished() -> None:
        if len(idle) == connections and (closed or planned_out) and not finished.done():
            finished.set_result(None)

    def hand(client: Client, item: tuple[float, bytes, int]) -> None:
        busy[client] = item
        client.send(item[1])

    def dispatch(client: Client) -> None:
        item = next_item()
        if item is None:
            idle.append(client)
            maybe_finished()
        else:
            hand(client, item)

    def done(client: Client, status: int | None) -> None:
        item = busy.pop(client, None)
        if status is None:  # the connection broke: its request counts as an error
            if client in idle:
                idle.remove(client)
            if finished.done():
                return
            if item is not None:
                errors.append("connection lost")
            reconnects.add(task := loop.create_task(connect()))
            task.add_done_callback(reconnects.discard)
            return
        if item is None:
            return
        scheduled, _, weight = item
        latencies.append((time.perf_counter() - scheduled) * 1000)
        sent_at.append(scheduled - started)
        statuses[status] = statuses.get(status, 0) + 1
        weights[status] = weights.get(status, 0) + weight
        dispatch(client)

    async def connect() -> None:
        _, client = await loop.create_connection(lambda: Client(done), "127.0.0.1", port)
        await client.ready
        dispatch(client)

    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(connect() for _ in range(connections)))
    if not closed:
        for offset, data, weight in schedule:
            scheduled = started + offset
            delay = scheduled - time.perf_counter()
            if delay > 0.0005:  # a timer a request at most; those due together go together
                await asyncio.sleep(delay)
            item = (scheduled, data, weight)
            if idle:
                hand(idle.pop(), item)
            else:
                pending.append(item)
        planned_out = True
        maybe_finished()
    await finished
    for client in idle:
        client.transport.close()
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
