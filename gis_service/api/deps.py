"""FastAPI dependencies, so routes read like prose: ``def locate(conn: ConnDep, ...)``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection

from gis_service.db.engine import get_engine
from gis_service.errors import Unauthorized
from gis_service.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_conn(settings: SettingsDep) -> Iterator[Connection]:
    """A pooled connection in one transaction for the request (read-only routes)."""
    with get_engine(settings).connect() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_conn)]


def require_admin(request: Request, settings: SettingsDep) -> None:
    """Until roles exist, writes over the API need the configured admin token."""
    token = settings.admin_token
    header = request.headers.get("authorization", "")
    if not token:
        raise Unauthorized("imports over the API are disabled: set GIS_ADMIN_TOKEN")
    if header != f"Bearer {token}":
        raise Unauthorized("missing or wrong bearer token")


AdminDep = Annotated[None, Depends(require_admin)]
