"""A stub SMS gateway the tests start on 127.0.0.1: a real HTTP server recording calls.

``SmsGateway`` answers every request (any path, GET or POST) with the next status of
``statuses`` (then ``200``), after ``delay`` seconds, and keeps what it got in ``calls``,
so the SMS channel is tested over a socket against the HTTP it really sends.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HOST = "127.0.0.1"


@dataclass
class Call:
    """One request the gateway received."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)


class SmsGateway:
    """The stub gateway on 127.0.0.1:``port`` (``url``); use as a context manager."""

    def __init__(self, *, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                with gateway.lock:
                    gateway.calls.append(
                        Call(
                            method=self.command,
                            path=url.path,
                            query=parse_qsl(url.query, keep_blank_values=True),
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                        )
                    )
                    status = gateway.statuses.pop(0) if gateway.statuses else 200
                if gateway.delay:
                    time.sleep(gateway.delay)
                answer = json.dumps({"code": status, "msg": "stub"}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.port: int = self.server.server_address[1]
        self.url = f"http://{HOST}:{self.port}/sms/send"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> SmsGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
