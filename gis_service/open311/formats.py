"""GeoReport v2 output: the same data as JSON or XML, chosen by the path suffix.

JSON is the data as is (UTF-8, not ASCII-escaped). XML follows the spec's element names:
a root (``services``, ``service_requests``, ``service_definition``, ``errors``) holding
one element per item (``service``, ``request``, ``error``) with one child per field;
null is an empty element, booleans are ``true``/``false``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from fastapi.responses import Response

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
FORMATS = ("json", "xml")
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
# Element names for the members of list-valued fields.
LIST_ITEMS = {"attributes": "attribute", "values": "value"}


def format_of(fmt: str | None) -> str:
    """The format named by the path suffix, or json when it is not one we serve."""
    return fmt if fmt in FORMATS else "json"


def render(
    fmt: str, data: Any, *, root: str, item: str | None = None, status: int = 200
) -> Response:
    """``data`` is a list of items (``item`` names their element) or one object."""
    if fmt == "xml":
        return Response(to_xml(data, root=root, item=item), status_code=status, media_type=XML_TYPE)
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), status_code=status, media_type=JSON_TYPE)


def error(fmt: str, status: int, description: str) -> Response:
    return render(
        fmt,
        [{"code": status, "description": description}],
        root="errors",
        item="error",
        status=status,
    )


def to_xml(data: Any, *, root: str, item: str | None = None) -> bytes:
    element = ET.Element(root)
    if item is None:
        _fill(element, data)
    else:
        for obj in data:
            _fill(ET.SubElement(element, item), obj)
    return (XML_DECLARATION + ET.tostring(element, encoding="unicode")).encode("utf-8")


def _fill(element: ET.Element, obj: dict[str, Any]) -> None:
    for key, value in obj.items():
        child = ET.SubElement(element, key)
        if isinstance(value, list):
            for member in value:
                sub = ET.SubElement(child, LIST_ITEMS.get(key, "item"))
                if isinstance(member, dict):
                    _fill(sub, member)
                else:
                    sub.text = _text(member)
        elif isinstance(value, dict):
            _fill(child, value)
        else:
            child.text = _text(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
