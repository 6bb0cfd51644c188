"""Reporting a case: the hot path of the service, one database round trip.

``report_case()`` (cases/report.sql) replays an Idempotency-Key, checks the category,
locates the point (``locate_unit()``, units/locate.sql: the one location rule), checks the
reporter's jurisdiction, numbers and inserts the case with its first timeline event, and
finds possible duplicates (``nearby_cases()``, with the radius and window of Settings) —
all in one statement. Python validates the payload, converts coordinates, fingerprints
the request and maps the function's SQLSTATEs to HTTP errors.

Idempotency follows the IETF httpapi Idempotency-Key draft: keys are per sender; a retry
with the same key and the same payload (same fields, same photos) answers the same case
(200); the same key with another payload answers 422 ``idempotency_key_reused`` and
stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from gis_service.auth import sessions
from gis_service.auth.principal import Principal
from gis_service.auth.scope import report_scopes
from gis_service.cases.workflow import Priority
from gis_service.db import asyncpool
from gis_service.errors import (
    Forbidden,
    GisServiceError,
    IdempotencyKeyReused,
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
    "GSKEY": IdempotencyKeyReused,
}
REPORT_SQL = (
    "SELECT case_id, created, body FROM report_case("
    + ", ".join(f"${i}" for i in range(1, 22))
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
    priority: Priority = Priority.normal
    link_to: Annotated[
        int | None,
        Field(
            gt=0,
            description="Id of an open case this report is the same problem as: the "
            "report is kept as its duplicate and the case's timeline notes it",
        ),
    ] = None
    attrs: dict[str, Any] | None = Field(default=None, description="Extra client fields")
    walk_id: Annotated[
        int | None,
        Field(
            gt=0,
            description="The reporter's own running walk this problem was found on "
            "(POST /api/v1/walks); the case is linked to it",
        ),
    ] = None


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


def fingerprint(payload: CaseReport, source: str, photo_sha256: Sequence[str] = ()) -> str:
    """sha256 (hex) of the request's canonical form: every field of the validated report
    (so JSON and multipart spellings of one report agree), where it came from, and the
    sha256 of each photo's bytes in the order sent."""
    report = payload.model_dump(mode="json")
    if report.get("walk_id") is None:  # as before walks existed: old keys still replay
        report.pop("walk_id", None)
    canonical = {
        "report": report,
        "source": source,
        "photos": list(photo_sha256),
    }
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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
    photo_sha256: Sequence[str] = (),
    *,
    checked: bool = True,
) -> Reported:
    """Record a report; ``created`` is False on a replay of the same Idempotency-Key.

    ``photo_sha256``: hashes of the photos sent with it (part of the request's
    fingerprint). The sign-in is checked inside the same round trip (``report_case()``
    calls ``sign_in_holds()``, auth/sessions.sql): a report needs no separate session
    check; ``checked=False`` (the caller has not checked it) checks it first wherever the
    report stops before that round trip. Errors: 401 (the sign-in ended: signed out,
    deactivated, password changed), 403 (outside the jurisdiction), 422 (unknown
    category, link_to not an open case, walk_id not the reporter's own running walk,
    Idempotency-Key reused for another request), outside_coverage (no unit holds the
    point)."""
    try:
        scopes = report_scopes(principal)
        lon, lat = point_to_wgs84(payload.lon, payload.lat, payload.coord_sys)
        scoped_key = idempotency_scope(principal, key)
    except GisServiceError:
        if not checked:  # an ended sign-in hears 401 before anything else
            await sessions.check(settings, principal)
        raise
    attrs = json.dumps(payload.attrs, ensure_ascii=False) if payload.attrs else None
    try:
        row = await asyncpool.fetchrow(
            settings,
            REPORT_SQL,
            principal.user_id,
            principal.token_version,
            principal.session_id,
            principal.client_id,
            scopes,
            scoped_key,
            payload.category,
            lon,
            lat,
            payload.description,
            payload.address,
            payload.priority.value,
            source,
            attrs,
            payload.link_to,
            settings.timezone,
            fingerprint(payload, source, photo_sha256),
            settings.duplicate_radius_m,
            settings.duplicate_window_days,
            settings.duplicate_list_max,
            payload.walk_id,
        )
    except asyncpg.PostgresError as exc:
        raise _translate(exc, key) from None
    return Reported(id=row[0], created=row[1], json=row[2])


def _translate(exc: asyncpg.PostgresError, key: str | None) -> Exception:
    error = SQLSTATE_ERRORS.get(exc.sqlstate or "")
    if error is None:
        return exc
    if error is Unauthorized:  # report_case() checked the sign-in: sessions' own words
        return Unauthorized(sessions.ENDED)
    column = getattr(exc, "column_name", None)
    extra: dict[str, Any] = {"field": column} if column else {}
    if error is IdempotencyKeyReused:
        extra["idempotency_key"] = key
    return error(exc.message, **extra)
