"""GET /audit and GET /audit/export: the audit log, for admins only. Thin: the filter and
the SQL are log.py's, the file formats export.py's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from gis_service.api.deps import AdminDep, ConnDep, SettingsDep
from gis_service.api.params import MAX_LIMIT
from gis_service.api.schemas import SIGNED_IN, media
from gis_service.audit import export, log
from gis_service.audit.schemas import AuditPage
from gis_service.audit.tables import BY_TABLE, KINDS
from gis_service.db.engine import get_engine
from gis_service.timezone import local_now

router = APIRouter(tags=["audit"], responses=SIGNED_IN)

AuditKind = StrEnum("AuditKind", {k: k for k in KINDS})  # type: ignore[misc]
AuditTable = StrEnum("AuditTable", {t: t for t in BY_TABLE})  # type: ignore[misc]
AuditOperation = StrEnum("AuditOperation", {o: o for o in log.OPERATIONS})  # type: ignore[misc]


@dataclass
class AuditParams:
    since: Annotated[
        datetime | None,
        Query(description="From this moment (ISO 8601; without an offset: district time)"),
    ] = None
    until: Annotated[datetime | None, Query(description="Before this moment")] = None
    actor: Annotated[str | None, Query(max_length=200, examples=["user:admin", "cli:root"])] = None
    kind: Annotated[AuditKind | None, Query(description="What was changed")] = None  # type: ignore[valid-type]
    table: Annotated[AuditTable | None, Query(description="The table changed")] = None  # type: ignore[valid-type]
    target: Annotated[str | None, Query(max_length=200, description="The changed row's key")] = None
    operation: Annotated[AuditOperation | None, Query()] = None  # type: ignore[valid-type]

    def filter(self) -> log.AuditFilter:
        return log.AuditFilter(
            since=self.since,
            until=self.until,
            actor=self.actor,
            kind=self.kind.value if self.kind else None,
            table=self.table.value if self.table else None,
            target=self.target,
            operation=self.operation.value if self.operation else None,
        )


def _links(request: Request, limit: int, offset: int, matched: int) -> list[dict[str, str]]:
    base = str(request.url).split("?")[0]
    query = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}

    def href(off: int) -> str:
        return f"{base}?{urlencode({**query, 'limit': limit, 'offset': off})}"

    links = [{"rel": "self", "href": href(offset)}]
    if offset + limit < matched:
        links.append({"rel": "next", "href": href(offset + limit)})
    if offset > 0:
        links.append({"rel": "prev", "href": href(max(0, offset - limit))})
    return links


@router.get(
    "/audit",
    summary="The audit log of privileged changes, newest first (admins)",
    response_model=AuditPage,
)
def audit_log(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    _: AdminDep,
    params: Annotated[AuditParams, Depends()],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Entries per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31, description="Entries to skip")] = 0,
) -> dict[str, Any]:
    """Who changed what, when and from where (docs/audit.md), filtered by period, actor,
    kind or table, target and operation; ``links`` page through it. 401 without a
    sign-in, 403 for anyone but an admin, 422 for a period that ends before it starts."""
    entries, matched = log.page(conn, settings, params.filter(), limit, offset)
    return {
        "numberMatched": matched,
        "numberReturned": len(entries),
        "entries": entries,
        "links": _links(request, limit, offset, matched),
    }


@router.get(
    "/audit/export",
    summary="The audit log as a file: CSV (UTF-8 with BOM) or JSON Lines (admins)",
    response_class=StreamingResponse,
    responses={
        200: media(
            "Every matching entry, newest first",
            *dict.fromkeys(export.MEDIA_TYPES.values()),
            schema={"type": "string"},
        )
    },
)
def audit_export(
    settings: SettingsDep,
    _: AdminDep,
    params: Annotated[AuditParams, Depends()],
    format: Annotated[export.ExportFormat, Query(description="csv or jsonl")] = (
        export.ExportFormat.csv
    ),
) -> StreamingResponse:
    """The same filters as ``GET /audit``, every matching entry (no paging), streamed as
    an attachment; the columns are the entries' members (export.py)."""
    conn = get_engine(settings).connect()
    try:
        rows = log.entries(conn, settings, params.filter())
    except BaseException:
        conn.close()
        raise

    def body() -> Iterator[bytes]:
        try:
            yield from export.chunks(format, rows)
        finally:
            conn.close()

    stamp = local_now(settings).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        body(),
        media_type=export.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.{format.value}"'},
    )
