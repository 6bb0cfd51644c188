"""Quiet hours hold an SMS's retries too (notify/quiet.py ``not_before``, used by the
fan-out and the sender alike): a non-urgent SMS that fails once in the evening, through
the stub gateway (tests/sms_gateway.py), is retried after the recipient's quiet hours
when its backoff lands inside them; an urgent one keeps its backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest

from gis_service.notify.quiet import not_before, quiet_until
from gis_service.notify.sender import Sender
from gis_service.timezone import zone
from tests.sms_gateway import SmsGateway
from tests.test_notify_sender import dispatch_to_quiet_sms, rows

BACKOFF = 3600.0


@pytest.mark.parametrize(
    ("channel", "urgent", "at", "expected"),
    [
        ("sms", False, "2026-12-01 23:30", "2026-12-02 07:00"),  # a backoff at 23:30
        ("sms", False, "2026-12-02 06:59", "2026-12-02 07:00"),
        ("sms", False, "2026-12-01 21:59", "2026-12-01 21:59"),
        ("sms", True, "2026-12-01 23:30", "2026-12-01 23:30"),  # urgent: not held
        ("email", False, "2026-12-01 23:30", "2026-12-01 23:30"),  # only SMS is held
        ("webhook", False, "2026-12-02 02:00", "2026-12-02 02:00"),
    ],
)
def test_not_before_holds_only_a_non_urgent_sms(settings, channel, urgent, at, expected) -> None:
    z = zone(settings)
    moment = datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=z)
    got = not_before(moment, channel, urgent, None, settings).astimezone(z)
    assert got.strftime("%Y-%m-%d %H:%M") == expected
    # a person's own hours replace the default
    own = not_before(moment, channel, urgent, (clock(23, 0), clock(23, 45)), settings)
    held = channel == "sms" and not urgent and at.endswith("23:30")
    assert own.astimezone(z).strftime("%H:%M") == ("23:45" if held else at[-5:])


def test_an_evening_sms_retry_waits_for_the_end_of_the_quiet_hours(case_city) -> None:
    """ta's quiet hours start half an hour from now (the evening) and end in three: the
    SMS goes now, the gateway fails it once (503), and its backoff of an hour lands in the
    quiet hours, so its next try is their end; the urgent one's is the backoff."""
    now_local = datetime.now(UTC).astimezone(zone(case_city["settings"]))
    starts = (now_local + timedelta(minutes=30)).time().replace(second=0, microsecond=0)
    ends = (now_local + timedelta(hours=3)).time().replace(second=0, microsecond=0)
    with SmsGateway(statuses=[503, 503]) as gateway:
        s = case_city["settings"].model_copy(
            update={
                "sms_url": gateway.url,
                "sms_timeout_seconds": 5,
                "notify_retry_base_seconds": BACKOFF,
                "notify_retry_cap_seconds": BACKOFF,
            }
        )
        calm, urgent = dispatch_to_quiet_sms(s, case_city, starts, ends)
        before = datetime.now(UTC)
        sender = Sender(s)
        sender.run(once=True)
        after = datetime.now(UTC)
        assert len(gateway.calls) == 2  # both went at once (outside the quiet hours)
        sender.run(once=True)  # nothing is due again yet
        assert len(gateway.calls) == 2
    sms = rows(
        s,
        "SELECT (payload ->> 'case_id')::bigint AS case_id, status, attempts, urgent, "
        "next_attempt_at, last_error FROM notify_delivery WHERE channel = 'sms' ORDER BY 1",
    )
    assert [(r["case_id"], r["status"], r["attempts"]) for r in sms] == [
        (calm["id"], "pending", 1),
        (urgent["id"], "pending", 1),
    ]
    held, kept = sms
    assert "503" in held["last_error"] and not held["urgent"] and kept["urgent"]
    backoff = timedelta(seconds=BACKOFF)
    end = quiet_until(before + backoff, starts, ends, s)
    assert end is not None and end == quiet_until(after + backoff, starts, ends, s)
    assert held["next_attempt_at"] == end
    assert before + backoff <= kept["next_attempt_at"] <= after + backoff
    assert kept["next_attempt_at"] < held["next_attempt_at"]
