"""Signed webhooks: a notification POSTed as JSON to another system's URL.

The request (one per delivery try; the same ``X-Delivery-Id`` on every retry)::

    POST <subscription url>
    Content-Type: application/json; charset=utf-8
    X-Delivery-Id: <uuid>          the idempotency id: a receiver drops an id it has seen
    X-Event-Id: event:<id>         the case event (or reminder:<id>) the message is about
    X-Event-Kind: <kind>
    X-Timestamp: <unix seconds>
    X-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

    {"delivery_id", "event_id", "kind", "subject", "body", "created_at", "payload"}

The signature covers the timestamp and the exact body bytes (the scheme of Stripe's and
Slack's webhooks); a receiver recomputes it with the shared secret, compares in constant
time and refuses an old timestamp (replay). :func:`verify` is that check.

The secret travels to :func:`send` in ``message.payload[SECRET_KEY]`` (the sender reads it
from the subscription at send time; notify/sender.py); it is taken out before the body is
made and never sent. Outcome: 2xx delivered; 408, 429, 5xx, a timeout or a refused
connection → ``DeliveryError(retryable=True)``; any other status → not retryable (the
receiver refused this message; trying again sends the same).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

from gis_service.notify.channels import DeliveryError, Message
from gis_service.settings import Settings

#: the payload key that carries the subscription's secret to :func:`send` (never sent)
SECRET_KEY = "_webhook_secret"
#: statuses below 500 that a later try may still get through
RETRYABLE_4XX = frozenset({408, 425, 429})


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with ``secret`` over ``"<timestamp>.<body>"``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, header: str, *, tolerance_s: float = 300
) -> bool:
    """True when ``header`` is the signature of ``timestamp.body`` and the timestamp is
    within ``tolerance_s`` seconds of now (the receiver's check)."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), header)


def body_of(message: Message) -> bytes:
    """The JSON body (UTF-8), without the private secret key."""
    payload = {k: v for k, v in message.payload.items() if not k.startswith("_")}
    return json.dumps(
        {
            "delivery_id": message.delivery_id,
            "event_id": message.event_id,
            "kind": message.kind,
            "subject": message.subject,
            "body": message.body,
            "created_at": message.created_at.isoformat(),
            "payload": payload,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def send(message: Message, settings: Settings) -> None:
    """POST the message to ``message.recipient`` (the subscription's URL), signed."""
    secret = message.payload.get(SECRET_KEY)
    if not secret:
        raise DeliveryError("webhook message without its subscription's secret", retryable=False)
    body = body_of(message)
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        message.recipient,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "gis-service-webhook/1",
            "X-Delivery-Id": message.delivery_id,
            "X-Event-Id": message.event_id,
            "X-Event-Kind": message.kind,
            "X-Timestamp": timestamp,
            "X-Signature": signature(str(secret), timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(
            request, timeout=settings.notify_webhook_timeout_seconds
        ) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        retryable = exc.code >= 500 or exc.code in RETRYABLE_4XX
        raise DeliveryError(f"webhook answered HTTP {exc.code}", retryable=retryable) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"webhook unreachable: {reason}", retryable=True) from exc
