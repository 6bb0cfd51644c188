"""What the fault tests share: the real server as its own process(es), a stream of reports
from clients that retry with the same Idempotency-Key, and the count of what was stored.

The stream is a grid worker's phone as the outbox sends (web/mobile/outbox.js): each report
carries a key of its own; on a connection error or a 5xx answer the same request is sent
again with the same key until an answer of 200 or 201 acknowledges it. Every answer and
every connection error is counted, so a test can say "no 500 at any time" and "every
acknowledged report stored exactly once" (``assert_exactly_once``, counted by
Idempotency-Key in the database).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.settings import Settings
from tests.browser import free_port
from tests.images import image_bytes

#: the test city's grid 41019900100101 (tests/conftest.py GRIDS): reports land inside it
GRID_1 = (113.0, 34.05, 113.025, 34.1)
#: what uvicorn logs for an error no handler answered (a 500)
UNHANDLED = "Exception in ASGI application"
#: how long the server may take to answer /healthz after it is started
START_SECONDS = 60


@dataclass
class Served:
    """``gis-service serve`` running as its own process group."""

    base: str
    port: int
    proc: subprocess.Popen
    log: Path
    worker_count: int

    def workers(self) -> list[psutil.Process]:
        """The worker processes serving requests: with one, the server process itself;
        with more, uvicorn's supervisor's children that run the app (multiprocessing's
        resource tracker is not one)."""
        if self.worker_count == 1:
            return [psutil.Process(self.proc.pid)]
        return [
            p
            for p in psutil.Process(self.proc.pid).children()
            if "resource_tracker" not in " ".join(_cmdline(p))
        ]

    def all_processes(self) -> list[psutil.Process]:
        """The supervisor and every process under it."""
        top = psutil.Process(self.proc.pid)
        return [top, *top.children(recursive=True)]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes ``gis-service serve`` use these settings' database,
    cluster, signing key and photo directory."""
    return {
        **os.environ,
        "GIS_VAR_DIR": str(settings.var_dir),
        "GIS_DB_NAME": settings.db_name,
        "GIS_DB_PORT": str(settings.db_port),
        "GIS_SECRET_KEY": settings.secret_key or "",
        "GIS_PHOTO_DIR": str(settings.photos_path),
        "GIS_DB_RETRY_AFTER_SECONDS": str(settings.db_retry_after_seconds),
        **extra,
    }


@contextlib.contextmanager
def served(settings: Settings, *, workers: int = 1, **extra_env: str) -> Iterator[Served]:
    """``gis-service serve --workers N`` on a free port of 127.0.0.1 (the command a
    district runs, docs/deploy.md), ready when every worker has started its app."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="gis-faults-server-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gis-service"),
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=server_env(settings, **extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Served(
        base=f"http://127.0.0.1:{port}", port=port, proc=proc, log=log, worker_count=workers
    )
    try:
        wait_ready(server)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.unlink(missing_ok=True)


def wait_ready(server: Served) -> None:
    """Until /healthz says ok (with the statistics loaded) and N workers are running."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the server exited: {server.log_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            body = httpx.get(server.base + "/healthz", timeout=2).json()
            ready = body.get("status") == "ok" and body.get("stats_ready")
            if ready and len(server.workers()) == server.worker_count:
                return
        time.sleep(0.1)
    raise RuntimeError(
        f"the server was not ready in {START_SECONDS} s: {server.log_text()[-3000:]}"
    )


@dataclass
class Sent:
    """One report of the stream and what became of it."""

    key: str
    photo: bool
    first_sent: float
    attempts: int = 0
    acked_at: float | None = None
    case_id: int | None = None
    #: the acknowledging answer was 200: a retry found the case its earlier try stored
    replayed: bool = False
    #: an answer that is neither an acknowledgement nor a retryable fault
    refused: str | None = None


@dataclass
class ReportStream:
    """Reports sent one after another by ``threads`` clients until stopped.

    Every ``photo_every``-th report of a client is multipart with one JPEG photo (0: none).
    ``timeout`` is the client's read timeout: a request whose worker died without closing
    the connection (a kill -9 after accept) is retried after it.
    """

    base: str
    headers: dict[str, str]
    tag: str
    threads: int = 2
    photo_every: int = 0
    timeout: float = 10.0
    pause: float = 0.05
    seed: int = 14
    statuses: Counter = field(default_factory=Counter)
    transport_errors: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> ReportStream:
        for n in range(self.threads):
            t = threading.Thread(target=self._client, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)

    # --- what the tests read ------------------------------------------------------------

    def acked(self) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.acked_at is not None]

    def refused(self) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.refused is not None]

    def wait_acks(self, n: int, *, sent_after: float, within: float) -> float:
        """Wait until n reports first sent at or after ``sent_after`` (a monotonic time) are
        acknowledged; returns the time of the first of them. Fails after ``within`` s."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self._lock:
                done = sorted(
                    s.acked_at
                    for s in self.sent
                    if s.acked_at is not None and s.first_sent >= sent_after
                )
            if len(done) >= n:
                return done[0]
            time.sleep(0.02)
        raise AssertionError(
            f"fewer than {n} reports sent after the fault were acknowledged within {within} s; "
            f"answers {dict(self.statuses)}, connection errors {dict(self.transport_errors)}"
        )

    def summary(self) -> str:
        acked = self.acked()
        retried = sum(1 for s in acked if s.attempts > 1)
        replays = sum(1 for s in acked if s.replayed)
        return (
            f"{len(acked)} reports acknowledged ({retried} after a retry, {replays} of them "
            f"answered 200 as a replay); answers {dict(sorted(self.statuses.items()))}; "
            f"connection errors {dict(self.transport_errors)}"
        )

    # --- the clients --------------------------------------------------------------------

    def _client(self, n: int) -> None:
        rng = random.Random(f"{self.seed}-{n}")
        with httpx.Client(
            base_url=self.base,
            headers=self.headers,
            timeout=httpx.Timeout(self.timeout, connect=5.0),
        ) as client:
            i = 0
            while not self._stop.is_set():
                photo = self.photo_every > 0 and i % self.photo_every == self.photo_every - 1
                self._send(client, rng, f"{self.tag}-{n}-{i}", photo)
                i += 1

    def _send(self, client: httpx.Client, rng: random.Random, key: str, photo: bool) -> None:
        west, south, east, north = GRID_1
        fields = {
            "category": "environment.garbage",
            "lon": round(rng.uniform(west, east), 6),
            "lat": round(rng.uniform(south, north), 6),
            "description": f"故障测试 {key}",
        }
        if photo:
            jpeg = image_bytes(size=(64, 48), seed=rng.randrange(1 << 30))
            request = {
                "data": {k: str(v) for k, v in fields.items()},
                "files": {"photo": ("photo.jpg", jpeg, "image/jpeg")},
            }
        else:
            request = {"json": fields}
        record = Sent(key=key, photo=photo, first_sent=time.monotonic())
        with self._lock:
            self.sent.append(record)
        while not self._stop.is_set():
            record.attempts += 1
            try:
                r = client.post(
                    "/api/v1/cases", headers={"Idempotency-Key": key}, **request
                )  # the same key, the same payload, every try
            except httpx.TransportError as exc:
                with self._lock:
                    self.transport_errors[type(exc).__name__] += 1
                time.sleep(self.pause)
                continue
            with self._lock:
                self.statuses[r.status_code] += 1
                if r.status_code >= 500 and r.status_code != 503:
                    self.server_errors.append(f"{key}: {r.status_code} {r.text[:300]}")
            if r.status_code in (200, 201):
                record.case_id = r.json()["id"]
                record.replayed = r.status_code == 200
                record.acked_at = time.monotonic()
                return
            if r.status_code >= 500:
                time.sleep(self.pause)
                continue
            record.refused = f"{r.status_code} {r.text[:300]}"
            return


def stored(settings: Settings, tag: str) -> dict[str, list[tuple[int, int]]]:
    """The stream's cases in the database, by the Idempotency-Key their sender gave (the
    sender's prefix of ``cases.idempotency_key`` removed): [(case id, photos)]. Cases are
    found by the tag in their description, so a case stored without its key (or under
    another) would show up too, under the key None."""
    with get_engine(settings).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.id, c.idempotency_key, "
                "  (SELECT count(*) FROM case_photo p WHERE p.case_id = c.id) "
                "FROM cases c WHERE c.description LIKE :pattern"
            ),
            {"pattern": f"故障测试 {tag}-%"},
        ).all()
    by_key: dict[str, list[tuple[int, int]]] = {}
    for case_id, scoped_key, photos in rows:
        key = scoped_key.partition(":")[2] if scoped_key else None
        by_key.setdefault(key, []).append((case_id, photos))
    return by_key


def assert_exactly_once(settings: Settings, stream: ReportStream) -> None:
    """Every acknowledged report is stored once, as the case its answer named, with its
    photo if it had one; nothing is stored that the stream did not send; no answer was a
    500 (or another 5xx but 503) and none refused a report."""
    assert not stream.server_errors, stream.server_errors[:5]
    assert not stream.refused(), [(s.key, s.refused) for s in stream.refused()[:5]]
    by_key = stored(settings, stream.tag)
    sent = {s.key: s for s in stream.sent}
    assert None not in by_key, f"cases stored without their Idempotency-Key: {by_key[None]}"
    assert set(by_key) <= set(sent), f"cases nobody sent: {set(by_key) - set(sent)}"
    doubled = {k: v for k, v in by_key.items() if len(v) != 1}
    assert not doubled, f"reports stored more than once: {doubled}"
    acked = stream.acked()
    assert acked, "nothing was acknowledged"
    for s in acked:
        assert s.key in by_key, f"acknowledged report {s.key} (case {s.case_id}) was lost"
        ((case_id, photos),) = by_key[s.key]
        assert case_id == s.case_id, f"{s.key}: answered case {s.case_id}, stored {case_id}"
        assert photos == (1 if s.photo else 0), f"{s.key}: {photos} photos stored"
    # what was sent but never acknowledged (in flight when the stream stopped) is stored
    # at most once, as above; there are at most as many as the stream's clients
    assert len(sent) - len(acked) <= stream.threads
