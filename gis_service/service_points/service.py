"""Queries over service points and their kinds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gis_service.errors import InvalidInput, NotFound, OutsideCoverage
from gis_service.geo.geojson import feature_collection

#: the one predicate of a point in service: a closed point (``closed_at`` set by an admin,
#: :func:`set_closed`) keeps its row and id, but no list, map, circle or figure counts it
OPEN = "closed_at IS NULL"


def open_point(alias: str = "") -> str:
    """:data:`OPEN` for a table alias (``open_point("p")`` → ``p.closed_at IS NULL``)."""
    return f"{alias}.{OPEN}" if alias else OPEN


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
    """SQL terms (and parameters) selecting the points in service (:data:`OPEN`) by kind
    and category."""
    prefix = f"{alias}." if alias else ""
    where: list[str] = [open_point(alias)]
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
        where=["id = :id", OPEN],
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


ADMIN_COLUMNS = (
    "id, kind, categories, name, address, opening_hours, phone, unit_code, "
    "ST_X(geom) AS lon, ST_Y(geom) AS lat, closed_at, updated_at"
)


def admin_list(
    conn: Connection, *, kind: str | None = None, closed: bool | None = None
) -> list[dict[str, Any]]:
    """Every point, open and closed (an admin's list), with lon/lat; by id."""
    check_vocab(conn, kind, None)
    where: list[str] = ["kind = :kind"] if kind else []
    params: dict[str, Any] = {"kind": kind} if kind else {}
    if closed is not None:
        where.append(OPEN if not closed else f"NOT ({OPEN})")
    sql = f"SELECT {ADMIN_COLUMNS} FROM service_point WHERE {' AND '.join(['TRUE', *where])}"
    return [dict(r) for r in conn.execute(text(sql + " ORDER BY id"), params).mappings()]


def admin_get(conn: Connection, point_id: int) -> dict[str, Any]:
    """One point, open or closed; 404 ``not_found``."""
    row = (
        conn.execute(
            text(f"SELECT {ADMIN_COLUMNS} FROM service_point WHERE id = :id"), {"id": point_id}
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no service point with id {point_id}")
    return dict(row)


def _located(conn: Connection, lon: float, lat: float) -> str:
    """The most specific unit holding the point (units/service.py ``locate_point``, the
    rule cases are located by); 422 ``outside_coverage`` naming ``lon`` when none does."""
    from gis_service.geo.checks import check_lon_lat
    from gis_service.units.service import locate_point

    check_lon_lat(lon, lat)
    chain = locate_point(conn, lon, lat)
    if not chain:
        raise OutsideCoverage(
            f"({lon}, {lat}) is outside every imported unit: a service point must be "
            "inside the coverage",
            field="lon",
        )
    return chain[-1]["code"]


def add_point(conn: Connection, item: dict[str, Any]) -> dict[str, Any]:
    """A new service point from ``{"kind", "name", "lon", "lat", "categories"?,
    "address"?, "opening_hours"?, "phone"?}`` (WGS-84). Checked by the import's rules:
    the kind and categories from the vocabulary (the kind's default categories when none
    are given, imports/points.py), text cells (imports/fields.py), a point inside the
    coverage (its unit is located as a case's). 422 naming the field; nothing written."""
    from gis_service.imports.fields import MAX_NAME_CHARS, Cells
    from gis_service.imports.points import _categories, _vocabulary
    from gis_service.imports.problems import Problems

    kind = item.get("kind")
    if not kind:
        raise InvalidInput("kind is required", field="kind")
    check_vocab(conn, kind, None)
    problems = Problems()
    cells = Cells(1, problems)
    name = cells.text("name", item.get("name"), MAX_NAME_CHARS)
    texts = {k: cells.text(k, item.get(k)) for k in ("address", "opening_hours", "phone")}
    if name is None and "name" not in cells.bad:
        problems.add(1, "a service point needs a name", field="name")
    default, vocab = _vocabulary(conn, kind)
    raw = item.get("categories")
    cats = _categories(",".join(raw) if raw else None, default, vocab, 1, problems)
    for p in problems.items:
        p.setdefault("field", "categories")
    if problems.items:
        first = problems.items[0]
        raise InvalidInput(first["problem"], field=first.get("field"), problems=problems.items)
    lon, lat = float(item["lon"]), float(item["lat"])
    unit = _located(conn, lon, lat)
    new_id = conn.execute(
        text(
            """
        INSERT INTO service_point (kind, categories, name, address, opening_hours, phone,
                                   unit_code, geom)
        VALUES (:kind, :cats, :name, :address, :opening_hours, :phone, :unit,
                ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
        RETURNING id
        """
        ),
        {"kind": kind, "cats": cats, "name": name, **texts, "unit": unit, "lon": lon, "lat": lat},
    ).scalar_one()
    return admin_get(conn, new_id)


def move_point(conn: Connection, point_id: int, lon: float, lat: float) -> dict[str, Any]:
    """Move a point (WGS-84); its unit is located again (422 ``outside_coverage`` naming
    ``lon`` outside every unit). Its circle is then stale and redrawn (access/circles.py)."""
    admin_get(conn, point_id)
    unit = _located(conn, lon, lat)
    conn.execute(
        text(
            "UPDATE service_point SET geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), "
            "unit_code = :unit, updated_at = now() WHERE id = :id"
        ),
        {"id": point_id, "lon": lon, "lat": lat, "unit": unit},
    )
    return admin_get(conn, point_id)


def set_closed(conn: Connection, point_id: int, closed: bool) -> dict[str, Any]:
    """Close a point (it leaves every list, map and figure, :data:`OPEN`) or reopen it;
    closing twice keeps the first time. 404 for an unknown id."""
    admin_get(conn, point_id)
    conn.execute(
        text(
            "UPDATE service_point SET closed_at = CASE WHEN :closed "
            "THEN coalesce(closed_at, now()) END, updated_at = now() WHERE id = :id"
        ),
        {"id": point_id, "closed": closed},
    )
    return admin_get(conn, point_id)
