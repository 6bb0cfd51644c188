"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 (a free port) in a
thread, that checks every request's signature with the subscription's secret
(``channels.webhook.verify``) and counts deliveries by their ``X-Delivery-Id``.

``answer`` sets the status it answers (200; 503 to make the sender retry, 400 to refuse);
``delay`` makes each answer slow (a sender killed mid-batch). A request whose signature
does not verify is answered 401 and counted in ``bad``."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gis_service.notify.channels.webhook import verify


class WebhookReceiver:
    """Start with ``with WebhookReceiver(secret) as r:``; ``r.url`` is where to POST."""

    def __init__(self, secret: str, *, answer: int = 200, delay: float = 0.0) -> None:
        self.secret = secret
        self.answer = answer
        self.delay = delay
        self.counts: Counter[str] = Counter()
        self.bodies: dict[str, dict[str, Any]] = {}
        #: wall-clock time (time.time()) each delivery id first arrived
        self.arrived: dict[str, float] = {}
        self.bad = 0
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify(
                    receiver.secret,
                    self.headers.get("X-Timestamp", ""),
                    body,
                    self.headers.get("X-Signature", ""),
                )
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.requests += 1
                    if not ok:
                        receiver.bad += 1
                    status = receiver.answer if ok else 401
                    if ok and status < 300:
                        delivery = self.headers["X-Delivery-Id"]
                        receiver.counts[delivery] += 1
                        receiver.arrived.setdefault(delivery, time.time())
                        data = json.loads(body)
                        assert data["delivery_id"] == delivery
                        assert data["event_id"] == self.headers["X-Event-Id"]
                        receiver.bodies[delivery] = data
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # socketserver's listen backlog is 5: a sender with more connections open at
            # once than that has the rest's SYNs dropped and resent a second later, which
            # measured the backlog, not the sender (a real receiver listens with hundreds)
            request_queue_size = 512

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> int:
        """How many distinct delivery ids arrived (answered 2xx)."""
        with self._lock:
            return len(self.counts)

    def wait_for(self, n: int, timeout: float = 30.0) -> None:
        """Wait until ``n`` distinct deliveries arrived; AssertionError after ``timeout``."""
        end = time.monotonic() + timeout
        while self.received() < n:
            assert time.monotonic() < end, f"{self.received()} of {n} deliveries arrived"
            time.sleep(0.05)
