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
from typing import Annotated, Any, Literal

import psycopg2
from pydantic import BaseModel, ConfigDict, Field

from gis_service.auth.principal import Principal
from gis_service.db.engine import get_engine
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
    "GS401": Unauthorized, "GS403": Forbidden, "GS422": InvalidInput, "GSOUT": OutsideCoverage,
}
REPORT_SQL = f"SELECT report_case({', '.join(['%s'] * 15)})::text"


class CaseReport(BaseModel):
    """What a grid worker (or a client app) sends to report a problem."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    category: Annotated[str, Field(min_length=1, max_length=64,
                                   description="A category code from GET /api/v1/categories",
                                   examples=["environment.garbage"])]
    lon: Annotated[float, Field(ge=-180, le=180, description="Longitude in coord_sys")]
    lat: Annotated[float, Field(ge=-90, le=90, description="Latitude in coord_sys")]
    coord_sys: CoordSys = CoordSys.wgs84
    description: Annotated[str, Field(min_length=1, max_length=2000)]
    address: Annotated[str | None, Field(max_length=200)] = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    link_to: Annotated[int | None, Field(
        gt=0, description="Id of an open case this report is the same problem as: the "
                          "report is kept as its duplicate and the case's timeline notes it")
    ] = None
    attrs: dict[str, Any] | None = Field(default=None, description="Extra client fields")


def idempotency_scope(principal: Principal, key: str | None) -> str | None:
    """Keys are per sender, so two phones that pick the same key never collide."""
    if key is None:
        return None
    if not KEY_PATTERN.match(key):
        raise InvalidInput("Idempotency-Key must be 1–200 visible ASCII characters",
                           field="Idempotency-Key")
    sender = f"u{principal.user_id}" if principal.user_id is not None else \
        f"k{principal.client_id}"
    return f"{sender}:{key}"


def report(settings: Settings, principal: Principal, payload: CaseReport, key: str | None,
           source: str = "app") -> dict[str, Any]:
    """Record a report; returns the case summary with ``created`` (False on a replay)."""
    scopes = principal.report_scopes()
    lon, lat = point_to_wgs84(payload.lon, payload.lat, payload.coord_sys)
    attrs = json.dumps(payload.attrs) if payload.attrs else None
    params = (principal.user_id, principal.token_version, principal.client_id, scopes,
              idempotency_scope(principal, key), payload.category, lon, lat,
              payload.description, payload.address, payload.priority, source, attrs,
              payload.link_to, settings.timezone)
    conn = get_engine(settings).raw_connection()
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(REPORT_SQL, params)
                row = cur.fetchone()
                conn.commit()
            except psycopg2.Error as exc:
                conn.rollback()
                raise _translate(exc) from None
    finally:
        conn.close()
    return json.loads(row[0])


def _translate(exc: psycopg2.Error) -> Exception:
    error = SQLSTATE_ERRORS.get(exc.pgcode or "")
    if error is None:
        return exc
    diag = exc.diag
    extra = {"field": diag.column_name} if diag.column_name else {}
    return error(diag.message_primary or str(exc), **extra)
