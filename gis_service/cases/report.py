"""Reporting a case: the hot path of the service, one database round trip.

``report_case()`` (migration 0002) replays an Idempotency-Key, checks the category,
locates the point in the grid, checks the reporter's jurisdiction, numbers and inserts the
case with its first timeline event, and finds possible duplicates — all in one statement.
Python validates the payload, converts coordinates and maps the function's SQLSTATEs to
HTTP errors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from gis_service.auth.principal import Principal
from gis_service.auth.scope import report_scopes
from gis_service.db.asyncpool import get_pool
from gis_service.errors import (
    Forbidden,
    GisServiceError,
    InvalidInput,
    OutsideCoverage,
    Unauthorized,
)
from gis_service.geo.coords import CoordSys, point_to_wgs84
from gis_service.settings import Settings

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")
SQLSTATE_ERRORS: dict[str, type[GisServiceError]] = {
    "GS401": Unauthorized,
    "GS403": Forbidden,
    "GS422": InvalidInput,
    "GSOUT": OutsideCoverage,
}
REPORT_SQL = (
    "SELECT case_id, created, body FROM report_case("
    + ", ".join(f"${i}" for i in range(1, 16))
    + ")"
)


class CaseReport(BaseModel):
    """What a grid worker (or a client app) sends to report a problem."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    category: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="A category code from GET /api/v1/categories",
            examples=["environment.garbage"],
        ),
    ]
    lon: Annotated[float, Field(ge=-180, le=180, description="Longitude in coord_sys")]
    lat: Annotated[float, Field(ge=-90, le=90, description="Latitude in coord_sys")]
    coord_sys: CoordSys = CoordSys.wgs84
    description: Annotated[str, Field(min_length=1, max_length=2000)]
    address: Annotated[str | None, Field(max_length=200)] = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    link_to: Annotated[
        int | None,
        Field(
            gt=0,
            description="Id of an open case this report is the same problem as: the "
            "report is kept as its duplicate and the case's timeline notes it",
        ),
    ] = None
    attrs: dict[str, Any] | None = Field(default=None, description="Extra client fields")


def idempotency_scope(principal: Principal, key: str | None) -> str | None:
    """Keys are per sender, so two phones that pick the same key never collide."""
    if key is None:
        return None
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            "Idempotency-Key must be 1–200 visible ASCII characters", field="Idempotency-Key"
        )
    sender = f"u{principal.user_id}" if principal.user_id is not None else f"k{principal.client_id}"
    return f"{sender}:{key}"


@dataclass(frozen=True)
class Reported:
    """The function's answer, kept as the JSON text PostgreSQL built (no re-encoding)."""

    id: int
    created: bool
    json: str

    def as_dict(self) -> dict[str, Any]:
        return json.loads(self.json)


async def report(
    settings: Settings,
    principal: Principal,
    payload: CaseReport,
    key: str | None,
    source: str = "app",
) -> Reported:
    """Record a report; ``created`` is False on a replay of the same Idempotency-Key."""
    scopes = report_scopes(principal)
    lon, lat = point_to_wgs84(payload.lon, payload.lat, payload.coord_sys)
    attrs = json.dumps(payload.attrs, ensure_ascii=False) if payload.attrs else None
    pool = await get_pool(settings)
    try:
        row = await pool.fetchrow(
            REPORT_SQL,
            principal.user_id,
            principal.token_version,
            principal.client_id,
            scopes,
            idempotency_scope(principal, key),
            payload.category,
            lon,
            lat,
            payload.description,
            payload.address,
            payload.priority,
            source,
            attrs,
            payload.link_to,
            settings.timezone,
        )
    except asyncpg.PostgresError as exc:
        raise _translate(exc) from None
    return Reported(id=row[0], created=row[1], json=row[2])


def _translate(exc: asyncpg.PostgresError) -> Exception:
    error = SQLSTATE_ERRORS.get(exc.sqlstate or "")
    if error is None:
        return exc
    column = getattr(exc, "column_name", None)
    return error(exc.message, **({"field": column} if column else {}))
