"""The documents ``/ogc/`` answers with: the landing page, conformance, collections, a
page of items and one item, each with absolute links (OGC 17-069r4 §7.2–7.16).

Links are built from the request's own base URL (scheme, host, port), so they work behind
whatever address the client used; paging links repeat the request's filters in a fixed
order, so the same page always has the same URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import Connection

from gis_service.auth.principal import Principal
from gis_service.errors import NotFound
from gis_service.ogc import features
from gis_service.ogc.collections import COLLECTIONS, Collection
from gis_service.ogc.features import CRS84
from gis_service.ogc.params import ItemsQuery
from gis_service.ogc.tilejson import TILE_LAYERS, tilejson

JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.1"
PREFIX = "/ogc"

#: the conformance classes we meet (§7.4): Core and GeoJSON. Not oas30: our API
#: definition (/openapi.json, FastAPI's) is OpenAPI 3.1, not 3.0; not html.
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
WORLD = [-180.0, -85.0511288, 180.0, 85.0511288]


def collection_of(collection_id: str) -> Collection:
    """The collection by its id; 404 naming the ones there are."""
    col = COLLECTIONS.get(collection_id)
    if col is None:
        raise NotFound(
            f"no collection {collection_id!r}; there are: {', '.join(COLLECTIONS)}",
            field="collectionId",
        )
    return col


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, Any]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def landing(base: str) -> dict[str, Any]:
    """§7.2 the landing page: self, the API definition (service-desc, service-doc),
    conformance, data, and the TileJSON of each vector tile layer."""
    return {
        "title": "gis_service OGC API – Features",
        "description": "Units of each level, service points, cases (scoped by the bearer "
        "token; the public view without one) and the one-kilometre gaps, as GeoJSON "
        "(OGC API – Features – Part 1: Core).",
        "links": [
            _link(f"{base}{PREFIX}/", "self", JSON, "this document"),
            _link(f"{base}/openapi.json", "service-desc", OPENAPI, "the API definition"),
            _link(f"{base}/docs", "service-doc", "text/html", "the API documentation"),
            _link(
                f"{base}{PREFIX}/conformance",
                "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                JSON,
                "conformance classes",
            ),
            _link(f"{base}{PREFIX}/conformance", "conformance", JSON, "conformance classes"),
            _link(
                f"{base}{PREFIX}/collections",
                "http://www.opengis.net/def/rel/ogc/1.0/data",
                JSON,
                "the feature collections",
            ),
            _link(f"{base}{PREFIX}/collections", "data", JSON, "the feature collections"),
            *(
                _link(
                    f"{base}/tiles/{layer}/tilejson.json",
                    "describedby",
                    JSON,
                    f"TileJSON of the {layer} vector tiles",
                )
                for layer in TILE_LAYERS
            ),
        ],
    }


def conformance() -> dict[str, Any]:
    """§7.4 the conformance classes we meet."""
    return {"conformsTo": list(CONFORMANCE)}


def _collection(base: str, col: Collection, extent: dict[str, Any]) -> dict[str, Any]:
    href = f"{base}{PREFIX}/collections/{col.id}"
    return {
        "id": col.id,
        "title": col.title,
        "description": col.description,
        "links": [
            _link(href, "self", JSON, col.title),
            _link(f"{href}/items", "items", GEOJSON, "its features"),
        ],
        "extent": extent,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "geometryType": col.geometry_type,
    }


def collections(conn: Connection, base: str) -> dict[str, Any]:
    """§7.13 every collection with its extent."""
    cols = list(COLLECTIONS.values())
    ext = features.extents(conn, cols)
    return {
        "links": [_link(f"{base}{PREFIX}/collections", "self", JSON, "the collections")],
        "collections": [_collection(base, c, ext[c.id]) for c in cols],
    }


def collection(conn: Connection, base: str, collection_id: str) -> dict[str, Any]:
    """§7.14 one collection; 404 if there is none by that id."""
    col = collection_of(collection_id)
    return _collection(base, col, features.extents(conn, [col])[col.id])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def items_body(
    conn: Connection, base: str, collection_id: str, p: Principal, q: ItemsQuery
) -> Iterator[str]:
    """§7.15 a page of features as GeoJSON text chunks, streamed as PostgreSQL sends the
    features: numberMatched and timeStamp first, then the features, then numberReturned
    and the links self, collection, next (more after this page) and prev (more before it),
    which are known once the page is read. Who may read it is checked before the first
    chunk (a refusal is an ordinary error answer)."""
    col = collection_of(collection_id)
    page = features.items(conn, col, p, q)
    href = f"{base}{PREFIX}/collections/{col.id}/items"
    filters = q.link_params()

    def url(**cursor: Any) -> str:
        return f"{href}?{urlencode({**filters, **cursor}, quote_via=quote, safe=',:')}"

    here = {"after": q.after} if q.after is not None else {}
    if q.before is not None:
        here = {"before": q.before}

    def chunks() -> Iterator[str]:
        head = {"type": "FeatureCollection", "numberMatched": page.matched, "timeStamp": _now()}
        yield json.dumps(head)[:-1] + ', "features": ['
        batch: list[str] = []
        for n, feature in enumerate(page.features):
            batch.append(("," if n else "") + feature)
            if len(batch) == 500:
                yield "".join(batch)
                batch = []
        yield "".join(batch)
        links = [
            _link(url(**here), "self", GEOJSON, "this page"),
            _link(f"{base}{PREFIX}/collections/{col.id}", "collection", JSON, col.title),
        ]
        if page.has_next:
            links.append(_link(url(after=page.last), "next", GEOJSON, "the next page"))
        if page.has_prev and page.first is not None:
            links.append(_link(url(before=page.first), "prev", GEOJSON, "the previous page"))
        tail = {"numberReturned": page.returned, "links": links}
        yield "], " + json.dumps(tail, ensure_ascii=False)[1:]

    return chunks()


def item_body(
    conn: Connection, base: str, collection_id: str, feature_id: str, p: Principal
) -> str:
    """§7.16 one feature as GeoJSON text, with its links self and collection; 404 if
    there is none, or the viewer may not read it."""
    col = collection_of(collection_id)
    body = features.item(conn, col, p, feature_id)
    href = f"{base}{PREFIX}/collections/{col.id}"
    links = [
        _link(f"{href}/items/{quote(feature_id, safe='')}", "self", GEOJSON, "this feature"),
        _link(href, "collection", JSON, col.title),
    ]
    return body[:-1] + ', "links": ' + json.dumps(links, ensure_ascii=False) + "}"


def tile_document(conn: Connection, base: str, layer: str) -> dict[str, Any]:
    """The TileJSON of one vector tile layer; 404 naming the layers there are. Its bounds
    are the coverage's (the districts' box), or the world's before any unit exists."""
    if layer not in TILE_LAYERS:
        raise NotFound(
            f"no tile layer {layer!r}; there are: {', '.join(TILE_LAYERS)}", field="layer"
        )
    districts = COLLECTIONS["units-district"]
    box = features.extents(conn, [districts])[districts.id].get("spatial")
    return tilejson(layer, base, box["bbox"][0] if box else list(WORLD))
