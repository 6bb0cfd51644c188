"""Answer models of the audit log (``XPublic``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gis_service.api.schemas import Public


class AuditEntry(Public):
    """One recorded change (docs/audit.md)."""

    id: int
    at: str = Field(description="ISO 8601 in the district's time")
    actor: str = Field(
        description="user:<username>, client:<name>, cli:<os user> or db:<database role>"
    )
    actor_id: int | None = Field(description="The account's id when a person acted")
    address: str | None = Field(description="Client address of the request, or cli@<host>")
    request_id: str | None
    kind: str | None = Field(description="users, teams, categories, keys, imports, ...")
    table_name: str
    operation: str = Field(description="INSERT, UPDATE, DELETE or TRUNCATE")
    target: str | None = Field(description="The changed row's key (id, code, username...)")
    changed: list[str] | None = Field(description="UPDATE: the columns that changed")
    rows: int | None = Field(description="A bulk table's summary: rows the statement touched")
    old: dict[str, Any] | None = Field(description="The row before (secrets redacted)")
    new: dict[str, Any] | None = Field(description="The row after (secrets redacted)")


class AuditLink(Public):
    rel: str
    href: str


class AuditPage(Public):
    """A page of the log, newest first."""

    numberMatched: int
    numberReturned: int
    entries: list[AuditEntry]
    links: list[AuditLink]
