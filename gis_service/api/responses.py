"""The JSON answer routes build themselves (they declare ``response_model`` for the
OpenAPI and answer already-shaped dicts, skipping a second validation)."""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse


def json_response(body: Any, status_code: int = 200) -> JSONResponse:
    """``body`` (dicts, lists, dates, pydantic models) encoded as JSON with ``status_code``."""
    return JSONResponse(jsonable_encoder(body), status_code=status_code)
