"""Domain exceptions and the one table that maps them to HTTP statuses.

Services raise these; the API installs a handler per entry of ``STATUS_CODES`` so every
error leaves as ``{"error": <code>, "detail": <message>, ...}`` with the right status.
"""

from __future__ import annotations

from typing import Any


class GisServiceError(Exception):
    """Base class: ``code`` is a stable machine name, the message is for people."""

    code = "error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.message, **self.extra}


class ClusterError(GisServiceError):
    code = "database_unavailable"


class ServiceNotReady(GisServiceError):
    """A service the request needs is not running (the app is starting or stopping);
    ``service`` names it."""

    code = "service_not_ready"


class NotFound(GisServiceError):
    code = "not_found"


class InvalidInput(GisServiceError):
    code = "invalid_input"


class IdempotencyKeyReused(InvalidInput):
    """An Idempotency-Key sent again with a different request (IETF httpapi
    Idempotency-Key draft: 422); nothing was stored."""

    code = "idempotency_key_reused"


class GeometryTooLarge(InvalidInput):
    """A geometry from outside past a limit of ``geo/bounds.py`` (vertices, parts, rings):
    ``field``, ``feature``, ``count`` and ``limit`` say which and by how much; nothing was
    stored (OWASP API4:2023)."""

    code = "geometry_too_large"


class AnalysisTooLarge(InvalidInput):
    """An analysis whose input is past what it may compute in ``analysis_max_seconds``
    (decided up front from the input's size), or that ran past it and was stopped
    (PostgreSQL statement_timeout, SQLSTATE 57014); ``limit`` names the bound. Narrow the
    question (a smaller unit, fewer candidates) and ask again (OWASP API4:2023)."""

    code = "analysis_too_large"


class OutsideCoverage(GisServiceError):
    code = "outside_coverage"


class ImportRejected(GisServiceError):
    """A fatal problem in an import file; nothing was written."""

    code = "import_rejected"


class Unauthorized(GisServiceError):
    code = "unauthorized"


class InvalidGrant(GisServiceError):
    """A refresh token that is unknown, expired, already used or of an ended session
    (RFC 6749 §5.2 ``invalid_grant``, status 400): sign in again."""

    code = "invalid_grant"


class Forbidden(GisServiceError):
    """Signed in, but the role or the jurisdiction does not allow it."""

    code = "forbidden"


class Conflict(GisServiceError):
    """Not allowed in the current state (e.g. a workflow action); ``allowed`` lists what is."""

    code = "conflict"


class CaseLocked(Conflict):
    """Another dispatcher holds the case's lock (cases/locks.py): ``holder`` names them
    ({user_id, name}) and ``expires_at`` says until when, unless they renew it."""

    code = "case_locked"


class TooLarge(GisServiceError):
    code = "too_large"


class UnsupportedMedia(GisServiceError):
    code = "unsupported_media"


class TooManyAttempts(GisServiceError):
    """Rate limited; ``retry_after`` says in how many seconds to try again."""

    code = "too_many_attempts"


STATUS_CODES: dict[type[GisServiceError], int] = {
    ClusterError: 503,
    ServiceNotReady: 503,
    NotFound: 404,
    InvalidInput: 422,
    IdempotencyKeyReused: 422,
    GeometryTooLarge: 422,
    AnalysisTooLarge: 422,
    OutsideCoverage: 422,
    ImportRejected: 422,
    Unauthorized: 401,
    InvalidGrant: 400,
    Forbidden: 403,
    Conflict: 409,
    CaseLocked: 409,
    TooLarge: 413,
    UnsupportedMedia: 415,
    TooManyAttempts: 429,
}
