"""The SQL of ``/ogc/``: a page of features, one feature, a collection's extent.

Each feature is built as GeoJSON text by PostgreSQL (``json_build_object`` with
``ST_AsGeoJSON``, 7 decimals: about a centimetre), and the page is joined from those texts
without being parsed again. Paging is by keyset on the collection's feature id
(``after``/``before``: an index range, as fast on the last page as on the first), never
by offset. ``numberMatched`` counts the whole selection (OGC 17-069r4 §7.15.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.errors import NotFound
from gis_service.ogc.collections import Collection
from gis_service.ogc.params import CRS84, Interval, ItemsQuery

COORD_DECIMALS = 7


@dataclass(frozen=True)
class Page:
    """A page of features: their GeoJSON texts, the first and last keys, whether more
    lie before and after, and how many match in all."""

    features: list[str]
    first: Any
    last: Any
    has_prev: bool
    has_next: bool
    matched: int


def _feature_sql(col: Collection, p: Principal) -> str:
    return (
        f"json_build_object('type', 'Feature', 'id', {col.key}, "
        f"'geometry', ST_AsGeoJSON({col.geometry}, {COORD_DECIMALS})::json, "
        f"'properties', {col.properties(p)})::text"
    )


def _time_terms(col: Collection, interval: Interval | None) -> tuple[list[str], dict[str, Any]]:
    if interval is None or col.temporal is None:
        return [], {}
    terms, params = [], {}
    if interval.start is not None:
        terms.append(f"{col.temporal} >= :t_start")
        params["t_start"] = interval.start
    if interval.end is not None:
        terms.append(f"{col.temporal} {'<' if interval.end_open else '<='} :t_end")
        params["t_end"] = interval.end
    return terms, params


def _selection(col: Collection, p: Principal, q: ItemsQuery) -> tuple[list[str], dict[str, Any]]:
    """The WHERE terms and parameters of the items the viewer may read that match q."""
    scope, params = col.scope(p)
    terms = [scope, *col.where]
    params = {**col.params, **params}
    if q.boxes:
        boxes = []
        for i, box in enumerate(q.boxes):
            names = [f"bb{i}_{k}" for k in range(4)]
            boxes.append(
                f"ST_Intersects({col.geometry}, ST_MakeEnvelope("
                + ", ".join(f":{n}" for n in names)
                + ", 4326))"
            )
            params.update(zip(names, box, strict=True))
        terms.append("(" + " OR ".join(boxes) + ")")
    time_terms, time_params = _time_terms(col, q.interval)
    return [*terms, *time_terms], {**params, **time_params}


def _key(col: Collection, value: str) -> Any:
    return int(value) if col.key_is_int else value


def items(conn: Connection, col: Collection, p: Principal, q: ItemsQuery) -> Page:
    """One page of ``col`` for viewer ``p``: the first ``q.limit`` features after
    ``q.after`` (or the last ones before ``q.before``) in feature-id order."""
    terms, params = _selection(col, p, q)
    cond = " AND ".join(terms)
    backward = q.before is not None
    cursor = q.before if backward else q.after
    page_terms = list(terms)
    if cursor is not None:
        page_terms.append(f"{col.key} {'<' if backward else '>'} :cursor")
        params["cursor"] = _key(col, cursor)
    order = f"{col.key} {'DESC' if backward else 'ASC'}"
    rows = conn.execute(
        text(
            f"SELECT {col.key} AS k, {_feature_sql(col, p)} AS f FROM {col.source} "
            f"WHERE {' AND '.join(page_terms)} ORDER BY {order} LIMIT :limit"
        ),
        {**params, "limit": q.limit + 1},
    ).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    if backward:
        rows.reverse()
    matched = conn.execute(text(f"SELECT count(*) FROM {col.source} WHERE {cond}"), params).scalar()
    first, last = (rows[0].k, rows[-1].k) if rows else (None, None)

    def exists(op: str, key: Any) -> bool:
        return bool(
            conn.execute(
                text(
                    f"SELECT EXISTS (SELECT 1 FROM {col.source} "
                    f"WHERE {cond} AND {col.key} {op} :edge)"
                ),
                {**params, "edge": key},
            ).scalar()
        )

    if backward:
        has_prev, has_next = more, bool(rows) and exists(">", last)
    else:
        has_next = more
        has_prev = cursor is not None and bool(rows) and exists("<", first)
    return Page([r.f for r in rows], first, last, has_prev, has_next, int(matched or 0))


def item(conn: Connection, col: Collection, p: Principal, feature_id: str) -> str:
    """One feature's GeoJSON text; 404 if there is none by that id, or the viewer may not
    read it (the same answer: a refusal would tell that it exists)."""
    if col.key_is_int and not (feature_id.lstrip("-").isdigit() and len(feature_id) < 19):
        raise NotFound(f"no feature {feature_id!r} in {col.id}")
    scope, params = col.scope(p)
    row = conn.execute(
        text(
            f"SELECT {_feature_sql(col, p)} FROM {col.source} "
            f"WHERE {' AND '.join([scope, *col.where])} AND {col.key} = :fid"
        ),
        {**col.params, **params, "fid": _key(col, feature_id)},
    ).scalar()
    if row is None:
        raise NotFound(f"no feature {feature_id!r} in {col.id}")
    return row


def extents(conn: Connection, cols: list[Collection]) -> dict[str, dict[str, Any]]:
    """Each collection's extent (§7.13 extent): the bbox of its data in CRS84 and, for
    collections with a temporal property, the first and last instant. They describe the
    collection's data, not the viewer's part of it; the cases' spatial extent is that of
    the coverage (every case lies inside a unit), read from the districts."""
    out: dict[str, dict[str, Any]] = {}
    for col in cols:
        if col.extent_source:
            sql = f"SELECT ST_Extent(geom) AS e FROM {col.extent_source}"
            params: dict[str, Any] = {}
        else:
            where = " AND ".join(col.where) or "TRUE"
            sql = f"SELECT ST_Extent({col.geometry}) AS e FROM {col.source} WHERE {where}"
            params = dict(col.params)
        box = conn.execute(
            text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ({sql}) x"), params
        ).one()
        extent: dict[str, Any] = {}
        if box[0] is not None:  # no data: no spatial extent to state
            extent["spatial"] = {"bbox": [[round(v, 7) for v in box]], "crs": CRS84}
        if col.temporal:
            table = col.source
            start, end = conn.execute(
                text(f"SELECT min({col.temporal}), max({col.temporal}) FROM {table}")
            ).one()
            extent["temporal"] = {
                "interval": [[_iso(start), _iso(end)]],
                "trs": GREGORIAN,
            }
        out[col.id] = extent
    return out


def _iso(value: Any) -> str | None:
    """RFC 3339 in UTC (``Z``), or None for an open end."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
