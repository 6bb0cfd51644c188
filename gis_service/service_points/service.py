"""Queries over service points and their kinds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gis_service.errors import InvalidInput, NotFound
from gis_service.geo.geojson import feature_collection

POINT_PROPERTIES = """json_build_object(
    'id', id, 'kind', kind, 'categories', categories, 'name', name, 'address', address,
    'opening_hours', opening_hours, 'phone', phone, 'unit_code', unit_code)"""


def kinds(conn: Connection) -> dict[str, Any]:
    return {
        "kinds": [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT code, name_zh, name_en, default_categories, counts_for_party_reach "
                    "FROM service_kind ORDER BY code"
                )
            )
        ],
        "categories": [
            dict(r._mapping)
            for r in conn.execute(
                text("SELECT code, name_zh, name_en FROM living_category ORDER BY sort")
            )
        ],
    }


def check_vocab(conn: Connection, kind: str | None, category: str | None) -> None:
    """A kind or category that is not in the vocabulary is a 422 listing the known ones."""
    for value, table, field, order in (
        (kind, "service_kind", "kind", "code"),
        (category, "living_category", "category", "sort"),
    ):
        if (
            value
            and not conn.execute(
                text(f"SELECT 1 FROM {table} WHERE code = :v"), {"v": value}
            ).first()
        ):
            known = conn.execute(
                text(f"SELECT string_agg(code, ', ' ORDER BY {order}) FROM {table}")
            ).scalar()
            raise InvalidInput(f"{field}: unknown {field} {value!r}; known: {known}", field=field)


def kind_filter(
    kind: str | None, category: str | None, alias: str = ""
) -> tuple[list[str], dict[str, Any]]:
    """SQL terms (and parameters) selecting service points by kind and category."""
    prefix = f"{alias}." if alias else ""
    where: list[str] = []
    params: dict[str, Any] = {}
    if kind:
        where.append(f"{prefix}kind = :kind")
        params["kind"] = kind
    if category:
        where.append(f":category = ANY({prefix}categories)")
        params["category"] = category
    return where, params


def list_points(
    conn: Connection,
    *,
    kind: str | None,
    category: str | None,
    unit: str | None,
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    check_vocab(conn, kind, category)
    where, params = kind_filter(kind, category)
    if unit:
        if not unit.isdigit():
            raise InvalidInput(f"unit {unit!r} must be a unit code (digits)", field="unit")
        where.append("unit_code LIKE :unit")
        params["unit"] = f"{unit}%"
    if bbox is not None:
        where.append("geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)")
        params.update(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True))
    return feature_collection(
        conn,
        source="service_point",
        where=where,
        params=params,
        id_expr="id",
        properties=POINT_PROPERTIES,
        order_by="id",
        limit=limit,
        offset=offset,
    )


def get_point(conn: Connection, point_id: int) -> dict[str, Any]:
    fc = feature_collection(
        conn,
        source="service_point",
        where=["id = :id"],
        params={"id": point_id},
        id_expr="id",
        properties=POINT_PROPERTIES,
        order_by="id",
        limit=1,
        offset=0,
    )
    if not fc["features"]:
        raise NotFound(f"no service point with id {point_id}")
    return fc["features"][0]
