"""Reading the audit log: one filter for the page the API answers and for the exports.

Newest first (``id`` descending: the order the changes were written). Moments are ISO 8601
in the district's time (gis_service/timezone.py); ``kind`` is the table's filter word from
tables.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from gis_service.audit.tables import BY_TABLE, KINDS, tables_of
from gis_service.errors import InvalidInput
from gis_service.settings import Settings
from gis_service.timezone import local_iso, zone

#: the columns of an entry, in the order the exports write them
COLUMNS: tuple[str, ...] = (
    "id",
    "at",
    "actor",
    "actor_id",
    "address",
    "request_id",
    "kind",
    "table_name",
    "operation",
    "target",
    "changed",
    "rows",
    "old",
    "new",
)
OPERATIONS: tuple[str, ...] = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")


@dataclass
class AuditFilter:
    """Which entries: a period (``since`` inclusive, ``until`` exclusive; a moment without
    a UTC offset is read in the district's time, GIS_TIMEZONE), an actor (exact, e.g.
    ``user:admin`` or ``cli:root``), a kind or a table, a target (the row's key) and an
    operation. Unset members do not filter."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    kind: str | None = None
    table: str | None = None
    target: str | None = None
    operation: str | None = None

    def where(self, settings: Settings) -> tuple[str, dict[str, Any]]:
        """The SQL condition and its parameters; InvalidInput (422) for an unknown kind,
        table or operation, or a period that ends before it starts."""
        conds, params = ["true"], {}
        self.since = _utc(self.since, settings, "since")
        self.until = _utc(self.until, settings, "until")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise InvalidInput("until must be later than since", field="until")
        if self.since is not None:
            conds.append("at >= :since")
            params["since"] = self.since
        if self.until is not None:
            conds.append("at < :until")
            params["until"] = self.until
        if self.actor:
            conds.append("actor = :actor")
            params["actor"] = self.actor
        if self.kind:
            if self.kind not in KINDS:
                raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
            conds.append("table_name = ANY(:kind_tables)")
            params["kind_tables"] = tables_of(self.kind)
        if self.table:
            if self.table not in BY_TABLE:
                raise InvalidInput(
                    f"table must be one of the audited tables: {', '.join(BY_TABLE)}",
                    field="table",
                )
            conds.append("table_name = :table")
            params["table"] = self.table
        if self.target:
            conds.append("target = :target")
            params["target"] = self.target
        if self.operation:
            if self.operation not in OPERATIONS:
                raise InvalidInput(
                    f"operation must be one of {', '.join(OPERATIONS)}", field="operation"
                )
            conds.append("operation = :operation")
            params["operation"] = self.operation
        return " AND ".join(conds), params


def _utc(moment: datetime | None, settings: Settings, field: str) -> datetime | None:
    """The moment in UTC (a naive one read in the district's time); InvalidInput for one
    that has no UTC equivalent (before year 1 or after 9999 once its offset is applied)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(settings))
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{field} is outside the years 1–9999", field=field) from None


SELECT = (
    "SELECT id, at, actor, actor_id, address, request_id, table_name, operation, target, "
    "changed, rows, old, new FROM audit_log"
)


def entry(row: Any, settings: Settings) -> dict[str, Any]:
    """A row as the API and the exports give it."""
    r = dict(row._mapping)
    audited = BY_TABLE.get(r["table_name"])
    return {
        col: (
            local_iso(r["at"], settings)
            if col == "at"
            else audited.kind
            if col == "kind" and audited
            else r.get(col)
        )
        for col in COLUMNS
    }


def page(
    conn: Connection, settings: Settings, f: AuditFilter, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """(entries newest first, how many match)."""
    where, params = f.where(settings)
    matched = conn.execute(text(f"SELECT count(*) FROM audit_log WHERE {where}"), params).scalar()
    rows = conn.execute(
        text(f"{SELECT} WHERE {where} ORDER BY id DESC LIMIT :limit OFFSET :offset"),
        {**params, "limit": limit, "offset": offset},
    )
    return [entry(r, settings) for r in rows], int(matched or 0)


def entries(conn: Connection, settings: Settings, f: AuditFilter) -> Iterator[dict[str, Any]]:
    """Every matching entry, newest first, from a server-side cursor (an export of
    millions of rows holds one batch in memory). The query runs here, before the first
    entry is asked for: a refusal comes before an answer starts streaming."""
    where, params = f.where(settings)
    result = conn.execution_options(stream_results=True, yield_per=1000).execute(
        text(f"{SELECT} WHERE {where} ORDER BY id DESC"), params
    )
    return (entry(row, settings) for row in result)
