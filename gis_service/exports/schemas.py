"""Answer model of an export job's status (exports/jobs.py ``public``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from gis_service.api.schemas import Public


class ExportJob(Public):
    """A large export written in the background: poll ``status_url`` until ``status`` is
    ``succeeded`` (then fetch ``download_url``) or ``failed`` (``error`` says why)."""

    id: str
    kind: str = Field(examples=["cases"])
    format: str = Field(examples=["xlsx"])
    status: str = Field(examples=["queued", "running", "succeeded", "failed"])
    rows_total: int | None = Field(description="Rows the export holds (counted at the start)")
    rows_written: int = Field(ge=0)
    progress: float = Field(ge=0, le=1, description="rows_written / rows_total")
    filename: str | None = Field(description="The download's file name")
    bytes: int | None = Field(description="The file's size once written")
    error: dict[str, Any] | None = Field(description="Our error body, if it failed")
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime = Field(description="The file and this status are gone after it")
    status_url: str
    download_url: str | None = Field(description="Once succeeded: the file")
