"""The worker supervisor's one correction: a worker that dies is replaced at once.

``gis-service serve --workers N`` runs uvicorn's supervisor (``uvicorn.supervisors.
multiprocess``). Every 0.5 s it pings each worker over a ``multiprocessing.Pipe`` and waits
up to ``timeout_worker_healthcheck`` seconds for the answer (30 s here, settings.py
``worker_healthcheck_seconds``: a worker busy under load answers late and must not be
killed for it). The supervisor holds *both* ends of that pipe, so when a worker dies between
the ping and its answer the wait never sees the end of the pipe: it runs to the full timeout,
and the dead worker is replaced 30 s late while the other workers carry its load. Under load
(answers slow, so the window is wide) that happened to one kill in a dozen in
tests/faults/test_worker_kill.py.

:func:`replace_dead_workers_at_once` makes the wait also end when the worker's process ends
(its ``sentinel``, the handle ``multiprocessing.connection.wait`` accepts for exactly this).
It changes one method of uvicorn's ``Process`` and nothing else: a live worker answers as
before, a hung worker is still killed after the timeout. Installed by ``gis-service serve``
before the supervisor starts; fails loudly if uvicorn's method has gone (a newer uvicorn),
so the change is looked at rather than silently lost.
"""

from __future__ import annotations

import pickle
from multiprocessing.connection import wait

from uvicorn.supervisors import multiprocess


def _healthcheck(self: multiprocess.Process, timeout: float) -> bool | None:
    """uvicorn's ``Process._healthcheck`` (the worker's startup flag, or None when it does not
    answer within ``timeout`` seconds), except that a worker which dies meanwhile answers
    None at once instead of at the end of the timeout."""
    try:
        self.parent_conn.send(b"ping")
        ready = wait([self.parent_conn, self.process.sentinel], timeout)
        if self.parent_conn in ready:
            started: bool = self.parent_conn.recv()
            return started
        return None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError):
        return None


def replace_dead_workers_at_once() -> None:
    """Install :func:`_healthcheck` on uvicorn's worker ``Process`` (idempotent).

    Raises RuntimeError when this uvicorn has no ``Process._healthcheck`` to replace."""
    if not hasattr(multiprocess.Process, "_healthcheck"):
        raise RuntimeError(
            "uvicorn.supervisors.multiprocess.Process._healthcheck is gone: "
            "see gis_service/supervision.py before upgrading uvicorn"
        )
    multiprocess.Process._healthcheck = _healthcheck  # type: ignore[method-assign]
