"""Saved searches (issue 15 item 6): a desk user's named views of the case queue.

A saved search is a name and the desk's URL query string: the queue tab (``tab``,
cases/desk.py ``TABS``; empty: every case) and the queue's filters (desk/api.py
``QueueFilters``, the case list's). The query is checked when saved by those same
definitions — the filters' own types and rules (``QueueFilters.build``: a known status)
— and stored in a canonical order; the desk's position in the address (``offset``, the
selected ``case``, ``lang``) is not part of a view and is dropped; any other name is
refused, naming it. Names are unique per user (409 naming ``name``), and a user keeps at
most :data:`MAX_PER_USER`. Each user sees and deletes only their own (another's answers
404, as a missing one).
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from gis_service.auth.principal import Principal
from gis_service.cases.desk import TABS, require_desk
from gis_service.errors import Conflict, InvalidInput, NotFound

#: the desk's own position in its address, left out of a saved view
POSITION = frozenset({"offset", "case", "lang"})
#: saved searches a user may keep
MAX_PER_USER = 100
COLUMNS = "id, name, query, created_at"


@cache
def _filters() -> tuple[Any, dict[str, str]]:
    """The queue's filters (desk/api.py ``QueueFilters``) as a validator, and their query
    names (the alias where one is set) → whether the parameter repeats (a list)."""
    from gis_service.desk.api import QueueFilters  # the routes import this module

    names = {}
    for name, hint in typing.get_type_hints(QueueFilters, include_extras=True).items():
        kind, *meta = typing.get_args(hint)
        alias = next((m.alias for m in meta if getattr(m, "alias", None)), name)
        names[alias] = any(typing.get_origin(k) is list for k in typing.get_args(kind))
    return TypeAdapter(QueueFilters), names


def canonical_query(query: str) -> str:
    """``query`` (the desk's URL query string, a leading ``?`` allowed) checked against
    the queue's tab and filters and written in a canonical order (tab first, then the
    filters in their order). 422 ``invalid_input`` with ``field`` ``query.<name>`` for
    an unknown name, a repeated one that does not repeat, or a refused value."""
    adapter, names = _filters()
    try:
        pairs = parse_qsl(query.removeprefix("?"), keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise InvalidInput(f"query: {exc}", field="query") from None
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        if key in POSITION:
            continue
        if key != "tab" and key not in names:
            known = ", ".join(["tab", *names])
            raise InvalidInput(
                f"query: {key!r} is not one of the queue's filters ({known})", field=f"query.{key}"
            )
        if value.strip() or key == "tab":  # an empty tab is the desk's "all cases"
            values.setdefault(key, []).append(value.strip())
    for key, got in values.items():
        if len(got) > 1 and not names.get(key):
            raise InvalidInput(f"query: {key} is given {len(got)} times", field=f"query.{key}")
    tab = values.pop("tab", [None])[0]
    if tab and tab not in TABS:
        raise InvalidInput(
            f"query: unknown tab {tab!r}; one of {', '.join(TABS)}", field="query.tab"
        )
    data = {k: (v if names[k] else v[0]) for k, v in values.items()}
    try:
        adapter.validate_python(data).build(tab or None)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][:1])
        raise InvalidInput(f"query: {where}: {first['msg']}", field=f"query.{where}") from None
    except InvalidInput as exc:
        raise InvalidInput(
            f"query: {exc.message}", field=f"query.{exc.extra.get('field', '')}".rstrip(".")
        ) from None
    out = [("tab", tab)] if tab is not None else []
    out += [(k, v) for k in names if k in values for v in values[k]]
    return urlencode(out)


def list_saved(conn: Connection, principal: Principal) -> list[dict[str, Any]]:
    """The viewer's saved searches, by name. 403 for roles other than dispatchers."""
    require_desk(principal)
    return [
        dict(r)
        for r in conn.execute(
            text(f"SELECT {COLUMNS} FROM saved_search WHERE user_id = :u ORDER BY name, id"),
            {"u": principal.user_id},
        ).mappings()
    ]


def save(conn: Connection, principal: Principal, name: str, query: str) -> dict[str, Any]:
    """Save ``query`` (:func:`canonical_query`) under ``name`` for the viewer, in the
    caller's transaction. 403 for roles other than dispatchers and for principals
    without an account; 422 naming the field at fault; 409 (``field`` ``name``) when the
    viewer already has a search of that name or :data:`MAX_PER_USER` of them."""
    require_desk(principal)
    if principal.user_id is None:
        raise InvalidInput("saved searches belong to a signed-in account", field="user")
    canonical = canonical_query(query)
    count = conn.execute(
        text("SELECT count(*) FROM saved_search WHERE user_id = :u"), {"u": principal.user_id}
    ).scalar_one()
    if count >= MAX_PER_USER:
        raise Conflict(
            f"you keep {count} saved searches, the most allowed: delete one first",
            field="name",
        )
    try:
        with conn.begin_nested():
            row = (
                conn.execute(
                    text(
                        "INSERT INTO saved_search (user_id, name, query) VALUES (:u, :n, :q) "
                        f"RETURNING {COLUMNS}"
                    ),
                    {"u": principal.user_id, "n": name, "q": canonical},
                )
                .mappings()
                .one()
            )
    except IntegrityError:
        raise Conflict(f"you already have a saved search named {name!r}", field="name") from None
    return dict(row)


def delete(conn: Connection, principal: Principal, search_id: int) -> dict[str, Any]:
    """Delete one of the viewer's saved searches and answer it; 404 when the viewer has
    none of that id (another user's included). 403 for roles other than dispatchers."""
    require_desk(principal)
    row = (
        conn.execute(
            text(f"DELETE FROM saved_search WHERE id = :id AND user_id = :u RETURNING {COLUMNS}"),
            {"id": search_id, "u": principal.user_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no saved search {search_id} of yours", field="id")
    return dict(row)
