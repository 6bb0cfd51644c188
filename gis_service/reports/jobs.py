"""Making a report as a job: printing the PDF takes seconds, so a request waits up to
``Settings.import_wait_seconds`` and otherwise answers 202 with the job's status URL
(the access jobs' pattern, access/jobs.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gis_service.access.jobs import AccessJobs

STATUS_PREFIX = "/api/v1/reports/jobs"
#: one worker per process: reports are printed one at a time
JOBS = AccessJobs(status_prefix=STATUS_PREFIX)


@dataclass
class Made:
    """A job's result: the new version; its summary names where to read it."""

    version: dict[str, Any]

    def summary(self) -> str:
        v = self.version
        return f"version {v['version']} of {v['unit']} {v['month']}: {v['url']}"
