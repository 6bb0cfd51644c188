"""Slows password guessing: after a few failed sign-ins for one username from one
address, that pair must wait. Kept in the process (each worker counts its own), which is
enough to turn an online guessing attack from thousands of tries a minute into a handful.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from gis_service.errors import TooManyAttempts

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


class SignInThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, username: str, address: str) -> None:
        """Refuse (429) while this pair has used up its failures in the window."""
        with self._lock:
            recent = self._recent((username.lower(), address))
            if len(recent) >= self.max_failures:
                wait = int(recent[0] + self.window - time.monotonic()) + 1
                raise TooManyAttempts(
                    f"too many failed sign-ins for {username!r}: try again in {wait} s",
                    retry_after=wait,
                )

    def failed(self, username: str, address: str) -> None:
        with self._lock:
            self._recent((username.lower(), address)).append(time.monotonic())

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop((username.lower(), address), None)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] < time.monotonic() - self.window:
            times.popleft()
        return times
