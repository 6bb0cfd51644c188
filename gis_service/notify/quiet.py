"""Quiet hours: when a non-urgent SMS waits for the morning (issue 16: "SMS not at night
except for what is marked urgent"). Clock times are the service's (gis_service/timezone.py);
a person's own hours (``notify_quiet_hours``) replace the settings' default
(``notify_quiet_start`` / ``notify_quiet_end``, 22:00–07:00)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from gis_service.settings import Settings
from gis_service.timezone import zone


def quiet_until(moment: datetime, starts: time, ends: time, settings: Settings) -> datetime | None:
    """The end of the quiet hours ``moment`` (aware) lies in, as an aware UTC time, or None
    when it lies outside them. ``starts`` after ``ends`` spans midnight (22:00–07:00);
    equal: no quiet hours. ``starts`` is inside, ``ends`` outside."""
    if starts == ends:
        return None
    local = moment.astimezone(zone(settings))
    clock = local.time().replace(tzinfo=None)
    if starts < ends:
        inside = starts <= clock < ends
        day = local.date()
    else:
        inside = clock >= starts or clock < ends
        day = local.date() + timedelta(days=1) if clock >= starts else local.date()
    if not inside:
        return None
    end = datetime.combine(day, ends, tzinfo=zone(settings))
    return end.astimezone(UTC)
