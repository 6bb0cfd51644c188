"""The outside channels a notification is delivered through, behind one interface.

Each channel is a module of this package named after it (``email``, ``sms``, ``webhook``)
with ``send(message: Message, settings: Settings) -> None``; :func:`deliver` is the one
entry the sender uses. A channel raises :class:`DeliveryError` when the message did not
go out: ``retryable=True`` (a timeout, a 5xx, a refused connection) asks the sender to try
again later with the same ``delivery_id``; ``retryable=False`` (a 4xx, a malformed address)
sends the delivery to the dead-letter list at once.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gis_service.settings import Settings

#: the outside channels, in the order a preference form shows them
CHANNELS: tuple[str, ...] = ("email", "sms", "webhook")


@dataclass(frozen=True)
class Message:
    """One delivery of one notification through one channel.

    ``delivery_id`` is the idempotency id: a UUID string, the same on every retry of this
    delivery, so a receiver recognises a retry after a crash. ``event_id`` names the case
    event or reminder the message is about. ``recipient`` is an e-mail address, a phone
    number or a webhook URL, as the channel needs. ``subject`` and ``body`` are the text
    people read (Simplified Chinese); ``payload`` holds the JSON-able facts (case id,
    number, status, unit, deadline) for machines. ``created_at`` is aware (UTC)."""

    delivery_id: str
    event_id: str
    kind: str
    recipient: str
    subject: str
    body: str
    created_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


class DeliveryError(Exception):
    """The message did not go out; ``retryable`` says whether a later try may succeed."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def deliver(channel: str, message: Message, settings: Settings) -> None:
    """Send ``message`` through ``channel`` (one of :data:`CHANNELS`).

    Raises ValueError for an unknown channel and :class:`DeliveryError` when the channel
    could not deliver."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
    module = importlib.import_module(f"{__name__}.{channel}")
    module.send(message, settings)
