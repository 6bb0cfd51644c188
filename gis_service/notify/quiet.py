"""Quiet hours: when a non-urgent SMS waits for the morning (issue 16: "SMS not at night
except for what is marked urgent"). Clock times are the service's (gis_service/timezone.py);
a person's own hours (``notify_quiet_hours``) replace the settings' default
(``notify_quiet_start`` / ``notify_quiet_end``, 22:00–07:00).

:func:`not_before` is the rule every path applies: the fan-out to a delivery's first try
(notify/fanout.py) and the sender to each retry's backoff (notify/sender.py), so a retry
that would land at 23:30 waits for the morning too."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import Connection, text

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


def not_before(
    moment: datetime,
    channel: str,
    urgent: bool,
    hours: tuple[time, time] | None,
    settings: Settings,
) -> datetime:
    """When a delivery through ``channel`` due at ``moment`` may go: a non-urgent SMS
    whose ``moment`` lies in the recipient's quiet ``hours`` (``(starts, ends)``; None:
    the settings' default) waits for their end; anything else goes at ``moment``."""
    if channel != "sms" or urgent:
        return moment
    starts, ends = hours or (settings.notify_quiet_start, settings.notify_quiet_end)
    return quiet_until(moment, starts, ends, settings) or moment


def quiet_hours(conn: Connection, users: list[int]) -> dict[int, tuple[time, time]]:
    """The quiet hours people set themselves (``notify_quiet_hours``), by user id; those
    absent have the settings' default."""
    if not users:
        return {}
    rows = conn.execute(
        text(
            "SELECT user_id, starts, ends FROM notify_quiet_hours "
            "WHERE user_id = ANY(CAST(:u AS integer[]))"
        ),
        {"u": users},
    ).all()
    return {r.user_id: (r.starts, r.ends) for r in rows}
