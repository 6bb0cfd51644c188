"""A TCP relay between the browser and the server that breaks chosen report uploads, the
way a phone's connection breaks in a stairwell: in the middle of the request body, or
after the server has answered but before the answer reaches the phone.

The uploads to break are given as a plan (the phone tests: the first upload is cut, the
second loses its answer) or as a random share of all uploads (the fault tests: a stream of
reports through a bad network, tests/faults/test_network_cuts.py)."""

from __future__ import annotations

import contextlib
import random
import socket
import threading

REPORT = b"POST /api/v1/cases HTTP/1.1"
CUT_UPLOAD = "cut_upload"  # forward half of the body, then break both connections
DROP_RESPONSE = "drop_response"  # forward the whole request, never the answer


class CuttingRelay:
    """Relays 127.0.0.1:port to the server; the n-th report upload suffers plan[n]; once
    the plan is spent, each upload is broken with probability ``share`` (half of those cut
    mid-body, half losing their answer), drawn from a generator seeded by ``seed``."""

    def __init__(
        self, upstream_port: int, plan: list[str], *, share: float = 0.0, seed: int = 0
    ) -> None:
        self.upstream_port = upstream_port
        self.plan = list(plan)
        self.share = share
        self._random = random.Random(seed)
        self.reports: list[str] = []  # what happened to each report upload seen
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _next(self) -> str:
        with self._lock:
            if self.plan:
                fate = self.plan.pop(0)
            elif self._random.random() < self.share:
                fate = self._random.choice((CUT_UPLOAD, DROP_RESPONSE))
            else:
                fate = "pass"
            self.reports.append(fate)
            return fate

    def _serve(self, client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", self.upstream_port))
        drop = threading.Event()
        threading.Thread(target=self._down, args=(server, client, drop), daemon=True).start()
        try:
            self._up(client, server, drop)
        finally:
            for s in (client, server):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _up(self, client: socket.socket, server: socket.socket, drop: threading.Event) -> None:
        while data := client.recv(65536):
            at = data.find(REPORT)
            fate = self._next() if at >= 0 else "pass"
            if fate == CUT_UPLOAD:
                self._cut(client, server, data)
                return
            if fate == DROP_RESPONSE:
                drop.set()
            server.sendall(data)

    @staticmethod
    def _cut(client: socket.socket, server: socket.socket, data: bytes) -> None:
        while b"\r\n\r\n" not in data:
            more = client.recv(65536)
            if not more:
                return
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length // 2:
            more = client.recv(65536)
            if not more:
                break
            body += more
        server.sendall(head + b"\r\n\r\n" + body[: length // 2])

    @staticmethod
    def _down(server: socket.socket, client: socket.socket, drop: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if drop.is_set():  # the server answered: the phone never hears it
                    client.shutdown(socket.SHUT_RDWR)
                    return
                client.sendall(data)
