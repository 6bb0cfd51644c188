"""The SQL of ``/ogc/``: a page of features, one feature, a collection's extent.

Each feature is built as GeoJSON text by PostgreSQL (``json_build_object`` with
``ST_AsGeoJSON``, 7 decimals: about a centimetre), and the page is joined from those texts
without being parsed again. Paging is by keyset on the collection's feature id
(``after``/``before``: an index range, as fast on the last page as on the first), never
by offset. ``numberMatched`` counts the whole selection (OGC 17-069r4 §7.15.7). A page
is streamed from a server-side cursor as it is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.cases import partitions
from gis_service.errors import NotFound
from gis_service.ogc.collections import Collection
from gis_service.ogc.params import CRS84, Interval, ItemsQuery

COORD_DECIMALS = 7


@dataclass
class Page:
    """A page of features being read: ``features`` yields their GeoJSON texts in id order
    (from a server-side cursor: the page is never held whole); ``matched`` counts the
    whole selection; ``has_prev`` is known at once, ``has_next`` and ``returned`` once
    ``features`` is exhausted; ``last`` is the last key sent."""

    features: Iterator[str]
    matched: int
    has_prev: bool
    has_next: bool = False
    returned: int = 0
    last: Any = None
    first: Any = None


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
    if col.period_key is not None and params:
        # the month partitions of the interval only (cases/partitions.py)
        terms.append(
            partitions.period_sql(
                col.period_key,
                ":t_start" if "t_start" in params else None,
                ":t_end" if "t_end" in params else None,
                end_inclusive=not interval.end_open,
            )
        )
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
    ``q.after`` (or the last ones before ``q.before``) in feature-id order. Who may read
    it is checked (``col.scope`` raises) and the statement started before this returns,
    so a refusal comes before an answer starts streaming."""
    terms, params = _selection(col, p, q)
    cond = " AND ".join(terms)

    def exists(op: str, key: Any) -> bool:
        sql = f"SELECT EXISTS (SELECT 1 FROM {col.source} WHERE {cond} AND {col.key} {op} :edge)"
        return bool(conn.execute(text(sql), {**params, "edge": key}).scalar())

    matched = int(
        conn.execute(text(f"SELECT count(*) FROM {col.source} WHERE {cond}"), params).scalar() or 0
    )
    backward = q.before is not None
    given = q.before if backward else q.after
    cursor = None if given is None else _key(col, given)
    page_terms = list(terms)
    if cursor is not None:
        page_terms.append(f"{col.key} {'<' if backward else '>'} :cursor")
    sql = (
        f"SELECT {col.key} AS k, {_feature_sql(col, p)} AS f FROM {col.source} "
        f"WHERE {' AND '.join(page_terms)} ORDER BY {col.key} {'DESC' if backward else 'ASC'} "
        "LIMIT :limit"
    )
    run = {**params, "cursor": cursor, "limit": q.limit + 1}
    if backward:  # the last features before the cursor, read backwards: few, held
        rows = conn.execute(text(sql), run).all()
        page = Page(iter(()), matched, has_prev=len(rows) > q.limit)
        rows = rows[: q.limit][::-1]
        page.features = iter([r.f for r in rows])
        page.returned = len(rows)
        page.first, page.last = (rows[0].k, rows[-1].k) if rows else (None, None)
        page.has_next = exists(">=", cursor)
        return page
    # a key in the selection at or before the cursor: there is a page before this one
    page = Page(iter(()), matched, has_prev=cursor is not None and exists("<=", cursor))
    result = conn.execution_options(stream_results=True, yield_per=500).execute(text(sql), run)

    def stream() -> Iterator[str]:
        with result:
            for row in result:
                if page.returned == q.limit:  # the one past the page: there is a next
                    page.has_next = True
                    break
                if page.first is None:
                    page.first = row.k
                page.returned += 1
                page.last = row.k
                yield row.f

    page.features = stream()
    return page


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
