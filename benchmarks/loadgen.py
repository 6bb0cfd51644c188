"""A small open-loop HTTP load generator, run as its own process.

Requests are scheduled at a fixed rate and each latency is measured from its *scheduled*
time, so a stalled server cannot hide its queue (no coordinated omission). Raw HTTP/1.1
keep-alive over asyncio streams on uvloop: one core generates several thousand requests a
second, leaving the other to the server. ``--rate 0`` runs closed-loop instead (every
connection sends back to back) to find the ceiling.

Usage: loadgen.py PORT TOKEN POINTS.json --rate 1000 --seconds 60 --connections 32 --tag T
Prints one JSON object: counts by status, latencies (ms), achieved rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import numpy as np

CATEGORIES = [
    "environment.garbage",
    "safety.fire_lane",
    "facilities.road",
    "public_order.parking",
    "disputes.neighbours",
    "livelihood.elderly_alone",
    "courtyard.sanitation",
]


def request_bytes(i: int, token: str, tag: str, points: list[list[float]]) -> bytes:
    lon, lat = points[i % len(points)]
    body = json.dumps(
        {
            "category": CATEGORIES[i % len(CATEGORIES)],
            "lon": lon,
            "lat": lat,
            "description": f"压测上报 {tag} #{i}",
        },
        ensure_ascii=False,
    ).encode()
    head = (
        f"POST /api/v1/cases HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: {tag}-{i}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


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


async def run(args: argparse.Namespace) -> dict:
    with open(args.points) as fh:
        points = json.load(fh)
    total = int(args.rate * args.seconds) if args.rate else 10**9
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    sent_at: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    deadline = time.perf_counter() + args.seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        while True:
            if args.rate:
                item = await queue.get()
                if item is None:
                    break
                i, scheduled = item
            else:
                if time.perf_counter() >= deadline:
                    break
                i, scheduled = next(counter), time.perf_counter()
            try:
                status = await send(reader, writer, request_bytes(i, args.token, args.tag, points))
            except (OSError, asyncio.IncompleteReadError) as exc:
                errors.append(repr(exc))
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
                continue
            latencies.append((time.perf_counter() - scheduled) * 1000)
            sent_at.append(scheduled - started)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    counter = iter(range(10**9))
    started = time.perf_counter()
    workers = [asyncio.create_task(connection()) for _ in range(args.connections)]
    if args.rate:
        interval = 1.0 / args.rate
        for i in range(total):
            scheduled = started + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((i, scheduled))
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
        "mode": "open" if args.rate else "closed",
        "target_rate": args.rate,
        "connections": args.connections,
        "seconds": round(elapsed, 2),
        "sent": len(latencies) + len(errors),
        "statuses": statuses,
        "errors": len(errors),
        "error_samples": errors[:3],
        "rate": round(len(latencies) / elapsed, 1),
        "p50": round(float(np.percentile(lat, 50)), 2),
        "p90": round(float(np.percentile(lat, 90)), 2),
        "p99": round(float(np.percentile(lat, 99)), 2),
        "max": round(float(lat.max()), 2),
        "started_unix": round(time.time() - elapsed, 1),
        "worst_seconds": [{"second": s, "max_ms": round(m, 1)} for m, s in worst],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("token")
    p.add_argument("points")
    p.add_argument("--rate", type=float, default=1000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--tag", default="bench")
    args = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(args))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
