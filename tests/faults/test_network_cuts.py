"""A network that breaks connections in the middle of requests (issue 14, item 1): between
the reporting clients and the real server, a TCP relay (tests/netcut.py) breaks a random
share of the report uploads, half of them in the middle of the body (the server never
gets the whole report) and half after the server has answered (the case is stored, the
client never hears so). The clients retry with the same Idempotency-Key: every
acknowledged report is stored exactly once, with its photo, and no answer is a 500.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

from tests.faults.stream import UNHANDLED, ReportStream, assert_exactly_once, served
from tests.netcut import CUT_UPLOAD, DROP_RESPONSE, CuttingRelay

#: the share of report uploads the relay breaks
SHARE = 0.3
#: reports to see acknowledged through the relay
REPORTS = 300
#: the stated bound: a report whose connection was broken is acknowledged within this
#: many seconds of its first try
RECOVERY_SECONDS = 10
BOUND_SECONDS = 90


def test_connections_cut_mid_request_lose_and_double_nothing(case_city: dict) -> None:
    settings = case_city["settings"]
    started = time.monotonic()
    tag = f"cut-{uuid.uuid4().hex[:8]}"
    with served(settings, workers=1) as server:
        relay = CuttingRelay(server.port, [], share=SHARE, seed=14)
        try:
            with ReportStream(
                f"http://127.0.0.1:{relay.port}",
                case_city["worker1"],
                tag=tag,
                threads=3,
                photo_every=3,
            ) as stream:
                stream.wait_acks(REPORTS, sent_after=started, within=BOUND_SECONDS / 2)
                stream.stop()
        finally:
            relay.close()
        log = server.log_text()

    assert_exactly_once(settings, stream)
    fates = Counter(relay.reports)
    # both kinds of break happened, and each one made its report go again
    assert fates[CUT_UPLOAD] > 0 and fates[DROP_RESPONSE] > 0, fates
    broken = fates[CUT_UPLOAD] + fates[DROP_RESPONSE]
    retried = [s for s in stream.acked() if s.attempts > 1]
    assert sum(s.attempts - 1 for s in stream.sent) >= broken - stream.threads, (
        fates,
        stream.summary(),
    )
    # an answer lost after the case was stored comes back as a replay of that case (200)
    assert any(s.replayed for s in retried), stream.summary()
    assert UNHANDLED not in log, log[-3000:]
    worst = max(s.acked_at - s.first_sent for s in retried)
    assert worst < RECOVERY_SECONDS, worst
    print(
        f"\n[relay breaking {SHARE:.0%} of uploads] {dict(fates)}; a broken report was "
        f"acknowledged at most {worst:.2f} s after its first try\n{stream.summary()}"
    )
    assert time.monotonic() - started < BOUND_SECONDS
