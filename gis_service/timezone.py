"""The district's time: every time shown to a person is in it.

The zone is ``Settings.timezone`` (environment ``GIS_TIMEZONE``, an IANA name, default
``Asia/Shanghai``). The database stores instants (``timestamptz``) and its sessions run in
UTC, so a date or clock time for people is made here (Python) or with
``AT TIME ZONE :tz`` in SQL, passing ``zone_name(settings)``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gis_service.errors import InvalidInput
from gis_service.settings import Settings

LOCAL_FORMAT = "%Y-%m-%d %H:%M"
"""How a moment is written for people: ISO 8601 date and 24-hour clock, no zone."""


@lru_cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"GIS_TIMEZONE {name!r} is not an IANA time zone (e.g. Asia/Shanghai)",
            field="timezone",
        ) from exc


def zone(settings: Settings) -> ZoneInfo:
    """The district's zone; InvalidInput if ``GIS_TIMEZONE`` names none."""
    return _zone(settings.timezone)


def zone_name(settings: Settings) -> str:
    """The zone's IANA name, checked, for SQL's ``AT TIME ZONE :tz``."""
    return zone(settings).key


def local_now(settings: Settings, now: datetime | None = None) -> datetime:
    """The current moment (or ``now``) as an aware datetime in the district's zone."""
    return to_local(now or datetime.now(UTC), settings)


def to_local(moment: datetime, settings: Settings) -> datetime:
    """An instant in the district's zone. A naive datetime is taken as UTC (as stored)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone(settings))


def local_date(settings: Settings, now: datetime | None = None) -> date:
    """Today (or the day of ``now``) in the district."""
    return local_now(settings, now).date()


def local_text(moment: datetime | None, settings: Settings) -> str | None:
    """A moment written for people in the district's time (``LOCAL_FORMAT``); None stays."""
    return to_local(moment, settings).strftime(LOCAL_FORMAT) if moment else None


def local_iso(moment: datetime | None, settings: Settings) -> str | None:
    """A moment as ISO 8601 with the district's UTC offset (``2026-12-01T02:30:00+08:00``)."""
    return to_local(moment, settings).isoformat(timespec="seconds") if moment else None
