"""Answer models of imports (``XPublic``)."""

from __future__ import annotations

from typing import Any

from gis_service.api.schemas import Public


class ImportStarted(Public):
    """POST /imports: 201 with the QA report when done within the wait, 202 while it runs
    (ask ``status_url``)."""

    id: str
    status: str
    status_url: str
    report: dict[str, Any] | None = None


class ImportRun(Public):
    """An import's row; moments are ISO 8601 in the district's time."""

    id: str
    kind: str
    filename: str | None
    params: dict[str, Any] | None
    status: str
    report: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
