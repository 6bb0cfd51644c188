"""What the map pages read besides statistics and tiles: vocabularies for their forms and
the date of the data they show. The routes call these; they hold no SQL themselves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text


def case_domains(conn: Connection) -> list[dict]:
    """Top-level case categories (code, name_zh, name_en), by code."""
    return [
        dict(r)
        for r in conn.execute(
            text(
                "SELECT code, name_zh, name_en FROM case_category WHERE parent_code IS NULL "
                "ORDER BY code"
            )
        ).mappings()
    ]


def living_categories(conn: Connection, lang: str) -> list[tuple[str, str]]:
    """The six living-circle categories as (code, name in ``lang``), in their order."""
    return [
        (r[0], r[1] if lang == "zh" else r[2])
        for r in conn.execute(
            text("SELECT code, name_zh, name_en FROM living_category ORDER BY sort")
        )
    ]


def access_computed_at(conn: Connection) -> datetime | None:
    """When the walking distances of buildings were last computed (timestamptz)."""
    return conn.execute(text("SELECT max(computed_at) FROM building_access")).scalar()
