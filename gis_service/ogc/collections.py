"""The feature collections of ``/ogc/``: what each one reads, as SQL fragments.

Every collection names its table (``source``), the feature id (``key``, also the keyset
of the paging), its geometry (SRID 4326, served as CRS84), its properties (a
``json_build_object`` built where the data is), its temporal property if any, and who may
read it (``scope``: raises 401/403, or gives the SQL filter from auth/scope.py — the one
home of who sees what; never a copy here).

===================  =====================================================  ===========
collection           features                                               readers
===================  =====================================================  ===========
units-<level>        the units of one level (units/codes.py ``Level``),     anyone (public
                     full boundaries, not simplified; properties as        geography, as
                     ``/api/v1/units``                                      /api/v1/units)
service-points       the service points in service (``open_point``),       anyone
                     properties as ``/api/v1/service-points``
cases                one point per case; ``datetime`` filters the report   case readers:
                     time (``reported_at``); the public view without a     their scope;
                     token (auth/scope.py ``public_case_filter`` and        no token: the
                     ``public_fields``, as Open311)                        public view
gaps                 the one-kilometre gaps (access/coverage.py            planners,
                     ``GAP_CONDITION`` at ``PARTY_REACH_M``): one feature  supervisors,
                     per building no party organisation reaches, its      admins, inside
                     geometry the building's footprint (the building      their units
                     unit's polygon), as last computed by the access
                     figures (``/api/v1/access/gaps`` recomputes them)
===================  =====================================================  ===========
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gis_service.access.coverage import GAP_CONDITION, require_figure_reader
from gis_service.access.reach import PARTY_REACH_M
from gis_service.auth.principal import Principal
from gis_service.auth.scope import (
    case_filter,
    public_fields,
    public_view,
    require_case_reader,
    units_inside,
)
from gis_service.errors import Unauthorized
from gis_service.service_points.service import POINT_PROPERTIES, open_point
from gis_service.units.codes import LEVEL_NAMES_ZH, LEVELS
from gis_service.units.service import UNIT_PROPERTIES

Scope = Callable[[Principal], tuple[str, dict[str, Any]]]


def _public(_: Principal) -> tuple[str, dict[str, Any]]:
    return "TRUE", {}


@dataclass(frozen=True)
class Collection:
    """One feature collection (OGC 17-069r4 §7.14): its metadata and its SQL."""

    id: str
    title: str
    description: str
    #: FROM clause (a table and its alias, joins)
    source: str
    #: the feature id: a column unique in ``source``; its order pages the items
    key: str
    key_is_int: bool
    #: the geometry column (SRID 4326)
    geometry: str
    #: SQL of the properties object for a viewer
    properties: Callable[[Principal], str]
    #: the filter of who may read what (raises for refused viewers)
    scope: Scope = _public
    #: fixed conditions and their parameters
    where: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    #: the temporal property ``datetime`` filters (timestamptz), or None
    temporal: str | None = None
    #: the case id whose month partitions the temporal filter prunes (cases/partitions.py)
    period_key: str | None = None
    #: the extent is computed over this table's geometries (a cheaper stand-in)
    extent_source: str | None = None
    #: the kind of geometry, for the clients' layer list
    geometry_type: str = "Geometry"
    #: True when the items answer depends on the viewer (Vary, private cache)
    per_viewer: bool = False


def _units(level: str) -> Collection:
    return Collection(
        id=f"units-{level}",
        title=f"{LEVEL_NAMES_ZH[level]} · {level} units",
        description=(
            f"The {level} units: code (GB/T 2260 extended, units/codes.py), name, parent, "
            "population, households, area; full boundaries (not simplified)."
        ),
        source="admin_unit t",
        key="t.code",
        key_is_int=False,
        geometry="t.geom",
        properties=lambda _p: UNIT_PROPERTIES,
        where=("t.level = :unit_level",),
        params={"unit_level": level},
        geometry_type="MultiPolygon",
    )


#: the case properties GIS clients get (flat: a layer's columns); each a SQL expression
#: over ``c``; the public view's hidden fields become NULL (auth/scope.py public_fields)
CASE_PROPERTIES: dict[str, str] = {
    "case_no": "c.case_no",
    "status": "case_status(c)",
    "category": "c.category_code",
    "priority": "c.priority",
    "description": "c.description",
    "address": "c.address",
    "unit_code": "c.unit_code",
    "handling_level": "c.handling_level",
    "source": "c.source",
    "team_id": "c.team_id",
    "reported_at": "c.reported_at",
    "accepted_at": "c.accepted_at",
    "deadline_at": "c.deadline_at",
    "closed_at": "c.closed_at",
    "overdue": "case_overdue(c)",
    "rework_count": "c.rework_count",
    "rating": "c.rating",
    "updated_at": "c.updated_at",
}


def case_properties(p: Principal) -> str:
    """The properties object of a case for this viewer: ``public_fields`` decides which
    of :data:`CASE_PROPERTIES` the viewer reads; the others stay, as null."""
    shown = public_fields(p, CASE_PROPERTIES)
    pairs = ", ".join(
        f"'{name}', {expr if expr is not None else 'NULL'}" for name, expr in shown.items()
    )
    return f"json_build_object({pairs})"


def case_scope(p: Principal) -> tuple[str, dict[str, Any]]:
    """Case readers read their jurisdiction; the anonymous viewer the public view."""
    require_case_reader(p, public_view_too=True)
    return case_filter(p, "c")


def gap_scope(p: Principal) -> tuple[str, dict[str, Any]]:
    """Figures about residents: their readers, inside their units; 401 without a token
    (no public view of them), 403 for other roles."""
    if public_view(p):
        raise Unauthorized("the gaps need a sign-in: send Authorization: Bearer <token>")
    require_figure_reader(p)
    return units_inside(p, "b.unit_code")


GAP_PROPERTIES = """json_build_object(
    'unit_code', b.unit_code, 'name', u.name, 'population', b.population,
    'distance_m', round(b.party_m::numeric, 1), 'method', b.method,
    'nearest_party', sp.name, 'nearest_kind', sp.kind,
    'computed_at', b.computed_at)"""

COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        *(_units(level.value) for level in LEVELS),
        Collection(
            id="service-points",
            title="服务点 · service points",
            description="Service points in service: kind, categories, name, address, "
            "opening hours, phone, unit.",
            source="service_point t",
            key="t.id",
            key_is_int=True,
            geometry="t.geom",
            properties=lambda _p: POINT_PROPERTIES,
            where=(open_point("t"),),
            geometry_type="Point",
        ),
        Collection(
            id="cases",
            title="案件 · cases",
            description=(
                "Cases at their reported location. With a bearer token: the cases of the "
                "token's jurisdiction; without one: the public view (public categories, "
                "neither rejected nor duplicate, no description or address), as Open311. "
                "datetime filters the report time (reported_at)."
            ),
            source="cases c",
            key="c.id",
            key_is_int=True,
            geometry="c.geom",
            properties=case_properties,
            scope=case_scope,
            temporal="c.reported_at",
            period_key="c.id",
            extent_source="admin_unit WHERE level = 'district'",
            geometry_type="Point",
            per_viewer=True,
        ),
        Collection(
            id="gaps",
            title="一公里空白 · one-kilometre gaps",
            description=(
                f"Buildings no party organisation reaches within {PARTY_REACH_M:g} m on foot "
                "(access/coverage.py), with their residents; the geometry is the "
                "building's footprint. As last computed (computed_at); "
                "/api/v1/access/gaps recomputes after a change. Planners, supervisors and "
                "admins, inside their units."
            ),
            source=(
                "building_access b JOIN admin_unit u ON u.code = b.unit_code "
                "LEFT JOIN service_point sp ON sp.id = b.party_point_id"
            ),
            key="b.unit_code",
            key_is_int=False,
            geometry="u.geom",
            properties=lambda _p: GAP_PROPERTIES,
            scope=gap_scope,
            where=(GAP_CONDITION,),
            params={"max_m": PARTY_REACH_M},
            geometry_type="MultiPolygon",
            per_viewer=True,
        ),
    )
}
