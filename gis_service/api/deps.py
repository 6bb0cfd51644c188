"""FastAPI dependencies, so routes read like prose: ``def locate(conn: ConnDep, ...)``.

The light ones are ``async def``: FastAPI runs a sync dependency on a worker thread, and a
thread hop per dependency is measurable on the report path."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Connection

from gis_service.access.engine import AccessEngine
from gis_service.access.jobs import AccessJobs
from gis_service.access.store import EngineCache
from gis_service.api.services import Services, services_of
from gis_service.audit import actor as audit_actor
from gis_service.auth import sessions, tokens
from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import ANONYMOUS, require_role
from gis_service.db import replicas
from gis_service.db.engine import get_engine, get_read_engine
from gis_service.errors import Unauthorized
from gis_service.settings import Settings
from gis_service.stats.cube import CaseCube
from gis_service.tiles.basemap import Basemap
from gis_service.tiles.cache import TileCache
from gis_service.tiles.caseindex import CaseIndex


async def get_services(request: Request) -> Services:
    """The app's services (api/services.py); 503 ``service_not_ready`` before they exist."""
    return services_of(request.app)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_cube(services: ServicesDep) -> CaseCube:
    return services.cube


async def get_case_index(services: ServicesDep) -> CaseIndex:
    return services.case_index


async def get_tile_cache(services: ServicesDep) -> TileCache:
    return services.tiles


async def get_basemap(services: ServicesDep) -> Basemap:
    return services.basemap


async def get_access(services: ServicesDep) -> EngineCache:
    return services.access


async def get_access_jobs(services: ServicesDep) -> AccessJobs:
    return services.access_jobs


async def get_import_executor(services: ServicesDep) -> ThreadPoolExecutor:
    """503 ``service_not_ready`` outside the app's lifespan (api/services.py)."""
    return services.imports()


CubeDep = Annotated[CaseCube, Depends(get_cube)]
CaseIndexDep = Annotated[CaseIndex, Depends(get_case_index)]
TileCacheDep = Annotated[TileCache, Depends(get_tile_cache)]
BasemapDep = Annotated[Basemap, Depends(get_basemap)]
AccessDep = Annotated[EngineCache, Depends(get_access)]
AccessJobsDep = Annotated[AccessJobs, Depends(get_access_jobs)]
ImportExecutorDep = Annotated[ThreadPoolExecutor, Depends(get_import_executor)]


def get_conn(settings: SettingsDep) -> Iterator[Connection]:
    """A pooled connection for the request; routes that write open a transaction on it."""
    with get_engine(settings).connect() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_conn)]


def get_network(conn: ConnDep, access: AccessDep) -> AccessEngine:
    """The walking-network engine as the database has it now (access/store.py: one version
    query; the graph is rebuilt only after the network changed)."""
    return access.get(conn)


NetworkDep = Annotated[AccessEngine, Depends(get_network)]


def get_read_conn(
    request: Request,
    settings: SettingsDep,
    min_lsn_header: Annotated[
        str | None, Header(alias=replicas.MIN_LSN_HEADER, description=replicas.MIN_LSN_DOC)
    ] = None,
) -> Iterator[Connection]:
    """A pooled connection for a read that may lag the last commit (statistics, tiles, map
    pages, case lists, the desk's queue): from the read engine (db/engine.py
    ``get_read_engine``: a standby when Settings.read_database_url names one, else the
    primary). Read-your-writes (db/replicas.py): a request carrying ``X-Min-LSN`` (header or
    cookie, set after the client's own write) gets the standby only once it has replayed
    that far, waiting up to Settings.read_your_writes_wait_ms, else the primary; 422 when
    the value is not a WAL position. Never for a route that writes. The header is this
    dependency's parameter, so every route that reads through it declares it in the
    OpenAPI document (the cookie, a browser's own, is described there with it)."""
    position = replicas.min_lsn(min_lsn_header, request.cookies.get(replicas.MIN_LSN_COOKIE))
    engine = get_read_engine(settings)
    primary = get_engine(settings)
    if engine is not primary and position is not None:
        with engine.connect() as conn:
            if replicas.replayed(conn, position, settings.read_your_writes_wait_ms / 1000):
                yield conn
                return
        engine = primary  # the standby is behind the client's own write
    with engine.connect() as conn:
        yield conn


#: a read-only route's connection, on a standby when there is one (``get_read_conn``)
ReadConnDep = Annotated[Connection, Depends(get_read_conn)]

# Declares the scheme for /docs ("Authorize" signs in with the password flow); the errors
# are ours, so a missing or bad token answers in the same JSON shape as everything else.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


#: the map pages' sign-in keeps the token in this HttpOnly, SameSite=Strict cookie
TOKEN_COOKIE = "gis_token"


async def get_principal(
    request: Request, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """Who is signed in, their session checked (auth/sessions.py) on the async pool; 401
    without a credential, with a bad or expired token, or a session that has ended."""
    return await sessions.check(settings, _token_principal(request, settings, token))


#: a page's script sends this header with every write it makes on the sign-in cookie
#: (web/static/pagefetch.js): the "custom request header" defence of OWASP's CSRF cheat
#: sheet — another site cannot send it without a CORS preflight, which this API never
#: grants (and the cookie is SameSite=Strict besides)
PAGE_WRITE_HEADER = ("x-requested-with", "XMLHttpRequest")


def _credential(request: Request, token: str | None) -> str | None:
    """The bearer token, or the sign-in cookie: for reads (pages, tiles, the data they
    fetch) always, for writes only from our own pages' scripts — with ``X-Requested-With:
    XMLHttpRequest`` and no ``Origin`` of another host — so a cookie cannot be used by
    another site to forge one."""
    if token is None:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
    if not token and (request.method in ("GET", "HEAD") or _own_page_write(request)):
        token = request.cookies.get(TOKEN_COOKIE)
    return token or None


def _own_page_write(request: Request) -> bool:
    """A write sent by one of our pages' scripts (see ``PAGE_WRITE_HEADER``), checked
    with the Fetch Metadata and Origin headers when the browser sends them."""
    name, value = PAGE_WRITE_HEADER
    if request.headers.get(name) != value:
        return False
    if request.headers.get("sec-fetch-site", "same-origin") != "same-origin":
        return False
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def principal_of(request: Request, settings: Settings, conn: Connection) -> Principal:
    """:func:`get_principal` for sync routes, the session checked on their connection — on
    the primary's when ``conn`` is a read connection (``ReadConnDep``): a standby may not
    yet have replayed a sign-out or a new sign-in, and a session's end holds for every
    request after it (auth/sessions.py)."""
    principal = _token_principal(request, settings, None)
    primary = get_engine(settings)
    if conn.engine is primary:
        return sessions.check_sync(conn, principal)
    with primary.connect() as own:
        return sessions.check_sync(own, principal)


def _token_principal(request: Request, settings: Settings, token: str | None) -> Principal:
    """The principal the credential (see :func:`_credential`) names, its signature and
    expiry checked but not yet its session; 401 without a credential. A request that may
    write is stamped with them for the audit log (audit/actor.py)."""
    credential = _credential(request, token)
    if not credential:
        raise Unauthorized(
            "sign in first: send Authorization: Bearer <token> (POST /api/v1/auth/token)"
        )
    principal = tokens.read(credential, settings)
    audit_actor.for_request(request, principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_viewer(
    request: Request, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """The signed-in principal, or the anonymous public viewer (auth/scope.py) when the
    request carries no credentials at all; a bad or expired token is still a 401."""
    if not request.headers.get("authorization") and not _credential(request, token):
        return ANONYMOUS
    return await get_principal(request, settings, token)


ViewerDep = Annotated[Principal, Depends(get_viewer)]


async def require_admin(principal: PrincipalDep) -> Principal:
    require_role(principal, Role.admin, what="this")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
