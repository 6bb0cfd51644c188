"""How each table of the schema would be placed on Citus: the one list (docs/scale.md
"A province on Citus").

Citus (https://docs.citusdata.com/en/stable/develop/reference_ddl.html) shards a
*distributed* table by one column, keeps a *reference* table whole on every node and leaves
a *local* table on the coordinator. Its rules, which ``tests/test_distribution.py`` checks
against the catalog for every table here:

* every primary key, unique constraint and unique index of a distributed table contains
  its distribution column;
* a foreign key between distributed tables contains the distribution column on both
  sides (the tables are then co-located: one district's rows on one node);
* a distributed table may reference a reference table, never a local one; a reference
  table never references a distributed one;
* the distribution column is never updated (a case that changes district is a transfer,
  docs/scale.md).

The distribution column is the district code (GB/T 2260 county-level division), the first
six digits of every unit code: ``district_of()`` in SQL (migration 0020_district_keys) and
``units.codes.district_of`` in Python, both from ``CODE_LENGTH[Level.district]``.

Every table of the ``public`` schema is in exactly one of :data:`DISTRIBUTED`,
:data:`REFERENCE`, :data:`LOCAL` and :data:`TO_DISTRIBUTE` (the test fails for a new table
until it is placed here).
"""

from __future__ import annotations

#: the distribution column of every table distributed by district
DISTRICT = "district_code"

#: distributed tables, keyed by district already: table -> column. ``cases`` and
#: everything that references a case (migration 0020), the grid walks and their fixes,
#: chunks, visits and daily figures (0022), the inbox and the deliveries in their case's
#: district (0023), the statistics' roll-up, which the roll-up trigger on ``cases``
#: writes from the case's shard, and the buildings' walking access, computed per district
#: (0025); all co-located with ``cases``.
DISTRIBUTED: dict[str, str] = {
    "cases": DISTRICT,
    "case_event": DISTRICT,
    "case_photo": DISTRICT,
    "case_lock": DISTRICT,
    "approval": DISTRICT,
    "case_idempotency": DISTRICT,
    "notify_reminder": DISTRICT,
    "notify_outbox": DISTRICT,
    "walk": DISTRICT,
    "walk_point": DISTRICT,
    "walk_chunk": DISTRICT,
    "walk_visit": DISTRICT,
    "walk_day": DISTRICT,
    "notification": DISTRICT,
    "notify_delivery": DISTRICT,
    "case_rollup": DISTRICT,
    "building_access": DISTRICT,
}

#: the distributed tables whose district is that of a unit code in the same row (a CHECK
#: ``district_code = district_of(column)`` keeps it so); every other distributed table
#: takes its parent's through a composite foreign key
DISTRICT_OF: dict[str, str] = {
    "cases": "unit_code",
    "walk": "grid_code",
    "walk_day": "grid_code",
    "case_rollup": "unit_code",
    "building_access": "unit_code",
}

#: tables that will be distributed by district but do not carry the column yet, with
#: what they need (docs/scale.md, "What in our schema would stop Citus"). Not Citus-ready.
TO_DISTRIBUTE: dict[str, str] = {
    "walk_node": "the network per district with a 2 km buffer: key (district_code, id)",
    "walk_edge": "as walk_node",
    "audit_log": "the audited row's district (row triggers on a shard write co-located rows)",
}

#: small tables joined everywhere, or read across districts: one copy on every node.
#: Distributed tables may reference them (cases -> app_user, team, case_category).
#: Chosen rather than distributed, each for its reason:
#:
#: * ``service_point``, ``service_circle`` (a point's quarter-hour area): a few hundred
#:   points a district, edited by planners now and then; the access computation of a
#:   district needs its neighbours' points within the 2 km border buffer, which a
#:   reference table gives every node without copies;
#: * ``circle_union``: the map's union of those areas per service kind and category, a
#:   few dozen rows rewritten when the points or the network change;
#: * ``unit_staff``: the rosters, read by every scope check (auth/scope.py) beside
#:   ``app_user`` and ``admin_unit``;
#: * ``monthly_report``: a few rows per unit and month, frozen once sent; a city's or the
#:   province's report lies in no single district.
REFERENCE: frozenset[str] = frozenset(
    {
        "admin_unit",
        "case_category",
        "case_template",
        "service_kind",
        "living_category",
        "team",
        "app_user",
        "open311_client",
        "spatial_ref_sys",
        "case_rollup_tier",
        "webhook_subscription",  # deliveries (distributed) reference it
        "service_point",
        "service_circle",
        "circle_union",
        "unit_staff",
        "monthly_report",
    }
)

#: coordinator-only tables: sign-in, a person's own settings, the service's bookkeeping
#: (``export_job``: the files it names are written beside the API that made them).
#: Signing in must not be a transaction on every node.
LOCAL: frozenset[str] = frozenset(
    {
        "alembic_version",
        "auth_session",
        "refresh_token",
        "sign_in_failure",
        "saved_search",
        "notify_preference",
        "notify_quiet_hours",
        "notify_heartbeat",
        "approval_delegation",
        "access_state",
        "case_rollup_state",
        "import_run",
        "export_job",
    }
)


def placement(table: str) -> str:
    """``"distributed"``, ``"to_distribute"``, ``"reference"`` or ``"local"``; KeyError
    for a table not placed here."""
    if table in DISTRIBUTED:
        return "distributed"
    if table in TO_DISTRIBUTE:
        return "to_distribute"
    if table in REFERENCE:
        return "reference"
    if table in LOCAL:
        return "local"
    raise KeyError(f"table {table} is not placed in gis_service/db/distribution.py")
