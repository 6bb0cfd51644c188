"""Long access computations (all circles after a network import, the distances of every
building at city scale) as background jobs the API can answer about.

One worker thread per process: two requests that need the same refresh share one job.
A request waits up to ``Settings.import_wait_seconds``; past that it answers 202 with the
job's status URL, and the job goes on.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from gis_service.errors import ServiceNotReady
from gis_service.memory import release


@dataclass
class Job:
    name: str
    future: Future
    started: float = field(default_factory=time.time)
    step: str = "queued"
    finished: float | None = None
    error: str | None = None
    summary: str | None = None
    #: where the API answers about jobs of this kind (AccessJobs' ``status_prefix``)
    status_prefix: str = "/api/v1/access/jobs"

    def public(self) -> dict[str, Any]:
        state = "failed" if self.error else "done" if self.finished else "running"
        return {
            "job": self.name,
            "status": state,
            "step": self.step,
            "started_at": self.started,
            "finished_at": self.finished,
            "error": self.error,
            "summary": self.summary,
            "status_url": f"{self.status_prefix}/{self.name}",
        }


class Pending(Exception):
    """The job runs on; the caller answers 202 with its status."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.name)
        self.job = job


class AccessJobs:
    """``status_prefix``: the route that answers about these jobs (reports reuse the
    class for their own jobs, reports/jobs.py)."""

    def __init__(self, status_prefix: str = "/api/v1/access/jobs") -> None:
        self.status_prefix = status_prefix
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="access")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def run(self, name: str, work: Callable[[Callable[[str], None]], Any], wait: float) -> Any:
        """Start ``work(progress)`` unless a job of that name is running; wait for it."""
        with self._lock:
            job = self._jobs.get(name)
            if job is None or job.future.done():
                future: Future = Future()
                job = Job(name, future, status_prefix=self.status_prefix)
                self._jobs[name] = job
                self._pool.submit(self._body, job, work)
        try:
            return job.future.result(timeout=wait)
        except FutureTimeout:
            raise Pending(job) from None

    def _body(self, job: Job, work: Callable) -> None:
        def progress(step: str) -> None:
            job.step = step

        try:
            result = work(progress)
            job.summary = getattr(result, "summary", lambda: None)()
            job.step = "done"
            job.finished = time.time()
            if not job.future.done():  # not failed meanwhile by shutdown()
                job.future.set_result(result)
        except BaseException as exc:  # reported through the status URL and the waiter
            job.error = f"{type(exc).__name__}: {exc}"
            job.finished = time.time()
            traceback.print_exc()
            if not job.future.done():
                job.future.set_exception(exc)
        finally:
            release()  # gis_service/memory.py: the job's arrays are freed; return their pages

    def get(self, name: str) -> Job | None:
        return self._jobs.get(name)

    def shutdown(self) -> None:
        """Stop the worker; a job still waiting or running is failed, so no one waits on
        it again, and a later ``run`` (the app started anew) gets a fresh worker."""
        with self._lock:
            pool, self._pool = (
                self._pool,
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="access"),
            )
            for job in self._jobs.values():
                if not job.future.done():
                    job.error = "stopped: the service stopped before the job finished"
                    job.finished = time.time()
                    job.future.set_exception(ServiceNotReady(job.error, service="access"))
        pool.shutdown(wait=False, cancel_futures=True)
